import { readFileSync } from 'node:fs';
import type { Integration } from '../api/index.js';
import type { Clock } from '../clock.js';

/**
 * How one destination request ended:
 * - `success`: the destination took every payload of the request (ack them);
 * - `retryable`: try again later (network error, timeout, 408, 429, 5xx but 501/505);
 * - `permanent`: trying again cannot help (other statuses): dead-letter.
 */
export type DeliveryOutcome = 'success' | 'retryable' | 'permanent';

/** Result of {@link Destination.send}. Never thrown: failures are results. */
export interface SendResult {
  outcome: DeliveryOutcome;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Delay the destination asked for (`Retry-After`), in milliseconds, when it gave one. */
  retryAfterMs?: number;
  /** Short description of a failure: network error, timeout, or the start of the response body. */
  error?: string;
  /** Wall time of the request in milliseconds. */
  durationMs: number;
}

/** Everything a destination is built from: one Integration and its credentials. */
export interface DestinationOptions {
  /** The Integration, schema defaults applied. */
  integration: Integration;
  /** Key → value of the Integration's credentials Secret (empty when it has none). */
  credentials: Record<string, string>;
  /** Time allowed for one request, in milliseconds (spec.delivery.timeout). */
  timeoutMs: number;
  /** Source of `now` for date-valued headers (Retry-After). */
  clock: Clock;
}

/**
 * One Integration's connection to its destination. `send` takes the mapped payloads of up to
 * `delivery.batchSize` events and makes one request; at most `delivery.concurrency` sends run at
 * once. `close` releases connections after the last send resolved.
 */
export interface Destination {
  send(payloads: readonly unknown[]): Promise<SendResult>;
  close(): Promise<void>;
}

/** A destination type: builds a {@link Destination}, checking its settings. */
export interface DestinationType {
  /**
   * @throws SwitchyardError INVALID_RESOURCE when the Integration's settings or credentials cannot
   * be used by this type (missing settings, header names that are not tokens…).
   */
  create(options: DestinationOptions): Destination;
  /**
   * JSON Schema every mapped payload must satisfy for this Integration (the type's fixed schema,
   * or one from its settings), or undefined when the type takes any JSON object. Mappings are
   * checked against it when compiled, and each payload before delivery.
   */
  outputSchema?(integration: Integration | undefined): object | undefined;
}

/** Version of the runtime package, read once from runtime/package.json (same depth from src/ and dist/). */
export const RUNTIME_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** `User-Agent` of every destination request: `switchyard/<runtime version>`. */
export const USER_AGENT = `switchyard/${RUNTIME_VERSION}`;
