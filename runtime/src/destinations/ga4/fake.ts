/**
 * A loopback fake of the GA4 Measurement Protocol for tests, built on {@link startTestReceiver}.
 * It behaves like GA4 where GA4 documents its behaviour and is strict where GA4 is silent:
 * - `POST /mp/collect` always answers `204 No Content` ("The Measurement Protocol always returns a
 *   2xx status code if the HTTP request was received", MP reference), but checks every rule GA4
 *   documents and records each event it would drop in `dropped` (with the validation code and
 *   reason), the others in `accepted`: a test asserts `dropped` is empty.
 * - `POST /debug/mp/collect` (validation server) records nothing and answers `200
 *   {"validationMessages": [{fieldPath, description, validationCode}]}` with the same checks,
 *   event problems written "Event at index: [i] …" like GA4's documented example; like GA4 it
 *   does not check api_secret
 *   (https://developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events).
 * Rules and their sources:
 * - POST only, JSON body (`Content-Type: application/json`) under 130 kB; query `api_secret` and
 *   exactly one of `measurement_id` / `firebase_app_id`; body `client_id` (web) or
 *   `app_instance_id` (app, 32 hex digits); only the reference's body fields
 *   (https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference).
 * - 1 to 25 events; ≤ 25 params per event; event and param names ≤ 40 characters, a letter then
 *   letters, digits, underscores, not reserved (names and the google_/ga_/firebase_ prefixes);
 *   param values strings or numbers of ≤ 100 characters (page_title 300, page_referrer 420,
 *   page_location 1000); ≤ 25 user properties, names ≤ 24, values ≤ 36; ≤ 200 items, each with
 *   item_id or item_name, ≤ 10 custom item params
 *   (https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations,
 *   https://developers.google.com/analytics/devguides/collection/protocol/ga4/user-properties).
 * - currency (ISO 4217, upper case) whenever value is set
 *   (https://developers.google.com/analytics/devguides/collection/ga4/reference/events).
 * - timestamp_micros (the event's, else the body's) at most 72 hours before the fake's clock and
 *   not after it (sending events guide; use cases:
 *   https://developers.google.com/analytics/devguides/collection/protocol/ga4/use-cases).
 * - user_data values SHA-256 as 64 lowercase hex
 *   (https://developers.google.com/analytics/devguides/collection/ga4/uid-data).
 * Faults: `throttle` (429 with Retry-After), `fail` (5xx), `rejectEvents` (chosen events are
 * invalid: dropped on /mp/collect, a validation message on /debug), `down`/`up`.
 */
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';
import { isJsonObject } from '../http.js';
import {
  GA4_BODY_FIELDS,
  GA4_ITEM_PARAMS,
  GA4_LONG_PARAMS,
  GA4_MAX_AGE_MS,
  GA4_MAX_BODY_BYTES,
  GA4_MAX_CUSTOM_ITEM_PARAMS,
  GA4_MAX_EVENTS,
  GA4_MAX_ITEMS,
  GA4_MAX_PARAMS,
  GA4_MAX_USER_PROPERTIES,
  GA4_NAME_MAX,
  GA4_PARAM_VALUE_MAX,
  GA4_RESERVED_EVENT_NAMES,
  GA4_RESERVED_PARAM_NAMES,
  GA4_RESERVED_PREFIXES,
  GA4_RESERVED_USER_PROPERTY_NAMES,
  GA4_USER_PROPERTY_NAME_MAX,
  GA4_USER_PROPERTY_VALUE_MAX,
} from './index.js';

/** Validation codes of the MP validation server. */
export type Ga4ValidationCode = 'VALUE_INVALID' | 'VALUE_REQUIRED' | 'NAME_INVALID' | 'NAME_RESERVED' | 'VALUE_OUT_OF_BOUNDS' | 'EXCEEDED_MAX_ENTITIES' | 'NAME_DUPLICATED';

/** One problem found in a request: `index` is the event it concerns, undefined for the whole request. */
export interface Ga4Problem {
  index?: number;
  fieldPath: string;
  description: string;
  validationCode: Ga4ValidationCode;
}

/** An event GA4 would record. */
export interface Ga4AcceptedEvent {
  /** Index of the request among all requests of the fake. */
  request: number;
  measurementId?: string;
  firebaseAppId?: string;
  clientId?: string;
  appInstanceId?: string;
  userId?: string;
  /** The event's timestamp: its own, else the body's, else the receipt time (µs). */
  timestampMicros: number;
  name: string;
  params: Record<string, unknown>;
  /** The body's fields other than events (user_properties, user_data, ip_override…). */
  context: Record<string, unknown>;
}

/** An event GA4 would drop (silently, on /mp/collect), and why. */
export interface Ga4DroppedEvent {
  request: number;
  /** Index of the event in its request (undefined when the whole request is unusable). */
  index?: number;
  name?: string;
  problem: Ga4Problem;
}

/** How to start a {@link startGa4Fake}: the stream it stands for and its clock. */
export interface Ga4FakeOptions {
  /** The stream's API secret (default `test-api-secret`). */
  apiSecret?: string;
  /** Web stream measurement ID (default `G-TEST123456` unless firebaseAppId is given). */
  measurementId?: string;
  /** App stream Firebase app ID; the stream is then an app stream. */
  firebaseAppId?: string;
  /** The fake's clock in ms since the epoch, for the 72-hour window (default Date.now). */
  now?: () => number;
}

/** A running GA4 fake: its receiver, what it recorded, and its fault controls. */
export interface Ga4Fake {
  receiver: TestReceiver;
  /** Base URL: the `endpoint` setting. */
  url: string;
  apiSecret: string;
  measurementId?: string;
  firebaseAppId?: string;
  /** Events recorded by /mp/collect. */
  accepted: Ga4AcceptedEvent[];
  /** Events /mp/collect dropped (it answered 204 all the same). */
  dropped: Ga4DroppedEvent[];
  /** The next `times` requests get 429 with `Retry-After: retryAfterSeconds` (default 30). */
  throttle(times: number, retryAfterSeconds?: number): void;
  /** The next `times` requests get `status` (default 503) with a Google error body. */
  fail(times: number, status?: number): void;
  /** From now on, events for which `predicate` holds are invalid (VALUE_INVALID). */
  rejectEvents(predicate: (event: Record<string, unknown>, body: Record<string, unknown>) => boolean): void;
  /** Stops listening (connections refused) / listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const HEX64 = /^[0-9a-f]{64}$/;
const CURRENCY = /^[A-Z]{3}$/;
const chars = (s: string): number => [...s].length;
const reservedPrefix = (n: string): string | undefined => GA4_RESERVED_PREFIXES.find((p) => n.startsWith(p));

/** Problems of a name: empty, too long, bad characters, reserved name or prefix. */
function nameProblem(kind: string, n: unknown, max: number, reserved: readonly string[]): { code: Ga4ValidationCode; why: string } | undefined {
  if (typeof n !== 'string' || n === '') return { code: 'VALUE_REQUIRED', why: `${kind} name is missing` };
  if (!NAME.test(n)) return { code: 'NAME_INVALID', why: `has invalid ${kind} name [${n}]. Names must start with an alphabetic character and contain only alphanumeric characters and underscores.` };
  if (chars(n) > max) return { code: 'VALUE_OUT_OF_BOUNDS', why: `${kind} name [${n}] is longer than ${max} characters.` };
  if (reserved.includes(n)) return { code: 'NAME_RESERVED', why: `has ${kind} name [${n}] which is reserved.` };
  const prefix = reservedPrefix(n);
  if (prefix) return { code: 'NAME_RESERVED', why: `has ${kind} name [${n}] with the reserved prefix [${prefix}].` };
  return undefined;
}

/**
 * Every problem GA4 would find in a request (`query` its URL query, `text` its body), judged at
 * `nowMs`. Exported for tests of the fake itself.
 */
export function ga4Problems(
  query: URLSearchParams,
  text: string,
  nowMs: number,
  stream: { apiSecret: string; measurementId?: string; firebaseAppId?: string; checkSecret: boolean; contentType?: string },
  rejected: (event: Record<string, unknown>, body: Record<string, unknown>) => boolean = () => false,
): { problems: Ga4Problem[]; body?: Record<string, unknown> } {
  const problems: Ga4Problem[] = [];
  const whole = (fieldPath: string, validationCode: Ga4ValidationCode, description: string) => problems.push({ fieldPath, validationCode, description });
  const measurementId = query.get('measurement_id');
  const firebaseAppId = query.get('firebase_app_id');
  if (!measurementId === !firebaseAppId) whole('measurement_id', 'VALUE_REQUIRED', 'Exactly one of measurement_id (web) and firebase_app_id (app) is required.');
  else if (measurementId && measurementId !== stream.measurementId) whole('measurement_id', 'VALUE_INVALID', `Unknown measurement_id [${measurementId}].`);
  else if (firebaseAppId && stream.checkSecret && firebaseAppId !== stream.firebaseAppId) whole('firebase_app_id', 'VALUE_INVALID', `Unknown firebase_app_id [${firebaseAppId}].`);
  if (stream.checkSecret && query.get('api_secret') !== stream.apiSecret) whole('api_secret', 'VALUE_INVALID', 'Missing or wrong api_secret.');
  if (!/^application\/json\b/i.test(stream.contentType ?? '')) whole('', 'VALUE_INVALID', `Content-Type must be application/json, got [${stream.contentType ?? ''}].`);
  const size = Buffer.byteLength(text);
  if (size >= GA4_MAX_BODY_BYTES) whole('', 'VALUE_OUT_OF_BOUNDS', `The post body is ${size} bytes; it must be smaller than 130kB.`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    whole('', 'VALUE_INVALID', 'The body is not JSON.');
    return { problems };
  }
  if (!isJsonObject(body)) {
    whole('', 'VALUE_INVALID', 'The body must be a JSON object.');
    return { problems };
  }
  for (const key of Object.keys(body)) if (!GA4_BODY_FIELDS.includes(key) && key !== 'validation_behavior') whole(key, 'VALUE_INVALID', `Unknown field [${key}].`);
  const app = Boolean(firebaseAppId);
  if (app) {
    if (typeof body.app_instance_id !== 'string' || !/^[0-9a-fA-F]{32}$/.test(body.app_instance_id)) whole('app_instance_id', 'VALUE_REQUIRED', 'Measurement requires an app_instance_id of 32 hexadecimal digits.');
  } else if (typeof body.client_id !== 'string' || body.client_id === '') {
    whole('client_id', 'VALUE_REQUIRED', 'Measurement requires a client_id.');
  }
  if (body.user_id !== undefined && (typeof body.user_id !== 'string' || body.user_id === '' || chars(body.user_id) > 256)) whole('user_id', 'VALUE_INVALID', 'user_id must be a non-empty string of at most 256 characters.');
  if (body.timestamp_micros !== undefined && !(Number.isSafeInteger(body.timestamp_micros) && (body.timestamp_micros as number) >= 0)) whole('timestamp_micros', 'VALUE_INVALID', 'timestamp_micros must be a positive integer of microseconds.');
  if (body.user_properties !== undefined) {
    if (!isJsonObject(body.user_properties)) whole('user_properties', 'VALUE_INVALID', 'user_properties must be an object.');
    else {
      const entries = Object.entries(body.user_properties);
      if (entries.length > GA4_MAX_USER_PROPERTIES) whole('user_properties', 'EXCEEDED_MAX_ENTITIES', `${entries.length} user properties; at most ${GA4_MAX_USER_PROPERTIES}.`);
      for (const [k, prop] of entries) {
        const bad = nameProblem('user property', k, GA4_USER_PROPERTY_NAME_MAX, GA4_RESERVED_USER_PROPERTY_NAMES);
        if (bad) whole(`user_properties.${k}`, bad.code, `Invalid user property: it ${bad.why}`);
        if (!isJsonObject(prop) || !('value' in prop) || Object.keys(prop).some((x) => x !== 'value' && x !== 'timestamp_micros')) {
          whole(`user_properties.${k}`, 'VALUE_INVALID', 'A user property must be {"value": …} (and optionally timestamp_micros).');
        } else if (typeof prop.value === 'string' ? chars(prop.value) > GA4_USER_PROPERTY_VALUE_MAX : typeof prop.value !== 'number') {
          whole(`user_properties.${k}.value`, 'VALUE_OUT_OF_BOUNDS', `User property values must be strings of at most ${GA4_USER_PROPERTY_VALUE_MAX} characters or numbers.`);
        }
      }
    }
  }
  if (body.user_data !== undefined) {
    const ud = body.user_data;
    const hashes = (path: string, v: unknown) => {
      if (!Array.isArray(v) || v.some((h) => typeof h !== 'string' || !HEX64.test(h))) whole(path, 'VALUE_INVALID', `${path} must be SHA-256 hashes, 64 lowercase hexadecimal characters.`);
    };
    if (!isJsonObject(ud)) whole('user_data', 'VALUE_INVALID', 'user_data must be an object.');
    else {
      for (const key of Object.keys(ud)) if (!['sha256_email_address', 'sha256_phone_number', 'address'].includes(key)) whole(`user_data.${key}`, 'VALUE_INVALID', `Unknown field [user_data.${key}].`);
      if (ud.sha256_email_address !== undefined) hashes('user_data.sha256_email_address', ud.sha256_email_address);
      if (ud.sha256_phone_number !== undefined) hashes('user_data.sha256_phone_number', ud.sha256_phone_number);
      if (ud.address !== undefined) {
        if (!Array.isArray(ud.address)) whole('user_data.address', 'VALUE_INVALID', 'user_data.address must be an array.');
        else
          ud.address.forEach((a: unknown, i) => {
            for (const f of ['sha256_first_name', 'sha256_last_name', 'sha256_street']) {
              const v = isJsonObject(a) ? a[f] : undefined;
              if (v !== undefined && (typeof v !== 'string' || !HEX64.test(v))) whole(`user_data.address[${i}].${f}`, 'VALUE_INVALID', `${f} must be a SHA-256 hash, 64 lowercase hexadecimal characters.`);
            }
          });
      }
    }
  }
  if (body.consent !== undefined) {
    const c = body.consent;
    if (!isJsonObject(c) || Object.entries(c).some(([k, v]) => !['ad_user_data', 'ad_personalization'].includes(k) || (v !== 'GRANTED' && v !== 'DENIED'))) whole('consent', 'VALUE_INVALID', 'consent holds ad_user_data and ad_personalization, each GRANTED or DENIED.');
  }
  if (body.validation_behavior !== undefined && body.validation_behavior !== 'RELAXED' && body.validation_behavior !== 'ENFORCE_RECOMMENDATIONS') whole('validation_behavior', 'VALUE_INVALID', 'validation_behavior is RELAXED or ENFORCE_RECOMMENDATIONS.');
  if (body.non_personalized_ads !== undefined && typeof body.non_personalized_ads !== 'boolean') whole('non_personalized_ads', 'VALUE_INVALID', 'non_personalized_ads must be a boolean.');
  if (body.ip_override !== undefined && typeof body.ip_override !== 'string') whole('ip_override', 'VALUE_INVALID', 'ip_override must be an IP address string.');
  for (const key of ['device', 'user_location'] as const) {
    const v = body[key];
    if (v !== undefined && (!isJsonObject(v) || Object.values(v).some((x) => typeof x !== 'string'))) whole(key, 'VALUE_INVALID', `${key} must be an object of strings.`);
  }
  const events = body.events;
  if (!Array.isArray(events) || events.length === 0) {
    whole('events', 'VALUE_REQUIRED', 'Measurement requires at least one event.');
    return { problems, body };
  }
  if (events.length > GA4_MAX_EVENTS) whole('events', 'EXCEEDED_MAX_ENTITIES', `${events.length} events; a request can have at most ${GA4_MAX_EVENTS}.`);
  events.forEach((event: unknown, i) => {
    const at = (validationCode: Ga4ValidationCode, why: string) => problems.push({ index: i, fieldPath: 'events', validationCode, description: `Event at index: [${i}] ${why}` });
    if (!isJsonObject(event)) return at('VALUE_INVALID', 'is not an object.');
    for (const key of Object.keys(event)) if (!['name', 'params', 'timestamp_micros'].includes(key)) at('VALUE_INVALID', `has unknown field [${key}].`);
    const bad = nameProblem('event', event.name, GA4_NAME_MAX, GA4_RESERVED_EVENT_NAMES);
    if (bad) at(bad.code, bad.why);
    const ts = event.timestamp_micros ?? body.timestamp_micros;
    if (event.timestamp_micros !== undefined && !(Number.isSafeInteger(event.timestamp_micros) && (event.timestamp_micros as number) >= 0)) at('VALUE_INVALID', 'has a timestamp_micros that is not a positive integer.');
    else if (typeof ts === 'number') {
      if (nowMs * 1000 - ts > GA4_MAX_AGE_MS * 1000) at('VALUE_OUT_OF_BOUNDS', `has timestamp_micros [${ts}] more than 72 hours in the past.`);
      if (ts > nowMs * 1000) at('VALUE_OUT_OF_BOUNDS', `has timestamp_micros [${ts}] in the future.`);
    }
    const params = event.params ?? {};
    if (!isJsonObject(params)) return at('VALUE_INVALID', 'has params that are not an object.');
    const entries = Object.entries(params);
    if (entries.length > GA4_MAX_PARAMS) at('EXCEEDED_MAX_ENTITIES', `has ${entries.length} params; at most ${GA4_MAX_PARAMS}.`);
    for (const [k, v] of entries) {
      const badName = nameProblem('param', k, GA4_NAME_MAX, GA4_RESERVED_PARAM_NAMES);
      if (badName) at(badName.code, badName.why);
      if (k === 'items') {
        if (!Array.isArray(v)) {
          at('VALUE_INVALID', 'has items that are not an array.');
          continue;
        }
        if (v.length > GA4_MAX_ITEMS) at('EXCEEDED_MAX_ENTITIES', `has ${v.length} items; at most ${GA4_MAX_ITEMS}.`);
        v.forEach((item: unknown, j) => {
          if (!isJsonObject(item)) return at('VALUE_INVALID', `has item [${j}] that is not an object.`);
          if (item.item_id === undefined && item.item_name === undefined) at('VALUE_REQUIRED', `has item [${j}] without item_id or item_name.`);
          const custom = Object.keys(item).filter((p) => !GA4_ITEM_PARAMS.includes(p));
          if (custom.length > GA4_MAX_CUSTOM_ITEM_PARAMS) at('EXCEEDED_MAX_ENTITIES', `has item [${j}] with ${custom.length} custom parameters; at most ${GA4_MAX_CUSTOM_ITEM_PARAMS}.`);
          for (const [p, pv] of Object.entries(item)) {
            const badItemName = nameProblem('item param', p, GA4_NAME_MAX, GA4_RESERVED_PARAM_NAMES);
            if (badItemName) at(badItemName.code, `item [${j}] ${badItemName.why}`);
            if (typeof pv === 'string' ? chars(pv) > GA4_PARAM_VALUE_MAX : typeof pv !== 'number') at('VALUE_OUT_OF_BOUNDS', `has item [${j}] param [${p}] that is not a string of at most ${GA4_PARAM_VALUE_MAX} characters or a number.`);
          }
        });
        continue;
      }
      const max = GA4_LONG_PARAMS[k] ?? GA4_PARAM_VALUE_MAX;
      if (typeof v === 'string' ? chars(v) > max : typeof v !== 'number') at('VALUE_OUT_OF_BOUNDS', `has param [${k}] that is not a string of at most ${max} characters or a number.`);
    }
    if (params.value !== undefined) {
      if (typeof params.currency !== 'string') at('VALUE_REQUIRED', 'has a value but no currency.');
      else if (!CURRENCY.test(params.currency)) at('VALUE_INVALID', `has currency [${params.currency}] that is not an ISO 4217 code.`);
    }
    if (rejected(event, body)) at('VALUE_INVALID', 'was rejected by the test (fault injection).');
  });
  return { problems, body };
}

/** Starts a GA4 fake on a free loopback port. */
export async function startGa4Fake(options: Ga4FakeOptions = {}): Promise<Ga4Fake> {
  const apiSecret = options.apiSecret ?? 'test-api-secret';
  const firebaseAppId = options.firebaseAppId;
  const measurementId = options.measurementId ?? (firebaseAppId ? undefined : 'G-TEST123456');
  const now = options.now ?? (() => Date.now());
  let throttles = 0;
  let retryAfter = 30;
  let failures = 0;
  let failStatus = 503;
  let rejected: (event: Record<string, unknown>, body: Record<string, unknown>) => boolean = () => false;
  const accepted: Ga4AcceptedEvent[] = [];
  const dropped: Ga4DroppedEvent[] = [];

  const googleError = (code: number, status: string, message: string): Reply => ({ status: code, body: JSON.stringify({ error: { code, message, status } }) });

  const respond = (req: ReceivedRequest): Reply => {
    if (throttles > 0) {
      throttles--;
      return { ...googleError(429, 'RESOURCE_EXHAUSTED', 'Too many requests.'), headers: { 'retry-after': String(retryAfter) } };
    }
    if (failures > 0) {
      failures--;
      return googleError(failStatus, failStatus === 503 ? 'UNAVAILABLE' : 'INTERNAL', 'The service is unavailable.');
    }
    const url = new URL(req.url, 'http://fake');
    const debug = url.pathname === '/debug/mp/collect';
    if (!debug && url.pathname !== '/mp/collect') return { status: 404, headers: { 'content-type': 'text/html' }, body: 'Not Found' };
    if (req.method !== 'POST') return { status: 405, headers: { 'content-type': 'text/html' }, body: 'Method Not Allowed' };
    const contentType = req.headers['content-type'];
    const { problems, body } = ga4Problems(url.searchParams, req.text, now(), { apiSecret, measurementId, firebaseAppId, checkSecret: !debug, contentType }, rejected);
    if (debug) {
      return { status: 200, body: JSON.stringify({ validationMessages: problems.map(({ fieldPath, description, validationCode }) => ({ fieldPath, description, validationCode })) }) };
    }
    const events = Array.isArray(body?.events) ? (body!.events as unknown[]) : [];
    const general = problems.filter((p) => p.index === undefined);
    if (general.length > 0 || events.length === 0) {
      const problem = general[0] ?? problems[0]!;
      if (events.length === 0) dropped.push({ request: req.index, problem });
      events.forEach((e, index) => dropped.push({ request: req.index, index, ...(isJsonObject(e) && typeof e.name === 'string' ? { name: e.name } : {}), problem }));
    } else {
      const { events: _events, ...context } = body!;
      events.forEach((e, index) => {
        const event = e as Record<string, unknown>;
        const problem = problems.find((p) => p.index === index);
        if (problem) {
          dropped.push({ request: req.index, index, ...(typeof event.name === 'string' ? { name: event.name } : {}), problem });
          return;
        }
        const ts = (event.timestamp_micros ?? body!.timestamp_micros ?? now() * 1000) as number;
        accepted.push({
          request: req.index,
          ...(measurementId && url.searchParams.get('measurement_id') ? { measurementId } : {}),
          ...(firebaseAppId && url.searchParams.get('firebase_app_id') ? { firebaseAppId } : {}),
          ...(typeof body!.client_id === 'string' ? { clientId: body!.client_id } : {}),
          ...(typeof body!.app_instance_id === 'string' ? { appInstanceId: body!.app_instance_id } : {}),
          ...(typeof body!.user_id === 'string' ? { userId: body!.user_id } : {}),
          timestampMicros: ts,
          name: event.name as string,
          params: (event.params ?? {}) as Record<string, unknown>,
          context,
        });
      });
    }
    // GA4 answers 204 No Content whatever it keeps.
    return { status: 204, headers: { 'content-type': 'text/plain' }, body: '' };
  };

  const receiver = await startTestReceiver({ respond });
  return {
    receiver,
    url: receiver.url,
    apiSecret,
    ...(measurementId ? { measurementId } : {}),
    ...(firebaseAppId ? { firebaseAppId } : {}),
    accepted,
    dropped,
    throttle(times, retryAfterSeconds = 30) {
      throttles = times;
      retryAfter = retryAfterSeconds;
    },
    fail(times, status = 503) {
      failures = times;
      failStatus = status;
    },
    rejectEvents(predicate) {
      rejected = predicate;
    },
    down: () => receiver.close(),
    up: () => receiver.restart(),
    close: () => receiver.close(),
  };
}
