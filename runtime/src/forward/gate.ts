import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhenResult, noJitterGenerator, type CircuitBreakerPolicy, type IBackoff } from 'cockatiel';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Clock } from '../clock.js';
import type { SendResult } from '../destinations/index.js';

/** Settings of a {@link DeliveryGate}; delays in milliseconds. */
export interface DeliveryGateOptions {
  /** The Integration's whole rate limit (spec.delivery.rateLimit); each replica takes 1/replicas of it. */
  rateLimit?: { eventsPerSecond?: number; requestsPerSecond?: number };
  /** Forwarder replicas sharing the rate limit (spec.forwarder.replicas). */
  replicas: number;
  /** Consecutive failed sends that open the circuit (0: no breaker). */
  breakerFailures: number;
  /** Time the circuit stays open before one probe send. */
  halfOpenAfterMs: number;
  /**
   * Pause after a throttled send when the vendor gave no Retry-After: exponential from
   * `initialMs`, doubling up to `maxMs` (defaults 1 s and 60 s: seven throttled rounds in a row
   * span over two minutes, outlasting a vendor's per-minute window).
   */
  throttleBackoff?: { initialMs: number; maxMs: number };
  /**
   * Time source of throttle pauses, in ms: a monotonic one (performance.now) in the forwarder, not
   * the pinned event clock, so pauses elapse; a fake one in unit tests. The breaker and the rate
   * limiter keep their own time (Date.now); their delays are settings.
   */
  clock: Clock;
  /** Called when the circuit opens, probes (half-open) or closes again. */
  onCircuit?: (state: 'closed' | 'open' | 'half-open') => void;
}

/** Whether a send counts as a failure for the circuit breaker: the vendor was unreachable or failing, not merely throttling. */
export const breakerCountsFailure = (r: SendResult): boolean => r.outcome === 'retryable' && !r.throttled;

/**
 * What stands between a forwarder and its destination, per Integration and replica:
 * - a rate limit (rate-limiter-flexible fixed windows: events and requests per second, this
 *   replica's share);
 * - a pause after throttling: the vendor's Retry-After, else an exponential backoff (cockatiel);
 * - a circuit breaker (cockatiel, consecutive failures): while open no send starts; after
 *   `halfOpenAfterMs` one probe send goes, and the rest wait for its result.
 * {@link DeliveryGate.waitMs} says how long a send must wait; {@link DeliveryGate.send} runs one
 * through the breaker.
 */
export class DeliveryGate {
  /** Most events one send may carry under the events rate (Infinity without one). */
  readonly maxEventsPerSend: number;
  private readonly events: RateLimiterMemory | undefined;
  private readonly requests: RateLimiterMemory | undefined;
  private readonly breaker: CircuitBreakerPolicy | undefined;
  private readonly throttleFactory: ExponentialBackoff<number>;
  private throttleBackoff: IBackoff<unknown> | undefined;
  private pausedUntil = 0;
  private openedAt = 0;
  private probe: Promise<unknown> | undefined;

  constructor(private readonly options: DeliveryGateOptions) {
    const share = (perSecond: number | undefined) => (perSecond === undefined ? undefined : perSecond / Math.max(1, options.replicas));
    const limiter = (perSecond: number | undefined) => {
      if (perSecond === undefined) return undefined;
      const points = Math.max(1, Math.floor(perSecond));
      return new RateLimiterMemory({ points, duration: points / perSecond });
    };
    const eventsShare = share(options.rateLimit?.eventsPerSecond);
    this.events = limiter(eventsShare);
    this.requests = limiter(share(options.rateLimit?.requestsPerSecond));
    this.maxEventsPerSend = eventsShare === undefined ? Infinity : Math.max(1, Math.floor(eventsShare));
    if (options.breakerFailures > 0) {
      this.breaker = circuitBreaker(handleWhenResult((r) => breakerCountsFailure(r as SendResult)), {
        halfOpenAfter: options.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(options.breakerFailures),
      });
      this.breaker.onBreak(() => {
        this.openedAt = Date.now();
      });
      this.breaker.onStateChange(() => options.onCircuit?.(this.circuit));
    }
    const backoff = options.throttleBackoff ?? { initialMs: 1000, maxMs: 60_000 };
    this.throttleFactory = new ExponentialBackoff({ generator: noJitterGenerator, initialDelay: backoff.initialMs, maxDelay: backoff.maxMs });
  }

  /** The circuit's state: `closed`, `open` (no sends until the probe) or `half-open` (a probe in flight). */
  get circuit(): 'closed' | 'open' | 'half-open' {
    const state = this.breaker?.state ?? CircuitState.Closed;
    return state === CircuitState.Closed ? 'closed' : state === CircuitState.HalfOpen ? 'half-open' : 'open';
  }

  /**
   * How long a send of `events` must wait, in ms; 0 means it may start now, and then it has
   * taken its place in the rate limit (call {@link send} right away).
   */
  async waitMs(events: number): Promise<number> {
    const paused = this.pausedUntil - this.options.clock.now();
    if (paused > 0) return paused;
    if (this.breaker) {
      if (this.probe) return 50; // the probe decides for everyone
      if (this.breaker.state === CircuitState.Open) {
        const left = this.openedAt + this.options.halfOpenAfterMs - Date.now();
        if (left > 0) return left;
      }
    }
    for (const [limiter, points] of [
      [this.requests, 1],
      [this.events, Math.min(events, this.maxEventsPerSend)],
    ] as const) {
      if (!limiter) continue;
      try {
        await limiter.consume('send', points);
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) throw e;
        if (limiter === this.events && this.requests) await this.requests.reward('send', 1);
        return Math.max(1, e.msBeforeNext);
      }
    }
    return 0;
  }

  /**
   * Runs one send through the circuit breaker and notes throttling.
   * @returns the send's result, or undefined when the circuit is open (nothing was sent).
   */
  async send(fn: () => Promise<SendResult>): Promise<SendResult | undefined> {
    let result: SendResult;
    if (!this.breaker) result = await fn();
    else {
      const probing = this.breaker.state === CircuitState.Open;
      try {
        const run = this.breaker.execute(fn);
        if (probing) this.probe = run.catch(() => undefined).finally(() => (this.probe = undefined));
        result = await run;
      } catch (e) {
        if (e instanceof BrokenCircuitError) return undefined;
        throw e;
      }
    }
    if (result.throttled) {
      this.throttleBackoff = this.throttleBackoff ? this.throttleBackoff.next(undefined) : this.throttleFactory.next();
      const pause = result.retryAfterMs ?? this.throttleBackoff.duration;
      this.pausedUntil = Math.max(this.pausedUntil, this.options.clock.now() + pause);
    } else if (result.outcome === 'success') {
      this.throttleBackoff = undefined;
    }
    return result;
  }
}
