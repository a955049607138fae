import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { parseDuration } from '../../duration.js';
import { chunk, classifyByStatus, ERROR_BODY_LIMIT, parseRetryAfter } from '../http.js';
import type { DestinationDefinition, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { TiktokSettings, type TiktokEventSource } from './settings.js';

export { TiktokSettings, TIKTOK_EVENT_SOURCES, type TiktokEventSource } from './settings.js';

/**
 * TikTok's reference for the endpoint this adapter calls, "Report App, Web, Offline, or CRM
 * Events" (Events API 2.0): request and response shapes, field rules, the 1,000-event limit.
 */
export const TIKTOK_DOCS_URL = 'https://business-api.tiktok.com/portal/docs?id=1771101303285761';

/** Path of the Events API 2.0 endpoint, appended to `settings.endpoint` (trailing slash included: TikTok's documented URL). */
export const TIKTOK_TRACK_PATH = '/open_api/v1.3/event/track/';

/** Most events in one request: "you can report up to 1,000 events in one request. If a request contains more than 1,000 events, the entire request will be rejected" ({@link TIKTOK_DOCS_URL}). */
export const TIKTOK_MAX_EVENTS = 1000;

/**
 * TikTok standard event names, current and legacy (both accepted): the "Supported standard events"
 * list (https://ads.tiktok.com/help/article/supported-standard-events, September 2025: Purchase
 * replaced CompletePayment and PlaceAnOrder, which older pixels still send, as they do ClickButton).
 * Web and app events may also use custom names; offline events only these; CRM events only custom
 * names ({@link TIKTOK_DOCS_URL}, `event`).
 */
export const TIKTOK_STANDARD_EVENTS = [
  'AddPaymentInfo',
  'AddToCart',
  'AddToWishlist',
  'ApplicationApproval',
  'ClickButton',
  'CompletePayment',
  'CompleteRegistration',
  'Contact',
  'CustomizeProduct',
  'Download',
  'FindLocation',
  'InitiateCheckout',
  'Lead',
  'PlaceAnOrder',
  'Purchase',
  'Schedule',
  'Search',
  'StartTrial',
  'SubmitApplication',
  'SubmitForm',
  'Subscribe',
  'ViewContent',
] as const;

/** ISO 4217 codes TikTok takes in `properties.currency`: "List of currencies currently supported" ({@link TIKTOK_DOCS_URL}). */
export const TIKTOK_CURRENCIES = [
  'AED', 'ARS', 'AUD', 'BDT', 'BHD', 'BIF', 'BOB', 'BRL', 'CAD', 'CHF', 'CLP', 'CNY', 'COP', 'CRC', 'CZK', 'DKK',
  'DZD', 'EGP', 'EUR', 'GBP', 'GTQ', 'HKD', 'HNL', 'HUF', 'IDR', 'ILS', 'INR', 'ISK', 'JPY', 'KES', 'KHR', 'KRW',
  'KWD', 'KZT', 'MAD', 'MOP', 'MXN', 'MYR', 'NGN', 'NIO', 'NOK', 'NZD', 'OMR', 'PEN', 'PHP', 'PKR', 'PLN', 'PYG',
  'QAR', 'RON', 'RUB', 'SAR', 'SEK', 'SGD', 'THB', 'TRY', 'TWD', 'UAH', 'USD', 'VES', 'VND', 'ZAR',
] as const;

/** TikTok answer codes this adapter tells apart (https://ads.tiktok.com/marketing_api/docs?id=1737172488964097). */
export const TIKTOK_CODES = {
  OK: 0,
  /** "Partial success": RudderStack's TikTok adapter counts it as delivered (rudder-transformer src/v0/destinations/tiktok_ads/networkHandler.js); TikTok names no failed event. */
  PARTIAL_SUCCESS: 20001,
  /** No permission (e.g. the token cannot report to this event source). */
  NO_PERMISSION: 40001,
  /** Parameter error: something in the request, possibly one event of the batch, is invalid. */
  PARAMETER_ERROR: 40002,
  /** Rate limit: requests too frequent (QPS/QPM/QPD). */
  RATE_LIMITED: 40100,
  /** Access token missing, incorrect or revoked. */
  ACCESS_TOKEN_INVALID: 40105,
  /** Internal error. */
  SYSTEM_ERROR: 50000,
} as const;

/** SHA-256 as TikTok wants hashed customer information: 64 lowercase hex characters. */
export const SHA256_HEX_PATTERN = '^[0-9a-f]{64}$';

const SCHEMA_2020 = 'https://json-schema.org/draft/2020-12/schema';

/** `email`, `phone`, `external_id`: "SHA-256 hashing is required", one value or several ({@link TIKTOK_DOCS_URL}, `user` parameters). */
const hashed = (what: string) => ({
  type: ['string', 'array'],
  description: `${what}: SHA-256 (64 lowercase hex characters) of the normalized value, or a list of them.`,
  pattern: SHA256_HEX_PATTERN,
  items: { type: 'string', pattern: SHA256_HEX_PATTERN },
  minItems: 1,
});

const text = (description: string) => ({ type: 'string', minLength: 1, description });

/**
 * JSON Schema (draft 2020-12) of one element of `data[]` for an event source, or of any source
 * when `source` is undefined (the Mapping-level check: only rules every source shares).
 * Source of every rule: {@link TIKTOK_DOCS_URL}.
 */
function eventSchema(source: TiktokEventSource | undefined): object {
  const required = ['event', 'event_time'];
  // page: "Required for web events". event_id is required only when the browser pixel reports the
  // same events (deduplication), which TikTok cannot tell statically: the starter always writes it.
  if (source === 'web') required.push('page');
  if (source === 'app') required.push('app');
  if (source === 'crm') required.push('lead');
  const event: Record<string, unknown> = { type: 'string', minLength: 1, description: 'Event name: a standard event (ViewContent, AddToCart, Purchase…) or, for web and app events, a custom name.' };
  if (source === 'offline') event.enum = [...TIKTOK_STANDARD_EVENTS];
  if (source === 'crm') event.not = { enum: [...TIKTOK_STANDARD_EVENTS] };
  return {
    $schema: SCHEMA_2020,
    title: `TikTok Events API 2.0 event${source ? ` (event_source ${source})` : ''}`,
    type: 'object',
    additionalProperties: false,
    required,
    properties: {
      event,
      event_time: {
        type: 'integer',
        // Unix seconds: ten digits, so a value in milliseconds is caught.
        minimum: 1_000_000_000,
        maximum: 9_999_999_999,
        description: 'When the event occurred: Unix timestamp in seconds (UTC).',
      },
      event_id: { type: 'string', minLength: 1, description: 'Deduplication key with the browser pixel (event_source_id + event + event_id).' },
      user: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ttclid: text('TikTok Click ID (web).'),
          email: hashed('Email (trimmed, lowercased)'),
          phone: hashed('Phone number in E.164 (+ and country code)'),
          external_id: hashed('External ID'),
          ttp: text('Value of the _ttp cookie (web).'),
          ip: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }], description: 'Public IP address of the device, not hashed.' },
          user_agent: text('User agent of the device, not hashed.'),
          idfa: text('iOS IDFA (app).'),
          idfv: text('iOS IDFV (app).'),
          gaid: text('Google Advertising ID (app).'),
          locale: text('BCP 47 language tag, e.g. en-US.'),
          att_status: { type: 'string', enum: ['AUTHORIZED', 'DENIED', 'NOT_DETERMINED', 'RESTRICTED', 'NOT_APPLICABLE'] },
        },
      },
      properties: {
        type: 'object',
        properties: {
          content_ids: { type: 'array', items: { type: 'string', minLength: 1 } },
          contents: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              properties: {
                price: { type: 'number', description: 'Price of one item.' },
                quantity: { type: 'integer' },
                content_id: { type: 'string', minLength: 1 },
                content_category: { type: 'string' },
                content_name: { type: 'string' },
                brand: { type: 'string' },
              },
            },
          },
          content_type: { type: 'string', enum: ['product', 'product_group'] },
          currency: { type: 'string', enum: [...TIKTOK_CURRENCIES], description: 'ISO 4217 code among those TikTok supports.' },
          value: { type: 'number', description: 'Total value of the order or items (not the price of one).' },
          num_items: { type: 'integer' },
          search_string: { type: 'string' },
          query: { type: 'string' },
          description: { type: 'string' },
          order_id: { type: 'string' },
          shop_id: { type: 'string' },
          customer_type: { type: 'string', enum: ['new', 'returning'] },
        },
      },
      page: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: { type: 'string', pattern: '^https?://', description: 'Full browser URL where the event happened.' },
          referrer: { type: 'string' },
        },
      },
      app: { type: 'object', required: ['app_id'], properties: { app_id: text('Mobile app ID.'), app_name: { type: 'string' }, app_version: { type: 'string' } } },
      ad: { type: 'object' },
      lead: { type: 'object', required: ['lead_id'], properties: { lead_id: text('TikTok lead ID.'), lead_event_source: { type: 'string' } } },
      limited_data_use: { type: 'boolean' },
    },
  };
}

// One schema object per source: compiled validators are cached per schema object.
const schemas = new Map<string, object>();

/** The output schema of one mapped payload for `settings` (undefined: the Mapping-level schema); memoized. */
export function tiktokEventSchema(settings: Pick<TiktokSettings, 'eventSource'> | undefined): object {
  const key = settings?.eventSource ?? '';
  let schema = schemas.get(key);
  if (!schema) {
    schema = eventSchema(settings?.eventSource);
    schemas.set(key, schema);
  }
  return schema;
}

/** Printable ASCII without spaces: what an HTTP header value can carry safely (TikTok tokens are 40 hex characters). */
const TOKEN = /^[\x21-\x7e]+$/;

/**
 * Classifies an Events API answer. TikTok answers HTTP 200 with `{code, message, request_id, data}`
 * for errors too ({@link TIKTOK_DOCS_URL}, Response: "If the code is not 0, it indicates an error"),
 * so the body decides:
 * - `0` success; `20001` (partial success) success too, its message kept (see {@link TIKTOK_CODES});
 * - `40100` rate limit: retryable and `throttled`, with `Retry-After` when present;
 * - `40002` parameter error: permanent; on a request of several events `split` (TikTok refuses the
 *   whole batch for one bad event without naming it), so each event is sent alone once;
 * - other `4xxxx` (permission, token…): permanent for the whole request;
 * - `5xxxx`: retryable;
 * - another code, or a 2xx body without a code: retryable (event_id deduplicates a replay).
 * Non-2xx statuses are classified by status ({@link classifyByStatus}).
 */
export function classifyTiktok(response: VendorResponse, request: Pick<VendorRequest, 'items'>, now: number): RequestResult {
  if (response.status < 200 || response.status >= 300) return classifyByStatus(response, now);
  let answer: unknown;
  try {
    answer = JSON.parse(response.body);
  } catch {
    return { outcome: 'retryable', error: `HTTP ${response.status} without a TikTok answer: ${response.body.slice(0, 200)}` };
  }
  const code = (answer as { code?: unknown } | null)?.code;
  if (typeof code !== 'number') return { outcome: 'retryable', error: `HTTP ${response.status} answer without a code: ${response.body.slice(0, 200)}` };
  if (code === TIKTOK_CODES.OK) return { outcome: 'success' };
  const { message, request_id: requestId } = answer as { message?: unknown; request_id?: unknown };
  const error = `TikTok code ${code}${typeof message === 'string' && message ? `: ${message}` : ''}${typeof requestId === 'string' && requestId ? ` (request_id ${requestId})` : ''}`.slice(0, ERROR_BODY_LIMIT);
  if (code === TIKTOK_CODES.PARTIAL_SUCCESS) return { outcome: 'success', error };
  if (code === TIKTOK_CODES.RATE_LIMITED) {
    const result: RequestResult = { outcome: 'retryable', throttled: true, error };
    const retryAfter = parseRetryAfter(response.headers['retry-after'], now);
    if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
    return result;
  }
  if (code >= 50000 && code < 60000) return { outcome: 'retryable', error };
  if (code >= 40000 && code < 50000) {
    const result: RequestResult = { outcome: 'permanent', error };
    if (code === TIKTOK_CODES.PARAMETER_ERROR && request.items.length > 1) result.split = true;
    return result;
  }
  return { outcome: 'retryable', error };
}

/** The Events API URL for a base `endpoint` (a trailing slash of the base is dropped). */
export function tiktokTrackUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}${TIKTOK_TRACK_PATH}`;
}

/**
 * TikTok Events API 2.0: `POST <endpoint>/open_api/v1.3/event/track/` with headers
 * `Access-Token` (credentials key `access_token`) and `Content-Type: application/json`, body
 * `{event_source, event_source_id: pixelCode, test_event_code?, data: [payload, …]}`, up to 1,000
 * payloads per request (one mapped payload = one element of `data`). Classified by
 * {@link classifyTiktok}. Events are refused for age only when `maxEventAge` is set: TikTok
 * documents no age limit for the Events API.
 */
export const tiktokDestination: DestinationDefinition<TiktokSettings> = {
  type: 'tiktok',
  settingsField: 'tiktok',
  title: 'TikTok Events API',
  docsUrl: TIKTOK_DOCS_URL,
  settingsSchema: TiktokSettings,
  credentials: {
    access_token: {
      required: true,
      description: 'Events API access token of the pixel or event set (TikTok Events Manager → Settings → Generate Access Token), sent as the Access-Token header.',
    },
  },
  // TikTok recommends real-time sending; a send carries what the forwarder has at hand, up to this.
  batch: { default: 100, max: TIKTOK_MAX_EVENTS },
  outputSchema: (settings) => tiktokEventSchema(settings),
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(settings, credentials, integration) {
    if (!TOKEN.test(credentials.access_token ?? '')) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the credentials Secret key access_token must be one line of printable characters without spaces (a TikTok Events API access token)`);
    }
    if (settings.maxEventAge !== undefined) parseDuration(settings.maxEventAge); // the schema pattern already holds; fails loudly if it ever does not
  },
  refuse(payload, ctx) {
    const limit = ctx.settings.maxEventAge;
    const time = payload.event_time;
    if (limit === undefined || typeof time !== 'number') return undefined;
    const ageMs = ctx.now - time * 1000;
    if (ageMs <= parseDuration(limit)) return undefined;
    return `event_time is ${formatAge(ageMs)} old; destination.tiktok.maxEventAge is ${limit}`;
  },
  buildRequests(payloads, ctx) {
    const url = tiktokTrackUrl(ctx.settings.endpoint);
    const headers = { 'access-token': ctx.credentials.access_token ?? '', 'content-type': 'application/json' };
    const positions = payloads.map((_, i) => i);
    return chunk(positions, TIKTOK_MAX_EVENTS).map((items) => ({
      method: 'POST' as const,
      url,
      headers: { ...headers },
      body: JSON.stringify({
        event_source: ctx.settings.eventSource,
        event_source_id: ctx.settings.pixelCode,
        ...(ctx.settings.testEventCode ? { test_event_code: ctx.settings.testEventCode } : {}),
        data: items.map((i) => payloads[i]),
      }),
      items,
    }));
  },
  classify: (response, request, ctx) => classifyTiktok(response, request, ctx.now),
};

/** `8d 2h`, `3h 5m`, `42s`: an age for messages. */
function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}
