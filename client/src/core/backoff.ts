/** Retry timing settings, in milliseconds. */
export interface RetryDelays {
  /** Delay before the first retry; doubles with each attempt. */
  retryMinDelayMs: number;
  /** Longest delay. */
  retryMaxDelayMs: number;
}

/**
 * Delay before retry number `attempt` (1 = first retry): `retryMinDelayMs · 2^(attempt-1)`, capped
 * at `retryMaxDelayMs`, then "equal jitter" (half fixed, half random) so clients that failed together
 * do not retry together (AWS Architecture Blog, "Exponential Backoff And Jitter").
 * @param random a number in [0, 1); default `Math.random` (tests pin it).
 * @returns milliseconds, at least half the capped delay.
 */
export function retryDelay(attempt: number, delays: RetryDelays, random: () => number = Math.random): number {
  const capped = Math.min(delays.retryMaxDelayMs, delays.retryMinDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(capped / 2 + (random() * capped) / 2);
}

/**
 * A `Retry-After` header value (RFC 9110 §10.2.3: delay-seconds or an HTTP date) in milliseconds
 * from `nowMs`. Returns undefined when absent or unreadable; never negative.
 */
export function retryAfterMs(header: string | null | undefined, nowMs: number): number | undefined {
  const text = header?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[A-Za-z]/.test(text)) return undefined; // neither seconds nor an HTTP date (e.g. "1.5", "-3"), which Date.parse would still read
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * Whether a tracking API answer is worth retrying: network failures (no status), 408, 429 and 5xx.
 * Everything else is final: 2xx (207 included: the refused events cannot be fixed by resending),
 * and the other 4xx (bad write key, origin, size). Segment's SDKs use the same split.
 */
export function isRetryableStatus(status: number | undefined): boolean {
  return status === undefined || status === 408 || status === 429 || status >= 500;
}
