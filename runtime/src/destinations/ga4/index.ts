import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { classifyByStatus, ERROR_BODY_LIMIT, query } from '../http.js';
import type { DestinationDefinition, ItemResult, RequestContext, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { GA4_DEFAULT_ENDPOINT, Ga4Settings } from './settings.js';

export { GA4_DEFAULT_ENDPOINT, Ga4Settings } from './settings.js';

// ---- vendor rules ------------------------------------------------------------------------------
// Sources (GA4 Measurement Protocol):
// - reference: https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference
// - sending events, limitations: https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations
// - validation server: https://developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events
// - user properties: https://developers.google.com/analytics/devguides/collection/protocol/ga4/user-properties
// - user-provided data: https://developers.google.com/analytics/devguides/collection/ga4/uid-data
// - collection limits (page_* lengths): https://support.google.com/analytics/answer/9267744

/** The MP reference this adapter follows. */
export const GA4_DOCS_URL = 'https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference';

/** Most events in one request ("Requests can have a maximum of 25 events"). */
export const GA4_MAX_EVENTS = 25;
/** The POST body must be smaller than 130 kB; read as 130,000 bytes (the stricter reading of "kB"). */
export const GA4_MAX_BODY_BYTES = 130_000;
/** How far back timestamp_micros may go: 72 hours, in milliseconds. */
export const GA4_MAX_AGE_MS = 72 * 3600_000;
/** Most parameters per event ("Events can have a maximum of 25 parameters"). */
export const GA4_MAX_PARAMS = 25;
/** Most user properties per request. */
export const GA4_MAX_USER_PROPERTIES = 25;
/** Most items per event (GA4 collection limits). */
export const GA4_MAX_ITEMS = 200;
/** Most custom (non-GA4) parameters per item ("Item parameters can have a maximum of 10 custom parameters"). */
export const GA4_MAX_CUSTOM_ITEM_PARAMS = 10;
/** Longest event and parameter name, in characters. */
export const GA4_NAME_MAX = 40;
/** Longest user property name, in characters. */
export const GA4_USER_PROPERTY_NAME_MAX = 24;
/** Longest user property value, in characters. */
export const GA4_USER_PROPERTY_VALUE_MAX = 36;
/** Longest parameter value (item parameters too), in characters, but {@link GA4_LONG_PARAMS} (500 on GA4 360 properties; we keep the standard limit). */
export const GA4_PARAM_VALUE_MAX = 100;
/** Parameters allowed longer values than {@link GA4_PARAM_VALUE_MAX} (GA4 collection limits). */
export const GA4_LONG_PARAMS: Readonly<Record<string, number>> = Object.freeze({ page_location: 1000, page_title: 300, page_referrer: 420 });
/** Event, parameter and user property names: a letter, then letters, digits and underscores. */
export const GA4_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_]*$';
/** Prefixes no event, parameter or user property name may start with. */
export const GA4_RESERVED_PREFIXES: readonly string[] = Object.freeze(['google_', 'ga_', 'firebase_']);
/**
 * Reserved event names (MP reference "Reserved names", with the Firebase SDK's list, which the
 * reference mirrors). `page_view` is not reserved for the Measurement Protocol.
 */
export const GA4_RESERVED_EVENT_NAMES: readonly string[] = Object.freeze([
  'ad_activeview', 'ad_click', 'ad_exposure', 'ad_impression', 'ad_query', 'ad_reward', 'adunit_exposure',
  'app_background', 'app_clear_data', 'app_exception', 'app_install', 'app_remove', 'app_store_refund',
  'app_store_subscription_cancel', 'app_store_subscription_convert', 'app_store_subscription_renew', 'app_update', 'app_upgrade',
  'dynamic_link_app_open', 'dynamic_link_app_update', 'dynamic_link_first_open', 'error',
  'firebase_campaign', 'firebase_in_app_message_action', 'firebase_in_app_message_dismiss', 'firebase_in_app_message_impression',
  'first_open', 'first_visit', 'in_app_purchase', 'notification_dismiss', 'notification_foreground', 'notification_open',
  'notification_receive', 'notification_send', 'os_update', 'screen_view', 'session_start', 'session_start_with_rollout', 'user_engagement',
]);
/** Reserved parameter names (MP reference). */
export const GA4_RESERVED_PARAM_NAMES: readonly string[] = Object.freeze(['firebase_conversion']);
/** Reserved user property names (MP user properties guide). */
export const GA4_RESERVED_USER_PROPERTY_NAMES: readonly string[] = Object.freeze(['first_open_time', 'first_visit_time', 'last_deep_link_referrer', 'user_id', 'first_open_after_install']);
/**
 * Item parameters GA4 defines (recommended events reference, `items`); others are custom, at most
 * {@link GA4_MAX_CUSTOM_ITEM_PARAMS} per item.
 */
export const GA4_ITEM_PARAMS: readonly string[] = Object.freeze([
  'item_id', 'item_name', 'affiliation', 'coupon', 'discount', 'index', 'item_brand', 'item_category', 'item_category2',
  'item_category3', 'item_category4', 'item_category5', 'item_list_id', 'item_list_name', 'item_variant', 'location_id',
  'price', 'quantity', 'promotion_id', 'promotion_name', 'creative_name', 'creative_slot',
]);
/** Top-level body fields of the MP reference (one mapped payload may hold these). */
export const GA4_BODY_FIELDS: readonly string[] = Object.freeze([
  'client_id', 'app_instance_id', 'user_id', 'timestamp_micros', 'user_properties', 'user_data', 'consent',
  'non_personalized_ads', 'user_location', 'ip_override', 'device', 'events',
]);

const prefixPattern = `^(?:${GA4_RESERVED_PREFIXES.join('|')})`;
const HEX64 = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the normalized value, 64 lowercase hex characters.' };
const CONSENT_VALUE = { type: 'string', enum: ['GRANTED', 'DENIED'] };

/** A name GA4 takes: pattern, length, neither a reserved name nor a reserved prefix. */
const name = (maxLength: number, reserved: readonly string[]) => ({
  type: 'string',
  minLength: 1,
  maxLength,
  pattern: GA4_NAME_PATTERN,
  not: { anyOf: [{ enum: [...reserved] }, { pattern: prefixPattern }] },
});

/**
 * JSON Schema (draft 2020-12) of one mapped payload: one MP body carrying exactly one event. It
 * enforces GA4's static rules, because GA4 answers 2xx even for what it drops: names (pattern,
 * length, reserved names and prefixes), at most 25 parameters (values ≤ 100 characters; page_title
 * 300, page_referrer 420, page_location 1000), at most 200 items each with item_id or item_name,
 * at most 25 user properties (names ≤ 24, values ≤ 36), currency with value (revenue is not
 * computed without it), hashed user_data as 64 lowercase hex, and the stream's identifier:
 * client_id (web, `measurementId`) or app_instance_id (app, `firebaseAppId`); either one without
 * settings (the Mapping-level check).
 */
export function ga4OutputSchema(settings: Ga4Settings | undefined): object {
  const identifier = settings === undefined ? undefined : settings.firebaseAppId ? 'app_instance_id' : 'client_id';
  const paramValue = { type: ['string', 'number'], maxLength: GA4_PARAM_VALUE_MAX };
  const item = {
    type: 'object',
    anyOf: [{ required: ['item_id'] }, { required: ['item_name'] }],
    propertyNames: name(GA4_NAME_MAX, GA4_RESERVED_PARAM_NAMES),
    properties: {
      item_id: { type: 'string', minLength: 1, maxLength: GA4_PARAM_VALUE_MAX },
      item_name: { type: 'string', minLength: 1, maxLength: GA4_PARAM_VALUE_MAX },
      price: { type: 'number' },
      discount: { type: 'number' },
      quantity: { type: 'integer' },
      index: { type: 'integer' },
    },
    additionalProperties: paramValue,
  };
  const params = {
    type: 'object',
    maxProperties: GA4_MAX_PARAMS,
    propertyNames: name(GA4_NAME_MAX, GA4_RESERVED_PARAM_NAMES),
    properties: {
      ...Object.fromEntries(Object.entries(GA4_LONG_PARAMS).map(([k, max]) => [k, { type: 'string', maxLength: max }])),
      items: { type: 'array', maxItems: GA4_MAX_ITEMS, items: item },
      currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 code, upper case.' },
      value: { type: 'number' },
      tax: { type: 'number' },
      shipping: { type: 'number' },
      engagement_time_msec: { type: 'integer', minimum: 0 },
    },
    additionalProperties: paramValue,
    dependentRequired: { value: ['currency'] },
  };
  const event = {
    type: 'object',
    required: ['name'],
    properties: {
      name: name(GA4_NAME_MAX, GA4_RESERVED_EVENT_NAMES),
      params,
      timestamp_micros: { type: 'integer', minimum: 0 },
    },
    additionalProperties: false,
  };
  const schema: Record<string, unknown> = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'GA4 Measurement Protocol body carrying one event',
    type: 'object',
    required: [...(identifier ? [identifier] : []), 'events'],
    properties: {
      client_id: { type: 'string', minLength: 1, maxLength: 256 },
      app_instance_id: { type: 'string', pattern: '^[0-9a-fA-F]{32}$' },
      user_id: { type: 'string', minLength: 1, maxLength: 256 },
      timestamp_micros: { type: 'integer', minimum: 0, description: 'Unix time in microseconds; at most 72 hours back.' },
      user_properties: {
        type: 'object',
        maxProperties: GA4_MAX_USER_PROPERTIES,
        propertyNames: name(GA4_USER_PROPERTY_NAME_MAX, GA4_RESERVED_USER_PROPERTY_NAMES),
        additionalProperties: {
          type: 'object',
          required: ['value'],
          properties: { value: { type: ['string', 'number'], maxLength: GA4_USER_PROPERTY_VALUE_MAX }, timestamp_micros: { type: 'integer', minimum: 0 } },
          additionalProperties: false,
        },
      },
      user_data: {
        type: 'object',
        properties: {
          sha256_email_address: { type: 'array', minItems: 1, items: HEX64 },
          sha256_phone_number: { type: 'array', minItems: 1, items: HEX64 },
          address: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              properties: {
                sha256_first_name: HEX64,
                sha256_last_name: HEX64,
                sha256_street: HEX64,
                city: { type: 'string' },
                region: { type: 'string' },
                postal_code: { type: 'string' },
                country: { type: 'string', pattern: '^[A-Z]{2}$' },
              },
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      },
      consent: { type: 'object', properties: { ad_user_data: CONSENT_VALUE, ad_personalization: CONSENT_VALUE }, additionalProperties: false },
      non_personalized_ads: { type: 'boolean' },
      ip_override: { type: 'string', minLength: 2, maxLength: 45 },
      user_location: {
        type: 'object',
        properties: Object.fromEntries(['city', 'region_id', 'country_id', 'subcontinent_id', 'continent_id'].map((k) => [k, { type: 'string', maxLength: 100 }])),
        additionalProperties: false,
      },
      device: {
        type: 'object',
        properties: Object.fromEntries(
          ['category', 'language', 'screen_resolution', 'operating_system', 'operating_system_version', 'model', 'brand', 'browser', 'browser_version'].map((k) => [k, { type: 'string', maxLength: 100 }]),
        ),
        additionalProperties: false,
      },
      events: { type: 'array', minItems: 1, maxItems: 1, items: event, description: 'Exactly one event per payload; buildRequests batches payloads.' },
    },
    additionalProperties: false,
  };
  if (!identifier) schema.anyOf = [{ required: ['client_id'] }, { required: ['app_instance_id'] }];
  return schema;
}

// One schema object per stream kind (none: the Mapping-level check), so the output validator,
// cached by schema object, compiles once.
const SCHEMAS = { none: ga4OutputSchema(undefined), web: ga4OutputSchema({ endpoint: GA4_DEFAULT_ENDPOINT, debug: false, measurementId: 'G-XXXX' }), app: ga4OutputSchema({ endpoint: GA4_DEFAULT_ENDPOINT, debug: false, firebaseAppId: '1:1:web:0' }) };

// ---- requests ----------------------------------------------------------------------------------

type Payload = Record<string, unknown>;
type Ga4Event = Record<string, unknown>;

/** The one event of a payload, or undefined when `events` is not a one-element array of objects. */
function eventOf(payload: Payload): Ga4Event | undefined {
  const events = payload.events;
  if (!Array.isArray(events) || events.length !== 1) return undefined;
  const e = events[0];
  return e && typeof e === 'object' && !Array.isArray(e) ? (e as Ga4Event) : undefined;
}

/** The timestamp of a payload's event in microseconds: the event's own `timestamp_micros`, else the body's; undefined when none. */
export function eventTimestampMicros(payload: Payload): number | undefined {
  const own = eventOf(payload)?.timestamp_micros;
  const ts = typeof own === 'number' ? own : payload.timestamp_micros;
  return typeof ts === 'number' && Number.isFinite(ts) ? ts : undefined;
}

/** JSON with object keys sorted at every level: equal for equal values whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The request URL: `{endpoint}[/debug]/mp/collect?measurement_id|firebase_app_id=…&api_secret=…` (query encoded by URLSearchParams). */
export function ga4Url(settings: Ga4Settings, apiSecret: string): string {
  const base = settings.endpoint.replace(/\/+$/, '');
  const path = settings.debug ? '/debug/mp/collect' : '/mp/collect';
  const stream = settings.firebaseAppId ? { firebase_app_id: settings.firebaseAppId } : { measurement_id: settings.measurementId };
  return `${base}${path}?${query({ ...stream, api_secret: apiSecret })}`;
}

/**
 * Builds the MP requests of `payloads` (each one body with one event). Payloads whose top-level
 * fields other than `events` and `timestamp_micros` are equal (same user, same user properties…)
 * share a request: first-seen order of the groups, payload order inside each; at most 25 events
 * and a body under 130,000 bytes per request. Each event carries its own `timestamp_micros` (the
 * payload's), which the MP reference lets override the request's, so batching keeps event times.
 * A timestamp after `ctx.now` is set to `ctx.now`: GA4 wants `timestamp_micros <= request time`
 * (use cases, https://developers.google.com/analytics/devguides/collection/protocol/ga4/use-cases).
 * A single event whose body alone reaches the size limit is still sent alone; {@link classifyGa4}
 * fails it (GA4 would drop it silently).
 * @throws SwitchyardError INVALID_RESOURCE when a payload does not hold exactly one event (the
 * output schema forbids it: never for checked payloads).
 */
export function buildGa4Requests(payloads: readonly Payload[], ctx: RequestContext<Ga4Settings>): VendorRequest[] {
  const url = ga4Url(ctx.settings, ctx.credentials.api_secret ?? '');
  const headers = { 'content-type': 'application/json' };
  const nowMicros = ctx.now * 1000;
  const groups = new Map<string, { common: Payload; events: Ga4Event[]; items: number[] }>();
  payloads.forEach((payload, i) => {
    const event = eventOf(payload);
    if (!event) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${ctx.integration}: GA4 payload ${i} must hold exactly one event in events`);
    const common: Payload = {};
    for (const [k, v] of Object.entries(payload)) if (k !== 'events' && k !== 'timestamp_micros') common[k] = v;
    const ts = eventTimestampMicros(payload);
    const { timestamp_micros: _own, ...rest } = event;
    const sent: Ga4Event = ts === undefined ? rest : { ...rest, timestamp_micros: Math.min(ts, nowMicros) };
    const key = canonical(common);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { common, events: [], items: [] }));
    group.events.push(sent);
    group.items.push(i);
  });
  const extra = ctx.settings.debug ? { validation_behavior: 'ENFORCE_RECOMMENDATIONS' } : {};
  const requests: VendorRequest[] = [];
  for (const { common, events, items } of groups.values()) {
    // The body is `{...common, events: [e, …]}`: each event is encoded once and the sizes added up.
    const empty = JSON.stringify({ ...common, ...extra, events: [] });
    const head = empty.slice(0, -2); // up to and with `"events":[`
    const headBytes = Buffer.byteLength(empty);
    const texts = events.map((e) => JSON.stringify(e));
    const sizes = texts.map((t) => Buffer.byteLength(t));
    let start = 0;
    while (start < events.length) {
      // Grow the request event by event while it stays within both limits (one event at least).
      let end = start + 1;
      let bytes = headBytes + sizes[start]!;
      while (end < events.length && end - start < GA4_MAX_EVENTS && bytes + 1 + sizes[end]! < GA4_MAX_BODY_BYTES) {
        bytes += 1 + sizes[end]!;
        end++;
      }
      requests.push({ method: 'POST', url, headers: { ...headers }, body: `${head}${texts.slice(start, end).join(',')}]}`, items: items.slice(start, end) });
      start = end;
    }
  }
  return requests;
}

// ---- answers -----------------------------------------------------------------------------------

/** One message of the validation server (`/debug/mp/collect`). */
export interface Ga4ValidationMessage {
  fieldPath?: string;
  description?: string;
  validationCode?: string;
}

/** Index of the event a validation message names (`events[3]…` in fieldPath, or `index: [3]` in the description), if any. */
export function validationEventIndex(message: Ga4ValidationMessage): number | undefined {
  const path = /^events\[(\d+)\]/.exec(message.fieldPath ?? '');
  if (path) return Number(path[1]);
  const described = /index:?\s*\[(\d+)\]/i.exec(message.description ?? '');
  return described ? Number(described[1]) : undefined;
}

const messageText = (m: Ga4ValidationMessage): string => `${m.validationCode ?? 'VALIDATION'} ${m.fieldPath ?? ''}: ${m.description ?? ''}`.slice(0, ERROR_BODY_LIMIT);

/**
 * Classifies a GA4 answer. 2xx is success (GA4 answers 2xx even for events it drops, which is why
 * the output schema is strict). In debug mode a 2xx body is `{validationMessages: [{fieldPath,
 * description, validationCode}]}`: a message naming an event (`events[i]`, or "Event at index: [i]")
 * fails that event, permanently; a message naming none fails the whole request, permanently; no
 * message is success. 429 (throttled, Retry-After honoured) and 5xx are retryable; other 4xx are
 * permanent ({@link classifyByStatus}). A request whose body reached 130 kB (one event too big to
 * send alone) fails permanently whatever the answer.
 */
export function classifyGa4(response: VendorResponse, request: VendorRequest, ctx: RequestContext<Ga4Settings>): RequestResult {
  const result = classifyByStatus(response, ctx.now);
  if (result.outcome !== 'success') return result;
  const size = Buffer.byteLength(request.body);
  if (size >= GA4_MAX_BODY_BYTES) return { outcome: 'permanent', error: `the request body is ${size} bytes; GA4 takes less than ${GA4_MAX_BODY_BYTES} and drops bigger ones` };
  if (!ctx.settings.debug) return result;
  let messages: Ga4ValidationMessage[];
  try {
    const parsed = JSON.parse(response.body) as { validationMessages?: unknown };
    if (!Array.isArray(parsed.validationMessages)) throw new Error('no validationMessages array');
    messages = parsed.validationMessages as Ga4ValidationMessage[];
  } catch (e) {
    return { outcome: 'retryable', error: `cannot read the validation server's answer (HTTP ${response.status}): ${(e as Error).message}` };
  }
  if (messages.length === 0) return result;
  const items = new Map<number, ItemResult>();
  const general: string[] = [];
  for (const m of messages) {
    const index = validationEventIndex(m);
    if (index === undefined || index >= request.items.length) {
      general.push(messageText(m));
      continue;
    }
    const prior = items.get(index)?.error;
    items.set(index, { outcome: 'permanent', error: (prior ? `${prior}; ${messageText(m)}` : messageText(m)).slice(0, ERROR_BODY_LIMIT) });
  }
  if (general.length > 0) return { outcome: 'permanent', error: general.join('; ').slice(0, ERROR_BODY_LIMIT) };
  return { outcome: 'success', items };
}

/**
 * Refuses a payload whose event is more than 72 hours older than `ctx.now` (stale_event): GA4
 * takes `timestamp_micros` at most 72 hours back (MP reference, `timestamp_micros`).
 */
export function refuseGa4(payload: Payload, ctx: RequestContext<Ga4Settings>): string | undefined {
  const ts = eventTimestampMicros(payload);
  if (ts === undefined) return undefined;
  const ageMs = ctx.now - ts / 1000;
  if (ageMs <= GA4_MAX_AGE_MS) return undefined;
  const iso = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));
  return `event time ${iso(ts / 1000)} is more than 72 hours before ${iso(ctx.now)}: GA4 takes events at most 72 hours old`;
}

/**
 * GA4 Measurement Protocol (web streams with `measurementId` + client_id; app streams with
 * `firebaseAppId` + app_instance_id). Credentials: `api_secret`. See {@link buildGa4Requests},
 * {@link classifyGa4}, {@link refuseGa4} and {@link ga4OutputSchema}.
 */
export const ga4Destination: DestinationDefinition<Ga4Settings> = {
  type: 'ga4',
  settingsField: 'ga4',
  title: 'Google Analytics 4 (Measurement Protocol)',
  docsUrl: GA4_DOCS_URL,
  settingsSchema: Ga4Settings,
  credentials: {
    api_secret: {
      required: true,
      description: 'Measurement Protocol API secret of the data stream (Admin > Data streams > your stream > Measurement Protocol API secrets). Sent as the api_secret query parameter.',
    },
  },
  batch: { default: GA4_MAX_EVENTS, max: GA4_MAX_EVENTS },
  outputSchema: (settings) => (settings === undefined ? SCHEMAS.none : settings.firebaseAppId ? SCHEMAS.app : SCHEMAS.web),
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(settings, credentials, integration) {
    const where = `Integration ${integration}`;
    if (!settings.measurementId === !settings.firebaseAppId) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: destination.ga4 needs exactly one of measurementId (web stream) and firebaseAppId (app stream)`);
    }
    if (/[\s]/.test(credentials.api_secret ?? '')) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: the api_secret of the credentials Secret holds whitespace`);
  },
  refuse: refuseGa4,
  buildRequests: buildGa4Requests,
  classify: classifyGa4,
};
