import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import type { Integration } from '../api/index.js';
import type { Clock } from '../clock.js';

/**
 * How a request, or one item of it, ended:
 * - `success`: the destination took it (ack);
 * - `retryable`: try again later (network error, timeout, throttling, a temporary vendor error);
 * - `permanent`: trying again cannot help (a refused item, bad credentials…): dead-letter.
 */
export type DeliveryOutcome = 'success' | 'retryable' | 'permanent';

/**
 * Why one item was refused without a vendor request (dead-letter reason `stale_event`): the
 * vendor would refuse it for its age (Meta's 7 days, GA4's 72 hours…), so it is never sent,
 * and never sinks the request of the others.
 */
export type ItemRefusal = 'stale_event';

/** Outcome of one payload of a send. */
export interface ItemResult {
  outcome: DeliveryOutcome;
  /** The vendor's reason for this item (its error message, code, field), for the dead letter. */
  error?: string;
  /** Set when the item was refused before sending (see {@link ItemRefusal}). */
  refusal?: ItemRefusal;
}

/** Result of {@link Destination.send}. Never thrown: failures are results. */
export interface SendResult {
  /**
   * Request-level outcome: `success` when every request reached the vendor and was taken as a
   * whole (even when the vendor refused some items, see `items`); `retryable` when a request
   * failed as a whole and may be retried (network error, 5xx, throttling); `permanent` when a
   * request failed as a whole for good (bad credentials, malformed request).
   */
  outcome: DeliveryOutcome;
  /**
   * One entry per payload, in order, when outcomes differ per item (a vendor's per-row errors,
   * events refused for age); absent when every payload has `outcome`.
   */
  items?: ItemResult[];
  /** The vendor asked to slow down (429, a throttling code): the Integration pauses, the circuit breaker does not count it. */
  throttled?: boolean;
  /** HTTP status of the (last failing, else last) request, when a response arrived. */
  status?: number;
  /** Delay the destination asked for (`Retry-After`, a throttle window), in milliseconds. */
  retryAfterMs?: number;
  /** Short description of a request-level failure: network error, timeout, the vendor's error. */
  error?: string;
  /** Wall time of the send in milliseconds. */
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
  /** Source of `now` for vendor time rules (age limits), signatures and Retry-After dates. */
  clock: Clock;
}

/**
 * One Integration's connection to its destination. `send` takes the mapped payloads of up to
 * `delivery.batchSize` events and delivers them (one or more vendor requests); at most
 * `delivery.concurrency` sends run at once. `close` releases connections after the last send resolved.
 */
export interface Destination {
  send(payloads: readonly unknown[]): Promise<SendResult>;
  close(): Promise<void>;
}

/** A destination type as the forwarder, `validate` and `map` use it. */
export interface DestinationType {
  /**
   * @throws SwitchyardError INVALID_RESOURCE when the Integration's settings or credentials cannot
   * be used by this type (missing settings or Secret keys, header names that are not tokens…).
   */
  create(options: DestinationOptions): Destination;
  /**
   * JSON Schema every mapped payload must satisfy for this Integration (the type's fixed schema,
   * or one from its settings), or undefined when the type takes any JSON object. Called with
   * undefined for a Mapping's `destinationType` check (no Integration). Mappings are checked
   * against it when compiled, and each payload before delivery.
   */
  outputSchema?(integration: Integration | undefined): object | undefined;
  /** Events per request: `default` when `delivery.batchSize` is not set, at most `max` (the vendor's limit). */
  readonly batch?: { readonly default: number; readonly max: number };
}

// ---- HTTP destinations -------------------------------------------------------------------------

/** One vendor request built by {@link DestinationDefinition.buildRequests}. */
export interface VendorRequest {
  method: 'POST' | 'PUT' | 'PATCH' | 'GET';
  /** Absolute URL, query string encoded. */
  url: string;
  /** Lower-case header names. `user-agent` is added when absent. */
  headers: Record<string, string>;
  body: string;
  /** Positions, in the `payloads` given to buildRequests, of the items this request carries. */
  items: number[];
}

/** A vendor's answer, as handed to {@link DestinationDefinition.classify}. */
export interface VendorResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string | string[] | undefined>;
  /** The body as text (at most {@link RESPONSE_BODY_LIMIT} bytes; longer bodies are cut). */
  body: string;
}

/** Most bytes of a vendor response body read for classification. */
export const RESPONSE_BODY_LIMIT = 1024 * 1024;

/** Classification of one vendor request. */
export interface RequestResult {
  /** Outcome of the request as a whole, and of each of its items unless `items` says otherwise. */
  outcome: DeliveryOutcome;
  /**
   * Per-item outcomes that differ from `outcome`, keyed by position in `request.items` (0-based
   * within this request, not the send): e.g. the rows of a Google Ads partial failure.
   */
  items?: ReadonlyMap<number, ItemResult>;
  /** The vendor asked to slow down (429, TikTok 40100, Meta 17/80003…). */
  throttled?: boolean;
  /** Delay the vendor asked for, in ms (Retry-After, a throttle window). */
  retryAfterMs?: number;
  /** The vendor's error, for logs and dead letters (keep it short). */
  error?: string;
  /**
   * The vendor refused the whole request for something one item may cause, without saying which
   * (Meta rejects a batch for one bad event): the runner sends each item of it alone once, so
   * only the bad ones fail. Ignored for single-item requests.
   */
  split?: boolean;
}

/**
 * What a destination definition's functions get. `settings` is the Integration's
 * `spec.destination.<settingsField>` with schema defaults applied.
 */
export interface RequestContext<S> {
  settings: S;
  /** Key → value of the credentials Secret, values trimmed. */
  credentials: Readonly<Record<string, string>>;
  /** `clock.now()` at the start of the send, in ms since the epoch (pinned in tests). */
  now: number;
  /** `namespace/name` of the Integration, for error messages. */
  integration: string;
  /** The Integration's `delivery.batchSize` (sends carry at most this many payloads). */
  batchSize: number;
  /**
   * Makes an auxiliary request (e.g. an OAuth token refresh) with the destination's connection
   * pool and timeout. Rejects on network errors and timeouts.
   */
  fetch(request: Omit<VendorRequest, 'items'>): Promise<VendorResponse>;
  /** State kept for the life of the destination (one per Integration and process), e.g. a cached token. */
  cache: Map<string, unknown>;
}

/** A Secret key a destination reads. */
export interface CredentialKey {
  required: boolean;
  description: string;
}

/**
 * One destination type, declared in its folder `runtime/src/destinations/<type>/`: settings
 * schema, credentials, output schema, request builder, response classifier and starter Mapping.
 * {@link httpDestinationType} turns it into a {@link DestinationType}.
 */
export interface DestinationDefinition<S = any> {
  /** Value of `spec.destination.type`, e.g. `meta-capi`. */
  readonly type: string;
  /** Field of `spec.destination` holding the settings, e.g. `metaCapi`. */
  readonly settingsField: string;
  /** Human name, e.g. `Meta Conversions API`. */
  readonly title: string;
  /** The vendor's API reference this adapter follows. */
  readonly docsUrl: string;
  /** TypeBox schema of the settings (from the folder's settings.ts). */
  readonly settingsSchema: TSchema;
  /** Keys of the credentials Secret. */
  readonly credentials: Readonly<Record<string, CredentialKey>>;
  /** Events per send: the default `delivery.batchSize`, and the vendor's most per request. */
  readonly batch: { readonly default: number; readonly max: number };
  /** JSON Schema of one mapped payload (settings undefined: the Mapping-level check). */
  outputSchema(settings: S | undefined): object | undefined;
  /**
   * True when `outputSchema` returns a user's schema (the webhook's `payloadSchema`): its patterns
   * then run on RE2, safe from catastrophic backtracking. Default false: the schema is the
   * type's own, and runs on the native RegExp engine.
   */
  readonly outputSchemaFromUser?: boolean;
  /** The starter Mapping shipped with the type (file URL of its mapping.yaml). */
  readonly starterMapping?: URL;
  /**
   * Checks settings and credentials when the destination is created.
   * @throws SwitchyardError INVALID_RESOURCE naming the setting or Secret key.
   */
  validate?(settings: S, credentials: Readonly<Record<string, string>>, integration: string): void;
  /**
   * Refuses a payload before sending, when the vendor would refuse it for its age
   * ({@link ItemRefusal}): returns the reason (e.g. `event_time is 8 days old; Meta takes 7 days at
   * most`), or undefined to send it.
   */
  refuse?(payload: Record<string, unknown>, ctx: RequestContext<S>): string | undefined;
  /** Builds the requests carrying `payloads` (each item in exactly one request, at most batch.max per request). */
  buildRequests(payloads: readonly Record<string, unknown>[], ctx: RequestContext<S>): VendorRequest[] | Promise<VendorRequest[]>;
  /** Classifies a vendor response, per item when the vendor reports per item. Never throws. */
  classify(response: VendorResponse, request: VendorRequest, ctx: RequestContext<S>): RequestResult;
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
