import { ENVELOPE_BYTES } from '../core/batch.js';
import { AnalyticsError, AnalyticsErrorCodes } from './errors.js';

/** A source of the current time (tests pin it). */
export interface AnalyticsClock {
  /** The current time. */
  now(): Date;
}

/**
 * Settings of {@link Analytics}. Names and meanings follow `@segment/analytics-node` 3.x where it
 * has the setting. Durations are in milliseconds, sizes in bytes (UTF-8 JSON).
 */
export interface AnalyticsSettings {
  /** The Source's write key, sent as the HTTP Basic user name. Required. */
  writeKey: string;
  /**
   * Base URL of the Switchyard ingestion API, e.g. `https://data.example.com` (http or https; a
   * path prefix is kept). Required unless `disable` is true: there is no public default host.
   */
  host?: string;
  /** Path of the batch route, appended to `host`. Default `/v1/batch`. */
  path?: string;
  /** Events per request at most; a request is sent as soon as this many are queued. Default 15. */
  flushAt?: number;
  /**
   * Longest wait in ms between an event being queued and its request being sent (when another
   * request is in flight then, right after that one). The timer does not keep the process alive:
   * call `closeAndFlush()` before exiting. Default 10000.
   */
  flushInterval?: number;
  /**
   * Request body size at most, in bytes; a request is sent as soon as the queued events fill it.
   * Default 512000 (500 KiB, the ingestion's default `spec.limits.maxBatchBytes`).
   */
  maxBatchBytes?: number;
  /**
   * Size of one event as JSON at most, in bytes; a larger call is refused at the call
   * (`SY_CLIENT_EVENT_TOO_LARGE`) and never sent. Default 32768 (32 KiB, the ingestion's default
   * `spec.limits.maxEventBytes`). At most `maxBatchBytes` minus the envelope (64 bytes).
   */
  maxEventBytes?: number;
  /**
   * Requests in flight at once. Default 1: events reach the ingestion in call order, and a failing
   * ingestion gets one request's retries. More raise throughput (one request waits a round trip),
   * but then requests, and their retries, may overtake one another.
   */
  maxInFlight?: number;
  /** Events held in memory at most, queued or in flight; a call beyond it is refused (`SY_CLIENT_QUEUE_FULL`). Default 10000. */
  maxQueueSize?: number;
  /**
   * Retries of a request after a network error, a timeout, 408, 429 or 5xx (so `maxRetries + 1`
   * attempts); then its events fail with `SY_CLIENT_RETRIES_EXHAUSTED`. Default 10 (as
   * analytics-node): with the default delays about 1.5–3 minutes of backoff, enough to ride out an
   * ingestion restart.
   */
  maxRetries?: number;
  /** Delay before the first retry in ms, doubling per retry, with jitter (half fixed, half random). Default 1000. */
  retryMinDelayMs?: number;
  /** Longest delay before a retry in ms; also caps a server's `Retry-After`. Default 30000. */
  retryMaxDelayMs?: number;
  /** Time allowed for one request, from connecting to the end of the answer, in ms; then it counts as a retryable failure. Default 10000. */
  httpRequestTimeout?: number;
  /** Turns the SDK into a no-op: calls are checked and their callbacks told of success, nothing is sent. Default false. */
  disable?: boolean;
  /** Time of events (`timestamp`), of requests (`sentAt`) and for `Retry-After` dates. Default the system clock. */
  clock?: AnalyticsClock;
  /** Random numbers in [0, 1) for retry jitter. Default `Math.random`. */
  random?: () => number;
}

/** Defaults of the numeric settings (see {@link AnalyticsSettings}). */
const NUMERIC_DEFAULTS = {
  flushAt: 15,
  flushInterval: 10_000,
  maxBatchBytes: 500 * 1024,
  maxEventBytes: 32 * 1024,
  maxInFlight: 1,
  maxQueueSize: 10_000,
  maxRetries: 10,
  retryMinDelayMs: 1000,
  retryMaxDelayMs: 30_000,
  httpRequestTimeout: 10_000,
} as const;

/** The defaults of every optional setting (see {@link AnalyticsSettings}). */
export const ANALYTICS_DEFAULTS = { path: '/v1/batch', ...NUMERIC_DEFAULTS, disable: false } as const;

/** Settings with every default filled in, as {@link resolveSettings} returns them. */
export type ResolvedSettings = Required<Omit<AnalyticsSettings, 'host'>> & {
  /** `host` + `path`, the URL requests go to; empty when disabled without a host. */
  url: string;
};

/** Bounds of the numeric settings: all integers. */
const NUMERIC_BOUNDS: Record<keyof typeof NUMERIC_DEFAULTS, { min: number; max: number }> = {
  flushAt: { min: 1, max: 100_000 },
  flushInterval: { min: 1, max: 24 * 3600 * 1000 },
  maxBatchBytes: { min: 1024, max: 64 * 1024 * 1024 },
  maxEventBytes: { min: 256, max: 64 * 1024 * 1024 },
  maxInFlight: { min: 1, max: 64 },
  maxQueueSize: { min: 1, max: 10_000_000 },
  maxRetries: { min: 0, max: 1000 },
  retryMinDelayMs: { min: 0, max: 24 * 3600 * 1000 },
  retryMaxDelayMs: { min: 0, max: 24 * 3600 * 1000 },
  httpRequestTimeout: { min: 1, max: 24 * 3600 * 1000 },
};

const KNOWN_SETTINGS = new Set<string>(['writeKey', 'host', 'path', 'disable', 'clock', 'random', ...Object.keys(NUMERIC_BOUNDS)]);

function invalid(setting: string, message: string, cause?: unknown): AnalyticsError {
  return new AnalyticsError(AnalyticsErrorCodes.INVALID_SETTINGS, `invalid setting ${setting}: ${message}`, { setting, cause });
}

/**
 * Checks `settings` and fills in the defaults of {@link ANALYTICS_DEFAULTS}.
 * @throws AnalyticsError `SY_CLIENT_INVALID_SETTINGS` naming the setting (`error.setting`): an
 * unknown setting, a missing `writeKey` or `host`, a host that is not an http(s) URL, a number that
 * is not an integer within its bounds, `retryMinDelayMs` above `retryMaxDelayMs`, `maxEventBytes`
 * above `maxBatchBytes` minus the envelope.
 */
export function resolveSettings(settings: AnalyticsSettings): ResolvedSettings {
  if (typeof settings !== 'object' || settings === null) throw invalid('settings', 'expected an object');
  for (const key of Object.keys(settings)) {
    if (!KNOWN_SETTINGS.has(key)) throw invalid(key, 'unknown setting');
  }
  if (typeof settings.writeKey !== 'string' || settings.writeKey.trim() === '') throw invalid('writeKey', 'a non-empty string is required');
  if (settings.disable !== undefined && typeof settings.disable !== 'boolean') throw invalid('disable', 'expected a boolean');
  const disable = settings.disable ?? ANALYTICS_DEFAULTS.disable;
  const path = settings.path ?? ANALYTICS_DEFAULTS.path;
  if (typeof path !== 'string' || !path.startsWith('/')) throw invalid('path', 'expected a string starting with /');

  let url = '';
  if (settings.host === undefined) {
    if (!disable) throw invalid('host', 'the ingestion URL is required (e.g. https://data.example.com)');
  } else {
    let parsed: URL;
    try {
      parsed = new URL(String(settings.host));
    } catch (cause) {
      throw invalid('host', `not a URL: ${String(settings.host)}`, cause);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid('host', `expected an http or https URL, got ${parsed.protocol}`);
    if (parsed.search || parsed.hash) throw invalid('host', 'expected no query or fragment');
    url = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}${path}`;
  }

  const numbers = { ...NUMERIC_DEFAULTS } as Record<keyof typeof NUMERIC_BOUNDS, number>;
  for (const [name, bounds] of Object.entries(NUMERIC_BOUNDS) as [keyof typeof NUMERIC_BOUNDS, { min: number; max: number }][]) {
    const value = settings[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < bounds.min || value > bounds.max) {
      throw invalid(name, `expected an integer from ${bounds.min} to ${bounds.max}, got ${String(value)}`);
    }
    numbers[name] = value;
  }
  if (numbers.retryMinDelayMs > numbers.retryMaxDelayMs) throw invalid('retryMinDelayMs', `${numbers.retryMinDelayMs} is above retryMaxDelayMs (${numbers.retryMaxDelayMs})`);
  if (numbers.maxEventBytes > numbers.maxBatchBytes - ENVELOPE_BYTES) {
    throw invalid('maxEventBytes', `${numbers.maxEventBytes} does not fit in a request of maxBatchBytes ${numbers.maxBatchBytes} (at most ${numbers.maxBatchBytes - ENVELOPE_BYTES})`);
  }

  const clock = settings.clock ?? { now: () => new Date() };
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') throw invalid('clock', 'expected an object with a now() method returning a Date');
  const random = settings.random ?? Math.random;
  if (typeof random !== 'function') throw invalid('random', 'expected a function returning a number in [0, 1)');

  return { writeKey: settings.writeKey, path, url, disable, clock, random, ...numbers };
}
