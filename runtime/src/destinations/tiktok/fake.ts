/**
 * A loopback fake of TikTok Events API 2.0 (`POST /open_api/v1.3/event/track/`) for tests,
 * enforcing what TikTok documents for that endpoint
 * (https://business-api.tiktok.com/portal/docs?id=1771101303285761) and answering like TikTok:
 * HTTP 200 with `{code, message, request_id, data}` for errors too. A request with one bad event is
 * refused whole (TikTok does not report per event). The checks are written here by hand from the
 * documentation, independently of the adapter's output schema, so that passing means the request
 * is right, not merely that it agrees with itself.
 */
import { isIP } from 'node:net';
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';
import { TIKTOK_CODES, TIKTOK_CURRENCIES, TIKTOK_MAX_EVENTS, TIKTOK_STANDARD_EVENTS, TIKTOK_TRACK_PATH } from './index.js';
import type { TiktokEventSource } from './settings.js';
import { isJsonObject } from '../http.js';

/** {@link isJsonObject}, typed loosely: the fake reads arbitrary request JSON. */
const isObject = isJsonObject as (v: unknown) => v is Record<string, any>;

/** One event TikTok took, with the request-level fields it came with. */
export interface AcceptedTiktokEvent {
  eventSource: string;
  eventSourceId: string;
  testEventCode?: string;
  /** The element of `data[]`, as sent. */
  event: Record<string, any>;
}

/** Options of {@link startTiktokFake}. */
export interface TiktokFakeOptions {
  /** The valid access token (header `Access-Token`). Default `tt-test-access-token`. */
  accessToken?: string;
  /** Event source IDs the token may report to, with the kind of each. Default `{C4TIKTOKPIXEL0000001: 'web'}`. */
  eventSources?: Record<string, TiktokEventSource>;
  /**
   * Refuse web events without event_id: TikTok requires it when the browser pixel reports the same
   * events, which is how Switchyard is deployed. Default true.
   */
  requireEventId?: boolean;
  /** Clock for request ids (ms since the epoch). Default Date.now. */
  now?: () => number;
}

/** A request-level failure to inject: an HTTP status (e.g. 503), or a TikTok code in an HTTP 200 answer. */
export type TiktokFault = { status: number; body?: string } | { code: number; message?: string };

/** A running fake: the receiver, what TikTok took, and fault controls. */
export interface TiktokFake {
  /** Base URL to use as `destination.tiktok.endpoint`. */
  url: string;
  receiver: TestReceiver;
  /** Every request received, accepted or not. */
  requests: ReceivedRequest[];
  /** Events of accepted requests, in order. */
  accepted: AcceptedTiktokEvent[];
  /** The next `times` requests are answered with code 40100 (rate limit); `retryAfterSeconds` adds a Retry-After header. */
  throttle(times: number, retryAfterSeconds?: number): void;
  /** The next `times` requests fail with `fault`. */
  failNext(times: number, fault: TiktokFault): void;
  /** Any request holding an event whose event_id is listed is refused whole with 40002 naming that event (TikTok's answer to one bad event). */
  rejectEvents(eventIds: readonly string[]): void;
  /** Stops listening (connections refused) / listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Forgets requests, accepted events and faults. */
  reset(): void;
  close(): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;
const STANDARD = new Set<string>(TIKTOK_STANDARD_EVENTS);
const CURRENCIES = new Set<string>(TIKTOK_CURRENCIES);
const EVENT_SOURCES = new Set(['web', 'app', 'offline', 'crm']);
const EVENT_KEYS = new Set(['event', 'event_time', 'event_id', 'user', 'properties', 'page', 'app', 'ad', 'limited_data_use', 'lead']);
const USER_KEYS = new Set(['ttclid', 'email', 'phone', 'external_id', 'ttp', 'ip', 'user_agent', 'idfa', 'idfv', 'gaid', 'locale', 'att_status']);
const PAGE_KEYS = new Set(['url', 'referrer']);
const CONTENT_KEYS = new Set(['price', 'quantity', 'content_id', 'content_category', 'content_name', 'brand']);
const BODY_KEYS = new Set(['event_source', 'event_source_id', 'test_event_code', 'data', 'partner_name']);

/** Thrown by a check: answered as HTTP 200 with this code and message. */
class Refusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const param = (message: string) => new Refusal(TIKTOK_CODES.PARAMETER_ERROR, `Invalid parameter: ${message}`);

function onlyKeys(value: Record<string, unknown>, allowed: ReadonlySet<string>, where: string): void {
  for (const k of Object.keys(value)) if (!allowed.has(k)) throw param(`${where}.${k} is not a field of the Events API`);
}

function optionalString(value: unknown, where: string): void {
  if (value !== undefined && typeof value !== 'string') throw param(`${where} must be a string`);
}

function nonEmptyString(value: unknown, where: string): void {
  if (typeof value !== 'string' || value.trim() === '') throw param(`${where} must be a non-empty string`);
}

/** email, phone, external_id: "SHA-256 hashing is required", one value or a list. */
function hashedValues(value: unknown, where: string): void {
  if (value === undefined) return;
  const values = Array.isArray(value) ? value : [value];
  if (values.length === 0) throw param(`${where} must not be an empty list`);
  values.forEach((v, i) => {
    if (typeof v !== 'string' || !HEX64.test(v)) throw param(`${where}${Array.isArray(value) ? `[${i}]` : ''} must be SHA-256 hashed (64 lowercase hex characters)`);
  });
}

function checkUser(user: unknown, where: string): void {
  if (user === undefined) return;
  if (!isObject(user)) throw param(`${where} must be an object`);
  onlyKeys(user, USER_KEYS, where);
  hashedValues(user.email, `${where}.email`);
  hashedValues(user.phone, `${where}.phone`);
  hashedValues(user.external_id, `${where}.external_id`);
  if (user.ip !== undefined && (typeof user.ip !== 'string' || isIP(user.ip) === 0)) throw param(`${where}.ip must be an IPv4 or IPv6 address`);
  for (const k of ['ttclid', 'ttp', 'user_agent', 'locale', 'idfa', 'idfv', 'gaid', 'att_status']) optionalString(user[k], `${where}.${k}`);
}

function checkProperties(props: unknown, where: string): void {
  if (props === undefined) return;
  if (!isObject(props)) throw param(`${where} must be an object`);
  if (props.currency !== undefined && (typeof props.currency !== 'string' || !CURRENCIES.has(props.currency))) throw param(`${where}.currency ${JSON.stringify(props.currency)} is not a supported ISO 4217 currency`);
  if (props.value !== undefined && (typeof props.value !== 'number' || !Number.isFinite(props.value))) throw param(`${where}.value must be a number`);
  if (props.content_type !== undefined && props.content_type !== 'product' && props.content_type !== 'product_group') throw param(`${where}.content_type must be product or product_group`);
  if (props.num_items !== undefined && !Number.isInteger(props.num_items)) throw param(`${where}.num_items must be an integer`);
  if (props.customer_type !== undefined && props.customer_type !== 'new' && props.customer_type !== 'returning') throw param(`${where}.customer_type must be new or returning`);
  for (const k of ['order_id', 'shop_id', 'search_string', 'query', 'description']) optionalString(props[k], `${where}.${k}`);
  if (props.content_ids !== undefined) {
    if (!Array.isArray(props.content_ids)) throw param(`${where}.content_ids must be a list of strings`);
    props.content_ids.forEach((id: unknown, i: number) => nonEmptyString(id, `${where}.content_ids[${i}]`));
  }
  if (props.contents !== undefined) {
    if (!Array.isArray(props.contents)) throw param(`${where}.contents must be a list`);
    props.contents.forEach((c: unknown, i: number) => {
      const at = `${where}.contents[${i}]`;
      if (!isObject(c)) throw param(`${at} must be an object`);
      onlyKeys(c, CONTENT_KEYS, at);
      if (c.price !== undefined && (typeof c.price !== 'number' || !Number.isFinite(c.price))) throw param(`${at}.price must be a number`);
      if (c.quantity !== undefined && !Number.isInteger(c.quantity)) throw param(`${at}.quantity must be an integer`);
      if (c.content_id !== undefined) nonEmptyString(c.content_id, `${at}.content_id`);
      for (const k of ['content_category', 'content_name', 'brand']) optionalString(c[k], `${at}.${k}`);
    });
  }
}

function checkEvent(e: unknown, i: number, source: string, requireEventId: boolean): void {
  const where = `data[${i}]`;
  if (!isObject(e)) throw param(`${where} must be an object`);
  onlyKeys(e, EVENT_KEYS, where);
  nonEmptyString(e.event, `${where}.event`);
  // "For offline events, it can only be a Standard Event. For CRM events, it can only be a Custom Event."
  if (source === 'offline' && !STANDARD.has(e.event)) throw param(`${where}.event ${JSON.stringify(e.event)} is not a standard event (offline events take standard events only)`);
  if (source === 'crm' && STANDARD.has(e.event)) throw param(`${where}.event ${JSON.stringify(e.event)}: CRM events take custom events only`);
  // "Unix timestamp measured in seconds": ten digits; milliseconds are refused.
  if (!Number.isInteger(e.event_time) || e.event_time < 1_000_000_000 || e.event_time > 9_999_999_999) throw param(`${where}.event_time must be a Unix timestamp in seconds`);
  if (e.event_id !== undefined) nonEmptyString(e.event_id, `${where}.event_id`);
  else if (source === 'web' && requireEventId) throw param(`${where}.event_id is required for web events also reported by the pixel`);
  checkUser(e.user, `${where}.user`);
  checkProperties(e.properties, `${where}.properties`);
  if (e.page !== undefined || source === 'web') {
    // page: "Required for web events"; page.url {Required}: the browser URL.
    if (!isObject(e.page)) throw param(`${where}.page is required for web events`);
    onlyKeys(e.page, PAGE_KEYS, `${where}.page`);
    if (typeof e.page.url !== 'string' || !/^https?:\/\/\S+$/.test(e.page.url)) throw param(`${where}.page.url must be the full URL of the page`);
    optionalString(e.page.referrer, `${where}.page.referrer`);
  }
  if (source === 'app' && (!isObject(e.app) || typeof e.app.app_id !== 'string')) throw param(`${where}.app.app_id is required for app events`);
  if (source === 'crm' && (!isObject(e.lead) || typeof e.lead.lead_id !== 'string')) throw param(`${where}.lead.lead_id is required for CRM events`);
  if (e.limited_data_use !== undefined && typeof e.limited_data_use !== 'boolean') throw param(`${where}.limited_data_use must be a boolean`);
}

/** Starts a TikTok Events API fake on a free loopback port. */
export async function startTiktokFake(options: TiktokFakeOptions = {}): Promise<TiktokFake> {
  const token = options.accessToken ?? 'tt-test-access-token';
  const sources = options.eventSources ?? { C4TIKTOKPIXEL0000001: 'web' };
  const requireEventId = options.requireEventId ?? true;
  const now = options.now ?? Date.now;
  const accepted: AcceptedTiktokEvent[] = [];
  let faults: { times: number; reply: (req: ReceivedRequest) => Reply }[] = [];
  let rejected = new Set<string>();
  let counter = 0;

  const answer = (code: number, message: string, extraHeaders: Record<string, string> = {}): Reply => {
    counter += 1;
    const requestId = `${new Date(now()).toISOString().replace(/\D/g, '').slice(0, 14)}${String(counter).padStart(6, '0')}`;
    return { status: 200, headers: { 'content-type': 'application/json', ...extraHeaders }, body: JSON.stringify({ code, message, request_id: requestId, data: {} }) };
  };

  const handle = (req: ReceivedRequest): Reply => {
    const path = req.url.split('?')[0];
    if (path !== TIKTOK_TRACK_PATH) return { status: 404, headers: { 'content-type': 'text/plain' }, body: '404 page not found' };
    if (req.method !== 'POST') return { status: 405, headers: { 'content-type': 'text/plain' }, body: 'Method Not Allowed' };
    const fault = faults[0];
    if (fault) {
      fault.times -= 1;
      if (fault.times <= 0) faults.shift();
      return fault.reply(req);
    }
    try {
      if (req.headers['access-token'] !== token) throw new Refusal(TIKTOK_CODES.ACCESS_TOKEN_INVALID, 'Access token is incorrect or has been revoked.');
      if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) throw param('Content-Type must be application/json');
      let body: unknown;
      try {
        body = JSON.parse(req.text);
      } catch {
        throw param('the body is not valid JSON');
      }
      if (!isObject(body)) throw param('the body must be a JSON object');
      onlyKeys(body, BODY_KEYS, 'body');
      if (typeof body.event_source !== 'string' || !EVENT_SOURCES.has(body.event_source)) throw param('event_source must be one of web, app, offline, crm');
      nonEmptyString(body.event_source_id, 'event_source_id');
      const kind = Object.hasOwn(sources, body.event_source_id) ? sources[body.event_source_id] : undefined;
      if (kind === undefined) throw new Refusal(TIKTOK_CODES.NO_PERMISSION, `No permission to operate event source ${body.event_source_id}.`);
      if (kind !== body.event_source) throw param(`event_source_id ${body.event_source_id} is not a ${body.event_source} event source`);
      optionalString(body.test_event_code, 'test_event_code');
      if (!Array.isArray(body.data)) throw param('data must be a list of events');
      if (body.data.length > TIKTOK_MAX_EVENTS) throw param(`data holds ${body.data.length} events; at most ${TIKTOK_MAX_EVENTS} per request`);
      body.data.forEach((e: unknown, i: number) => checkEvent(e, i, body.event_source, requireEventId));
      body.data.forEach((e: Record<string, any>, i: number) => {
        if (typeof e.event_id === 'string' && rejected.has(e.event_id)) throw param(`data[${i}] (event_id ${e.event_id}) was refused`);
      });
      for (const e of body.data) {
        accepted.push({ eventSource: body.event_source, eventSourceId: body.event_source_id, ...(body.test_event_code !== undefined ? { testEventCode: body.test_event_code } : {}), event: e });
      }
      return answer(TIKTOK_CODES.OK, 'OK');
    } catch (e) {
      if (e instanceof Refusal) return answer(e.code, e.message);
      throw e;
    }
  };

  const receiver = await startTestReceiver({ respond: handle });
  return {
    get url() {
      return receiver.url;
    },
    receiver,
    requests: receiver.requests,
    accepted,
    throttle(times, retryAfterSeconds) {
      const headers: Record<string, string> = retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) };
      faults.push({ times, reply: () => answer(TIKTOK_CODES.RATE_LIMITED, 'Too many requests. Please retry in some time.', headers) });
    },
    failNext(times, fault) {
      faults.push({
        times,
        reply: () => ('status' in fault ? { status: fault.status, headers: { 'content-type': 'text/plain' }, body: fault.body ?? 'upstream unavailable' } : answer(fault.code, fault.message ?? 'Internal service error.')),
      });
    },
    rejectEvents(eventIds) {
      rejected = new Set([...rejected, ...eventIds]);
    },
    down: () => receiver.close(),
    up: () => receiver.restart(),
    reset() {
      receiver.requests.length = 0;
      accepted.length = 0;
      faults = [];
      rejected = new Set();
    },
    close: () => receiver.close(),
  };
}
