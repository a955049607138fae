import { isIP } from 'node:net';
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';
import { isJsonObject } from '../http.js';

/**
 * A loopback fake of the Pinterest API for Conversions v5, `POST /v5/ad_accounts/{id}/events`
 * (https://developers.pinterest.com/docs/api/v5/events-create), for tests. Its rules are written
 * out here from Pinterest's OpenAPI description and docs, independently of the destination's
 * output schema, so a request it accepts is one Pinterest would take:
 * - path `/v5/ad_accounts/{ad_account_id}/events`, the id digits only (≤ 18), the configured one
 *   (else 403 code 29); method POST; query `test` (true/false) only;
 * - `Authorization: Bearer <token>` (else 401 code 2 "Authentication failed.");
 * - JSON body `{"data": [1..1000 events]}`, nothing else (else 400 code 4196);
 * - per event (a failed event is reported in `events[i]` with `status: failed` and its
 *   `error_message`, and the answer is 422 "Not all events were successfully processed."):
 *   required `event_name`, `action_source`, `event_time`, `event_id`, `user_data`; standard event
 *   names; action_source app_android/app_ios/web/offline; event_time integer Unix seconds, not in
 *   the future and not older than 7 days (injected clock); user_data with `em`, `hashed_maids` or
 *   both `client_ip_address` and `client_user_agent`; hashed fields arrays of SHA-256 as 64
 *   lowercase hex; a valid IP; custom_data amounts as decimal strings, currency 3 upper-case
 *   letters, integer quantities and num_items; no unknown property anywhere.
 * Answers use Pinterest's shapes: ConversionApiResponse `{num_events_received,
 * num_events_processed, events: [{status, error_message, warning_message}]}`, Error `{code,
 * message}`, DetailedError `{code, message, details}`.
 */

/** Options of {@link startPinterestFake}. */
export interface PinterestFakeOptions {
  /** The ad account the token may write to. Default `549755885175`. */
  adAccountId?: string;
  /** The conversion access token it accepts. Default `test-token`. */
  accessToken?: string;
  /** The fake's clock, ms since the epoch (event_time windows). Default Date.now. */
  now?: () => number;
}

/** A running fake: the receiver (every request, accepted or not), what it recorded, and faults to inject. */
export interface PinterestFake {
  receiver: TestReceiver;
  /** Base URL to give as `endpoint`. */
  url: string;
  /** Events recorded (processed outside test mode), in arrival order. */
  accepted: Record<string, unknown>[];
  /** Events processed in test mode (`?test=true`): validated, not recorded. */
  testAccepted: Record<string, unknown>[];
  /** The next `times` requests get 429 `{code: 8}`, with `Retry-After: <seconds>` when given. */
  throttle(times: number, retryAfterSeconds?: number): void;
  /** The next `times` requests get `status` (default 503, code 4197 "ramped down"). */
  serverError(times: number, status?: number): void;
  /** Events whose event_id is listed fail (status failed, this error_message) even when valid. */
  failEvents(eventIds: readonly string[], message?: string): void;
  /** Partial failures are answered 422 without the per-event list (the `details` shape is undocumented). */
  opaquePartialFailures(on: boolean): void;
  /** Stops listening (connections are refused) / listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Clears recorded events, requests and faults. */
  reset(): void;
  close(): Promise<void>;
}

/** Standard event names (https://developers.pinterest.com/docs/conversions/event/, "Name in API"). */
const EVENT_NAMES = new Set([
  'add_payment_info', 'add_to_cart', 'add_to_wishlist', 'app_install', 'app_open', 'checkout', 'contact', 'custom', 'customize_product',
  'find_location', 'initiate_checkout', 'lead', 'page_visit', 'schedule', 'search', 'signup', 'start_trial', 'submit_application',
  'subscribe', 'view_category', 'view_content', 'watch_video',
]);
const ACTION_SOURCES = new Set(['app_android', 'app_ios', 'web', 'offline']);
const EVENT_KEYS = new Set([
  'event_name', 'action_source', 'event_time', 'event_id', 'event_source_url', 'opt_out', 'partner_name', 'user_data', 'custom_data',
  'app_id', 'app_name', 'app_version', 'device_brand', 'device_carrier', 'device_model', 'device_type', 'os_version', 'wifi', 'language',
]);
const HASHED_USER_KEYS = new Set(['em', 'hashed_maids', 'ph', 'ge', 'db', 'ln', 'fn', 'ct', 'st', 'zp', 'country', 'external_id']);
const PLAIN_USER_KEYS = new Set(['client_ip_address', 'client_user_agent', 'click_id', 'partner_id']);
const CUSTOM_KEYS = new Set([
  'currency', 'value', 'content_ids', 'content_name', 'content_category', 'content_brand', 'contents', 'num_items', 'order_id',
  'search_string', 'opt_out_type', 'np',
]);
const CONTENT_KEYS = new Set(['id', 'item_price', 'quantity', 'item_name', 'item_category', 'item_brand']);
const SHA256_HEX = /^[0-9a-f]{64}$/;
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;
const MAX_AGE_SECONDS = 7 * 24 * 3600;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({ status, headers, body: JSON.stringify(body) });
const error = (status: number, code: number, message: string): Reply => json(status, { code, message });

/** Why Pinterest would refuse this event, or undefined when it is valid. */
export function pinterestEventProblem(event: unknown, nowMs: number): string | undefined {
  if (!isJsonObject(event)) return 'event must be an object';
  for (const k of Object.keys(event)) if (!EVENT_KEYS.has(k)) return `unknown field ${k}`;
  for (const k of ['event_name', 'action_source', 'event_time', 'event_id', 'user_data']) if (event[k] === undefined || event[k] === null) return `missing required field ${k}`;
  if (typeof event.event_name !== 'string' || !EVENT_NAMES.has(event.event_name)) return `event_name ${JSON.stringify(event.event_name)} is not a supported event`;
  if (typeof event.action_source !== 'string' || !ACTION_SOURCES.has(event.action_source)) return `action_source ${JSON.stringify(event.action_source)} is not one of app_android, app_ios, web, offline`;
  const t = event.event_time;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) return 'event_time must be a Unix timestamp in seconds';
  const nowSec = Math.floor(nowMs / 1000);
  if (t > nowSec) return 'event_time cannot be in the future';
  if (nowSec - t > MAX_AGE_SECONDS) return 'event_time is older than 7 days';
  if (typeof event.event_id !== 'string' || event.event_id === '') return 'event_id must be a non-empty string';
  for (const k of ['event_source_url', 'partner_name', 'app_id', 'app_name', 'app_version', 'device_brand', 'device_carrier', 'device_model', 'device_type', 'os_version', 'language']) {
    if (event[k] !== undefined && event[k] !== null && typeof event[k] !== 'string') return `${k} must be a string`;
  }
  for (const k of ['opt_out', 'wifi']) if (event[k] !== undefined && typeof event[k] !== 'boolean') return `${k} must be a boolean`;
  const user = event.user_data;
  if (!isJsonObject(user)) return 'user_data must be an object';
  for (const [k, v] of Object.entries(user)) {
    if (HASHED_USER_KEYS.has(k)) {
      if (!Array.isArray(v) || v.length === 0) return `user_data.${k} must be a non-empty array of SHA-256 hashes`;
      if (!v.every((h) => typeof h === 'string' && SHA256_HEX.test(h))) return `user_data.${k} must hold SHA-256 hashes (64 lowercase hex characters)`;
    } else if (PLAIN_USER_KEYS.has(k)) {
      if (typeof v !== 'string' || v === '') return `user_data.${k} must be a non-empty string`;
    } else return `unknown field user_data.${k}`;
  }
  if (!user.em && !user.hashed_maids && !(user.client_ip_address && user.client_user_agent)) {
    return 'user_data needs at least one of em, hashed_maids, or client_ip_address with client_user_agent';
  }
  if (typeof user.client_ip_address === 'string' && isIP(user.client_ip_address) === 0) return 'user_data.client_ip_address is not an IPv4 or IPv6 address';
  if (event.custom_data !== undefined) {
    const c = event.custom_data;
    if (!isJsonObject(c)) return 'custom_data must be an object';
    for (const k of Object.keys(c)) if (!CUSTOM_KEYS.has(k)) return `unknown field custom_data.${k}`;
    if (c.currency !== undefined && (typeof c.currency !== 'string' || !/^[A-Z]{3}$/.test(c.currency))) return 'custom_data.currency must be an ISO-4217 code';
    if (c.value !== undefined && (typeof c.value !== 'string' || !DECIMAL.test(c.value))) return 'custom_data.value must be a decimal number as a string';
    if (c.num_items !== undefined && !Number.isInteger(c.num_items)) return 'custom_data.num_items must be an integer';
    if (c.content_ids !== undefined && !(Array.isArray(c.content_ids) && c.content_ids.every((id) => typeof id === 'string'))) return 'custom_data.content_ids must be an array of strings';
    for (const k of ['content_name', 'content_category', 'content_brand', 'order_id', 'search_string', 'opt_out_type', 'np']) {
      if (c[k] !== undefined && c[k] !== null && typeof c[k] !== 'string') return `custom_data.${k} must be a string`;
    }
    if (c.contents !== undefined) {
      if (!Array.isArray(c.contents)) return 'custom_data.contents must be an array';
      for (const [i, item] of c.contents.entries()) {
        if (!isJsonObject(item)) return `custom_data.contents[${i}] must be an object`;
        for (const k of Object.keys(item)) if (!CONTENT_KEYS.has(k)) return `unknown field custom_data.contents[${i}].${k}`;
        if (item.item_price !== undefined && (typeof item.item_price !== 'string' || !DECIMAL.test(item.item_price))) return `custom_data.contents[${i}].item_price must be a decimal number as a string`;
        if (item.quantity !== undefined && !Number.isInteger(item.quantity)) return `custom_data.contents[${i}].quantity must be an integer`;
        for (const k of ['id', 'item_name', 'item_category', 'item_brand']) if (item[k] !== undefined && typeof item[k] !== 'string') return `custom_data.contents[${i}].${k} must be a string`;
      }
    }
  }
  return undefined;
}

/** Starts the fake on a free loopback port. */
export async function startPinterestFake(options: PinterestFakeOptions = {}): Promise<PinterestFake> {
  const adAccountId = options.adAccountId ?? '549755885175';
  const token = options.accessToken ?? 'test-token';
  const now = options.now ?? Date.now;
  let throttles: { left: number; retryAfter?: number } = { left: 0 };
  let errors: { left: number; status: number } = { left: 0, status: 503 };
  let failing = new Map<string, string>();
  let opaque = false;

  const accepted: Record<string, unknown>[] = [];
  const testAccepted: Record<string, unknown>[] = [];

  const respond = (req: ReceivedRequest): Reply => {
    if (throttles.left > 0) {
      throttles.left--;
      const headers: Record<string, string> = throttles.retryAfter !== undefined ? { 'retry-after': String(throttles.retryAfter) } : {};
      return json(429, { code: 8, message: 'This request exceeded a rate limit. This can happen if the client exceeds one of the published rate limits within a short time window.' }, headers);
    }
    if (errors.left > 0) {
      errors.left--;
      return errors.status === 503 ? error(503, 4197, 'The endpoint has been ramped down and is currently not accepting any traffic.') : error(errors.status, 0, 'Unexpected error');
    }
    const url = new URL(req.url, 'http://fake');
    const m = /^\/v5\/ad_accounts\/([^/]+)\/events$/.exec(url.pathname);
    if (!m) return error(404, 0, `no route for ${url.pathname}`);
    if (req.method !== 'POST') return error(405, 0, `method ${req.method} not allowed`);
    const auth = req.headers.authorization;
    if (auth !== `Bearer ${token}`) return error(401, 2, 'Authentication failed.');
    const account = decodeURIComponent(m[1]!);
    if (!/^[0-9]{1,18}$/.test(account)) return error(400, 4196, `Invalid ad_account_id ${account}`);
    if (account !== adAccountId) return error(403, 29, 'You are not permitted to access that resource.');
    let test = false;
    for (const [k, v] of url.searchParams) {
      if (k !== 'test') return error(400, 4196, `Unexpected query parameter ${k}`);
      if (v !== 'true' && v !== 'false') return error(400, 4196, 'test must be true or false');
      test = v === 'true';
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return error(400, 4196, 'The request body should be a JSON object.');
    const body: unknown = req.body;
    if (!isJsonObject(body)) return error(400, 4196, 'The request body should be a JSON object.');
    for (const k of Object.keys(body)) if (k !== 'data') return error(400, 4196, `Unexpected field ${k}`);
    const data = body.data;
    if (!Array.isArray(data) || data.length === 0) return error(400, 4196, 'data must be a non-empty array');
    if (data.length > 1000) return error(400, 4196, 'data must hold at most 1000 events');
    const nowMs = now();
    const events = data.map((event) => {
      const problem = pinterestEventProblem(event, nowMs) ?? (isJsonObject(event) && typeof event.event_id === 'string' ? failing.get(event.event_id) : undefined);
      return problem ? { status: 'failed', error_message: problem, warning_message: null } : { status: 'processed', error_message: null, warning_message: null };
    });
    events.forEach((e, i) => {
      if (e.status === 'processed') (test ? testAccepted : accepted).push(data[i] as Record<string, unknown>);
    });
    const processed = events.filter((e) => e.status === 'processed').length;
    const summary = { num_events_received: data.length, num_events_processed: processed, events };
    if (processed === data.length) return json(200, summary);
    return json(422, { code: 1, message: 'Not all events were successfully processed.', details: opaque ? {} : summary });
  };

  const receiver = await startTestReceiver({ respond });
  return {
    receiver,
    get url() {
      return receiver.url;
    },
    accepted,
    testAccepted,
    throttle(times, retryAfterSeconds) {
      throttles = { left: times, ...(retryAfterSeconds !== undefined ? { retryAfter: retryAfterSeconds } : {}) };
    },
    serverError(times, status = 503) {
      errors = { left: times, status };
    },
    failEvents(eventIds, message = 'Event failed validation') {
      failing = new Map(eventIds.map((id) => [id, message]));
    },
    opaquePartialFailures(on) {
      opaque = on;
    },
    down: () => receiver.close(),
    up: () => receiver.restart(),
    reset() {
      accepted.length = 0;
      testAccepted.length = 0;
      receiver.requests.length = 0;
      throttles = { left: 0 };
      errors = { left: 0, status: 503 };
      failing = new Map();
      opaque = false;
    },
    close: () => receiver.close(),
  };
}
