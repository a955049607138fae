import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { classifyByStatus, ERROR_BODY_LIMIT, parseRetryAfter, parseJsonObject } from '../http.js';
import type { DeliveryOutcome, DestinationDefinition, ItemResult, RequestContext, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { AmplitudeSettings } from './settings.js';

export { AmplitudeSettings } from './settings.js';

/** The HTTP V2 API reference this adapter follows. */
export const AMPLITUDE_DOCS_URL = 'https://amplitude.com/docs/apis/analytics/http-v2';

/** Path of the HTTP V2 endpoint under the base URL (https://amplitude.com/docs/apis/analytics/http-v2). */
export const AMPLITUDE_PATH = '/2/httpapi';

/**
 * Most events per request: "fewer than 2000 events per request" / "Up to 2,000 events" (HTTP V2
 * upload limit; more gets 413). Starter plans are asked to send at most 10 per request: lower
 * `delivery.batchSize` there.
 */
export const AMPLITUDE_MAX_EVENTS = 2000;

/**
 * Most bytes of one request body: "Keep request sizes under 1 MB" (413 "request size exceeds 1MB").
 * Read as 10^6 bytes, the stricter reading of "1 MB".
 */
export const AMPLITUDE_MAX_BODY_BYTES = 1_000_000;

/** Length limit of every string value: user_id, event_type, property values… ("String character limit", HTTP V2 docs). */
export const AMPLITUDE_MAX_STRING = 1024;

/** Default minimum length of user_id and device_id (`options.min_id_length` overrides it). */
export const AMPLITUDE_DEFAULT_MIN_ID_LENGTH = 5;

/**
 * How long Amplitude asks a throttled sender to pause when it gives no Retry-After: "pause sending
 * events for that user or device for a period of 30 seconds before retrying" (429, HTTP V2 docs).
 */
export const AMPLITUDE_THROTTLE_PAUSE_MS = 30_000;

/** Event types Amplitude reserves for itself (`event_type`, HTTP V2 docs): refused in a payload. */
export const AMPLITUDE_RESERVED_EVENT_TYPES = [
  '[Amplitude] Start Session',
  '[Amplitude] End Session',
  '[Amplitude] Revenue',
  '[Amplitude] Revenue (Verified)',
  '[Amplitude] Revenue (Unverified)',
  '[Amplitude] Merged User',
] as const;

/** user_id / device_id values Amplitude refuses with a 400 ("Invalid IDs that result in a 400 error", HTTP V2 docs). */
export const AMPLITUDE_INVALID_IDS = ['anonymous', 'nil', 'none', 'null', 'n/a', 'na', 'undefined', 'unknown', '""', '00000000-0000-0000-0000-000000000000', '{}', 'lmy47d', '0', '-1'] as const;

const str = (extra: object = {}) => ({ type: 'string', maxLength: AMPLITUDE_MAX_STRING, ...extra });

/**
 * JSON Schema (draft 2020-12) of one mapped payload: one Amplitude event as the HTTP V2 API takes
 * it ("Event array keys", https://amplitude.com/docs/apis/analytics/http-v2). Static rules
 * enforced: `event_type` required, not empty and not reserved; `user_id` or `device_id` required,
 * each at least `minIdLength` (default 5) characters and not one of the ids Amplitude refuses;
 * strings at most 1024 characters; `time` and `session_id` integers in milliseconds; revenue fields
 * numeric, and `productId`/`revenueType` only with `price` or `revenue`; `ip` an IPv4/IPv6 address or
 * `$remote`; no other top-level keys (a misspelt field would be dropped by Amplitude silently).
 * `user_agent` (sent by Amplitude's Browser SDK 2 and parsed by Amplitude) and `partner_id` are
 * allowed beside the documented keys.
 */
export function amplitudeOutputSchema(settings: AmplitudeSettings | undefined): object {
  const minId = settings?.minIdLength ?? AMPLITUDE_DEFAULT_MIN_ID_LENGTH;
  const id = str({ minLength: minId, not: { enum: [...AMPLITUDE_INVALID_IDS] } });
  const withRevenue = { anyOf: [{ required: ['price'] }, { required: ['revenue'] }] };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Amplitude HTTP V2 event',
    type: 'object',
    required: ['event_type'],
    anyOf: [{ required: ['user_id'] }, { required: ['device_id'] }],
    properties: {
      user_id: id,
      device_id: id,
      event_type: str({ minLength: 1, not: { enum: [...AMPLITUDE_RESERVED_EVENT_TYPES] } }),
      time: { type: 'integer', minimum: 0 },
      event_properties: { type: 'object' },
      user_properties: { type: 'object' },
      groups: { type: 'object' },
      group_properties: { type: 'object' },
      $skip_user_properties_sync: { type: 'boolean' },
      app_version: str(),
      platform: str(),
      os_name: str(),
      os_version: str(),
      device_brand: str(),
      device_manufacturer: str(),
      device_model: str(),
      carrier: str(),
      country: str(),
      region: str(),
      city: str(),
      dma: str(),
      language: str(),
      price: { type: 'number' },
      quantity: { type: 'integer' },
      revenue: { type: 'number' },
      productId: str(),
      revenueType: str(),
      location_lat: { type: 'number', minimum: -90, maximum: 90 },
      location_lng: { type: 'number', minimum: -180, maximum: 180 },
      ip: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }, { const: '$remote' }] },
      idfa: str(),
      idfv: str(),
      adid: str(),
      android_id: str(),
      android_app_set_id: str(),
      event_id: { type: 'integer' },
      session_id: { type: 'integer', minimum: -1 },
      insert_id: str({ minLength: 1 }),
      plan: { type: 'object', properties: { branch: str(), source: str(), version: str() }, additionalProperties: false },
      user_agent: str(),
      partner_id: str(),
    },
    additionalProperties: false,
    dependentSchemas: { productId: withRevenue, revenueType: withRevenue },
  };
}

/** The URL of the HTTP V2 endpoint for these settings (`<endpoint>/2/httpapi`, a trailing slash of the endpoint ignored). */
export function amplitudeUrl(settings: AmplitudeSettings): string {
  return `${settings.endpoint.replace(/\/+$/, '')}${AMPLITUDE_PATH}`;
}

/**
 * Packs events into requests: in order, at most {@link AMPLITUDE_MAX_EVENTS} and at most
 * {@link AMPLITUDE_MAX_BODY_BYTES} of body each (an event too big for any request goes alone, and
 * Amplitude's 413 then fails it). Body: `{"api_key", "events", "options"?}` with
 * `options.min_id_length` when `minIdLength` is set. Header `content-type: application/json`
 * (required by the HTTP V2 API).
 * @throws SwitchyardError INVALID_RESOURCE when the credentials have no api_key.
 */
export function buildAmplitudeRequests(payloads: readonly Record<string, unknown>[], ctx: RequestContext<AmplitudeSettings>): VendorRequest[] {
  const apiKey = ctx.credentials.api_key;
  if (!apiKey) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${ctx.integration}: the credentials Secret has no api_key`);
  const url = amplitudeUrl(ctx.settings);
  const head = `{"api_key":${JSON.stringify(apiKey)},"events":[`;
  const tail = `]${ctx.settings.minIdLength !== undefined ? `,"options":${JSON.stringify({ min_id_length: ctx.settings.minIdLength })}` : ''}}`;
  const overhead = Buffer.byteLength(head) + Buffer.byteLength(tail);
  const requests: VendorRequest[] = [];
  let events: string[] = [];
  let items: number[] = [];
  let bytes = overhead;
  const flush = () => {
    if (events.length === 0) return;
    requests.push({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: `${head}${events.join(',')}${tail}`, items });
    events = [];
    items = [];
    bytes = overhead;
  };
  payloads.forEach((payload, i) => {
    const json = JSON.stringify(payload);
    const size = Buffer.byteLength(json);
    // +1: the comma before every event but the first
    if (events.length >= AMPLITUDE_MAX_EVENTS || (events.length > 0 && bytes + 1 + size > AMPLITUDE_MAX_BODY_BYTES)) flush();
    bytes += size + (events.length > 0 ? 1 : 0);
    events.push(json);
    items.push(i);
  });
  flush();
  return requests;
}

/** The parts of an HTTP V2 error body this adapter reads (400, 413, 429; https://amplitude.com/docs/apis/analytics/http-v2#response). */
interface AmplitudeErrorBody {
  code?: number;
  error?: string;
  missing_field?: string;
  events_with_invalid_fields?: Record<string, number[]>;
  events_with_missing_fields?: Record<string, number[]>;
  events_with_invalid_id_lengths?: Record<string, number[]>;
  eps_threshold?: number;
  silenced_devices?: string[];
  silenced_events?: number[];
  throttled_devices?: Record<string, number>;
  throttled_users?: Record<string, number>;
  throttled_events?: number[];
  exceeded_daily_quota_devices?: Record<string, number>;
  exceeded_daily_quota_users?: Record<string, number>;
}

function parseBody(text: string): AmplitudeErrorBody {
  return (parseJsonObject(text) ?? {}) as AmplitudeErrorBody;
}

/** The events of a request built by {@link buildAmplitudeRequests} (for silenced devices and daily quotas, which Amplitude reports by id). */
function requestEvents(request: VendorRequest): { user_id?: unknown; device_id?: unknown }[] {
  try {
    const events = (JSON.parse(request.body) as { events?: unknown }).events;
    return Array.isArray(events) ? (events as { user_id?: unknown; device_id?: unknown }[]) : [];
  } catch {
    return [];
  }
}

const isIndex = (n: unknown, size: number): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) < size;

const worst = (outcomes: Iterable<DeliveryOutcome>): DeliveryOutcome => {
  let w: DeliveryOutcome = 'success';
  for (const o of outcomes) if (o === 'retryable' || (o === 'permanent' && w === 'success')) w = o;
  return w;
};

/**
 * Classifies an HTTP V2 answer (https://amplitude.com/docs/apis/analytics/http-v2#response; item
 * handling as Amplitude's own SDKs do it, Amplitude-TypeScript analytics-core `Destination`):
 * - 200: success.
 * - 400 naming a request-level `missing_field` or `Invalid API key`: permanent (configuration).
 * - 400 naming events (`events_with_invalid_fields`, `events_with_missing_fields`,
 *   `events_with_invalid_id_lengths`: field → indexes; `silenced_events`, `silenced_devices`):
 *   those events permanent with the field named. Amplitude refused the whole request, so the
 *   others were not ingested: they are retryable (never dead-lettered for a neighbour's fault).
 *   Amplitude names only the first event per field, so a second bad event is named on the next
 *   attempt. `throttled_events` in a 400 are retryable and throttle.
 * - 400 naming nothing (`Invalid event JSON`…), 403 (WAF) and 413 (too large): `split` (each event
 *   sent alone once), permanent for a single event.
 * - 429: retryable and throttled, `retryAfterMs` from Retry-After else 30 s (Amplitude's pause);
 *   events of users/devices over their daily quota (`exceeded_daily_quota_users/devices`) are
 *   permanent (Amplitude's SDKs drop them too: a retry within the schedule cannot help).
 * - other statuses by {@link classifyByStatus} (5xx retryable; insert_id deduplicates a resend).
 * Error texts never carry the API key (Amplitude echoes it in `Invalid API key: …`).
 */
export function classifyAmplitude(response: VendorResponse, request: VendorRequest, ctx: RequestContext<AmplitudeSettings>): RequestResult {
  const apiKey = ctx.credentials.api_key;
  const redact = (s: string): string => (apiKey ? s.replaceAll(apiKey, '***') : s).slice(0, ERROR_BODY_LIMIT);
  const size = request.items.length;
  const { status } = response;
  if (status >= 200 && status < 300) return { outcome: 'success' };
  const body = parseBody(response.body);
  const vendorError = typeof body.error === 'string' && body.error ? body.error : undefined;
  const headline = `HTTP ${status}${vendorError ? `: ${vendorError}` : response.body ? `: ${response.body}` : ''}`;

  if (status === 400) {
    if (typeof body.missing_field === 'string' && body.missing_field) return { outcome: 'permanent', error: redact(`${headline} (missing_field ${body.missing_field})`) };
    if (vendorError?.startsWith('Invalid API key')) return { outcome: 'permanent', error: redact(headline) };
    const items = new Map<number, ItemResult>();
    const reasons = new Map<number, string[]>();
    const name = (k: unknown, reason: string) => {
      if (!isIndex(k, size)) return;
      reasons.set(k, [...(reasons.get(k) ?? []), reason]);
    };
    const fields = (map: Record<string, number[]> | undefined, what: string) => {
      if (!map || typeof map !== 'object') return;
      for (const [field, indexes] of Object.entries(map)) if (Array.isArray(indexes)) for (const k of indexes) name(k, `${what} ${field}`);
    };
    fields(body.events_with_invalid_fields, 'invalid');
    fields(body.events_with_missing_fields, 'missing');
    fields(body.events_with_invalid_id_lengths, 'id too short:');
    if (Array.isArray(body.silenced_events)) for (const k of body.silenced_events) name(k, 'device silenced');
    if (Array.isArray(body.silenced_devices) && body.silenced_devices.length > 0) {
      const silenced = new Set(body.silenced_devices);
      requestEvents(request).forEach((e, k) => {
        if (typeof e.device_id === 'string' && silenced.has(e.device_id) && !reasons.get(k)?.includes('device silenced')) name(k, 'device silenced');
      });
    }
    for (const [k, why] of reasons) items.set(k, { outcome: 'permanent', error: redact(`HTTP 400: ${vendorError ?? 'invalid event'} (${why.join(', ')})`) });
    const throttled = Array.isArray(body.throttled_events) ? body.throttled_events.filter((k) => isIndex(k, size) && !items.has(k)) : [];
    if (items.size === 0 && throttled.length === 0) {
      if (size > 1) return { outcome: 'permanent', split: true, error: redact(headline) };
      return { outcome: 'permanent', error: redact(headline) };
    }
    if (throttled.length > 0) {
      for (const k of throttled) items.set(k, { outcome: 'retryable', error: redact(`HTTP 400: ${vendorError ?? 'throttled'} (user or device throttled)`) });
    }
    const all = items.size === size;
    const result: RequestResult = {
      outcome: all ? worst([...items.values()].map((i) => i.outcome)) : 'retryable',
      items,
      error: redact(all ? headline : `not ingested: Amplitude refused the request for other events of it, so this one is retried (${headline})`),
    };
    if (throttled.length > 0) {
      result.throttled = true;
      result.retryAfterMs = parseRetryAfter(response.headers['retry-after'], ctx.now) ?? AMPLITUDE_THROTTLE_PAUSE_MS;
    }
    return result;
  }

  if (status === 413 || status === 403) {
    // 413: too big as a whole; 403: Amplitude's firewall refused something in it. One event may be the cause.
    if (size > 1) return { outcome: 'permanent', split: true, error: redact(headline) };
    return { outcome: 'permanent', error: redact(status === 413 ? `${headline} (one event is larger than Amplitude takes)` : headline) };
  }

  if (status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], ctx.now) ?? AMPLITUDE_THROTTLE_PAUSE_MS;
    const quotaUsers = new Set(Object.keys(body.exceeded_daily_quota_users ?? {}));
    const quotaDevices = new Set(Object.keys(body.exceeded_daily_quota_devices ?? {}));
    const items = new Map<number, ItemResult>();
    if (quotaUsers.size > 0 || quotaDevices.size > 0) {
      requestEvents(request).forEach((e, k) => {
        if (!isIndex(k, size)) return;
        if ((typeof e.user_id === 'string' && quotaUsers.has(e.user_id)) || (typeof e.device_id === 'string' && quotaDevices.has(e.device_id))) {
          items.set(k, { outcome: 'permanent', error: redact(`HTTP 429: ${vendorError ?? 'Too many requests'} (daily event quota of this user or device exceeded)`) });
        }
      });
    }
    const detail = [
      body.eps_threshold !== undefined ? `eps_threshold ${body.eps_threshold}` : undefined,
      Array.isArray(body.throttled_events) ? `throttled events ${body.throttled_events.length}` : undefined,
    ].filter(Boolean);
    const error = redact(`HTTP 429: ${vendorError ?? (response.body || 'Too many requests')}${detail.length ? ` (${detail.join(', ')})` : ''}`);
    if (items.size === size) return { outcome: 'permanent', items, error };
    const result: RequestResult = { outcome: 'retryable', throttled: true, retryAfterMs, error };
    if (items.size > 0) result.items = items;
    return result;
  }

  const result = classifyByStatus(response, ctx.now);
  if (result.error) result.error = redact(headline);
  return result;
}

/**
 * Refuses an event older than `maxEventAgeHours` (default 7 days, the insert_id deduplication
 * window of the HTTP V2 API): sent later, a replay of it could be counted twice.
 * @returns the reason, or undefined to send it (no `time`, or the setting is 0).
 */
export function refuseAmplitude(payload: Record<string, unknown>, ctx: RequestContext<AmplitudeSettings>): string | undefined {
  const hours = ctx.settings.maxEventAgeHours;
  const time = payload.time;
  if (!hours || typeof time !== 'number' || !Number.isFinite(time)) return undefined;
  const ageMs = ctx.now - time;
  if (ageMs <= hours * 3_600_000) return undefined;
  const age = ageMs >= 48 * 3_600_000 ? `${Math.floor(ageMs / 86_400_000)} days` : `${Math.floor(ageMs / 3_600_000)} hours`;
  return `time is ${age} old; this Integration sends Amplitude events up to ${hours} hours old (amplitude.maxEventAgeHours; Amplitude deduplicates insert_id for 7 days)`;
}

/**
 * Amplitude (HTTP V2 API, https://amplitude.com/docs/apis/analytics/http-v2): each mapped payload
 * is one Amplitude event; `POST <endpoint>/2/httpapi` with `{api_key, events, options?}`, the
 * `api_key` from the credentials Secret; up to 2,000 events and 1 MB per request. Default batch
 * 100 events (Growth/Enterprise plans take 2,000; Starter plans are asked for at most 10).
 */
export const amplitudeDestination: DestinationDefinition<AmplitudeSettings> = {
  type: 'amplitude',
  settingsField: 'amplitude',
  title: 'Amplitude',
  docsUrl: AMPLITUDE_DOCS_URL,
  settingsSchema: AmplitudeSettings,
  credentials: {
    api_key: { required: true, description: 'API key of the Amplitude project (Settings → Projects → General), sent in the body of each request as api_key.' },
  },
  batch: { default: 100, max: AMPLITUDE_MAX_EVENTS },
  outputSchema: amplitudeOutputSchema,
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(_settings, credentials, integration) {
    const key = credentials.api_key;
    // It travels inside a JSON string: whitespace or control characters mean a mangled Secret.
    if (key !== undefined && !/^[\x21-\x7e]+$/.test(key)) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the api_key of the credentials Secret holds spaces or characters an Amplitude API key never has`);
    }
  },
  refuse: refuseAmplitude,
  buildRequests: buildAmplitudeRequests,
  classify: classifyAmplitude,
};
