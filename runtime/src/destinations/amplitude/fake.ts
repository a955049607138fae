/**
 * A loopback fake of the Amplitude HTTP V2 API (https://amplitude.com/docs/apis/analytics/http-v2)
 * for tests, built on {@link startTestReceiver}. It enforces the documented rules and answers with
 * Amplitude's documented bodies, so a request the fake ingests is a request Amplitude would take:
 *
 * | rule | answer |
 * |---|---|
 * | `POST /2/httpapi` only | 400 `Invalid request path` |
 * | `Content-Type: application/json` ("Headers") | 400 `Invalid JSON request body` (the body is not read as JSON) |
 * | body under 1 MB, at most 2,000 events ("Upload limit") | 413 `Payload too large` |
 * | a JSON object body | 400 `Missing request body` / `Invalid JSON request body` |
 * | `api_key` and `events` present | 400 `Request missing required field` + `missing_field` |
 * | `api_key` is the project's | 400 `Invalid API key: <key>` |
 * | each event an object | 400 `Invalid event JSON` |
 * | `event_type` present, a string, not reserved | 400 `events_with_missing_fields` / `events_with_invalid_fields` |
 * | `user_id`/`device_id` strings, not an invalid id ("anonymous", "null", all-zero UUID…) | 400 `events_with_invalid_fields` |
 * | ids shorter than `options.min_id_length` (default 5) are removed; an event left without any | 400 `events_with_invalid_id_lengths` (or `events_with_missing_fields.device_id` when it had none) |
 * | `time`, `session_id`, `event_id`, `quantity` integers; `price`, `revenue`, `location_*` numbers | 400 `events_with_invalid_fields` |
 * | string fields strings of at most 1,024 characters ("String character limit") | 400 `events_with_invalid_fields` |
 * | `event_properties`, `user_properties`, `groups`, `group_properties` objects, at most 40 levels deep | 400 `events_with_invalid_fields` |
 * | `productId`/`revenueType` only with `price` or `revenue` | 400 `events_with_invalid_fields` |
 * | silenced devices | 400 `Events silenced for device_id` + `silenced_devices`, `silenced_events` |
 * | 30 events per second per user or device (averaged over 30 s, injected clock) | 429 + `eps_threshold`, `throttled_users`/`throttled_devices`, `throttled_events` |
 * | daily quota of a user or device | 429 + `exceeded_daily_quota_users`/`_devices` |
 *
 * `events_with_invalid_fields` (and the other maps) name only the FIRST event per field, as the
 * docs say ("the index of the first event to encounter an error"). A refused request ingests
 * nothing. Ingested events are deduplicated as Amplitude does: same `insert_id` on the same
 * `device_id` (or user, without one) within 7 days is ignored. Success: 200
 * `{code, events_ingested, payload_size_bytes, server_upload_time}`.
 *
 * Faults: {@link AmplitudeFake.throttle} (429 naming every event), {@link AmplitudeFake.fail}
 * (5xx), {@link AmplitudeFake.rejectEvents} (a chosen field of chosen events invalid),
 * {@link AmplitudeFake.silenceDevices}, {@link AmplitudeFake.exceedDailyQuota},
 * {@link AmplitudeFake.down}.
 */
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';
import { AMPLITUDE_DEFAULT_MIN_ID_LENGTH, AMPLITUDE_INVALID_IDS, AMPLITUDE_MAX_BODY_BYTES, AMPLITUDE_MAX_EVENTS, AMPLITUDE_MAX_STRING, AMPLITUDE_PATH, AMPLITUDE_RESERVED_EVENT_TYPES } from './index.js';
import { isJsonObject } from '../http.js';

/** The API key the fake takes unless told another. */
export const AMPLITUDE_FAKE_API_KEY = '0123456789abcdef0123456789abcdef';

/** Events per second a user or device may send (HTTP V2 429 section), averaged over {@link EPS_WINDOW_MS}. */
export const AMPLITUDE_EPS_THRESHOLD = 30;
const EPS_WINDOW_MS = 30_000;
/** How long Amplitude remembers an insert_id ("Event deduplication": 7 days). */
const DEDUP_WINDOW_MS = 7 * 24 * 3_600_000;
/** Deepest nesting of property objects ("Object depth may not exceed 40 layers"). */
const MAX_DEPTH = 40;

const STRING_FIELDS = [
  'app_version', 'platform', 'os_name', 'os_version', 'device_brand', 'device_manufacturer', 'device_model', 'carrier', 'country', 'region', 'city', 'dma', 'language',
  'productId', 'revenueType', 'ip', 'idfa', 'idfv', 'adid', 'android_id', 'android_app_set_id', 'insert_id', 'user_agent', 'partner_id',
] as const;
const INTEGER_FIELDS = ['time', 'quantity', 'event_id', 'session_id'] as const;
const NUMBER_FIELDS = ['price', 'revenue', 'location_lat', 'location_lng'] as const;
const OBJECT_FIELDS = ['event_properties', 'user_properties', 'groups', 'group_properties'] as const;
const INVALID_IDS = new Set<string>(AMPLITUDE_INVALID_IDS);
const RESERVED = new Set<string>(AMPLITUDE_RESERVED_EVENT_TYPES);

/** One event Amplitude ingested, as received (ids shorter than the minimum removed). */
export type AmplitudeEvent = Record<string, unknown> & { event_type: string; user_id?: string; device_id?: string; insert_id?: string };

/** Options of {@link startAmplitudeFake}. */
export interface AmplitudeFakeOptions {
  /** The project API key (default {@link AMPLITUDE_FAKE_API_KEY}). */
  apiKey?: string;
  /** Clock for the throttling window, insert_id deduplication and `server_upload_time` (default Date.now). */
  now?: () => number;
  /** Events per second per user or device before 429 (default 30). */
  epsThreshold?: number;
}

/** The fake: the receiver (every request, `url`) plus what it ingested and fault controls. */
export interface AmplitudeFake {
  receiver: TestReceiver;
  /** Base URL: the `endpoint` setting. */
  url: string;
  /** Events ingested (after deduplication), in order. */
  accepted: AmplitudeEvent[];
  /** Every answer given, in order: status and parsed body. */
  answers: { status: number; body: any }[];
  /** The next `times` requests get a 429 naming all their events as throttled (with `Retry-After: retryAfterSeconds` when given). */
  throttle(times?: number, retryAfterSeconds?: number): void;
  /** The next `times` requests get `status` (default 503; 413 and 403 with Amplitude's bodies). */
  fail(times?: number, status?: number): void;
  /** Events for which `match` returns a field name are refused with that field invalid (every request until reset). */
  rejectEvents(match: (event: Record<string, unknown>) => string | undefined): void;
  /** Events of these device_ids are refused as silenced (400). */
  silenceDevices(deviceIds: string[]): void;
  /** Events of these users/devices are refused as over their daily quota (429). */
  exceedDailyQuota(ids: { users?: string[]; devices?: string[] }): void;
  /** Stops listening (connections refused) / listens again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Forgets requests, ingested events, throttling history and faults. */
  reset(): void;
  close(): Promise<void>;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({ status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });


function depth(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depth));
  if (isJsonObject(v)) return 1 + Math.max(0, ...Object.values(v).map(depth));
  return 0;
}

/** Starts the fake on a free loopback port. */
export async function startAmplitudeFake(options: AmplitudeFakeOptions = {}): Promise<AmplitudeFake> {
  const apiKey = options.apiKey ?? AMPLITUDE_FAKE_API_KEY;
  const now = options.now ?? (() => Date.now());
  const eps = options.epsThreshold ?? AMPLITUDE_EPS_THRESHOLD;
  const accepted: AmplitudeEvent[] = [];
  const answers: { status: number; body: any }[] = [];
  const faults: ((req: ReceivedRequest) => Reply)[] = [];
  const seen = new Map<string, number>(); // dedup key → first ingestion time
  const recent: { at: number; user?: string; device?: string }[] = []; // ingested events, for the EPS window
  let rejectors: ((event: Record<string, unknown>) => string | undefined)[] = [];
  let silenced = new Set<string>();
  let quotaUsers = new Set<string>();
  let quotaDevices = new Set<string>();

  const answer = (req: ReceivedRequest): Reply => {
    const fault = faults.shift();
    if (fault) return fault(req);
    if (req.method !== 'POST' || req.url.split('?')[0] !== AMPLITUDE_PATH) return json(400, { code: 400, error: 'Invalid request path' });
    const bytes = Buffer.byteLength(req.text);
    if (bytes > AMPLITUDE_MAX_BODY_BYTES) return json(413, { code: 413, error: 'Payload too large' });
    if (!/^application\/json\b/i.test(String(req.headers['content-type'] ?? ''))) return json(400, { code: 400, error: 'Invalid JSON request body' });
    if (!req.text) return json(400, { code: 400, error: 'Missing request body' });
    if (!isJsonObject(req.body)) return json(400, { code: 400, error: 'Invalid JSON request body' });
    const body = req.body;
    for (const field of ['api_key', 'events']) {
      if (body[field] === undefined || body[field] === null || body[field] === '') return json(400, { code: 400, error: 'Request missing required field', missing_field: field });
    }
    if (body.api_key !== apiKey) return json(400, { code: 400, error: `Invalid API key: ${String(body.api_key)}` });
    if (!Array.isArray(body.events) || body.events.some((e) => !isJsonObject(e))) return json(400, { code: 400, error: 'Invalid event JSON' });
    const events = body.events as Record<string, unknown>[];
    if (events.length > AMPLITUDE_MAX_EVENTS) return json(413, { code: 413, error: 'Payload too large' });
    const minId = isJsonObject(body.options) && Number.isInteger(body.options.min_id_length) && (body.options.min_id_length as number) > 0 ? (body.options.min_id_length as number) : AMPLITUDE_DEFAULT_MIN_ID_LENGTH;

    // Field checks: each map names the first event per field.
    const invalid: Record<string, number[]> = {};
    const missing: Record<string, number[]> = {};
    const idLengths: Record<string, number[]> = {};
    const mark = (map: Record<string, number[]>, field: string, i: number) => {
      map[field] ??= [i];
    };
    const cleaned = events.map((event, i) => {
      const e: Record<string, unknown> = { ...event };
      const type = e.event_type;
      if (type === undefined || type === null || type === '') mark(missing, 'event_type', i);
      else if (typeof type !== 'string' || type.length > AMPLITUDE_MAX_STRING || RESERVED.has(type)) mark(invalid, 'event_type', i);
      let hadId = false;
      let shortId: string | undefined;
      for (const field of ['user_id', 'device_id'] as const) {
        const v = e[field];
        if (v === undefined || v === null) {
          delete e[field];
          continue;
        }
        hadId = true;
        if (typeof v !== 'string' || v.length > AMPLITUDE_MAX_STRING || INVALID_IDS.has(v)) mark(invalid, field, i);
        else if (v.length < minId) {
          delete e[field]; // "the ID value is removed from the event"
          shortId ??= field;
        }
      }
      if (e.user_id === undefined && e.device_id === undefined && !invalid.user_id?.includes(i) && !invalid.device_id?.includes(i)) {
        if (shortId) mark(idLengths, shortId, i);
        else if (!hadId) mark(missing, 'device_id', i);
      }
      for (const f of INTEGER_FIELDS) if (e[f] !== undefined && (!Number.isInteger(e[f]) || (f === 'time' && (e[f] as number) < 0))) mark(invalid, f, i);
      for (const f of NUMBER_FIELDS) if (e[f] !== undefined && (typeof e[f] !== 'number' || !Number.isFinite(e[f]))) mark(invalid, f, i);
      for (const f of STRING_FIELDS) if (e[f] !== undefined && (typeof e[f] !== 'string' || (e[f] as string).length > AMPLITUDE_MAX_STRING)) mark(invalid, f, i);
      for (const f of OBJECT_FIELDS) if (e[f] !== undefined && (!isJsonObject(e[f]) || depth(e[f]) > MAX_DEPTH)) mark(invalid, f, i);
      for (const f of ['productId', 'revenueType']) if (e[f] !== undefined && e.price === undefined && e.revenue === undefined) mark(invalid, f, i);
      for (const reject of rejectors) {
        const field = reject(event);
        if (field) mark(invalid, field, i);
      }
      return e as AmplitudeEvent;
    });
    if (Object.keys(invalid).length || Object.keys(missing).length || Object.keys(idLengths).length) {
      return json(400, {
        code: 400,
        error: Object.keys(invalid).length ? 'Invalid field values on some events' : 'Request missing required field',
        ...(Object.keys(invalid).length ? { events_with_invalid_fields: invalid } : {}),
        ...(Object.keys(missing).length ? { events_with_missing_fields: missing } : {}),
        ...(Object.keys(idLengths).length ? { events_with_invalid_id_lengths: idLengths } : {}),
      });
    }

    const silencedEvents = cleaned.flatMap((e, i) => (e.device_id !== undefined && silenced.has(e.device_id) ? [i] : []));
    if (silencedEvents.length) {
      return json(400, {
        code: 400,
        eps_threshold: eps,
        error: 'Events silenced for device_id',
        exceeded_daily_quota_devices: {},
        silenced_devices: [...new Set(silencedEvents.map((i) => cleaned[i]!.device_id))],
        silenced_events: silencedEvents,
        throttled_devices: {},
        throttled_events: [],
      });
    }

    const at = now();
    while (recent.length && recent[0]!.at <= at - EPS_WINDOW_MS) recent.shift();
    // Events per user and per device over the window, this request included.
    const perUser = new Map<string, number>();
    const perDevice = new Map<string, number>();
    for (const r of [...recent, ...cleaned.map((e) => ({ user: e.user_id, device: e.device_id }))]) {
      if (r.user !== undefined) perUser.set(r.user, (perUser.get(r.user) ?? 0) + 1);
      if (r.device !== undefined) perDevice.set(r.device, (perDevice.get(r.device) ?? 0) + 1);
    }
    const limit = eps * (EPS_WINDOW_MS / 1000);
    const rate = (n: number) => Math.round(n / (EPS_WINDOW_MS / 1000));
    const overUsers: Record<string, number> = {};
    const overDevices: Record<string, number> = {};
    const quotaU: Record<string, number> = {};
    const quotaD: Record<string, number> = {};
    const throttled: number[] = [];
    cleaned.forEach((e, i) => {
      if (e.user_id !== undefined && quotaUsers.has(e.user_id)) quotaU[e.user_id] = perUser.get(e.user_id)!;
      if (e.device_id !== undefined && quotaDevices.has(e.device_id)) quotaD[e.device_id] = perDevice.get(e.device_id)!;
      const users = e.user_id !== undefined ? perUser.get(e.user_id)! : 0;
      const devices = e.device_id !== undefined ? perDevice.get(e.device_id)! : 0;
      if (users > limit) overUsers[e.user_id!] = rate(users);
      if (devices > limit) overDevices[e.device_id!] = rate(devices);
      if (users > limit || devices > limit) throttled.push(i);
    });
    if (throttled.length || Object.keys(quotaU).length || Object.keys(quotaD).length) {
      return json(429, {
        code: 429,
        error: 'Too many requests for some devices and users',
        eps_threshold: eps,
        throttled_devices: overDevices,
        throttled_users: overUsers,
        throttled_events: throttled,
        exceeded_daily_quota_users: quotaU,
        exceeded_daily_quota_devices: quotaD,
      });
    }

    for (const e of cleaned) {
      recent.push({ at, user: e.user_id, device: e.device_id });
      if (typeof e.insert_id === 'string') {
        const key = `${e.device_id !== undefined ? `d:${e.device_id}` : `u:${e.user_id}`}|${e.insert_id}`;
        const first = seen.get(key);
        if (first !== undefined && at - first < DEDUP_WINDOW_MS) continue; // ignored: a duplicate
        seen.set(key, at);
      }
      accepted.push(e);
    }
    return json(200, { code: 200, events_ingested: cleaned.length, payload_size_bytes: bytes, server_upload_time: at });
  };

  const receiver = await startTestReceiver({
    respond: (req) => {
      const reply = answer(req);
      let parsed: unknown = reply.body;
      try {
        parsed = reply.body ? JSON.parse(reply.body) : undefined;
      } catch {
        // not JSON: keep the text
      }
      answers.push({ status: reply.status ?? 200, body: parsed });
      return reply;
    },
  });

  const fake: AmplitudeFake = {
    receiver,
    get url() {
      return receiver.url;
    },
    accepted,
    answers,
    throttle(times = 1, retryAfterSeconds) {
      const reply = (req: ReceivedRequest): Reply => {
        const events: Record<string, unknown>[] = isJsonObject(req.body) && Array.isArray(req.body.events) ? req.body.events.filter(isJsonObject) : [];
        const users: Record<string, number> = {};
        const devices: Record<string, number> = {};
        for (const e of events) {
          if (typeof e.user_id === 'string') users[e.user_id] = eps + 1;
          if (typeof e.device_id === 'string') devices[e.device_id] = eps + 1;
        }
        const body = { code: 429, error: 'Too many requests for some devices and users', eps_threshold: eps, throttled_devices: devices, throttled_users: users, throttled_events: events.map((_, i) => i) };
        return json(429, body, retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {});
      };
      for (let n = 0; n < times; n++) faults.push(reply);
    },
    fail(times = 1, status = 503) {
      // 413 and 403 with Amplitude's documented bodies; 5xx bodies are not documented: plain text.
      const reply = (): Reply =>
        status === 413
          ? json(413, { code: 413, error: 'Payload too large' })
          : status === 403
            ? json(403, { code: 403, error: 'Forbidden' })
            : { status, headers: { 'content-type': 'text/plain' }, body: status === 503 ? 'Service Unavailable' : 'Internal Server Error' };
      for (let n = 0; n < times; n++) faults.push(reply);
    },
    rejectEvents(match) {
      rejectors.push(match);
    },
    silenceDevices(deviceIds) {
      silenced = new Set([...silenced, ...deviceIds]);
    },
    exceedDailyQuota(ids) {
      quotaUsers = new Set([...quotaUsers, ...(ids.users ?? [])]);
      quotaDevices = new Set([...quotaDevices, ...(ids.devices ?? [])]);
    },
    down: () => receiver.close(),
    up: () => receiver.restart(),
    reset() {
      receiver.requests.length = 0;
      accepted.length = 0;
      answers.length = 0;
      faults.length = 0;
      seen.clear();
      recent.length = 0;
      rejectors = [];
      silenced = new Set();
      quotaUsers = new Set();
      quotaDevices = new Set();
    },
    close: () => receiver.close(),
  };
  return fake;
}
