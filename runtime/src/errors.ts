/**
 * Every error code Switchyard raises, in one place. Codes are stable: logs, metrics labels and API
 * responses carry them, and users match on them.
 */
export const ErrorCodes = {
  /** A settings object failed its JSON Schema. */
  INVALID_SETTINGS: 'SY_INVALID_SETTINGS',
  /** A resource (Source, Integration, Mapping, Secret) failed its schema or a reference check. */
  INVALID_RESOURCE: 'SY_INVALID_RESOURCE',
  /** A Mapping failed to compile. */
  INVALID_MAPPING: 'SY_INVALID_MAPPING',
  /** The NATS server is older than the runtime needs. */
  NATS_TOO_OLD: 'SY_NATS_TOO_OLD',
  /** No NATS server answered. */
  NATS_UNAVAILABLE: 'SY_NATS_UNAVAILABLE',
  /** JetStream did not acknowledge a publish in time, or refused it. */
  PUBLISH_FAILED: 'SY_PUBLISH_FAILED',
  /** A YAML or JSON file could not be read or parsed. */
  BAD_FILE: 'SY_BAD_FILE',
  /** A TCP port the process must listen on is taken. */
  PORT_IN_USE: 'SY_PORT_IN_USE',
  /** A referenced object (Secret, Mapping, Source) does not exist. */
  MISSING_REFERENCE: 'SY_MISSING_REFERENCE',
  /** Two Sources given to the ingestion API share a write key (or one has none). */
  WRITE_KEY_CONFLICT: 'SY_WRITE_KEY_CONFLICT',
  /** The browser tag bundle (`@switchyard/client/tag`) is not built, so the ingestion cannot serve the tag. */
  TAG_BUNDLE_MISSING: 'SY_TAG_BUNDLE_MISSING',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base error: `name` is the class name, `code` one of {@link ErrorCodes}, `cause` the underlying error. */
export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable details (e.g. validation problems). */
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.details = options.details;
  }
}

/** One problem found by a validator: where (JSON pointer or path) and which rule. */
export interface Problem {
  /** Location of the offending value, e.g. `/spec/delivery/batchSize` or `batch[3].event`. */
  path: string;
  /** The rule that failed, e.g. `required`, `type`, `maxLength`. */
  rule: string;
  /** Human-readable explanation. */
  message: string;
}
