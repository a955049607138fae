/**
 * A loopback fake of the Meta Conversions API events edge (`POST /{version}/{pixel}/events`) for
 * tests, built on {@link startTestReceiver}. It enforces what Meta documents, answering with the
 * Graph API's error shape `{"error": {message, type, code, error_subcode, error_user_title,
 * error_user_msg, is_transient, fbtrace_id}}` and refusing the whole request for one bad event, as
 * Meta does:
 * - path, version and pixel, method POST; access token (body, query or Authorization header, as the
 *   Graph API takes it) and appsecret_proof when an app secret is set
 *   (https://developers.facebook.com/docs/graph-api/guides/secure-requests);
 * - `data`: 1 to 1,000 events (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#batch-requests);
 * - each event: required event_name, event_time (integer seconds, at most 7 days old, 62 for
 *   physical_store, by the injected clock), action_source (enum), user_data; client_user_agent and
 *   event_source_url for website events; only documented fields
 *   (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event);
 * - user_data: hashed fields as 64 lowercase hex (or lists of them), fbc/fbp as
 *   `fb.<0-2>.<13-digit ms>.<value>`, client_ip_address an IP address
 *   (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters,
 *   https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/fbp-and-fbc);
 * - custom_data: value (number) and currency (ISO 4217) on Purchase; contents with an id
 *   (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/custom-data).
 * Accepted events are recorded; an event with the same event_name and event_id as one accepted in
 * the last 48 hours counts as a duplicate instead (deduplication, server event parameters). Success
 * answers `{"events_received": n, "messages": [], "fbtrace_id"}`.
 */
import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';

/** The access token the fake takes unless told otherwise. Not a real token. */
export const FAKE_META_ACCESS_TOKEN = 'EAAFakeTokenForSwitchyardTests0123456789';
/** The pixel (dataset) id the fake takes unless told otherwise. */
export const FAKE_META_PIXEL_ID = '1234567890123456';
/** Graph API versions the fake serves unless told otherwise: those available in November 2026 (v21.0 to v26.0). */
export const FAKE_META_VERSIONS: readonly string[] = ['v21.0', 'v22.0', 'v23.0', 'v24.0', 'v25.0', 'v26.0'];

/** Options of {@link startMetaCapiFake}. */
export interface MetaCapiFakeOptions {
  accessToken?: string;
  pixelId?: string;
  /** When set, every request must carry `appsecret_proof` = hex HMAC-SHA256(appSecret, access token). */
  appSecret?: string;
  versions?: readonly string[];
  /** The fake's clock (ms since the epoch), for the age limits and the 48-hour deduplication window. Default Date.now. */
  now?: () => number;
}

/** One event the fake accepted. */
export interface AcceptedMetaEvent {
  event: Record<string, any>;
  pixelId: string;
  version: string;
  testEventCode?: string;
  /** The fake's clock when it was accepted (ms). */
  at: number;
}

/** The Graph API error object the fake answers with. */
export interface FakeMetaError {
  message: string;
  type: string;
  code: number;
  error_subcode?: number;
  is_transient?: boolean;
  error_user_title?: string;
  error_user_msg?: string;
  fbtrace_id?: string;
}

/** A running fake. */
export interface MetaCapiFake {
  /** Base URL to use as the `endpoint` setting. */
  readonly url: string;
  readonly receiver: TestReceiver;
  /** Events accepted, in order (duplicates excluded). */
  readonly accepted: AcceptedMetaEvent[];
  /** Events received again within 48 hours (same event_name and event_id), not recorded. */
  readonly duplicates: number;
  /** Every answer given, in order, with the request it answered. */
  readonly answers: { request: ReceivedRequest; status: number; body: any }[];
  /** The next `times` requests are refused with a throttling error (`code` 17 by default; 4, 80003…), with `X-Business-Use-Case-Usage` telling `minutes` when given. */
  throttle(times: number, options?: { code?: number; minutes?: number }): void;
  /** The next `times` requests fail with `status` (500 by default) and Graph error `code` 2 (or `code`), or with `body` as it is. */
  serverError(times: number, options?: { status?: number; code?: number; body?: string }): void;
  /** Requests holding one of these event_ids are refused as a whole (HTTP 400, code 100), as Meta refuses a request for one bad event. */
  rejectEvents(eventIds: Iterable<string>, message?: string): void;
  /** The next `times` successful answers report one event fewer than received. */
  miscount(times: number): void;
  /** Stops listening (connections refused) until {@link MetaCapiFake.up}. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Forgets accepted events, duplicates, answers, requests and pending faults. */
  reset(): void;
  close(): Promise<void>;
}

const SHA256 = /^[0-9a-f]{64}$/;
const FB_COOKIE = /^fb\.[0-2]\.[0-9]{13}\.[^.\s]+(\.[^.\s]+)?$/;
const CURRENCY = /^[A-Za-z]{3}$/;
const HTTP_URL = /^https?:\/\//;
const MAX_EVENTS = 1000;
const DAY = 86400;
const DEDUP_WINDOW_MS = 48 * 3600 * 1000;
const ACTION_SOURCES = new Set(['website', 'app', 'email', 'phone_call', 'chat', 'physical_store', 'system_generated', 'business_messaging', 'other']);
const HASHED = new Set(['em', 'ph', 'fn', 'ln', 'ge', 'db', 'ct', 'st', 'zp', 'country', 'external_id']);
const USER_DATA_KEYS = new Set([
  ...HASHED,
  'client_ip_address',
  'client_user_agent',
  'fbc',
  'fbp',
  'subscription_id',
  'fb_login_id',
  'lead_id',
  'anon_id',
  'madid',
  'page_id',
  'page_scoped_user_id',
  'ctwa_clid',
  'ig_account_id',
  'ig_sid',
]);
const EVENT_KEYS = new Set([
  'event_name',
  'event_time',
  'action_source',
  'event_id',
  'event_source_url',
  'referrer_url',
  'opt_out',
  'data_processing_options',
  'data_processing_options_country',
  'data_processing_options_state',
  'messaging_channel',
  'app_data',
  'original_event_data',
  'attribution_data',
  'user_data',
  'custom_data',
]);
const DELIVERY_CATEGORIES = new Set(['in_store', 'curbside', 'home_delivery']);

/** Graph API "Server-side API parameter error" (code 100, subcode 2804019), as Meta answers a bad parameter of an event. */
function parameterError(message: string): FakeMetaError {
  return { message: 'Invalid parameter', type: 'OAuthException', code: 100, error_subcode: 2804019, is_transient: false, error_user_title: 'Server-side API parameter error', error_user_msg: message };
}

const at = (i: number, ...keys: string[]) => `$['data'][${i}]${keys.map((k) => `['${k}']`).join('')}`;

/** Why Meta would refuse event `i` (the first problem), or undefined. `nowSec`: the fake's clock in seconds. */
function eventProblem(e: unknown, i: number, nowSec: number): FakeMetaError | undefined {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return parameterError(`The parameter ${at(i)} must be an object.`);
  const ev = e as Record<string, unknown>;
  for (const k of Object.keys(ev)) if (!EVENT_KEYS.has(k)) return parameterError(`The parameter ${at(i, k)} is not a valid parameter.`);
  for (const k of ['event_name', 'event_time', 'action_source', 'user_data']) if (ev[k] === undefined || ev[k] === null) return parameterError(`The parameter ${at(i, k)} is required.`);
  if (typeof ev.event_name !== 'string' || ev.event_name === '' || ev.event_name.length > 50) return parameterError(`The parameter ${at(i, 'event_name')} must be a non-empty string of at most 50 characters.`);
  if (typeof ev.event_time !== 'number' || !Number.isInteger(ev.event_time) || ev.event_time < 0) return parameterError(`The parameter ${at(i, 'event_time')} must be a Unix timestamp in seconds.`);
  if (typeof ev.action_source !== 'string' || !ACTION_SOURCES.has(ev.action_source)) return parameterError(`The parameter ${at(i, 'action_source')} must be one of ${[...ACTION_SOURCES].join(', ')}.`);
  const maxAge = ev.action_source === 'physical_store' ? 62 * DAY : 7 * DAY;
  if (nowSec - ev.event_time > maxAge) {
    return {
      message: 'Invalid parameter',
      type: 'OAuthException',
      code: 100,
      error_subcode: 2804003,
      is_transient: false,
      error_user_title: 'Event Timestamp Too Old',
      error_user_msg: `The timestamp for this event is too far in the past. Events need to be sent from your server within ${maxAge / DAY} days of when they occurred. Enter a timestamp that has occurred within the last ${maxAge / DAY} days.`,
    };
  }
  if (ev.event_id !== undefined && (typeof ev.event_id !== 'string' || ev.event_id === '')) return parameterError(`The parameter ${at(i, 'event_id')} must be a non-empty string.`);
  for (const k of ['event_source_url', 'referrer_url']) {
    if (ev[k] !== undefined && (typeof ev[k] !== 'string' || !HTTP_URL.test(ev[k] as string))) return parameterError(`The parameter ${at(i, k)} must begin with http:// or https://.`);
  }
  if (ev.opt_out !== undefined && typeof ev.opt_out !== 'boolean') return parameterError(`The parameter ${at(i, 'opt_out')} must be a boolean.`);
  const ud = ev.user_data;
  if (typeof ud !== 'object' || ud === null || Array.isArray(ud) || Object.keys(ud).length === 0) return parameterError(`The parameter ${at(i, 'user_data')} must be an object with at least one customer information parameter.`);
  const user = ud as Record<string, unknown>;
  for (const [k, v] of Object.entries(user)) {
    if (!USER_DATA_KEYS.has(k)) return parameterError(`The parameter ${at(i, 'user_data', k)} is not a valid parameter.`);
    if (HASHED.has(k)) {
      const values = Array.isArray(v) ? v : [v];
      if (values.length === 0 || !values.every((x) => typeof x === 'string' && SHA256.test(x))) return parameterError(`The parameter ${at(i, 'user_data', k)} must be hashed with SHA-256 (64 lowercase hexadecimal characters).`);
    }
  }
  if (user.client_ip_address !== undefined && (typeof user.client_ip_address !== 'string' || isIP(user.client_ip_address) === 0)) return parameterError(`The parameter ${at(i, 'user_data', 'client_ip_address')} must be a valid IPv4 or IPv6 address.`);
  if (user.client_user_agent !== undefined && (typeof user.client_user_agent !== 'string' || user.client_user_agent === '')) return parameterError(`The parameter ${at(i, 'user_data', 'client_user_agent')} must be a non-empty string.`);
  for (const k of ['fbc', 'fbp']) {
    if (user[k] !== undefined && (typeof user[k] !== 'string' || !FB_COOKIE.test(user[k] as string))) return parameterError(`The parameter ${at(i, 'user_data', k)} is malformed: expected fb.1.<creation time in ms>.<value>.`);
  }
  if (ev.action_source === 'website') {
    if (user.client_user_agent === undefined) return parameterError(`The parameter ${at(i, 'user_data', 'client_user_agent')} is required for website events.`);
    if (ev.event_source_url === undefined) return parameterError(`The parameter ${at(i, 'event_source_url')} is required for website events.`);
  }
  if (ev.action_source === 'app' && (typeof ev.app_data !== 'object' || ev.app_data === null)) return parameterError(`The parameter ${at(i, 'app_data')} is required for app events.`);
  const cd = ev.custom_data;
  if (cd !== undefined) {
    if (typeof cd !== 'object' || cd === null || Array.isArray(cd)) return parameterError(`The parameter ${at(i, 'custom_data')} must be an object.`);
    const custom = cd as Record<string, unknown>;
    if (custom.value !== undefined && (typeof custom.value !== 'number' || !Number.isFinite(custom.value))) return parameterError(`The parameter ${at(i, 'custom_data', 'value')} must be a number.`);
    if (custom.currency !== undefined && (typeof custom.currency !== 'string' || !CURRENCY.test(custom.currency))) return parameterError(`The parameter ${at(i, 'custom_data', 'currency')} must be an ISO 4217 currency code.`);
    if (custom.content_type !== undefined && custom.content_type !== 'product' && custom.content_type !== 'product_group') return parameterError(`The parameter ${at(i, 'custom_data', 'content_type')} must be product or product_group.`);
    if (custom.content_ids !== undefined && (!Array.isArray(custom.content_ids) || !custom.content_ids.every((x) => typeof x === 'string' && x !== ''))) return parameterError(`The parameter ${at(i, 'custom_data', 'content_ids')} must be a list of strings.`);
    if (custom.num_items !== undefined && !(typeof custom.num_items === 'number' && Number.isInteger(custom.num_items) && custom.num_items >= 0)) return parameterError(`The parameter ${at(i, 'custom_data', 'num_items')} must be an integer.`);
    if (custom.contents !== undefined) {
      if (!Array.isArray(custom.contents)) return parameterError(`The parameter ${at(i, 'custom_data', 'contents')} must be a list.`);
      for (const [n, c] of custom.contents.entries()) {
        const where = `${at(i, 'custom_data', 'contents')}[${n}]`;
        if (typeof c !== 'object' || c === null || typeof c.id !== 'string' || c.id === '') return parameterError(`The parameter ${where}['id'] is required.`);
        if (c.quantity !== undefined && !(Number.isInteger(c.quantity) && c.quantity >= 0)) return parameterError(`The parameter ${where}['quantity'] must be an integer.`);
        if (c.item_price !== undefined && typeof c.item_price !== 'number') return parameterError(`The parameter ${where}['item_price'] must be a number.`);
        if (c.delivery_category !== undefined && !DELIVERY_CATEGORIES.has(c.delivery_category)) return parameterError(`The parameter ${where}['delivery_category'] is invalid.`);
      }
    }
  }
  if (ev.event_name === 'Purchase') {
    const custom = (cd ?? {}) as Record<string, unknown>;
    if (custom.value === undefined) return parameterError(`The parameter ${at(i, 'custom_data', 'value')} is required for Purchase events.`);
    if (custom.currency === undefined) return parameterError(`The parameter ${at(i, 'custom_data', 'currency')} is required for Purchase events.`);
  }
  return undefined;
}

/** Request parameters as the Graph API reads them: the query string, then the body (JSON, or form fields whose values may be JSON text). */
function paramsOf(req: ReceivedRequest): { params: Record<string, unknown>; tokenFrom?: 'query' | 'body' | 'header' } {
  const params: Record<string, unknown> = {};
  const query = new URL(req.url, 'http://fake').searchParams;
  let tokenFrom: 'query' | 'body' | 'header' | undefined;
  for (const [k, v] of query) params[k] = v;
  if (query.has('access_token')) tokenFrom = 'query';
  const type = String(req.headers['content-type'] ?? '');
  let body: Record<string, unknown> = {};
  if (type.startsWith('application/json')) {
    if (typeof req.body === 'object' && req.body !== null && !Array.isArray(req.body)) body = req.body as Record<string, unknown>;
  } else if (type.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(req.text)) {
      try {
        body[k] = k === 'data' ? JSON.parse(v) : v;
      } catch {
        body[k] = v;
      }
    }
  }
  if (body.access_token !== undefined) tokenFrom = 'body';
  Object.assign(params, body);
  const auth = /^(?:Bearer|OAuth) (\S+)$/i.exec(String(req.headers.authorization ?? ''));
  if (params.access_token === undefined && auth) {
    params.access_token = auth[1];
    tokenFrom = 'header';
  }
  return tokenFrom ? { params, tokenFrom } : { params };
}

const THROTTLE_MESSAGES: Record<number, string> = {
  4: '(#4) Application request limit reached',
  17: '(#17) User request limit reached',
  32: '(#32) Page request limit reached',
  613: '(#613) Calls to this api have exceeded the rate limit.',
  80003: '(#80003) There have been too many calls to this ad-account. Wait a bit and try again.',
};

/**
 * Starts the fake on a free loopback port. Answers are decided in Meta's order: path and version,
 * method, token and appsecret_proof, pixel, injected faults, `data`, then each event.
 */
export async function startMetaCapiFake(options: MetaCapiFakeOptions = {}): Promise<MetaCapiFake> {
  const token = options.accessToken ?? FAKE_META_ACCESS_TOKEN;
  const pixel = options.pixelId ?? FAKE_META_PIXEL_ID;
  const versions = new Set(options.versions ?? FAKE_META_VERSIONS);
  const latest = [...versions].at(-1) ?? 'v26.0';
  const now = options.now ?? (() => Date.now());
  const accepted: AcceptedMetaEvent[] = [];
  const answers: MetaCapiFake['answers'] = [];
  const seen = new Map<string, number>();
  let duplicates = 0;
  let traces = 0;
  let throttles: { times: number; code: number; minutes?: number } | undefined;
  let failures: { times: number; status: number; code: number; body?: string } | undefined;
  let miscounts = 0;
  let rejected = new Map<string, string>();

  const trace = () => `AFakeTrace${String(++traces).padStart(6, '0')}`;
  const fail = (status: number, error: FakeMetaError, headers: Record<string, string> = {}): Reply & { json: unknown } => {
    const json = { error: { ...error, fbtrace_id: trace() } };
    return { status, headers, body: JSON.stringify(json), json };
  };

  const handle = (req: ReceivedRequest): Reply & { json: unknown } => {
    const path = new URL(req.url, 'http://fake').pathname;
    const m = /^\/([^/]+)\/([^/]+)\/events\/?$/.exec(path);
    if (!m) return fail(400, { message: `Unknown path components: ${path}`, type: 'OAuthException', code: 2500 });
    const [, version, pixelId] = m as unknown as [string, string, string];
    if (!/^v[0-9]+\.[0-9]+$/.test(version) || !versions.has(version)) {
      return fail(400, { message: `(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: ${latest}.`, type: 'OAuthException', code: 2635 });
    }
    if (req.method !== 'POST') {
      return fail(400, {
        message: `Unsupported ${req.method.toLowerCase()} request. Object with ID '${pixelId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
        type: 'GraphMethodException',
        code: 100,
        error_subcode: 33,
      });
    }
    const { params } = paramsOf(req);
    const oauth = { 'www-authenticate': 'OAuth "Facebook Platform" "invalid_token"' };
    if (params.access_token === undefined || params.access_token === '') return fail(400, { message: 'An access token is required to request this resource.', type: 'OAuthException', code: 104 }, oauth);
    if (params.access_token !== token) return fail(400, { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190 }, oauth);
    if (options.appSecret !== undefined) {
      if (params.appsecret_proof === undefined) return fail(400, { message: 'API calls from the server require an appsecret_proof argument', type: 'GraphMethodException', code: 100 });
      const expected = createHmac('sha256', options.appSecret).update(token).digest('hex');
      if (params.appsecret_proof !== expected) return fail(400, { message: 'Invalid appsecret_proof provided in the API argument', type: 'GraphMethodException', code: 100 });
    }
    if (pixelId !== pixel) {
      return fail(400, {
        message: `Unsupported post request. Object with ID '${pixelId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
        type: 'GraphMethodException',
        code: 100,
        error_subcode: 33,
      });
    }
    if (throttles && throttles.times > 0) {
      throttles.times--;
      const headers: Record<string, string> = {};
      if (throttles.minutes !== undefined) {
        headers['x-business-use-case-usage'] = JSON.stringify({ [pixel]: [{ type: 'ads_management', call_count: 100, total_cputime: 30, total_time: 40, estimated_time_to_regain_access: throttles.minutes }] });
      }
      return fail(400, { message: THROTTLE_MESSAGES[throttles.code] ?? `(#${throttles.code}) Rate limit reached`, type: 'OAuthException', code: throttles.code, is_transient: true }, headers);
    }
    if (failures && failures.times > 0) {
      failures.times--;
      if (failures.body !== undefined) return { status: failures.status, headers: { 'content-type': 'text/html' }, body: failures.body, json: undefined };
      const message = failures.code === 1 ? 'An unknown error occurred' : 'An unexpected error has occurred. Please retry your request later.';
      return fail(failures.status, { message, type: 'OAuthException', code: failures.code, is_transient: true });
    }
    const data = params.data;
    if (data === undefined) return fail(400, { message: '(#100) The parameter data is required', type: 'OAuthException', code: 100 });
    if (!Array.isArray(data) || data.length === 0) return fail(400, parameterError(`The parameter data must be a non-empty list of events.`));
    if (data.length > MAX_EVENTS) return fail(400, parameterError(`The parameter data holds ${data.length} events; at most ${MAX_EVENTS} events are allowed per request.`));
    if (params.test_event_code !== undefined && (typeof params.test_event_code !== 'string' || params.test_event_code === '')) return fail(400, parameterError('The parameter test_event_code must be a non-empty string.'));
    const nowMs = now();
    for (const [i, e] of data.entries()) {
      const problem = eventProblem(e, i, Math.floor(nowMs / 1000));
      if (problem) return fail(400, problem);
      const id = (e as Record<string, unknown>).event_id;
      if (typeof id === 'string' && rejected.has(id)) return fail(400, parameterError(`${at(i)}: ${rejected.get(id)}`));
    }
    for (const e of data as Record<string, any>[]) {
      const key = typeof e.event_id === 'string' ? `${e.event_name}\u0000${e.event_id}` : undefined;
      const first = key === undefined ? undefined : seen.get(key);
      if (first !== undefined && nowMs - first <= DEDUP_WINDOW_MS) {
        duplicates++;
        continue;
      }
      if (key !== undefined) seen.set(key, nowMs);
      accepted.push({ event: e, pixelId, version, at: nowMs, ...(typeof params.test_event_code === 'string' ? { testEventCode: params.test_event_code } : {}) });
    }
    let received = data.length;
    if (miscounts > 0) {
      miscounts--;
      received--;
    }
    const json = { events_received: received, messages: [], fbtrace_id: trace() };
    return { status: 200, body: JSON.stringify(json), json };
  };

  const receiver = await startTestReceiver({
    respond: (req) => {
      const reply = handle(req);
      answers.push({ request: req, status: reply.status ?? 200, body: reply.json });
      return { status: reply.status, headers: reply.headers, body: reply.body };
    },
  });

  return {
    get url() {
      return receiver.url;
    },
    receiver,
    accepted,
    get duplicates() {
      return duplicates;
    },
    answers,
    throttle(times, o = {}) {
      throttles = { times, code: o.code ?? 17, ...(o.minutes !== undefined ? { minutes: o.minutes } : {}) };
    },
    serverError(times, o = {}) {
      failures = { times, status: o.status ?? 500, code: o.code ?? 2, ...(o.body !== undefined ? { body: o.body } : {}) };
    },
    rejectEvents(eventIds, message = 'This event was refused (fault injected by the test).') {
      rejected = new Map([...eventIds].map((id) => [id, message]));
    },
    miscount(times) {
      miscounts = times;
    },
    down: () => receiver.close(),
    up: () => receiver.restart(),
    reset() {
      accepted.length = 0;
      answers.length = 0;
      receiver.requests.length = 0;
      seen.clear();
      duplicates = 0;
      throttles = undefined;
      failures = undefined;
      miscounts = 0;
      rejected = new Map();
    },
    close: () => receiver.close(),
  };
}
