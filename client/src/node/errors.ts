import type { SegmentEvent } from '../core/event.js';

/**
 * Every error code the Node SDK reports, in one place. Codes are stable: match on them, not on
 * messages.
 */
export const AnalyticsErrorCodes = {
  /** A setting is missing, of the wrong type or out of range (thrown by the constructor; `setting` names it). */
  INVALID_SETTINGS: 'SY_CLIENT_INVALID_SETTINGS',
  /** A call lacks a field the Segment Spec requires (`userId`/`anonymousId`, `event`, `groupId`, `previousId`) or cannot be serialised as JSON. Refused at the call, never sent. */
  INVALID_EVENT: 'SY_CLIENT_INVALID_EVENT',
  /** A call is larger than `maxEventBytes` as JSON. Refused at the call, never sent. */
  EVENT_TOO_LARGE: 'SY_CLIENT_EVENT_TOO_LARGE',
  /** `maxQueueSize` events are already held (queued or in flight). Refused at the call. */
  QUEUE_FULL: 'SY_CLIENT_QUEUE_FULL',
  /** A call made after `closeAndFlush()`. */
  CLOSED: 'SY_CLIENT_CLOSED',
  /** The ingestion refused one event of a request by name (`errors[].index` of a 207 or 400 answer); `problems` says why. Resending cannot fix it. */
  EVENT_REJECTED: 'SY_CLIENT_EVENT_REJECTED',
  /** The ingestion refused a whole request with a final status (a 4xx other than 408/429, or a 1xx/3xx): bad write key, body too large… `status` holds it. */
  REQUEST_REFUSED: 'SY_CLIENT_REQUEST_REFUSED',
  /** Network errors, timeouts, 408, 429 or 5xx answers on every attempt (`maxRetries` + 1). `cause` is the last failure. */
  RETRIES_EXHAUSTED: 'SY_CLIENT_RETRIES_EXHAUSTED',
  /** `closeAndFlush({ timeout })` ran out of time before these events were delivered; their request was abandoned. */
  CLOSE_TIMEOUT: 'SY_CLIENT_CLOSE_TIMEOUT',
} as const;

/** One of {@link AnalyticsErrorCodes}. */
export type AnalyticsErrorCode = (typeof AnalyticsErrorCodes)[keyof typeof AnalyticsErrorCodes];

/**
 * One problem of a refused event as the ingestion reports it (`errors[]` of its answer): the
 * event's position in the request, a JSON pointer into it, the rule that failed, and a message.
 */
export interface EventProblem {
  /** Position of the event in the request's batch; absent for problems of the whole request. */
  index?: number;
  /** JSON pointer into the event, e.g. `/timestamp`. */
  field?: string;
  /** The failed rule, e.g. `required`, `format`, `maxEventBytes`, `writeKey`. */
  rule?: string;
  /** Human-readable explanation. */
  message?: string;
}

/**
 * Everything the SDK reports: thrown by the constructor for bad settings, otherwise handed to the
 * call's callback and emitted as `'error'`. `name` is `AnalyticsError`.
 */
export class AnalyticsError extends Error {
  /** One of {@link AnalyticsErrorCodes}. */
  readonly code: AnalyticsErrorCode;
  /** The events not delivered because of this error (empty for settings errors). */
  readonly events: SegmentEvent[];
  /** HTTP status of the answer that ended delivery, when there was one. */
  readonly status: number | undefined;
  /** The ingestion's reasons, for `EVENT_REJECTED` and `REQUEST_REFUSED` answers that list them. */
  readonly problems: EventProblem[];
  /** The setting at fault, for `INVALID_SETTINGS`. */
  readonly setting: string | undefined;

  constructor(
    code: AnalyticsErrorCode,
    message: string,
    options: { cause?: unknown; events?: SegmentEvent[]; status?: number; problems?: EventProblem[]; setting?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AnalyticsError';
    this.code = code;
    this.events = options.events ?? [];
    this.status = options.status;
    this.problems = options.problems ?? [];
    this.setting = options.setting;
  }
}
