import ms from 'ms';

/**
 * Parses a duration string of the API (`500ms`, `10s`, `2m`, `1h`, `7d`, see DURATION_PATTERN) into
 * milliseconds.
 * @throws RangeError when the string is not a duration.
 */
export function parseDuration(value: string): number {
  const result = ms(value as ms.StringValue);
  if (typeof result !== 'number' || !Number.isFinite(result) || result < 0) throw new RangeError(`not a duration: ${JSON.stringify(value)}`);
  return result;
}

/** Milliseconds → nanoseconds, the unit of JetStream's API. */
export const nanos = (millis: number): number => Math.round(millis * 1_000_000);
