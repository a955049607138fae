import { ErrorCodes } from '../../errors.js';
import { compileOutputValidator } from '../../mapping/index.js';
import { destinationIntegration, expectGolden, fixtureEvents, GOLDEN_NOW, mapFixtures, requestContext, sendWith, vendorResponse, wire } from '../../test-support/destinations.js';
import { DESTINATIONS, type ItemResult, type RequestResult, type VendorRequest } from '../index.js';
import { AMPLITUDE_FAKE_API_KEY, startAmplitudeFake, type AmplitudeFake } from './fake.js';
import {
  AMPLITUDE_MAX_BODY_BYTES,
  AMPLITUDE_MAX_EVENTS,
  amplitudeDestination,
  amplitudeOutputSchema,
  buildAmplitudeRequests,
  classifyAmplitude,
  refuseAmplitude,
} from './index.js';

const def = amplitudeDestination;
const credentials = { api_key: AMPLITUDE_FAKE_API_KEY };
const DAY = 86_400_000;

/** The fixture events the starter Mapping turns into Amplitude events (group and alias are dropped), with their payloads. */
const { mapped } = mapFixtures(def);
const payloads = mapped.map((m) => m.payload);

const ctx = (settings: unknown = {}, options: Parameters<typeof requestContext>[2] = {}) => requestContext(def, settings, { credentials, now: GOLDEN_NOW, ...options });

/** A one-item-per-event request carrying `events` (for classify tests). */
const requestOf = (events: Record<string, unknown>[]): VendorRequest => ({
  method: 'POST',
  url: 'https://api2.amplitude.com/2/httpapi',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ api_key: AMPLITUDE_FAKE_API_KEY, events }),
  items: events.map((_, i) => i),
});
const event = (i: number, extra: Record<string, unknown> = {}) => ({ event_type: 'Test', device_id: `device-${i}`, insert_id: `insert-${i}`, time: GOLDEN_NOW, ...extra });
const itemsOf = (r: RequestResult): Record<number, ItemResult> => Object.fromEntries(r.items ?? []);

describe('amplitude starter Mapping', () => {
  it('maps every fixture event but group and alias, and each payload satisfies the output schema', () => {
    expect(mapped.map((m) => m.name)).toEqual(fixtureEvents().map((f) => f.name).filter((n) => n !== '10-group' && n !== '11-alias'));
    const validate = compileOutputValidator(amplitudeOutputSchema(undefined));
    for (const { name, payload } of mapped) expect([name, validate(payload)]).toEqual([name, undefined]);
  });

  it('gives every event its messageId as insert_id', () => {
    const byName = new Map(fixtureEvents().map((f) => [f.name, f.event]));
    for (const { name, payload } of mapped) expect(payload.insert_id).toBe(byName.get(name)!.messageId);
  });
});

describe('amplitude golden requests', () => {
  it('sends every fixture event in one request', () => {
    const requests = buildAmplitudeRequests(payloads, ctx());
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual(payloads.map((_, i) => i));
    expectGolden(new URL('./golden/all-fixtures.json', import.meta.url), wire(requests[0]!));
  });

  it.each(mapped.map((m) => [m.name, m.payload] as const))('sends %s alone', (name, payload) => {
    const requests = buildAmplitudeRequests([payload], ctx());
    expect(requests).toHaveLength(1);
    expectGolden(new URL(`./golden/${name}.json`, import.meta.url), wire(requests[0]!));
  });

  it('goes to the EU endpoint and sends options.min_id_length when set', () => {
    const requests = buildAmplitudeRequests([mapped.find((m) => m.name === '08-order-completed')!.payload], ctx({ endpoint: 'https://api.eu.amplitude.com/', minIdLength: 3 }));
    expect(requests[0]!.url).toBe('https://api.eu.amplitude.com/2/httpapi');
    expectGolden(new URL('./golden/eu-min-id-length.json', import.meta.url), wire(requests[0]!));
  });
});

describe('amplitude buildRequests', () => {
  it(`splits at ${AMPLITUDE_MAX_EVENTS} events`, () => {
    const many = Array.from({ length: AMPLITUDE_MAX_EVENTS + 1 }, (_, i) => event(i));
    const requests = buildAmplitudeRequests(many, ctx());
    expect(requests.map((r) => r.items.length)).toEqual([AMPLITUDE_MAX_EVENTS, 1]);
    expect(requests[1]!.items).toEqual([AMPLITUDE_MAX_EVENTS]);
    expect(JSON.parse(requests[0]!.body).events).toHaveLength(AMPLITUDE_MAX_EVENTS);
  });

  it('splits by body size (under 1 MB each), keeping order, and sends an oversized event alone', () => {
    const big = (i: number, kb: number) => event(i, { event_properties: { blob: 'x'.repeat(kb * 1000) } });
    const list = [big(0, 400), big(1, 400), big(2, 400), big(3, 1200), big(4, 10)];
    const requests = buildAmplitudeRequests(list, ctx());
    expect(requests.map((r) => r.items)).toEqual([[0, 1], [2], [3], [4]]);
    for (const r of requests) {
      const body = JSON.parse(r.body) as { events: { device_id: string }[] };
      expect(body.events.map((e) => e.device_id)).toEqual(r.items.map((i) => `device-${i}`));
      if (r.items[0] !== 3) expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(AMPLITUDE_MAX_BODY_BYTES);
    }
  });

  it('fills a request up to exactly 1 MB', () => {
    const probe = buildAmplitudeRequests([event(0, { event_properties: { blob: '' } })], ctx());
    const room = AMPLITUDE_MAX_BODY_BYTES - Buffer.byteLength(probe[0]!.body);
    const exact = [event(0, { event_properties: { blob: 'x'.repeat(room) } })];
    expect(Buffer.byteLength(buildAmplitudeRequests(exact, ctx())[0]!.body)).toBe(AMPLITUDE_MAX_BODY_BYTES);
    const second = Buffer.byteLength(JSON.stringify(event(1))) + 1; // and its comma
    const fits = [event(0, { event_properties: { blob: 'x'.repeat(room - second) } }), event(1)];
    expect(buildAmplitudeRequests(fits, ctx()).map((r) => r.items)).toEqual([[0, 1]]);
    expect(Buffer.byteLength(buildAmplitudeRequests(fits, ctx())[0]!.body)).toBe(AMPLITUDE_MAX_BODY_BYTES);
    const over = [event(0, { event_properties: { blob: 'x'.repeat(room - second + 1) } }), event(1)];
    expect(buildAmplitudeRequests(over, ctx()).map((r) => r.items)).toEqual([[0], [1]]);
  });

  it('refuses to build without an api_key', () => {
    expect(() => buildAmplitudeRequests(payloads, ctx({}, { credentials: {} }))).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE }));
  });
});

describe('amplitude settings and credentials', () => {
  const create = (settings: unknown, creds: Record<string, string>) =>
    DESTINATIONS.amplitude.create({ integration: destinationIntegration('amplitude', 'amplitude', settings), credentials: creds, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });

  it('needs api_key in the credentials Secret', () => {
    expect(() => create({}, {})).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('api_key') }));
  });

  it('refuses an api_key holding spaces inside', () => {
    expect(() => create({}, { api_key: 'abc def' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('api_key') }));
  });

  it('refuses an endpoint with a query string, and a batch size above 2000', () => {
    expect(() => create({ endpoint: 'https://api2.amplitude.com/?x=1' }, credentials)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE }));
    expect(() =>
      DESTINATIONS.amplitude.create({ integration: destinationIntegration('amplitude', 'amplitude', {}, { batchSize: 2001 }), credentials, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } }),
    ).toThrow(expect.objectContaining({ message: expect.stringContaining('2000') }));
  });

  it('defaults to the US endpoint, a 7-day age limit and batches of 100', async () => {
    const c = ctx();
    expect(c.settings).toEqual({ endpoint: 'https://api2.amplitude.com', maxEventAgeHours: 168 });
    expect(def.batch).toEqual({ default: 100, max: 2000 });
    await create({}, credentials).close();
  });
});

describe('amplitude refuse', () => {
  it('refuses events older than maxEventAgeHours, and none when it is 0', () => {
    const c = ctx();
    expect(refuseAmplitude(event(0, { time: GOLDEN_NOW - 7 * DAY }), c)).toBeUndefined();
    expect(refuseAmplitude(event(0, { time: GOLDEN_NOW - 7 * DAY - 1 }), c)).toMatch(/^time is 7 days old; .*168 hours/);
    expect(refuseAmplitude(event(0, { time: GOLDEN_NOW - 30 * 3_600_000 }), ctx({ maxEventAgeHours: 24 }))).toMatch(/^time is 30 hours old/);
    expect(refuseAmplitude(event(0, { time: GOLDEN_NOW - 400 * DAY }), ctx({ maxEventAgeHours: 0 }))).toBeUndefined();
    expect(refuseAmplitude({ event_type: 'No time', device_id: 'device-1' }, c)).toBeUndefined();
  });
});

describe('amplitude classify', () => {
  const c = ctx();
  const three = requestOf([event(0), event(1), event(2)]);

  it('200 is success', () => {
    expect(classifyAmplitude(vendorResponse(200, { code: 200, events_ingested: 3, payload_size_bytes: 300, server_upload_time: GOLDEN_NOW }), three, c)).toEqual({ outcome: 'success' });
  });

  it('400 with events_with_invalid_fields: only the named event fails, naming the field; the others are retried', () => {
    const r = classifyAmplitude(vendorResponse(400, { code: 400, error: 'Invalid field values on some events', events_with_invalid_fields: { time: [1] } }), three, c);
    expect(r.outcome).toBe('retryable');
    expect(r.throttled).toBeUndefined();
    expect(r.error).toMatch(/^not ingested/);
    expect(itemsOf(r)).toEqual({ 1: { outcome: 'permanent', error: 'HTTP 400: Invalid field values on some events (invalid time)' } });
  });

  it('400 with events_with_missing_fields and events_with_invalid_id_lengths', () => {
    const r = classifyAmplitude(
      vendorResponse(400, { code: 400, error: 'Request missing required field', events_with_missing_fields: { event_type: [0] }, events_with_invalid_id_lengths: { device_id: [2] } }),
      three,
      c,
    );
    expect(r.outcome).toBe('retryable');
    expect(itemsOf(r)).toEqual({
      0: { outcome: 'permanent', error: 'HTTP 400: Request missing required field (missing event_type)' },
      2: { outcome: 'permanent', error: 'HTTP 400: Request missing required field (id too short: device_id)' },
    });
  });

  it('400 naming every event is permanent as a whole', () => {
    const r = classifyAmplitude(vendorResponse(400, { code: 400, error: 'Invalid field values on some events', events_with_invalid_fields: { time: [0, 1], price: [2] } }), three, c);
    expect(r.outcome).toBe('permanent');
    expect(Object.keys(itemsOf(r))).toEqual(['0', '1', '2']);
  });

  it('400 with a request-level missing_field is permanent for all', () => {
    const r = classifyAmplitude(vendorResponse(400, { code: 400, error: 'Request missing required field', missing_field: 'api_key', events_with_missing_fields: { event_type: [2] } }), three, c);
    expect(r).toEqual({ outcome: 'permanent', error: 'HTTP 400: Request missing required field (missing_field api_key)' });
  });

  it('400 Invalid API key is permanent, and the key never reaches the error', () => {
    const r = classifyAmplitude(vendorResponse(400, { code: 400, error: `Invalid API key: ${AMPLITUDE_FAKE_API_KEY}` }), three, c);
    expect(r).toEqual({ outcome: 'permanent', error: 'HTTP 400: Invalid API key: ***' });
  });

  it('400 silenced devices: the silenced events fail (by index and by device id), the others are retried', () => {
    const req = requestOf([event(0), event(1, { device_id: 'spammy-device' }), event(2), event(3, { device_id: 'spammy-device' })]);
    const body = { code: 400, eps_threshold: 30, error: 'Events silenced for device_id', exceeded_daily_quota_devices: {}, silenced_devices: ['spammy-device'], silenced_events: [1], throttled_devices: {}, throttled_events: [] };
    const r = classifyAmplitude(vendorResponse(400, body), req, c);
    expect(r.outcome).toBe('retryable');
    expect(itemsOf(r)).toEqual({
      1: { outcome: 'permanent', error: 'HTTP 400: Events silenced for device_id (device silenced)' },
      3: { outcome: 'permanent', error: 'HTTP 400: Events silenced for device_id (device silenced)' },
    });
  });

  it('400 with throttled_events: those are retried and throttle', () => {
    const body = { code: 400, error: 'Events silenced for device_id', silenced_devices: ['device-0'], silenced_events: [0], throttled_devices: { 'device-2': 100 }, throttled_events: [2] };
    const r = classifyAmplitude(vendorResponse(400, body), three, c);
    expect(r).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 30_000 });
    expect(itemsOf(r)[0]!.outcome).toBe('permanent');
    expect(itemsOf(r)[2]!.outcome).toBe('retryable');
  });

  it('400 naming no event splits a batch and fails a single event', () => {
    const body = { code: 400, error: 'Invalid event JSON' };
    expect(classifyAmplitude(vendorResponse(400, body), three, c)).toEqual({ outcome: 'permanent', split: true, error: 'HTTP 400: Invalid event JSON' });
    expect(classifyAmplitude(vendorResponse(400, body), requestOf([event(0)]), c)).toEqual({ outcome: 'permanent', error: 'HTTP 400: Invalid event JSON' });
  });

  it('413 splits a batch and fails a single event; 403 (firewall) too', () => {
    expect(classifyAmplitude(vendorResponse(413, { code: 413, error: 'Payload too large' }), three, c)).toEqual({ outcome: 'permanent', split: true, error: 'HTTP 413: Payload too large' });
    expect(classifyAmplitude(vendorResponse(413, { code: 413, error: 'Payload too large' }), requestOf([event(0)]), c)).toMatchObject({ outcome: 'permanent', error: expect.stringContaining('larger than Amplitude takes') });
    expect(classifyAmplitude(vendorResponse(403, { code: 403, error: 'Forbidden' }), three, c)).toEqual({ outcome: 'permanent', split: true, error: 'HTTP 403: Forbidden' });
  });

  it('429 is retryable and throttled, pausing 30 s unless Retry-After says otherwise', () => {
    const body = { code: 429, error: 'Too many requests for some devices and users', eps_threshold: 30, throttled_devices: { 'device-1': 31 }, throttled_users: {}, throttled_events: [1] };
    expect(classifyAmplitude(vendorResponse(429, body), three, c)).toEqual({ outcome: 'retryable', throttled: true, retryAfterMs: 30_000, error: 'HTTP 429: Too many requests for some devices and users (eps_threshold 30, throttled events 1)' });
    expect(classifyAmplitude(vendorResponse(429, body, { 'retry-after': '12' }), three, c)).toMatchObject({ retryAfterMs: 12_000, throttled: true });
    expect(classifyAmplitude(vendorResponse(429, ''), three, c)).toEqual({ outcome: 'retryable', throttled: true, retryAfterMs: 30_000, error: 'HTTP 429: Too many requests' });
  });

  it('429 daily quota: events of those users or devices fail, the others are retried', () => {
    const req = requestOf([event(0, { user_id: 'bot-user-1' }), event(1), event(2, { device_id: 'bot-device' })]);
    const body = { code: 429, error: 'Too many requests for some devices and users', eps_threshold: 30, exceeded_daily_quota_users: { 'bot-user-1': 500_001 }, exceeded_daily_quota_devices: { 'bot-device': 500_001 }, throttled_events: [] };
    const r = classifyAmplitude(vendorResponse(429, body), req, c);
    expect(r).toMatchObject({ outcome: 'retryable', throttled: true });
    expect(Object.entries(itemsOf(r)).map(([k, v]) => [k, v.outcome, v.error])).toEqual([
      ['0', 'permanent', expect.stringContaining('daily event quota')],
      ['2', 'permanent', expect.stringContaining('daily event quota')],
    ]);
    const allOver = classifyAmplitude(vendorResponse(429, body), requestOf([event(0, { user_id: 'bot-user-1' })]), c);
    expect(allOver.outcome).toBe('permanent');
    expect(allOver.throttled).toBeUndefined();
  });

  it.each([
    [500, 'retryable'],
    [502, 'retryable'],
    [503, 'retryable'],
    [504, 'retryable'],
    [404, 'permanent'],
    [401, 'permanent'],
  ])('%i is %s', (status, outcome) => {
    expect(classifyAmplitude(vendorResponse(status, 'upstream trouble'), three, c)).toMatchObject({ outcome, error: `HTTP ${status}: upstream trouble` });
  });
});

describe('amplitude fake', () => {
  let fake: AmplitudeFake;
  let clock = GOLDEN_NOW;
  beforeAll(async () => {
    fake = await startAmplitudeFake({ now: () => clock });
  });
  afterAll(async () => fake.close());
  beforeEach(() => {
    fake.reset();
    clock = GOLDEN_NOW;
  });

  const post = async (body: unknown, init: { path?: string; method?: string; contentType?: string; raw?: string } = {}) => {
    const res = await fetch(`${fake.url}${init.path ?? '/2/httpapi'}`, {
      method: init.method ?? 'POST',
      headers: { 'content-type': init.contentType ?? 'application/json' },
      ...((init.method ?? 'POST') === 'GET' ? {} : { body: init.raw ?? JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const upload = (events: unknown[], extra: Record<string, unknown> = {}) => post({ api_key: AMPLITUDE_FAKE_API_KEY, events, ...extra });

  it('ingests the golden requests as they are', async () => {
    const requests = [...buildAmplitudeRequests(payloads, ctx()), ...buildAmplitudeRequests([payloads[0]!], ctx({ minIdLength: 3 }))];
    for (const r of requests) {
      const res = await fetch(r.url.replace('https://api2.amplitude.com', fake.url), { method: r.method, headers: r.headers, body: r.body });
      expect([res.status, await res.json()]).toEqual([200, { code: 200, events_ingested: r.items.length, payload_size_bytes: Buffer.byteLength(r.body), server_upload_time: GOLDEN_NOW }]);
    }
    // The first event came twice (same insert_id and device_id): Amplitude keeps one.
    expect(fake.accepted.map((e) => e.insert_id)).toEqual(payloads.map((p) => p.insert_id));
  });

  it('takes only POST /2/httpapi', async () => {
    expect(await post({}, { path: '/httpapi' })).toMatchObject({ status: 400, body: { code: 400, error: 'Invalid request path' } });
    expect(await post({}, { method: 'GET' })).toMatchObject({ status: 400, body: { error: 'Invalid request path' } });
  });

  it('needs Content-Type application/json and a JSON object body', async () => {
    expect(await post({ api_key: AMPLITUDE_FAKE_API_KEY, events: [event(0)] }, { contentType: 'text/plain' })).toMatchObject({ status: 400, body: { error: 'Invalid JSON request body' } });
    expect(await post(undefined, { raw: '' })).toMatchObject({ status: 400, body: { error: 'Missing request body' } });
    expect(await post(undefined, { raw: '{"api_key":' })).toMatchObject({ status: 400, body: { error: 'Invalid JSON request body' } });
  });

  it('needs api_key and events, and the right key', async () => {
    expect(await post({ events: [event(0)] })).toEqual(expect.objectContaining({ status: 400, body: { code: 400, error: 'Request missing required field', missing_field: 'api_key' } }));
    expect(await post({ api_key: AMPLITUDE_FAKE_API_KEY })).toMatchObject({ status: 400, body: { missing_field: 'events' } });
    expect(await post({ api_key: 'wrong-key', events: [event(0)] })).toMatchObject({ status: 400, body: { error: 'Invalid API key: wrong-key' } });
    expect(await upload([event(0), 'not an event'])).toMatchObject({ status: 400, body: { error: 'Invalid event JSON' } });
  });

  it('refuses more than 2,000 events and bodies over 1 MB with 413', async () => {
    expect(await upload(Array.from({ length: 2001 }, (_, i) => event(i)))).toMatchObject({ status: 413, body: { code: 413, error: 'Payload too large' } });
    expect(await upload([event(0, { event_properties: { blob: 'x'.repeat(AMPLITUDE_MAX_BODY_BYTES) } })])).toMatchObject({ status: 413 });
    expect(fake.accepted).toEqual([]);
  });

  it('needs event_type, not a reserved one', async () => {
    expect(await upload([event(0), event(1, { event_type: undefined })])).toMatchObject({ status: 400, body: { error: 'Request missing required field', events_with_missing_fields: { event_type: [1] } } });
    expect(await upload([event(0, { event_type: '[Amplitude] Revenue' })])).toMatchObject({ status: 400, body: { error: 'Invalid field values on some events', events_with_invalid_fields: { event_type: [0] } } });
  });

  it('refuses ids Amplitude calls invalid', async () => {
    expect(await upload([event(0, { user_id: 'null' })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { user_id: [0] } } });
    expect(await upload([event(0, { device_id: '00000000-0000-0000-0000-000000000000' })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { device_id: [0] } } });
  });

  it('removes ids shorter than min_id_length, and refuses an event left without any', async () => {
    expect(await upload([event(0, { device_id: 'abc', user_id: 'user-12345' })])).toMatchObject({ status: 200 });
    expect(fake.accepted[0]).not.toHaveProperty('device_id');
    expect(await upload([event(1, { device_id: 'abc' })])).toMatchObject({ status: 400, body: { events_with_invalid_id_lengths: { device_id: [0] } } });
    expect(await upload([event(2, { device_id: 'abc' })], { options: { min_id_length: 3 } })).toMatchObject({ status: 200 });
    expect(await upload([event(3, { device_id: undefined })])).toMatchObject({ status: 400, body: { events_with_missing_fields: { device_id: [0] } } });
  });

  it('needs time in integer milliseconds, integer quantity, numeric price', async () => {
    expect(await upload([event(0, { time: '2026-11-20T15:04:01Z' })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { time: [0] } } });
    expect(await upload([event(0, { quantity: 1.5, revenue: 3 })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { quantity: [0] } } });
    expect(await upload([event(0, { price: '18.99' })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { price: [0] } } });
  });

  it('limits strings to 1,024 characters and properties to 40 levels', async () => {
    expect(await upload([event(0, { platform: 'x'.repeat(1025) })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { platform: [0] } } });
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let n = 0; n < 40; n++) deep = { deep };
    expect(await upload([event(0, { event_properties: deep })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { event_properties: [0] } } });
  });

  it('needs price or revenue beside productId and revenueType', async () => {
    expect(await upload([event(0, { productId: 'p-1' })])).toMatchObject({ status: 400, body: { events_with_invalid_fields: { productId: [0] } } });
    expect(await upload([event(0, { revenueType: 'Purchase', revenue: 25 })])).toMatchObject({ status: 200 });
  });

  it('names only the first event per field, and ingests nothing of a refused request', async () => {
    const res = await upload([event(0), event(1, { time: 'soon' }), event(2, { time: 'later' })]);
    expect(res).toMatchObject({ status: 400, body: { events_with_invalid_fields: { time: [1] } } });
    expect(fake.accepted).toEqual([]);
  });

  it('ignores an insert_id seen on the same device within 7 days', async () => {
    await upload([event(0)]);
    await upload([event(0)]);
    expect(fake.accepted).toHaveLength(1);
    clock += 7 * DAY + 1;
    await upload([event(0)]);
    expect(fake.accepted).toHaveLength(2);
  });

  it('throttles a device over 30 events per second (30 s window) with 429', async () => {
    expect(await upload(Array.from({ length: 900 }, (_, i) => event(i, { device_id: 'busy-device' })))).toMatchObject({ status: 200 });
    const res = await upload([event(900, { device_id: 'busy-device' }), event(901)]);
    expect(res).toEqual(expect.objectContaining({ status: 429, body: expect.objectContaining({ code: 429, eps_threshold: 30, throttled_devices: { 'busy-device': 30 }, throttled_events: [0] }) }));
    clock += 30_000;
    expect(await upload([event(900, { device_id: 'busy-device' })])).toMatchObject({ status: 200 });
  });

  it('answers silenced devices and daily quotas in Amplitude shapes', async () => {
    fake.silenceDevices(['spammy-device']);
    expect(await upload([event(0), event(1, { device_id: 'spammy-device' })])).toMatchObject({
      status: 400,
      body: { error: 'Events silenced for device_id', silenced_devices: ['spammy-device'], silenced_events: [1] },
    });
    fake.exceedDailyQuota({ users: ['bot-user-1'] });
    expect(await upload([event(2, { user_id: 'bot-user-1' })])).toMatchObject({ status: 429, body: { exceeded_daily_quota_users: { 'bot-user-1': 1 } } });
  });
});

describe('amplitude end to end (HttpDestination → fake)', () => {
  let fake: AmplitudeFake;
  let settings: { endpoint: string };
  beforeAll(async () => {
    fake = await startAmplitudeFake({ now: () => GOLDEN_NOW });
    settings = { endpoint: fake.url };
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const send = (list: readonly unknown[], options: Parameters<typeof sendWith>[3] = {}) => sendWith(def, settings, list, { credentials, delivery: { batchSize: 100 }, ...options });

  it('delivers every fixture event in one request', async () => {
    const result = await send(payloads);
    expect(result).toMatchObject({ outcome: 'success', status: 200 });
    expect(result.items).toBeUndefined();
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.accepted.map((e) => e.insert_id)).toEqual(payloads.map((p) => p.insert_id));
  });

  it('fails only the event Amplitude names, with its reason; the others are retried, then delivered', async () => {
    const bad = payloads[3]!.insert_id;
    fake.rejectEvents((e) => (e.insert_id === bad ? 'event_properties' : undefined));
    const result = await send(payloads);
    expect(result.outcome).toBe('retryable');
    expect(result.items![3]).toEqual({ outcome: 'permanent', error: 'HTTP 400: Invalid field values on some events (invalid event_properties)' });
    expect(result.items!.filter((it, i) => i !== 3).every((it) => it.outcome === 'retryable' && /^not ingested/.test(it.error ?? ''))).toBe(true);
    expect(result.throttled).toBeUndefined();
    expect(fake.accepted).toEqual([]);
    const again = await send(payloads.filter((p) => p.insert_id !== bad));
    expect(again.outcome).toBe('success');
    expect(fake.accepted).toHaveLength(payloads.length - 1);
  });

  it('reports throttling as retryable with the pause Amplitude asks for', async () => {
    fake.throttle(1, 12);
    expect(await send(payloads.slice(0, 3))).toMatchObject({ outcome: 'retryable', throttled: true, status: 429, retryAfterMs: 12_000 });
    fake.throttle(1);
    expect(await send(payloads.slice(0, 3))).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 30_000 });
    expect(await send(payloads.slice(0, 3))).toMatchObject({ outcome: 'success' });
  });

  it('refuses stale events before sending: they are never in a request', async () => {
    const fresh = payloads[0]!;
    const stale = { ...payloads[1]!, time: GOLDEN_NOW - 8 * DAY };
    const result = await send([stale, fresh]);
    expect(result.outcome).toBe('success');
    expect(result.items![0]).toEqual({ outcome: 'permanent', refusal: 'stale_event', error: expect.stringMatching(/^time is 8 days old/) });
    expect(result.items![1]).toEqual({ outcome: 'success' });
    expect(fake.receiver.requests.flatMap((r) => r.body.events.map((e: { insert_id: string }) => e.insert_id))).toEqual([fresh.insert_id]);
  });

  it('sends each event alone after a 413, so only an oversized one fails', async () => {
    fake.fail(1, 413);
    const result = await send(payloads.slice(0, 3));
    expect(result.outcome).toBe('success');
    expect(fake.receiver.requests.map((r) => r.body.events.length)).toEqual([3, 1, 1, 1]);
    expect(fake.accepted).toHaveLength(3);
  });

  it('retries when Amplitude fails (5xx) or is down', async () => {
    fake.fail(1, 503);
    expect(await send(payloads.slice(0, 2))).toMatchObject({ outcome: 'retryable', status: 503, error: 'HTTP 503: Service Unavailable' });
    fake.fail(1, 500);
    expect(await send(payloads.slice(0, 2))).toMatchObject({ outcome: 'retryable', status: 500 });
    await fake.down();
    try {
      const result = await send(payloads.slice(0, 2));
      expect(result.outcome).toBe('retryable');
      expect(result.error).toMatch(/network error/);
    } finally {
      await fake.up();
    }
    expect(await send(payloads.slice(0, 2))).toMatchObject({ outcome: 'success' });
  });
});
