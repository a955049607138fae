import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { chunk, classifyByStatus, ERROR_BODY_LIMIT, query, parseJsonObject } from '../http.js';
import type { DestinationDefinition, ItemResult, RequestContext, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { SnapchatSettings } from './settings.js';

export { SnapchatSettings } from './settings.js';

/** Snap Conversions API v3, "Using the API" (endpoint, body, required parameters). */
export const SNAPCHAT_DOCS_URL = 'https://developers.snap.com/api/marketing-api/Conversions-API/UsingTheAPI';

/**
 * Most events in one request: 2,000 (the Conversions API batch limit used by Snap's partner
 * integrations, e.g. RudderStack's MAX_BATCH_SIZE for tr.snapchat.com/v3 and Segment's v3
 * destination; Snap's v3 pages show the `data` array without stating a number).
 */
export const SNAPCHAT_MAX_EVENTS = 2000;

/**
 * Oldest event Snap takes, in seconds: "events can have a date (timestamp) of maximum 37 days back
 * to be eligible to be reported via the Conversions API"
 * (https://developers.snap.com/api/marketing-api/Conversions-API/Introduction). Older events are
 * refused before sending ({@link snapchatDestination}.refuse); Snap refuses a request holding one
 * ("Timestamp invalid or out of range", https://developers.snap.com/api/marketing-api/Conversions-API/VerifySetUp).
 */
export const SNAPCHAT_MAX_AGE_SECONDS = 37 * 24 * 3600;

/**
 * Standard event names (Snap Pixel / Conversions API event types; v3 takes them as `event_name`,
 * e.g. `PURCHASE` in https://developers.snap.com/api/marketing-api/Conversions-API/MigrationGuide),
 * as Snap's own server-side tag and partner integrations send them.
 */
export const SNAPCHAT_EVENT_NAMES = [
  'PAGE_VIEW',
  'VIEW_CONTENT',
  'ADD_CART',
  'ADD_TO_WISHLIST',
  'SIGN_UP',
  'SEARCH',
  'PURCHASE',
  'ADD_BILLING',
  'START_CHECKOUT',
  'LIST_VIEW',
  'COMPLETE_TUTORIAL',
  'SUBSCRIBE',
  'START_TRIAL',
  'AD_CLICK',
  'AD_VIEW',
  'RATE',
  'LEVEL_COMPLETE',
  'ACHIEVEMENT_UNLOCKED',
  'SPENT_CREDITS',
  'SAVE',
  'SHARE',
  'INVITE',
  'LOGIN',
  'RESERVE',
  'APP_OPEN',
  'APP_INSTALL',
  'CUSTOM_EVENT_1',
  'CUSTOM_EVENT_2',
  'CUSTOM_EVENT_3',
  'CUSTOM_EVENT_4',
  'CUSTOM_EVENT_5',
] as const;

/** Where the event happened (`action_source`): WEB (pixel), MOBILE_APP (Snap App ID), OFFLINE. */
export const SNAPCHAT_ACTION_SOURCES = ['WEB', 'MOBILE_APP', 'OFFLINE'] as const;

const SHA256 = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the normalized value, 64 lowercase hex characters.' };
const HASHES = (what: string) => ({ type: 'array', items: SHA256, minItems: 1, description: `SHA-256 hashes of ${what}.` });
const TEXT = { type: 'string', minLength: 1 };
const STRING = { type: 'string' };
const STRINGS = { type: 'array', items: STRING };
const INTEGER = { type: 'integer', minimum: 0 };
// Snap's examples send amounts and quantities as strings ("value": "142.52", "quantity": "1"), its SDK as numbers: both are taken.
const DECIMAL = { type: ['number', 'string'], pattern: '^-?[0-9]+(\\.[0-9]+)?$' };
const COUNT = { type: ['integer', 'string'], minimum: 0, pattern: '^[0-9]+$' };

/**
 * JSON Schema (draft 2020-12) of one mapped payload: one element of `data`
 * (https://developers.snap.com/api/marketing-api/Conversions-API/Parameters; property lists from
 * Snap's Business SDK OpenAPI, CapiEvent/UserData/CustomData/AppData). Static rules enforced:
 * required `event_name`, `event_time`, `action_source`, `user_data`; `event_source_url` for WEB
 * events and `app_data` for MOBILE_APP events (UsingTheAPI, "Required Parameters"); `currency`
 * and `value` on PURCHASE ("Missing price and/or currency in Purchase events" is INVALID);
 * `user_data` holding `em`, `ph`, `madid`, or both `client_ip_address` and `client_user_agent`
 * ("At least one of the following to match your events"); hashed PII as 64 lowercase hex
 * ("Unhashed PII" is INVALID); event names and action sources from their lists; `event_time`
 * in whole seconds (10 digits at most); ISO-4217 currency; unknown properties refused.
 */
export const SNAPCHAT_EVENT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Snap Conversions API v3 event',
  type: 'object',
  additionalProperties: false,
  required: ['event_name', 'event_time', 'action_source', 'user_data'],
  properties: {
    event_name: { type: 'string', enum: [...SNAPCHAT_EVENT_NAMES] },
    event_time: { type: 'integer', minimum: 0, maximum: 9999999999, description: 'Unix time in seconds.' },
    action_source: { type: 'string', enum: [...SNAPCHAT_ACTION_SOURCES] },
    event_id: { ...TEXT, description: 'Deduplication key with the Snap Pixel (client_dedup_id / transaction_id there).' },
    event_source_url: TEXT,
    opt_out: { type: 'boolean' },
    integration: TEXT,
    data_processing_options: STRINGS,
    data_processing_options_country: { type: 'integer' },
    data_processing_options_state: { type: 'integer' },
    user_data: {
      type: 'object',
      additionalProperties: false,
      properties: {
        em: HASHES('lower-cased, trimmed email addresses'),
        ph: HASHES('phone numbers, digits with the country code'),
        fn: HASHES('lower-cased first names'),
        ln: HASHES('lower-cased last names'),
        ge: HASHES('genders (f, m)'),
        ct: HASHES('cities'),
        st: HASHES('states'),
        zp: HASHES('zip codes'),
        country: HASHES('ISO-3166 alpha-2 country codes, lower case'),
        madid: { ...TEXT, description: 'Mobile advertising id, lower case.' },
        idfv: TEXT,
        client_ip_address: TEXT,
        client_user_agent: TEXT,
        sc_click_id: { ...TEXT, description: 'The ScCid URL parameter of an ad click (not hashed).' },
        sc_cookie1: { ...TEXT, description: 'The _scid first-party cookie of the Snap Pixel (not hashed).' },
      },
      anyOf: [{ required: ['em'] }, { required: ['ph'] }, { required: ['madid'] }, { required: ['client_ip_address', 'client_user_agent'] }],
    },
    custom_data: {
      type: 'object',
      additionalProperties: false,
      properties: {
        currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO-4217 code.' },
        value: DECIMAL,
        content_category: STRING,
        content_ids: STRINGS,
        content_type: STRING,
        contents: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: { id: TEXT, quantity: COUNT, item_price: DECIMAL, delivery_category: STRING, brand: STRING },
          },
        },
        delivery_category: STRING,
        num_items: INTEGER,
        order_id: TEXT,
        search_string: STRING,
        status: STRING,
        sign_up_method: STRING,
        brands: { type: ['string', 'array'], items: STRING },
        custom_fields: { type: 'object', additionalProperties: STRING },
        // Dynamic travel ads (Business SDK CustomData).
        checkin_date: STRING,
        travel_start: STRING,
        travel_end: STRING,
        suggested_destinations: STRINGS,
        destination_airport: STRING,
        origin_airport: STRING,
        country: STRING,
        city: STRING,
        region: STRING,
        neighborhood: STRING,
        postal_code: STRING,
        departing_departure_date: STRING,
        departing_arrival_date: STRING,
        returning_departure_date: STRING,
        returning_arrival_date: STRING,
        num_adults: INTEGER,
        num_children: INTEGER,
        num_infants: INTEGER,
        hotel_score: STRING,
        preferred_neighborhoods: STRINGS,
        preferred_star_ratings: STRINGS,
        suggested_hotels: STRINGS,
      },
    },
    app_data: {
      type: 'object',
      additionalProperties: false,
      properties: {
        app_id: STRING,
        advertiser_tracking_enabled: { type: ['boolean', 'integer'] },
        extinfo: { type: 'array', items: STRING, minItems: 16, maxItems: 16 },
        campaign_ids: STRING,
        install_referrer: STRING,
        installer_package: STRING,
        url_schemes: STRINGS,
        windows_attribution_id: STRING,
      },
    },
  },
  allOf: [
    { if: { properties: { action_source: { const: 'WEB' } }, required: ['action_source'] }, then: { required: ['event_source_url'] } },
    { if: { properties: { action_source: { const: 'MOBILE_APP' } }, required: ['action_source'] }, then: { required: ['app_data'] } },
    { if: { properties: { event_name: { const: 'PURCHASE' } }, required: ['event_name'] }, then: { required: ['custom_data'], properties: { custom_data: { required: ['currency', 'value'] } } } },
  ],
} as const;

/** The request URL: `{endpoint}/v3/{pixelId}/events[/validate]?access_token=…` (the token URL-encoded). */
export function snapchatEventsUrl(settings: SnapchatSettings, accessToken: string): string {
  const base = settings.endpoint.replace(/\/+$/, '');
  return `${base}/v3/${encodeURIComponent(settings.pixelId)}/events${settings.validateOnly ? '/validate' : ''}?${query({ access_token: accessToken })}`;
}

/** The messages of an ErrorDetails `{codes: [], error_msgs: []}`, joined. */
function errorDetails(errors: unknown): string | undefined {
  if (typeof errors !== 'object' || errors === null) return undefined;
  const e = errors as { codes?: unknown; error_msgs?: unknown };
  const msgs = Array.isArray(e.error_msgs) ? e.error_msgs.filter((m): m is string => typeof m === 'string') : [];
  const codes = Array.isArray(e.codes) ? e.codes.filter((c): c is string => typeof c === 'string') : [];
  const parts = msgs.length > 0 ? msgs.map((m, i) => (codes[i] ? `${codes[i]}: ${m}` : m)) : codes;
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** `HTTP <status>: Snap <status>: <reason> (<errors>)` of an EventResponse, else the start of the body. */
function errorText(status: number, body: Record<string, unknown> | undefined, raw: string): string {
  if (body && (typeof body.status === 'string' || typeof body.reason === 'string')) {
    const details = errorDetails(body.errors);
    const at = typeof body.event === 'number' ? ` (event ${body.event})` : '';
    return `HTTP ${status}: Snap ${String(body.status ?? '?')}: ${String(body.reason ?? '')}${at}${details ? ` ${details}` : ''}`.slice(0, ERROR_BODY_LIMIT);
  }
  return `HTTP ${status}${raw ? `: ${raw.slice(0, ERROR_BODY_LIMIT)}` : ''}`;
}

/**
 * Classifies a Snap answer (EventResponse `{status: VALID|INVALID, reason, event, errors: {codes,
 * error_msgs}}`, ValidateResponse `{status, test_event, reason, event_logs: [{event, status,
 * errors, warnings}]}` in Snap's Business SDK OpenAPI):
 * - 2xx `VALID`: success. A Test Event answer (`event_logs`) is read per event: an INVALID one
 *   fails alone (permanent, with its error messages).
 * - `INVALID` (400, or a 2xx saying so): Snap refuses the request for one event (it names one
 *   `event` index, not each bad one), so a batch is split and each event tried alone; a single
 *   event is permanent with Snap's reasons (missing fields, unhashed or insufficient PII, timestamp
 *   out of range: https://developers.snap.com/api/marketing-api/Conversions-API/VerifySetUp).
 * - 401 and 403 (token or asset): permanent for the request.
 * - 429: retryable and throttled, with Retry-After when given; 5xx: retryable.
 */
export function classifySnapchat(response: VendorResponse, request: VendorRequest, now: number): RequestResult {
  const base = classifyByStatus(response, now);
  const body = parseJsonObject(response.body);
  const count = request.items.length;
  const logs = body?.event_logs;
  if (base.outcome === 'success' && Array.isArray(logs)) {
    const items = new Map<number, ItemResult>();
    for (const log of logs as { event?: unknown; status?: unknown; errors?: unknown }[]) {
      if (typeof log !== 'object' || log === null || log.status !== 'INVALID') continue;
      const i = log.event;
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= count) continue;
      items.set(i, { outcome: 'permanent', error: `Snap refused the event: ${errorDetails(log.errors) ?? 'INVALID'}`.slice(0, ERROR_BODY_LIMIT) });
    }
    return items.size > 0 ? { outcome: 'success', items } : { outcome: 'success' };
  }
  const invalid = body?.status === 'INVALID';
  if (base.outcome === 'success' && !invalid) return base;
  const error = errorText(response.status, body, response.body);
  if (response.status === 429) return { ...base, outcome: 'retryable', throttled: true, error };
  if (base.outcome === 'retryable') return { ...base, error };
  if (response.status === 401 || response.status === 403) return { outcome: 'permanent', error };
  if (count > 1) return { outcome: 'permanent', error, split: true };
  return { outcome: 'permanent', error };
}

/**
 * Snap Conversions API v3. One request per up to 2000 payloads (the send's payloads in order):
 * `POST {endpoint}/v3/{pixelId}/events?access_token=<token>` (or `/events/validate` with
 * validateOnly), body `{"data": [payload, …]}`. Payloads are events as
 * {@link SNAPCHAT_EVENT_SCHEMA} describes; events older than 37 days are refused before sending.
 * The token travels in the query string because Snap documents it so; it never appears in our
 * error messages.
 */
export const snapchatDestination: DestinationDefinition<SnapchatSettings> = {
  type: 'snapchat',
  settingsField: 'snapchat',
  title: 'Snap Conversions API',
  docsUrl: SNAPCHAT_DOCS_URL,
  settingsSchema: SnapchatSettings,
  credentials: {
    access_token: {
      required: true,
      description: 'Conversions API token generated in Snap Ads Manager (Business Details → Conversions API Tokens) for the pixel or app; sent as the access_token query parameter.',
    },
  },
  // 100 keeps one refused (split) or retried request small; Snap takes up to 2000 per request.
  batch: { default: 100, max: SNAPCHAT_MAX_EVENTS },
  outputSchema: () => SNAPCHAT_EVENT_SCHEMA,
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(settings, credentials, integration) {
    if (/\s/.test(credentials.access_token ?? '')) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the access_token of the credentials Secret holds whitespace; paste the Snap Conversions API token alone`);
    }
    try {
      new URL(snapchatEventsUrl(settings, 'x'));
    } catch {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: destination.snapchat.endpoint ${JSON.stringify(settings.endpoint)} does not give a valid URL`);
    }
  },
  refuse(payload, ctx) {
    const t = payload.event_time;
    if (typeof t !== 'number') return undefined; // the output schema requires it
    const age = Math.floor(ctx.now / 1000) - t;
    if (age > SNAPCHAT_MAX_AGE_SECONDS) return `event_time is ${Math.floor(age / 86400)} days old; Snap takes events of the last 37 days only`;
    return undefined;
  },
  buildRequests(payloads, ctx: RequestContext<SnapchatSettings>) {
    const url = snapchatEventsUrl(ctx.settings, ctx.credentials.access_token ?? '');
    let offset = 0;
    return chunk(payloads, SNAPCHAT_MAX_EVENTS).map((data) => {
      const items = data.map((_, i) => offset + i);
      offset += data.length;
      return { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data }), items };
    });
  },
  classify: (response, request, ctx) => classifySnapchat(response, request, ctx.now),
};
