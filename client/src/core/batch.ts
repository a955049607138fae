/** Limits of one request. */
export interface BatchLimits {
  /** Events per request at most. */
  maxEvents: number;
  /** Bytes per request body at most (the envelope included). */
  maxBytes: number;
}

/** Bytes `{"batch":[],"sentAt":"2026-01-01T00:00:00.000Z","writeKey":"…"}` adds around the events; callers add the write key's length. */
export const ENVELOPE_BYTES = 64;

/**
 * How many of `sizes` (each event's JSON size in bytes, in queue order) go into the next request:
 * at most `maxEvents`, and as many as fit in `maxBytes` with commas and the envelope. The first
 * event always goes, even when larger than `maxBytes` alone (the ingestion then refuses it by name,
 * rather than the queue stalling behind it).
 * @returns a count between 1 and `sizes.length` (0 for an empty list).
 */
export function batchCount(sizes: readonly number[], limits: BatchLimits, envelopeBytes = ENVELOPE_BYTES): number {
  let bytes = envelopeBytes;
  let n = 0;
  for (const size of sizes) {
    if (n >= limits.maxEvents) break;
    const next = bytes + size + (n > 0 ? 1 : 0);
    if (n > 0 && next > limits.maxBytes) break;
    bytes = next;
    n++;
  }
  return n;
}

/** UTF-8 length of a string, in bytes, without Buffer (the browser has none). */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
