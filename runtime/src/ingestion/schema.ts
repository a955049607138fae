import { Type, type TSchema } from '@sinclair/typebox';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { EVENT_TYPES, type EventType } from '../api/integration.js';
import { createAjv, toProblems } from '../api/validate.js';

/*
 * JSON Schemas of the Segment calls, one per type, after the Segment Spec
 * (https://segment.com/docs/connections/spec/common/ and the page of each call). Fields the spec
 * defines are type-checked; every other top-level field is kept as sent (`additionalProperties`),
 * because SDKs and users add their own (analytics-node sends `_metadata`, for instance).
 */

/**
 * A user, anonymous, group or previous id as sent: Segment accepts strings and numbers (numbers are
 * turned into strings on ingestion); `null` means "not set" (analytics.js sends `userId: null`
 * for anonymous visitors). One `type` keyword with a list, not a TypeBox union, so a wrong value
 * gets one error instead of one per branch.
 */
const IdValue = Type.Unsafe<string | number | null>({ type: ['string', 'number', 'null'] });

/** An id that counts as present: a non-empty string or a number. */
const PresentId = Type.Unsafe<string | number>({ type: ['string', 'number'], minLength: 1 });

/** ISO-8601 date-time with a time zone (RFC 3339, as `Date.prototype.toJSON` writes). */
const DateTime = Type.String({ format: 'date-time' });

/** A JSON object whose content is free (properties, traits, context, integrations). */
const FreeObject = Type.Object({}, { additionalProperties: true });

/**
 * `messageId`: the client's unique id of the call, used for de-duplication. No control characters,
 * because it travels in the `Nats-Msg-Id` header.
 */
export const MAX_MESSAGE_ID_LENGTH = 256;
const MessageId = Type.String({ minLength: 1, maxLength: MAX_MESSAGE_ID_LENGTH, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });

/** Fields of every call (Segment Spec "Common Fields"). */
const common = {
  userId: Type.Optional(IdValue),
  anonymousId: Type.Optional(IdValue),
  messageId: Type.Optional(MessageId),
  timestamp: Type.Optional(DateTime),
  originalTimestamp: Type.Optional(DateTime),
  sentAt: Type.Optional(DateTime),
  context: Type.Optional(FreeObject),
  integrations: Type.Optional(FreeObject),
};

/**
 * Every call needs a `userId` or an `anonymousId` (Segment HTTP API: "Identifier is not present").
 * Kept at the root so the failure is one `anyOf` error, reported as {@link ID_PROBLEM}.
 */
const identified = {
  anyOf: [
    { required: ['userId'], properties: { userId: PresentId } },
    { required: ['anonymousId'], properties: { anonymousId: PresentId } },
  ],
};

/** The schema of one call type: common fields, the type's own fields (non-optional ones are required), an id. */
function callSchema(type: EventType, fields: Record<string, TSchema>): TSchema {
  return Type.Object({ type: Type.Literal(type), ...common, ...fields }, { additionalProperties: true, ...identified });
}

/** Segment `track`: `event` (the action's name) is required (https://segment.com/docs/connections/spec/track/). */
export const TrackEvent = callSchema('track', {
  event: Type.String({ minLength: 1 }),
  properties: Type.Optional(FreeObject),
});

/** Segment `page` (https://segment.com/docs/connections/spec/page/). */
export const PageEvent = callSchema('page', {
  name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  category: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  properties: Type.Optional(FreeObject),
});

/** Segment `screen` (https://segment.com/docs/connections/spec/screen/). */
export const ScreenEvent = callSchema('screen', {
  name: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  category: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  properties: Type.Optional(FreeObject),
});

/** Segment `identify` (https://segment.com/docs/connections/spec/identify/). */
export const IdentifyEvent = callSchema('identify', {
  traits: Type.Optional(FreeObject),
});

/** Segment `group`: `groupId` is required (https://segment.com/docs/connections/spec/group/). */
export const GroupEvent = callSchema('group', {
  groupId: PresentId,
  traits: Type.Optional(FreeObject),
});

/** Segment `alias`: `previousId` is required (https://segment.com/docs/connections/spec/alias/). */
export const AliasEvent = callSchema('alias', {
  previousId: PresentId,
});

/** The schema of each call type. */
export const EVENT_SCHEMAS: Record<EventType, TSchema> = {
  track: TrackEvent,
  page: PageEvent,
  screen: ScreenEvent,
  identify: IdentifyEvent,
  group: GroupEvent,
  alias: AliasEvent,
};

/**
 * The envelope of `POST /v1/batch` (Segment HTTP API "Batch"): `batch` holds the calls; `context`,
 * `integrations` and `sentAt` at the root apply to every call that has none of its own.
 */
export const BatchEnvelope = Type.Object(
  {
    batch: Type.Array(Type.Unknown()),
    writeKey: Type.Optional(Type.String()),
    context: Type.Optional(FreeObject),
    integrations: Type.Optional(FreeObject),
    sentAt: Type.Optional(DateTime),
  },
  { additionalProperties: true },
);

/** A problem of one event or of the request, as the response reports it. */
export interface EventProblem {
  /** Index of the event in the batch (0 for single-call routes); absent for request-level problems. */
  index?: number;
  /** JSON pointer of the offending field inside the event (or the request body), e.g. `/event`. */
  field: string;
  /** The rule that failed: a JSON Schema keyword (`required`, `type`, `format`…) or a Switchyard rule (`maxEventBytes`, `json`…). */
  rule: string;
  /** Human-readable explanation naming the field. */
  message: string;
}

/** How a missing user/anonymous id is reported. */
export const ID_PROBLEM = {
  field: '/userId',
  rule: 'required',
  message: 'userId or anonymousId is required (a non-empty string or a number)',
} as const;

/** Turns ajv errors into problems; the branch errors of the id `anyOf` become one {@link ID_PROBLEM}. */
function problemsOf(errors: ErrorObject[] | null | undefined): EventProblem[] {
  const all = errors ?? [];
  const rest = all.filter((e) => !e.schemaPath.startsWith('#/anyOf'));
  const problems: EventProblem[] = toProblems(rest).map((p) => ({ field: p.path, rule: p.rule, message: `${p.path} ${p.message}` }));
  if (all.some((e) => e.schemaPath === '#/anyOf')) problems.unshift({ ...ID_PROBLEM });
  return problems;
}

const ajv = createAjv({ useDefaults: false });
const validators = new Map<EventType, ValidateFunction>(EVENT_TYPES.map((t) => [t, ajv.compile(EVENT_SCHEMAS[t])]));
const validateEnvelope = ajv.compile(BatchEnvelope);

/** Whether `value` names one of the Segment call types. */
export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * Checks one call against the schema of its `type`. The caller has set `type` (from the route, or
 * checked it with {@link isEventType}).
 * @returns the problems, empty when the call is valid.
 */
export function validateEvent(type: EventType, event: Record<string, unknown>): EventProblem[] {
  const validate = validators.get(type)!;
  return validate(event) ? [] : problemsOf(validate.errors);
}

/** Checks the batch envelope. @returns the problems, empty when valid. */
export function validateBatchEnvelope(body: unknown): EventProblem[] {
  return validateEnvelope(body) ? [] : problemsOf(validateEnvelope.errors);
}
