import { retryDelay, type RetryDelays } from './backoff.js';
import { batchCount, ENVELOPE_BYTES, utf8Bytes, type BatchLimits } from './batch.js';
import type { SegmentEvent } from './event.js';

/**
 * One queued event, stored as JSON under `sy_q:<writeKey>:<messageId>` (one storage key per event,
 * so tabs never rewrite each other's entries).
 */
export interface QueueEntry {
  /** The event, final except for `sentAt` (set per request). */
  e: SegmentEvent;
  /** Attempts made so far. */
  n: number;
  /** Earliest time of the next attempt, ms since epoch. */
  t: number;
  /** Order of the calls made in one page (events of equal timestamps are sent in call order). */
  s?: number;
}

/** Storage key prefix of a write key's queue entries. */
export function queuePrefix(writeKey: string): string {
  return `sy_q:${writeKey}:`;
}

/** Storage key of the tab lease of a write key's queue. */
export function leaseKey(writeKey: string): string {
  return `sy_owner:${writeKey}`;
}

/** Limits of a flush: request size, and when an entry is given up. */
export interface FlushLimits extends BatchLimits {
  /** Attempts after which an entry is dropped. */
  maxAttempts: number;
  /** Age (from the event's `timestamp`) after which an entry is dropped, in ms. */
  maxAgeMs: number;
}

/** What to do with the queue now. */
export interface FlushPlan {
  /** Entries to drop: out of attempts, too old, or unreadable. */
  drop: string[];
  /** Entries of the next request, oldest event first. */
  send: Array<[key: string, entry: QueueEntry]>;
  /** Earliest `t` of the entries left waiting (not due, or not fitting), or undefined. */
  next: number | undefined;
}

/** Parses a stored entry; undefined when it is not one. */
export function parseEntry(text: string | null): QueueEntry | undefined {
  try {
    const entry = JSON.parse(text ?? '') as QueueEntry;
    return entry && typeof entry.e === 'object' && entry.e && typeof entry.e.messageId === 'string' ? entry : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Plans the next request from the stored entries: drops those at `maxAttempts` or older than
 * `maxAgeMs` (measured from the event's `timestamp`: vendors judge an event's age by it), then takes
 * the due ones (`t <= now`, not in `skip`) oldest first (call order `s` among equal timestamps), as
 * many as {@link batchCount} allows with an envelope of {@link ENVELOPE_BYTES} + `writeKey` bytes.
 * New entries (never attempted) wait until their `t` (the flush interval) for others to join, but
 * go at once with a request that is going anyway, when `maxEvents` of them wait, or when `eager`
 * says so: `true` for all (the page is going away), or a set of keys (entries earlier pages left,
 * which waited long enough); entries waiting for a retry always keep their time.
 * @param entries key → parsed entry (undefined: unreadable, dropped).
 * @param skip keys already in flight.
 */
export function planFlush(entries: ReadonlyArray<[string, QueueEntry | undefined]>, now: number, limits: FlushLimits, writeKey: string, skip: ReadonlySet<string> = new Set(), eager: boolean | ReadonlySet<string> = false): FlushPlan {
  const drop: string[] = [];
  const due: Array<[string, QueueEntry, number]> = [];
  const fresh: Array<[string, QueueEntry, number]> = [];
  let next: number | undefined;
  for (const [key, entry] of entries) {
    if (!entry) {
      drop.push(key);
      continue;
    }
    const at = Date.parse(entry.e.timestamp);
    const item: [string, QueueEntry, number] = [key, entry, Number.isNaN(at) ? 0 : at];
    if (entry.n >= limits.maxAttempts || now - at > limits.maxAgeMs) drop.push(key);
    else if (skip.has(key)) continue;
    else if (entry.t <= now || (entry.n === 0 && eager !== true && eager !== false && eager.has(key))) due.push(item);
    else if (entry.n === 0) fresh.push(item);
    else next = Math.min(next ?? entry.t, entry.t);
  }
  if (eager === true || due.length > 0 || fresh.length >= limits.maxEvents) due.push(...fresh);
  else for (const [, entry] of fresh) next = Math.min(next ?? entry.t, entry.t);
  due.sort((a, b) => a[2] - b[2] || (a[1].s ?? 0) - (b[1].s ?? 0));
  const count = batchCount(
    due.map(([, entry]) => utf8Bytes(JSON.stringify(entry.e))),
    limits,
    ENVELOPE_BYTES + utf8Bytes(writeKey),
  );
  if (count < due.length) next = now;
  return { drop, send: due.slice(0, count).map(([key, entry]) => [key, entry]), next };
}

/**
 * An entry after a failed attempt: one more attempt counted, next attempt after {@link retryDelay}
 * or the server's `Retry-After`, whichever is later.
 * @returns undefined when the entry has used `maxAttempts` (drop it).
 */
export function entryAfterFailure(entry: QueueEntry, now: number, settings: RetryDelays & { maxAttempts: number }, retryAfterMs?: number, random?: () => number): QueueEntry | undefined {
  const n = entry.n + 1;
  if (n >= settings.maxAttempts) return undefined;
  return { ...entry, n, t: now + Math.max(retryDelay(n, settings, random), retryAfterMs ?? 0) };
}

/** The tab lease of a queue, stored as JSON under {@link leaseKey}. */
export interface Lease {
  /** The owning tab's id. */
  id: string;
  /** Expiry, ms since epoch. */
  until: number;
}

/**
 * The lease tab `me` should write, if it may own the queue: when there is none, it has expired,
 * or it is already `me`'s (renewed to `now + leaseMs`).
 * @returns undefined when another tab holds a live lease.
 */
export function claimLease(current: Lease | undefined, me: string, now: number, leaseMs: number): Lease | undefined {
  return !current || current.id === me || !(current.until > now) ? { id: me, until: now + leaseMs } : undefined;
}
