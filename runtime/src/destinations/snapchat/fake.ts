import { isIP } from 'node:net';
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';

/**
 * A loopback fake of Snap's Conversions API v3, for tests: `POST /v3/{asset_id}/events` and the
 * Test Event endpoint `POST /v3/{asset_id}/events/validate`
 * (https://developers.snap.com/api/marketing-api/Conversions-API/UsingTheAPI, /VerifySetUp,
 * /Parameters; response shapes: EventResponse and ValidateResponse of Snap's Business SDK
 * OpenAPI). Its rules are written out here, independently of the destination's output schema:
 * - path `/v3/{id}/events[/validate]` for the configured pixel (else 403); method POST;
 *   `access_token` query parameter equal to the token (else 401); no other query parameter;
 * - JSON body `{"data": [1..2000 events]}` (else 400);
 * - per event, the documented INVALID cases: required `event_name`, `event_time`,
 *   `action_source`, `event_source_url` for WEB and `app_data` for MOBILE_APP; a standard event
 *   name; action source WEB/MOBILE_APP/OFFLINE; "Timestamp invalid or out of range" (integer
 *   seconds, not older than 37 days, not more than 5 minutes ahead, injected clock); "Unhashed
 *   PII" (em, ph, fn… must be SHA-256 as 64 lowercase hex); "Insufficient PII" (em, ph, madid, or
 *   client_ip_address with client_user_agent); a client_ip_address that is not an IP; "Missing
 *   price and/or currency in Purchase events"; currency as 3 upper-case letters; no unknown field
 *   in the event or user_data.
 * `/events` refuses the whole request for its first invalid event (400 `{status: INVALID, reason,
 * event: <index>, errors: {codes, error_msgs}}`) and records nothing of it; else 200
 * `{status: VALID, reason}`. `/events/validate` answers 200 with one `event_logs` entry per event
 * and records nothing (test events).
 */

/** Options of {@link startSnapchatFake}. */
export interface SnapchatFakeOptions {
  /** The pixel (or Snap App) id the token is valid for. Default `45d06e6c-5a2f-4fa4-9d2f-0c1f0ad0c3a1`. */
  pixelId?: string;
  /** The Conversions API token it accepts. Default `test-token`. */
  accessToken?: string;
  /** The fake's clock, ms since the epoch (timestamp range). Default Date.now. */
  now?: () => number;
}

/** A running fake: the receiver (every request), what it recorded, and faults to inject. */
export interface SnapchatFake {
  receiver: TestReceiver;
  /** Base URL to give as `endpoint`. */
  url: string;
  /** Events recorded by `/events`, in arrival order. */
  accepted: Record<string, unknown>[];
  /** Events `/events/validate` found valid (not recorded by Snap). */
  testAccepted: Record<string, unknown>[];
  /** The next `times` requests get 429, with `Retry-After: <seconds>` when given. */
  throttle(times: number, retryAfterSeconds?: number): void;
  /** The next `times` requests get `status` (default 500). */
  serverError(times: number, status?: number): void;
  /** Events whose event_id is listed are INVALID (this message) even when valid. */
  failEvents(eventIds: readonly string[], message?: string): void;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Clears recorded events, requests and faults. */
  reset(): void;
  close(): Promise<void>;
}

/** Standard event names (Snap Pixel / Conversions API event types). */
const EVENT_NAMES = new Set([
  'PAGE_VIEW', 'VIEW_CONTENT', 'ADD_CART', 'ADD_TO_WISHLIST', 'SIGN_UP', 'SEARCH', 'PURCHASE', 'ADD_BILLING', 'START_CHECKOUT', 'LIST_VIEW',
  'COMPLETE_TUTORIAL', 'SUBSCRIBE', 'START_TRIAL', 'AD_CLICK', 'AD_VIEW', 'RATE', 'LEVEL_COMPLETE', 'ACHIEVEMENT_UNLOCKED', 'SPENT_CREDITS',
  'SAVE', 'SHARE', 'INVITE', 'LOGIN', 'RESERVE', 'APP_OPEN', 'APP_INSTALL', 'CUSTOM_EVENT_1', 'CUSTOM_EVENT_2', 'CUSTOM_EVENT_3',
  'CUSTOM_EVENT_4', 'CUSTOM_EVENT_5',
]);
const ACTION_SOURCES = new Set(['WEB', 'MOBILE_APP', 'OFFLINE']);
const EVENT_KEYS = new Set([
  'event_name', 'event_time', 'action_source', 'event_id', 'event_source_url', 'opt_out', 'integration', 'data_processing_options',
  'data_processing_options_country', 'data_processing_options_state', 'user_data', 'custom_data', 'app_data',
]);
const HASHED_USER_KEYS = new Set(['em', 'ph', 'fn', 'ln', 'ge', 'ct', 'st', 'zp', 'country']);
const PLAIN_USER_KEYS = new Set(['madid', 'idfv', 'client_ip_address', 'client_user_agent', 'sc_click_id', 'sc_cookie1']);
const SHA256_HEX = /^[0-9a-f]{64}$/;
const DECIMAL = /^-?[0-9]+(\.[0-9]+)?$/;
const MAX_AGE_SECONDS = 37 * 24 * 3600;
const MAX_AHEAD_SECONDS = 300;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({ status, headers, body: JSON.stringify(body) });
const invalid = (status: number, reason: string): Reply => json(status, { status: 'INVALID', reason });

/** One refusal of an event: an error code of ours (Snap's codes are not published) and Snap's wording. */
export interface SnapProblem {
  code: string;
  message: string;
}

const problem = (code: string, message: string): SnapProblem => ({ code, message });
const isAmount = (v: unknown) => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && DECIMAL.test(v));

/** Why Snap would refuse this event (INVALID), or undefined when it is valid. */
export function snapEventProblem(event: unknown, nowMs: number): SnapProblem | undefined {
  if (!isObject(event)) return problem('INVALID_EVENT', 'event must be an object');
  for (const k of Object.keys(event)) if (!EVENT_KEYS.has(k)) return problem('UNKNOWN_FIELD', `unknown field ${k}`);
  for (const k of ['event_name', 'event_time', 'action_source']) if (event[k] === undefined || event[k] === null) return problem('MISSING_REQUIRED_FIELD', `missing required field ${k}`);
  if (typeof event.event_name !== 'string' || !EVENT_NAMES.has(event.event_name)) return problem('INVALID_EVENT_NAME', `event_name ${JSON.stringify(event.event_name)} is not a supported event`);
  if (typeof event.action_source !== 'string' || !ACTION_SOURCES.has(event.action_source)) return problem('INVALID_ACTION_SOURCE', `action_source ${JSON.stringify(event.action_source)} is not one of WEB, MOBILE_APP, OFFLINE`);
  const t = event.event_time;
  const nowSec = Math.floor(nowMs / 1000);
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) return problem('INVALID_TIMESTAMP', 'Timestamp invalid or out of range: event_time must be Unix seconds');
  if (t > nowSec + MAX_AHEAD_SECONDS) return problem('INVALID_TIMESTAMP', 'Timestamp invalid or out of range: event_time is in the future');
  if (nowSec - t > MAX_AGE_SECONDS) return problem('INVALID_TIMESTAMP', 'Timestamp invalid or out of range: event_time is older than 37 days');
  if (event.action_source === 'WEB' && (typeof event.event_source_url !== 'string' || event.event_source_url === '')) return problem('MISSING_REQUIRED_FIELD', 'missing required field event_source_url for WEB events');
  if (event.action_source === 'MOBILE_APP' && !isObject(event.app_data)) return problem('MISSING_REQUIRED_FIELD', 'missing required field app_data for MOBILE_APP events');
  if (event.event_id !== undefined && (typeof event.event_id !== 'string' || event.event_id === '')) return problem('INVALID_EVENT_ID', 'event_id must be a non-empty string');
  const user = event.user_data;
  if (!isObject(user)) return problem('INSUFFICIENT_PII', 'Insufficient PII: user_data is missing');
  for (const [k, v] of Object.entries(user)) {
    if (HASHED_USER_KEYS.has(k)) {
      const values = typeof v === 'string' ? [v] : v; // "string or list of strings"
      if (!Array.isArray(values) || values.length === 0 || !values.every((h) => typeof h === 'string' && SHA256_HEX.test(h))) return problem('UNHASHED_PII', `Unhashed PII: user_data.${k} must be SHA-256 as 64 lowercase hex characters`);
    } else if (PLAIN_USER_KEYS.has(k)) {
      if (typeof v !== 'string' || v === '') return problem('INVALID_USER_DATA', `user_data.${k} must be a non-empty string`);
    } else return problem('UNKNOWN_FIELD', `unknown field user_data.${k}`);
  }
  if (!user.em && !user.ph && !user.madid && !(user.client_ip_address && user.client_user_agent)) {
    return problem('INSUFFICIENT_PII', 'Insufficient PII: send em, ph, madid, or client_ip_address with client_user_agent');
  }
  if (typeof user.client_ip_address === 'string' && isIP(user.client_ip_address) === 0) return problem('INVALID_IP_ADDRESS', 'client_ip_address is not an IPv4 or IPv6 address');
  const c = event.custom_data;
  if (c !== undefined && !isObject(c)) return problem('INVALID_CUSTOM_DATA', 'custom_data must be an object');
  if (isObject(c)) {
    if (c.currency !== undefined && (typeof c.currency !== 'string' || !/^[A-Z]{3}$/.test(c.currency))) return problem('INVALID_CURRENCY', 'currency must be an ISO-4217 code');
    if (c.value !== undefined && !isAmount(c.value)) return problem('INVALID_VALUE', 'value must be a number');
    if (c.num_items !== undefined && !Number.isInteger(c.num_items)) return problem('INVALID_NUM_ITEMS', 'num_items must be an integer');
    if (c.contents !== undefined) {
      if (!Array.isArray(c.contents)) return problem('INVALID_CONTENTS', 'contents must be an array');
      for (const [i, item] of c.contents.entries()) {
        if (!isObject(item)) return problem('INVALID_CONTENTS', `contents[${i}] must be an object`);
        if (item.item_price !== undefined && !isAmount(item.item_price)) return problem('INVALID_CONTENTS', `contents[${i}].item_price must be a number`);
        if (item.quantity !== undefined && !(Number.isInteger(item.quantity) || (typeof item.quantity === 'string' && /^[0-9]+$/.test(item.quantity)))) return problem('INVALID_CONTENTS', `contents[${i}].quantity must be a whole number`);
      }
    }
  }
  if (event.event_name === 'PURCHASE' && (!isObject(c) || c.currency === undefined || c.value === undefined)) return problem('MISSING_PRICE_OR_CURRENCY', 'Missing price and/or currency in Purchase events');
  return undefined;
}

/** Starts the fake on a free loopback port. */
export async function startSnapchatFake(options: SnapchatFakeOptions = {}): Promise<SnapchatFake> {
  const pixelId = options.pixelId ?? '45d06e6c-5a2f-4fa4-9d2f-0c1f0ad0c3a1';
  const token = options.accessToken ?? 'test-token';
  const now = options.now ?? Date.now;
  let throttles: { left: number; retryAfter?: number } = { left: 0 };
  let errors = { left: 0, status: 500 };
  let failing = new Map<string, string>();
  const accepted: Record<string, unknown>[] = [];
  const testAccepted: Record<string, unknown>[] = [];

  const respond = (req: ReceivedRequest): Reply => {
    if (throttles.left > 0) {
      throttles.left--;
      return json(429, { status: 'INVALID', reason: 'Too many requests' }, throttles.retryAfter !== undefined ? { 'retry-after': String(throttles.retryAfter) } : {});
    }
    if (errors.left > 0) {
      errors.left--;
      return json(errors.status, { status: 'INVALID', reason: 'Internal server error' });
    }
    const url = new URL(req.url, 'http://fake');
    const m = /^\/v3\/([^/]+)\/events(\/validate)?$/.exec(url.pathname);
    if (!m) return invalid(404, `no route for ${url.pathname}`);
    if (req.method !== 'POST') return invalid(405, `method ${req.method} not allowed`);
    for (const k of url.searchParams.keys()) if (k !== 'access_token') return invalid(400, `unexpected query parameter ${k}`);
    if (url.searchParams.get('access_token') !== token) return invalid(401, 'Unauthorized: invalid access token');
    if (decodeURIComponent(m[1]!) !== pixelId) return invalid(403, 'The access token is not valid for this asset id');
    const validate = m[2] !== undefined;
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json') || !isObject(req.body)) return invalid(400, 'The request body must be a JSON object');
    const body = req.body as Record<string, unknown>;
    for (const k of Object.keys(body)) if (k !== 'data') return invalid(400, `unexpected field ${k}`);
    const data = body.data;
    if (!Array.isArray(data) || data.length === 0) return invalid(400, 'data must be a non-empty array');
    if (data.length > 2000) return invalid(400, 'data must hold at most 2000 events');
    const nowMs = now();
    const problems = data.map((event) => {
      const p = snapEventProblem(event, nowMs);
      if (p) return p;
      const forced = isObject(event) && typeof event.event_id === 'string' ? failing.get(event.event_id) : undefined;
      return forced ? problem('INVALID_EVENT', forced) : undefined;
    });
    if (validate) {
      problems.forEach((p, i) => p === undefined && testAccepted.push(data[i] as Record<string, unknown>));
      const allValid = problems.every((p) => p === undefined);
      return json(200, {
        status: allValid ? 'VALID' : 'INVALID',
        test_event: true,
        reason: allValid ? 'All events are valid' : 'Some events are invalid',
        event_logs: problems.map((p, i) => (p ? { event: i, status: 'INVALID', errors: { codes: [p.code], error_msgs: [p.message] }, warnings: [] } : { event: i, status: 'VALID', warnings: [] })),
      });
    }
    const first = problems.findIndex((p) => p !== undefined);
    if (first >= 0) {
      const p = problems[first]!;
      return json(400, { status: 'INVALID', reason: 'Invalid event', event: first, errors: { codes: [p.code], error_msgs: [p.message] } });
    }
    accepted.push(...(data as Record<string, unknown>[]));
    return json(200, { status: 'VALID', reason: 'Events have been processed successfully.' });
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
    serverError(times, status = 500) {
      errors = { left: times, status };
    },
    failEvents(eventIds, message = 'Event failed validation') {
      failing = new Map(eventIds.map((id) => [id, message]));
    },
    down: () => receiver.close(),
    up: () => receiver.restart(),
    reset() {
      accepted.length = 0;
      testAccepted.length = 0;
      receiver.requests.length = 0;
      throttles = { left: 0 };
      errors = { left: 0, status: 500 };
      failing = new Map();
    },
    close: () => receiver.close(),
  };
}
