import { createHmac } from 'node:crypto';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { ERROR_BODY_LIMIT, chunk, classifyByStatus, isJsonObject, parseJsonObject, parseRetryAfter, query } from '../http.js';
import type { DestinationDefinition, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { MetaCapiSettings } from './settings.js';

export { MetaCapiSettings, META_DEFAULT_API_VERSION, META_DEFAULT_ENDPOINT } from './settings.js';

/**
 * Vendor rules this adapter follows, each from Meta's documentation:
 * - Send: https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#send
 *   (POST /{API_VERSION}/{PIXEL_ID}/events?access_token={TOKEN}, `data` of up to 1,000 events).
 * - Event fields: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event
 * - Customer information (hashing): https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
 * - fbp / fbc: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc
 * - Custom data: https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/custom-data
 * - Errors: https://developers.facebook.com/docs/graph-api/guides/error-handling and rate limits
 *   https://developers.facebook.com/docs/graph-api/overview/rate-limiting
 * - appsecret_proof: https://developers.facebook.com/docs/graph-api/guides/secure-requests
 */
export const META_DOCS_URL = 'https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api';

/** Most events Meta takes in one request's `data` (Using the API, "Batch requests"). */
export const META_MAX_EVENTS = 1000;

/** How far back `event_time` may be: 7 days (server event parameters, event_time). */
export const META_MAX_AGE_SECONDS = 7 * 24 * 3600;

/** How far back `event_time` may be for `action_source: physical_store`: 62 days (Using the API, "Upload time versus event transaction time"). */
export const META_MAX_AGE_PHYSICAL_STORE_SECONDS = 62 * 24 * 3600;

/**
 * Margin taken off the age limits in {@link metaCapiDestination}'s `refuse`: the time a request
 * spends in flight, plus clock differences with Meta. An event Meta would find too old sinks the
 * whole request (and costs a split), so one that close to the limit is refused here instead.
 */
export const META_AGE_MARGIN_SECONDS = 60;

/** `action_source` values (server event parameters, action_source). */
export const META_ACTION_SOURCES = ['website', 'app', 'email', 'phone_call', 'chat', 'physical_store', 'system_generated', 'business_messaging', 'other'] as const;
/** One of {@link META_ACTION_SOURCES}. */
export type MetaActionSource = (typeof META_ACTION_SOURCES)[number];

/** A SHA-256 digest as Meta wants hashed customer information: 64 lowercase hexadecimal characters. */
export const META_SHA256_PATTERN = '^[0-9a-f]{64}$';

/**
 * `fbc` / `fbp` values: `fb.<subdomain index 0-2>.<creation time, ms>.<click id or random number>`,
 * optionally followed by the appendix Meta's parameter builder adds (fbp and fbc parameters page).
 */
export const META_FB_COOKIE_PATTERN = '^fb\\.[0-2]\\.[0-9]{13}\\.[^.\\s]+(\\.[^.\\s]+)?$';

/** Customer information parameters Meta wants hashed (SHA-256 of the normalized value); a list of them is allowed too. */
export const META_HASHED_USER_FIELDS = ['em', 'ph', 'fn', 'ln', 'ge', 'db', 'ct', 'st', 'zp', 'country', 'external_id'] as const;

const hashed = (what: string) => ({
  description: `${what}: SHA-256 of the normalized value, 64 lowercase hex characters (or a list of them). Never the plain value.`,
  type: ['string', 'array'],
  pattern: META_SHA256_PATTERN,
  items: { type: 'string', pattern: META_SHA256_PATTERN },
  minItems: 1,
});

const url = (what: string) => ({ description: `${what}: an http(s) URL.`, type: 'string', pattern: '^https?://', maxLength: 8192 });

/**
 * JSON Schema (draft 2020-12) of one mapped payload: one element of the request's `data`. It
 * holds Meta's static rules: required fields, the action_source enum, hashed customer information
 * as 64 lowercase hex, the fbc/fbp format, integer seconds for event_time, client_user_agent and
 * event_source_url for website events, value and currency for Purchase. Only documented fields are
 * allowed at the top level and in user_data (a typo such as `user_data.email` would send plain
 * personal data); custom_data takes custom properties, as Meta does.
 */
export const META_EVENT_SCHEMA: object = Object.freeze({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'Meta Conversions API server event',
  type: 'object',
  required: ['event_name', 'event_time', 'action_source', 'user_data'],
  additionalProperties: false,
  properties: {
    event_name: {
      description: 'A standard event (Purchase, AddToCart…) or a custom event name; with event_id, the key of deduplication with the Pixel. At most 50 characters, like Pixel custom events.',
      type: 'string',
      minLength: 1,
      maxLength: 50,
    },
    event_time: {
      description: 'When the event happened, Unix time in seconds (not milliseconds: at most 10 digits). Meta refuses events older than 7 days (62 for physical_store).',
      type: 'integer',
      minimum: 0,
      maximum: 9999999999,
    },
    action_source: { description: 'Where the conversion happened.', type: 'string', enum: [...META_ACTION_SOURCES] },
    event_id: { description: 'Unique id of the event, for deduplication with the Pixel (same event_name and event_id within 48 hours).', type: 'string', minLength: 1, maxLength: 1024 },
    event_source_url: url('The browser URL where the event happened (required for website events)'),
    referrer_url: url('The referrer of the page'),
    opt_out: { description: 'true: use the event for attribution only, not for ads delivery optimization.', type: 'boolean' },
    data_processing_options: { description: 'Data processing options, e.g. ["LDU"] (Limited Data Use) or [].', type: 'array', items: { type: 'string', enum: ['LDU'] } },
    data_processing_options_country: { description: 'Country of the data processing option: 1 (United States) or 0 (Meta geolocates).', type: 'integer' },
    data_processing_options_state: { description: 'State of the data processing option, e.g. 1000 (California) or 0 (Meta geolocates).', type: 'integer' },
    messaging_channel: { description: 'Channel of a business_messaging event (e.g. whatsapp).', type: 'string', minLength: 1 },
    app_data: { description: 'App data parameters (required for app events).', type: 'object' },
    original_event_data: { description: 'The original event of this one (event_name, event_time).', type: 'object' },
    attribution_data: { description: 'Attribution data parameters.', type: 'object' },
    user_data: {
      description: 'Customer information parameters: at least one.',
      type: 'object',
      minProperties: 1,
      additionalProperties: false,
      properties: {
        em: hashed('Email'),
        ph: hashed('Phone number (digits with country code)'),
        fn: hashed('First name'),
        ln: hashed('Last name'),
        ge: hashed('Gender (f or m)'),
        db: hashed('Date of birth (YYYYMMDD)'),
        ct: hashed('City'),
        st: hashed('State (two-letter code)'),
        zp: hashed('Postal code'),
        country: hashed('Country (ISO 3166-1 alpha-2)'),
        external_id: hashed('External id (the advertiser’s user id)'),
        client_ip_address: { description: 'IP address of the browser, IPv4 or IPv6; not hashed.', type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] },
        client_user_agent: { description: 'User agent of the browser; not hashed (required for website events).', type: 'string', minLength: 1 },
        fbc: { description: 'Click id, the _fbc cookie: fb.1.<ms>.<fbclid>; not hashed.', type: 'string', pattern: META_FB_COOKIE_PATTERN },
        fbp: { description: 'Browser id, the _fbp cookie: fb.1.<ms>.<random>; not hashed.', type: 'string', pattern: META_FB_COOKIE_PATTERN },
        subscription_id: { type: 'string' },
        fb_login_id: { type: ['string', 'integer'] },
        lead_id: { type: ['string', 'integer'] },
        anon_id: { type: 'string' },
        madid: { type: 'string' },
        page_id: { type: 'string' },
        page_scoped_user_id: { type: 'string' },
        ctwa_clid: { type: 'string' },
        ig_account_id: { type: 'string' },
        ig_sid: { type: 'string' },
      },
    },
    custom_data: {
      description: 'Custom data parameters; custom properties are allowed.',
      type: 'object',
      properties: {
        value: { description: 'Monetary value (required for Purchase).', type: 'number' },
        currency: { description: 'ISO 4217 currency code (required for Purchase).', type: 'string', pattern: '^[A-Za-z]{3}$' },
        content_name: { type: 'string' },
        content_category: { type: 'string' },
        content_ids: { description: 'Product ids.', type: 'array', items: { type: 'string', minLength: 1 } },
        contents: {
          description: 'Products: {id, quantity, item_price, delivery_category}.',
          type: 'array',
          items: {
            type: 'object',
            required: ['id'],
            properties: {
              id: { type: 'string', minLength: 1 },
              quantity: { type: 'integer', minimum: 0 },
              item_price: { type: 'number' },
              delivery_category: { type: 'string', enum: ['in_store', 'curbside', 'home_delivery'] },
            },
          },
        },
        content_type: { type: 'string', enum: ['product', 'product_group'] },
        order_id: { type: 'string', minLength: 1 },
        predicted_ltv: { type: 'number' },
        num_items: { type: 'integer', minimum: 0 },
        search_string: { type: 'string' },
        status: { type: 'string' },
        delivery_category: { type: 'string', enum: ['in_store', 'curbside', 'home_delivery'] },
      },
    },
  },
  allOf: [
    {
      // "Website events … require the client_user_agent, action_source, and event_source_url parameters" (Parameters page).
      if: { required: ['action_source'], properties: { action_source: { const: 'website' } } },
      then: { required: ['event_source_url', 'user_data'], properties: { user_data: { required: ['client_user_agent'] } } },
    },
    {
      // custom_data: value and currency are "required for purchase events".
      if: { required: ['event_name'], properties: { event_name: { const: 'Purchase' } } },
      then: { required: ['custom_data'], properties: { custom_data: { required: ['value', 'currency'] } } },
    },
    {
      // App events need app_data (Conversions API for app events).
      if: { required: ['action_source'], properties: { action_source: { const: 'app' } } },
      then: { required: ['app_data'] },
    },
    {
      if: { required: ['action_source'], properties: { action_source: { const: 'business_messaging' } } },
      then: { required: ['messaging_channel'] },
    },
  ],
});

// ---- errors ------------------------------------------------------------------------------------

/**
 * The error object of a Graph API error answer (https://developers.facebook.com/docs/graph-api/guides/error-handling):
 * `{"error": {message, type, code, error_subcode, error_user_title, error_user_msg, is_transient, fbtrace_id}}`.
 */
export interface MetaError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  error_user_title?: string;
  error_user_msg?: string;
  is_transient?: boolean;
  fbtrace_id?: string;
}

/** The success answer of the events edge: `{"events_received": n, "messages": [], "fbtrace_id": "…"}`. */
export interface MetaSuccess {
  events_received: number;
  messages?: unknown[];
  fbtrace_id?: string;
}

/**
 * Throttling codes (Graph API error handling, rate limiting): 4 app limit, 17 user limit, 32 page
 * limit, 341 application limit reached, 613 calls per hour, 80000–80014 business use case limits
 * (80003: custom audience / ad account calls). Retryable, and the Integration pauses.
 */
export function isMetaThrottleCode(code: number | undefined): boolean {
  return code === 4 || code === 17 || code === 32 || code === 341 || code === 613 || (code !== undefined && code >= 80000 && code <= 80014);
}

/** Temporary errors (Graph API error handling): 1 unknown error, 2 service unavailable, 368 temporarily blocked. Retryable. */
export function isMetaTransientCode(code: number | undefined): boolean {
  return code === 1 || code === 2 || code === 368;
}

/** Subcode of code 100 that is about the object (pixel unknown or not allowed), not about one event: sending events one by one cannot help. */
const OBJECT_NOT_FOUND_SUBCODE = 33;

/** The error object of a Graph API answer body, or undefined when the body is not one. */
export function parseMetaError(body: string): MetaError | undefined {
  const parsed = parseJsonObject(body);
  if (!isJsonObject(parsed) || !isJsonObject(parsed.error)) return undefined;
  return parsed.error as MetaError;
}

/** A short description of a Meta error for logs and dead letters: `Meta error 100/2804003 (OAuthException): <title>: <message> [fbtrace_id …]`. */
export function describeMetaError(status: number, error: MetaError): string {
  const code = `${error.code ?? '?'}${error.error_subcode !== undefined ? `/${error.error_subcode}` : ''}`;
  const text = [error.error_user_title, error.error_user_msg ?? error.message].filter((s) => typeof s === 'string' && s !== '').join(': ');
  const trace = error.fbtrace_id ? ` [fbtrace_id ${error.fbtrace_id}]` : '';
  return `HTTP ${status}: Meta error ${code}${error.type ? ` (${error.type})` : ''}${text ? `: ${text}` : ''}${trace}`.slice(0, ERROR_BODY_LIMIT);
}

/**
 * Delay before calling again, in ms: `Retry-After` when Meta sends one, else the largest
 * `estimated_time_to_regain_access` (minutes) of the `X-Business-Use-Case-Usage` header (Graph API
 * rate limiting); undefined when neither says.
 */
export function metaRetryAfter(headers: VendorResponse['headers'], now: number): number | undefined {
  const retryAfter = parseRetryAfter(headers['retry-after'], now);
  if (retryAfter !== undefined) return retryAfter;
  const raw = headers['x-business-use-case-usage'];
  const usage = parseJsonObject(Array.isArray(raw) ? raw[0] : raw);
  if (!isJsonObject(usage)) return undefined;
  let minutes: number | undefined;
  for (const entries of Object.values(usage)) {
    if (!Array.isArray(entries)) continue;
    for (const e of entries) {
      const m = isJsonObject(e) ? e.estimated_time_to_regain_access : undefined;
      if (typeof m === 'number' && Number.isFinite(m) && m >= 0) minutes = Math.max(minutes ?? 0, m);
    }
  }
  return minutes === undefined ? undefined : minutes * 60_000;
}

/**
 * Classifies an answer of the events edge. Meta reports no per-event results: a request is taken
 * or refused as a whole.
 * - 2xx with `events_received` equal to the events sent: success. Another count (or no count) is
 *   retryable: a replay is harmless, since Meta deduplicates on event_name + event_id.
 * - `{"error": …}`: throttling codes ({@link isMetaThrottleCode}) are retryable and throttled, with
 *   the delay of {@link metaRetryAfter}; transient codes ({@link isMetaTransientCode}), `is_transient`
 *   and 5xx are retryable; anything else (190 token, 100 invalid parameter, 200–299 permission…) is
 *   permanent. Code 100 on a request of several events asks to `split`: Meta refuses the whole
 *   request for one bad event without naming it in a way we can act on, so each is sent alone.
 * - Any other answer: by status ({@link classifyByStatus}).
 */
export function classifyMetaResponse(response: VendorResponse, request: Pick<VendorRequest, 'items'>, now: number): RequestResult {
  const error = parseMetaError(response.body);
  if (error) {
    const description = describeMetaError(response.status, error);
    const retryAfterMs = metaRetryAfter(response.headers, now);
    if (isMetaThrottleCode(error.code) || response.status === 429) {
      return { outcome: 'retryable', throttled: true, error: description, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    if (isMetaTransientCode(error.code) || error.is_transient === true || (response.status >= 500 && response.status !== 501 && response.status !== 505)) {
      return { outcome: 'retryable', error: description, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    const split = error.code === 100 && error.error_subcode !== OBJECT_NOT_FOUND_SUBCODE && request.items.length > 1;
    return { outcome: 'permanent', error: description, ...(split ? { split: true } : {}) };
  }
  if (response.status >= 200 && response.status < 300) {
    const body = parseJsonObject(response.body);
    const received = isJsonObject(body) ? body.events_received : undefined;
    if (received === request.items.length) return { outcome: 'success' };
    const what = typeof received === 'number' ? `events_received ${received}` : 'no events_received';
    return { outcome: 'retryable', error: `HTTP ${response.status}: Meta answered ${what} for ${request.items.length} events sent: ${response.body.slice(0, 200)}`.slice(0, ERROR_BODY_LIMIT) };
  }
  return classifyByStatus(response, now);
}

// ---- requests ----------------------------------------------------------------------------------

/** `appsecret_proof`: hex HMAC-SHA256 of the access token keyed with the app secret (Securing Graph API requests). */
export function appSecretProof(accessToken: string, appSecret: string): string {
  return createHmac('sha256', appSecret).update(accessToken).digest('hex');
}

/** `{endpoint}/{apiVersion}/{pixelId}/events`, the endpoint without its trailing slashes. */
export function metaEventsUrl(settings: Pick<MetaCapiSettings, 'endpoint' | 'apiVersion' | 'pixelId'>): string {
  return `${settings.endpoint.replace(/\/+$/, '')}/${encodeURIComponent(settings.apiVersion)}/${encodeURIComponent(settings.pixelId)}/events`;
}

/**
 * Why Meta would refuse `payload` for its age at `now` (ms), or undefined: `event_time` (seconds)
 * older than 7 days, 62 for `physical_store`, less {@link META_AGE_MARGIN_SECONDS}. Payloads without
 * a numeric event_time are left to the output schema.
 */
export function metaStaleReason(payload: Record<string, unknown>, now: number): string | undefined {
  const time = payload.event_time;
  if (typeof time !== 'number' || !Number.isFinite(time)) return undefined;
  const store = payload.action_source === 'physical_store';
  const limit = store ? META_MAX_AGE_PHYSICAL_STORE_SECONDS : META_MAX_AGE_SECONDS;
  const age = now / 1000 - time;
  if (age <= limit - META_AGE_MARGIN_SECONDS) return undefined;
  const rule = `Meta takes events up to ${limit / 86400} days old${store ? ' for physical_store' : ''}`;
  if (age <= limit) return `event_time is less than ${META_AGE_MARGIN_SECONDS} s from the age limit; ${rule}`;
  return `event_time is ${Math.floor((age / 86400) * 10) / 10} days old; ${rule}`;
}

const TOKEN_PATTERN = /^[\x21-\x7e]{1,4096}$/;

/**
 * Meta Conversions API (`meta-capi`): each mapped payload is one server event. Requests carry up
 * to 1,000 events: `POST {endpoint}/{apiVersion}/{pixelId}/events?access_token=…[&appsecret_proof=…]`
 * (the request path of Meta's "Send Requests", using-the-api), JSON body `{"data": [...],
 * "test_event_code"?}`. Request URLs are never logged. Classified by {@link classifyMetaResponse};
 * stale events are refused by {@link metaStaleReason}.
 */
export const metaCapiDestination: DestinationDefinition<MetaCapiSettings> = {
  type: 'meta-capi',
  settingsField: 'metaCapi',
  title: 'Meta Conversions API',
  docsUrl: META_DOCS_URL,
  settingsSchema: MetaCapiSettings,
  credentials: {
    access_token: { required: true, description: 'Conversions API access token (Events Manager › Settings › Generate access token, or a system user token with ads_management).' },
    app_secret: { required: false, description: "The app's secret, when the app requires appsecret_proof (App settings › Require app secret): each request then carries the proof, never the secret." },
  },
  batch: { default: 100, max: META_MAX_EVENTS },
  outputSchema: () => META_EVENT_SCHEMA,
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(_settings, credentials, integration) {
    const token = credentials.access_token;
    if (token !== undefined && !TOKEN_PATTERN.test(token)) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the credentials key access_token must be one word of printable ASCII (at most 4096 characters)`);
    }
    const secret = credentials.app_secret;
    if (secret !== undefined && secret !== '' && !TOKEN_PATTERN.test(secret)) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the credentials key app_secret must be one word of printable ASCII`);
    }
  },
  refuse: (payload, ctx) => metaStaleReason(payload, ctx.now),
  buildRequests(payloads, ctx) {
    const token = ctx.credentials.access_token;
    if (!token) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${ctx.integration}: the credentials Secret has no access_token`);
    const secret = ctx.credentials.app_secret;
    const proof = secret ? appSecretProof(token, secret) : undefined;
    const url = `${metaEventsUrl(ctx.settings)}?${query({ access_token: token, appsecret_proof: proof })}`;
    let offset = 0;
    return chunk(payloads, META_MAX_EVENTS).map((data) => {
      const items = data.map((_, i) => offset + i);
      offset += data.length;
      const body: Record<string, unknown> = { data };
      if (ctx.settings.testEventCode) body.test_event_code = ctx.settings.testEventCode;
      return { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), items };
    });
  },
  classify: (response, request, ctx) => classifyMetaResponse(response, request, ctx.now),
};

