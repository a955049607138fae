/** Source of the current time, injected wherever a rule depends on it so tests can pin `now`. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };
