import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { chunk, classifyByStatus, ERROR_BODY_LIMIT, query, parseJsonObject } from '../http.js';
import type { DestinationDefinition, ItemResult, RequestContext, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { PinterestSettings } from './settings.js';

export { PinterestSettings } from './settings.js';

/**
 * Pinterest API for Conversions v5, "Send conversions":
 * https://developers.pinterest.com/docs/api/v5/events-create (OpenAPI: ConversionEvents,
 * ConversionEventsUserData, ConversionApiResponse, Error, DetailedError).
 */
export const PINTEREST_DOCS_URL = 'https://developers.pinterest.com/docs/api/v5/events-create';

/** Most events in one request: `data` has `maxItems: 1000` in the ConversionEvents schema. */
export const PINTEREST_MAX_EVENTS = 1000;

/**
 * Oldest event Pinterest takes, in seconds: "Only events that occurred within the previous seven
 * days may be sent to […] the Send conversions endpoint" (https://docs.amperity.com/operator/events_pinterest.html;
 * the v5 reference itself states no window). Older events are refused before sending
 * ({@link pinterestDestination}.refuse), never sinking the request of the others.
 */
export const PINTEREST_MAX_AGE_SECONDS = 7 * 24 * 3600;

/**
 * Standard event names in API form (https://developers.pinterest.com/docs/conversions/event/,
 * "Name in API"): the nine of the v5 OpenAPI description (add_to_cart, checkout, custom, lead,
 * page_visit, search, signup, view_category, watch_video) plus those added since.
 */
export const PINTEREST_EVENT_NAMES = [
  'add_payment_info',
  'add_to_cart',
  'add_to_wishlist',
  'app_install',
  'app_open',
  'checkout',
  'contact',
  'custom',
  'customize_product',
  'find_location',
  'initiate_checkout',
  'lead',
  'page_visit',
  'schedule',
  'search',
  'signup',
  'start_trial',
  'submit_application',
  'subscribe',
  'view_category',
  'view_content',
  'watch_video',
] as const;

/** Where a conversion happened (ConversionEvents.action_source). */
export const PINTEREST_ACTION_SOURCES = ['app_android', 'app_ios', 'web', 'offline'] as const;

/** Pinterest error code of a rate-limited request (HTTP 429, `{"code": 8, …}`). */
export const PINTEREST_RATE_LIMIT_CODE = 8;

const SHA256 = { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the normalized value, 64 lowercase hex characters.' };
const HASHES = (what: string) => ({ type: 'array', items: SHA256, minItems: 1, description: `SHA-256 hashes of ${what}.` });
// Amounts travel as strings ("Accepted as a string in the request; it will be parsed into a double").
const DECIMAL_STRING = { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]+)?$' };
const TEXT = { type: 'string', minLength: 1 };

/**
 * JSON Schema (draft 2020-12) of one mapped payload: one element of `data`, as the ConversionEvents
 * schema of the v5 OpenAPI description defines it (unknown properties refused, as Pinterest does).
 * Static rules enforced: required `event_name`, `action_source`, `event_time`, `event_id`,
 * `user_data`; the event name and action source enums; `event_time` in whole seconds (10 digits at
 * most, so milliseconds are caught); hashed fields as 64 lowercase hex characters; `user_data`
 * holding `em`, `hashed_maids`, or both `client_ip_address` and `client_user_agent`
 * (ConversionEventsUserData); amounts as decimal strings; ISO-4217 currency.
 */
export const PINTEREST_EVENT_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Pinterest conversion event',
  type: 'object',
  additionalProperties: false,
  required: ['event_name', 'action_source', 'event_time', 'event_id', 'user_data'],
  properties: {
    event_name: { type: 'string', enum: [...PINTEREST_EVENT_NAMES] },
    action_source: { type: 'string', enum: [...PINTEREST_ACTION_SOURCES] },
    event_time: { type: 'integer', minimum: 0, maximum: 9999999999, description: 'Unix time in seconds.' },
    event_id: { type: 'string', minLength: 1, description: 'Deduplication key with the Pinterest tag (same id on both sides).' },
    event_source_url: { type: 'string', minLength: 1 },
    opt_out: { type: 'boolean' },
    partner_name: { type: 'string', pattern: '^ss-[a-z0-9_-]+$' },
    user_data: {
      type: 'object',
      additionalProperties: false,
      properties: {
        em: HASHES('lower-cased email addresses'),
        hashed_maids: HASHES('mobile advertising ids (GAID, IDFA)'),
        client_ip_address: TEXT,
        client_user_agent: TEXT,
        ph: HASHES('phone numbers, digits only with the country code'),
        ge: HASHES('genders (f, m, n)'),
        db: HASHES('dates of birth (YYYYMMDD)'),
        ln: HASHES('lower-cased last names'),
        fn: HASHES('lower-cased first names'),
        ct: HASHES('cities, lower-cased without spaces or punctuation'),
        st: HASHES('states, two lower-case letters'),
        zp: HASHES('zip codes'),
        country: HASHES('ISO-3166 alpha-2 country codes, lower case'),
        external_id: HASHES("the advertiser's user ids"),
        click_id: { ...TEXT, description: 'The _epik cookie or epik URL parameter (not hashed).' },
        partner_id: TEXT,
      },
      anyOf: [{ required: ['em'] }, { required: ['hashed_maids'] }, { required: ['client_ip_address', 'client_user_agent'] }],
    },
    custom_data: {
      type: 'object',
      additionalProperties: false,
      properties: {
        currency: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO-4217 code.' },
        value: DECIMAL_STRING,
        content_ids: { type: 'array', items: TEXT },
        content_name: { type: 'string' },
        content_category: { type: 'string' },
        content_brand: { type: 'string' },
        contents: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              id: TEXT,
              item_price: DECIMAL_STRING,
              quantity: { type: 'integer', minimum: 0 },
              item_name: { type: 'string' },
              item_category: { type: 'string' },
              item_brand: { type: 'string' },
            },
          },
        },
        num_items: { type: 'integer', minimum: 0 },
        order_id: TEXT,
        search_string: { type: 'string' },
        opt_out_type: { type: 'string' },
        np: { type: 'string' },
      },
    },
    app_id: { type: 'string' },
    app_name: { type: 'string' },
    app_version: { type: 'string' },
    device_brand: { type: 'string' },
    device_carrier: { type: 'string' },
    device_model: { type: 'string' },
    device_type: { type: 'string' },
    os_version: { type: 'string' },
    wifi: { type: 'boolean' },
    language: { type: 'string', pattern: '^[a-z]{2}$', description: 'ISO-639-1 code.' },
  },
} as const;

/** The request URL: `{endpoint}/v5/ad_accounts/{adAccountId}/events`, with `?test=true` in test mode. */
export function pinterestEventsUrl(settings: PinterestSettings): string {
  const base = settings.endpoint.replace(/\/+$/, '');
  const q = query({ test: settings.test ? 'true' : undefined });
  return `${base}/v5/ad_accounts/${encodeURIComponent(settings.adAccountId)}/events${q ? `?${q}` : ''}`;
}

/** One entry of `events` in a Pinterest answer (ConversionApiResponse.events[]). */
interface PinterestEventStatus {
  status?: unknown;
  error_message?: unknown;
  warning_message?: unknown;
}

/**
 * The per-event statuses of an answer, when they match the request one to one: `events` of a
 * ConversionApiResponse (200), or of the `details` of a DetailedError (422: "Not all events were
 * successfully processed"; its `details` shape is not documented, so both places are read).
 * "The order will match the order in which the events were received in the request."
 */
function eventStatuses(body: Record<string, unknown> | undefined, count: number): PinterestEventStatus[] | undefined {
  const candidates = [body?.events, (body?.details as Record<string, unknown> | undefined)?.events];
  for (const c of candidates) {
    if (Array.isArray(c) && c.length === count && c.every((e) => typeof e === 'object' && e !== null)) return c as PinterestEventStatus[];
  }
  return undefined;
}

/** `Pinterest <code>: <message>` of an Error/DetailedError body, else the start of the body. */
function errorText(status: number, body: Record<string, unknown> | undefined, raw: string): string {
  if (body && (body.code !== undefined || typeof body.message === 'string')) {
    return `HTTP ${status}: Pinterest error ${String(body.code ?? '?')}: ${String(body.message ?? '').slice(0, ERROR_BODY_LIMIT)}`;
  }
  return `HTTP ${status}${raw ? `: ${raw.slice(0, ERROR_BODY_LIMIT)}` : ''}`;
}

/**
 * Classifies a Pinterest answer (responses of POST /ad_accounts/{id}/events in the v5 OpenAPI):
 * - 200 ConversionApiResponse: success; an event whose `status` is `failed` fails alone
 *   (permanent, with its `error_message`).
 * - 422 DetailedError "Not all events were successfully processed": per event when the answer
 *   lists the events (processed ones succeed, failed ones are permanent); otherwise the request is
 *   split so each event is tried alone (a single event is permanent).
 * - 400 "The request was invalid" (code 4196): Pinterest checks the body as a whole, so one bad
 *   event refuses them all: split; a single event is permanent.
 * - 401 (code 2, authentication failed) and 403 (code 29, not permitted): permanent.
 * - 429 (code 8, rate limit: 5,000 calls per minute per ad account) or code 8 in any answer:
 *   retryable and throttled, with Retry-After when given.
 * - 503 (code 4197, "ramped down") and other 5xx: retryable.
 */
export function classifyPinterest(response: VendorResponse, request: VendorRequest, now: number): RequestResult {
  const base = classifyByStatus(response, now);
  const body = parseJsonObject(response.body);
  const count = request.items.length;
  const statuses = response.status === 200 || response.status === 422 ? eventStatuses(body, count) : undefined;
  if (statuses) {
    const items = new Map<number, ItemResult>();
    statuses.forEach((s, i) => {
      if (s.status === 'processed') return;
      const why = typeof s.error_message === 'string' && s.error_message ? s.error_message : `event ${String(s.status ?? 'not processed')}`;
      items.set(i, { outcome: 'permanent', error: `Pinterest refused the event: ${why}`.slice(0, ERROR_BODY_LIMIT) });
    });
    return items.size > 0 ? { outcome: 'success', items } : { outcome: 'success' };
  }
  if (base.outcome === 'success') return base;
  const error = errorText(response.status, body, response.body);
  if (response.status === 429 || body?.code === PINTEREST_RATE_LIMIT_CODE) {
    return { ...base, outcome: 'retryable', throttled: true, error };
  }
  if ((response.status === 400 || response.status === 422) && count > 1) return { outcome: 'permanent', error, split: true };
  return { ...base, error };
}

/**
 * Pinterest API for Conversions v5. One request per up to 1000 payloads (the send's payloads in
 * order): `POST {endpoint}/v5/ad_accounts/{adAccountId}/events[?test=true]`,
 * `Authorization: Bearer <access_token>`, body `{"data": [payload, …]}`. Payloads are events as
 * {@link PINTEREST_EVENT_SCHEMA} describes; events older than 7 days are refused before sending.
 */
export const pinterestDestination: DestinationDefinition<PinterestSettings> = {
  type: 'pinterest',
  settingsField: 'pinterest',
  title: 'Pinterest Conversions API',
  docsUrl: PINTEREST_DOCS_URL,
  settingsSchema: PinterestSettings,
  credentials: {
    access_token: {
      required: true,
      description: 'Conversion access token generated in Pinterest Ads Manager (Conversions → Conversions API), sent as `Authorization: Bearer`; its user must own the ad account or hold the Admin, Analyst, Audience or Campaign role on it.',
    },
  },
  // 100 keeps one refused or retried request small; Pinterest takes up to 1000 per request.
  batch: { default: 100, max: PINTEREST_MAX_EVENTS },
  outputSchema: () => PINTEREST_EVENT_SCHEMA,
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(settings, credentials, integration) {
    if (/[\s]/.test(credentials.access_token ?? '')) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the access_token of the credentials Secret holds whitespace; paste the Pinterest conversion access token alone`);
    }
    try {
      new URL(pinterestEventsUrl(settings));
    } catch {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: destination.pinterest.endpoint ${JSON.stringify(settings.endpoint)} does not give a valid URL`);
    }
  },
  refuse(payload, ctx) {
    const t = payload.event_time;
    if (typeof t !== 'number') return undefined; // the output schema requires it; nothing to judge
    const age = Math.floor(ctx.now / 1000) - t;
    if (age > PINTEREST_MAX_AGE_SECONDS) {
      return `event_time is ${formatAge(age)} old; Pinterest takes events of the last 7 days only`;
    }
    return undefined;
  },
  buildRequests(payloads, ctx: RequestContext<PinterestSettings>) {
    const url = pinterestEventsUrl(ctx.settings);
    const headers = { authorization: `Bearer ${ctx.credentials.access_token ?? ''}`, 'content-type': 'application/json' };
    let offset = 0;
    return chunk(payloads, PINTEREST_MAX_EVENTS).map((data) => {
      const items = data.map((_, i) => offset + i);
      offset += data.length;
      return { method: 'POST', url, headers: { ...headers }, body: JSON.stringify({ data }), items };
    });
  },
  classify: (response, request, ctx) => classifyPinterest(response, request, ctx.now),
};

/** `8 days 2 h` for an age in seconds. */
function formatAge(seconds: number): string {
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  return `${days} days ${hours} h`;
}
