import { createHash, createHmac } from 'node:crypto';
import { request } from 'undici';
import { ErrorCodes } from '../../errors.js';
import { compileOutputValidator } from '../../mapping/index.js';
import { GOLDEN_NOW, destinationIntegration, expectGolden, fixtureEvents, mapFixtures, requestContext, runFolderTests, sendWith, vendorResponse, wire } from '../../test-support/destinations.js';
import { DEFINITIONS, DESTINATIONS, USER_AGENT, settingsOf, type VendorRequest } from '../index.js';
import { FAKE_META_ACCESS_TOKEN, FAKE_META_PIXEL_ID, startMetaCapiFake, type MetaCapiFake } from './fake.js';
import {
  META_AGE_MARGIN_SECONDS,
  META_DEFAULT_API_VERSION,
  META_EVENT_SCHEMA,
  appSecretProof,
  classifyMetaResponse,
  metaCapiDestination,
  metaRetryAfter,
  metaStaleReason,
} from './index.js';

const def = metaCapiDestination;
const TOKEN = FAKE_META_ACCESS_TOKEN;
const PIXEL = FAKE_META_PIXEL_ID;
const NOW_SEC = Math.floor(GOLDEN_NOW / 1000);
const DAY = 86400;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const validate = compileOutputValidator(META_EVENT_SCHEMA);

/** A valid website event at GOLDEN_NOW, for rules tests. */
function validEvent(over: Record<string, unknown> = {}): Record<string, any> {
  return {
    event_name: 'Purchase',
    event_time: NOW_SEC - 60,
    event_id: 'evt-1',
    action_source: 'website',
    event_source_url: 'https://shop.example.com/checkout/done',
    user_data: { em: sha256('jane@example.com'), client_ip_address: '203.0.113.24', client_user_agent: 'Mozilla/5.0', fbp: 'fb.1.1732000000000.1234567890' },
    custom_data: { value: 25, currency: 'USD', contents: [{ id: 'p-1', quantity: 1, item_price: 25 }] },
    ...over,
  };
}

async function post(fake: MetaCapiFake, body: unknown, o: { path?: string; method?: 'POST' | 'GET'; headers?: Record<string, string>; raw?: string } = {}) {
  const res = await request(`${fake.url}${o.path ?? `/${META_DEFAULT_API_VERSION}/${PIXEL}/events`}`, {
    method: o.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...o.headers },
    ...(o.method === 'GET' ? {} : { body: o.raw ?? JSON.stringify(body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as any };
}

describe('meta-capi definition', () => {
  it('is the registry entry for meta-capi', () => {
    expect(DEFINITIONS['meta-capi']).toBe(def);
    expect((DESTINATIONS['meta-capi'] as unknown as { definition: unknown }).definition).toBe(def);
    expect(DESTINATIONS['meta-capi'].batch).toEqual({ default: 100, max: 1000 });
    expect(def.outputSchema(undefined)).toBe(def.outputSchema(undefined)); // one schema object: compiled once
  });

  it('applies setting defaults and refuses settings Meta cannot take', () => {
    expect(settingsOf(def, { pixelId: PIXEL }, 'test')).toEqual({ pixelId: PIXEL, apiVersion: 'v26.0', endpoint: 'https://graph.facebook.com' });
    expect(() => settingsOf(def, { pixelId: 'my-pixel' }, 'test')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE }));
    expect(() => settingsOf(def, { pixelId: PIXEL, apiVersion: '26' }, 'test')).toThrow(/apiVersion/);
    expect(() => settingsOf(def, { pixelId: PIXEL, testEventCode: 'TEST 1' }, 'test')).toThrow(/testEventCode/);
    expect(() => settingsOf(def, {}, 'test')).toThrow(/pixelId/);
  });

  it('needs an access token of one printable word', () => {
    const create = (credentials: Record<string, string>) =>
      DESTINATIONS['meta-capi'].create({ integration: destinationIntegration('meta-capi', 'metaCapi', { pixelId: PIXEL }), credentials, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });
    expect(() => create({})).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('access_token') }));
    expect(() => create({ access_token: 'EAA bad' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('access_token') }));
    expect(() => create({ access_token: TOKEN, app_secret: 'a b' })).toThrow(/app_secret/);
    return create({ access_token: TOKEN }).close();
  });
});

describe('starter Mapping', () => {
  it('passes its switchyard test cases (tests/*.test.yaml)', async () => {
    expect(await runFolderTests(new URL('.', import.meta.url))).toEqual({ code: 0, err: '', notPassed: [expect.stringMatching(/^23 passed, 0 failed \(5 files\)$/)] });
  });
});

describe('golden requests', () => {
  const mapped = mapFixtures(def).mapped;
  const payloads = mapped.map((m) => m.payload);

  it('maps the fixtures the starter Mapping sends, each valid for the output schema', () => {
    expect(mapped.map((m) => `${m.name}→${m.payload.event_name}`)).toEqual([
      '01-page→PageView',
      '02-products-searched→Search',
      '03-product-list-viewed→ViewContent',
      '04-product-viewed→ViewContent',
      '05-product-added→AddToCart',
      '06-checkout-started→InitiateCheckout',
      '08-order-completed→Purchase',
    ]);
    for (const { name, payload } of mapped) expect([name, validate(payload)]).toEqual([name, undefined]);
    // Every event id is the Segment messageId (deduplication with the Pixel), every time in seconds.
    const events = new Map(fixtureEvents().map((f) => [f.name, f.event]));
    for (const { name, payload } of mapped) {
      const event = events.get(name)!;
      expect(payload.event_id).toBe(event.messageId);
      expect(payload.event_time).toBe(Math.floor(Date.parse(event.timestamp as string) / 1000));
    }
  });

  it('sends all fixtures in one request: POST /v26.0/{pixel}/events?access_token=…, as Meta documents the request', async () => {
    const ctx = requestContext(def, { pixelId: PIXEL }, { credentials: { access_token: TOKEN }, now: GOLDEN_NOW });
    const requests = await def.buildRequests(payloads, ctx);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual(payloads.map((_, i) => i));
    expect(requests[0]!.url).toBe(`https://graph.facebook.com/v26.0/${PIXEL}/events?access_token=${TOKEN}`);
    expect(JSON.parse(requests[0]!.body)).not.toHaveProperty('access_token');
    expectGolden(new URL('./golden/fixtures.json', import.meta.url), wire(requests[0]!));
  });

  it('adds test_event_code and appsecret_proof when set', async () => {
    const ctx = requestContext(def, { pixelId: PIXEL, testEventCode: 'TEST12345', apiVersion: 'v25.0' }, { credentials: { access_token: TOKEN, app_secret: 'fake-app-secret' }, now: GOLDEN_NOW });
    const purchase = mapped.find((m) => m.name === '08-order-completed')!.payload;
    const requests = await def.buildRequests([purchase], ctx);
    expect(new URL(requests[0]!.url).searchParams.get('appsecret_proof')).toBe(createHmac('sha256', 'fake-app-secret').update(TOKEN).digest('hex'));
    expectGolden(new URL('./golden/purchase-test-event.json', import.meta.url), wire(requests[0]!));
  });

  it('never puts more than 1,000 events in a request', async () => {
    const ctx = requestContext(def, { pixelId: PIXEL, endpoint: 'https://proxy.example.com/graph/' }, { credentials: { access_token: TOKEN } });
    const many = Array.from({ length: 2001 }, (_, i) => validEvent({ event_id: `e${i}` }));
    const requests = await def.buildRequests(many, ctx);
    expect(requests.map((r) => JSON.parse(r.body).data.length)).toEqual([1000, 1000, 1]);
    expect(requests.map((r) => [r.items[0], r.items.at(-1)])).toEqual([
      [0, 999],
      [1000, 1999],
      [2000, 2000],
    ]);
    expect(requests[0]!.url).toBe(`https://proxy.example.com/graph/v26.0/${PIXEL}/events?access_token=${TOKEN}`);
  });

  describe('against the fake', () => {
    let fake: MetaCapiFake;
    beforeAll(async () => {
      fake = await startMetaCapiFake({ now: () => GOLDEN_NOW });
    });
    afterAll(() => fake.close());
    beforeEach(() => fake.reset());

    it('accepts the golden requests', async () => {
      for (const settings of [{ pixelId: PIXEL, endpoint: fake.url }, { pixelId: PIXEL, endpoint: fake.url, testEventCode: 'TEST12345', apiVersion: 'v25.0' }]) {
        const ctx = requestContext(def, settings, { credentials: { access_token: TOKEN } });
        const [r] = await def.buildRequests(payloads, ctx);
        const res = await request(r!.url, { method: r!.method, headers: { 'user-agent': USER_AGENT, ...r!.headers }, body: r!.body });
        expect({ status: res.statusCode, body: await res.body.json() }).toEqual({ status: 200, body: { events_received: payloads.length, messages: [], fbtrace_id: expect.any(String) } });
      }
      expect(fake.accepted.map((a) => a.event)).toEqual(payloads);
      expect(fake.duplicates).toBe(payloads.length); // the second request repeats the same events
      expect(fake.receiver.requests.map((r) => new URL(r.url, 'http://x').search)).toEqual([`?access_token=${TOKEN}`, `?access_token=${TOKEN}`]);
    });
  });
});

describe('the fake refuses what Meta refuses', () => {
  let fake: MetaCapiFake;
  let clock = GOLDEN_NOW;
  beforeAll(async () => {
    fake = await startMetaCapiFake({ now: () => clock });
  });
  afterAll(() => fake.close());
  beforeEach(() => {
    fake.reset();
    clock = GOLDEN_NOW;
  });

  const body = (events: unknown[], extra: Record<string, unknown> = {}) => ({ data: events, access_token: TOKEN, ...extra });

  it('accepts a valid event, with the token in the body, the query or the Authorization header', async () => {
    expect(await post(fake, body([validEvent()]))).toMatchObject({ status: 200, json: { events_received: 1, messages: [] } });
    expect(await post(fake, { data: [validEvent({ event_id: 'q' })] }, { path: `/v26.0/${PIXEL}/events?access_token=${TOKEN}` })).toMatchObject({ status: 200 });
    expect(await post(fake, { data: [validEvent({ event_id: 'h' })] }, { headers: { authorization: `Bearer ${TOKEN}` } })).toMatchObject({ status: 200 });
    expect(fake.accepted.map((a) => a.event.event_id)).toEqual(['evt-1', 'q', 'h']);
  });

  it.each<[string, { path?: string; method?: 'GET'; headers?: Record<string, string> }, Record<string, unknown>, Record<string, unknown>]>([
    ['an unknown path', { path: `/v26.0/${PIXEL}/conversions` }, {}, { code: 2500 }],
    ['a malformed version', { path: `/26.0/${PIXEL}/events` }, {}, { code: 2635 }],
    ['an unavailable version', { path: `/v20.0/${PIXEL}/events` }, {}, { code: 2635, message: expect.stringContaining('v26.0') }],
    ['another method', { method: 'GET' }, {}, { code: 100, error_subcode: 33, type: 'GraphMethodException' }],
    ['no access token', {}, { access_token: undefined }, { code: 104, type: 'OAuthException' }],
    ['a wrong access token', {}, { access_token: 'EAAnope' }, { code: 190, type: 'OAuthException' }],
    ['another pixel', { path: `/v26.0/999/events` }, {}, { code: 100, error_subcode: 33, message: expect.stringContaining("'999'") }],
    ['no data', {}, { data: undefined }, { code: 100, message: '(#100) The parameter data is required' }],
    ['an empty data', {}, { data: [] }, { code: 100, error_subcode: 2804019 }],
    ['more than 1,000 events', {}, { data: Array.from({ length: 1001 }, (_, i) => validEvent({ event_id: `e${i}` })) }, { code: 100, error_user_msg: expect.stringContaining('at most 1000') }],
    ['an empty test_event_code', {}, { test_event_code: '' }, { code: 100, error_user_msg: expect.stringContaining('test_event_code') }],
  ])('refuses a request with %s', async (_what, o, extra, error) => {
    const res = await post(fake, body([validEvent()], extra), o);
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: expect.objectContaining({ ...error, message: error.message ?? expect.any(String), type: error.type ?? expect.any(String), fbtrace_id: expect.any(String) }) });
    expect(fake.accepted).toHaveLength(0);
  });

  it('requires appsecret_proof when the app demands it', async () => {
    const strict = await startMetaCapiFake({ appSecret: 's3cret', now: () => GOLDEN_NOW });
    try {
      expect((await post(strict, body([validEvent()]))).json.error).toMatchObject({ code: 100, message: 'API calls from the server require an appsecret_proof argument' });
      expect((await post(strict, body([validEvent()], { appsecret_proof: appSecretProof(TOKEN, 'other') }))).json.error).toMatchObject({ code: 100, message: 'Invalid appsecret_proof provided in the API argument' });
      expect(await post(strict, body([validEvent()], { appsecret_proof: appSecretProof(TOKEN, 's3cret') }))).toMatchObject({ status: 200 });
      expect(strict.accepted).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });

  // Each event rule: the fake refuses the whole request (as Meta does) and our output schema
  // refuses the payload too, so such an event is dead-lettered before it can sink a batch.
  const user = (over: Record<string, unknown>) => ({ user_data: { ...validEvent().user_data, ...over } });
  const custom = (over: Record<string, unknown>) => ({ custom_data: { ...validEvent().custom_data, ...over } });
  it.each<[string, (e: Record<string, any>) => void, string]>([
    ['no event_name', (e) => delete e.event_name, "['event_name'] is required"],
    ['an event_name over 50 characters', (e) => (e.event_name = 'x'.repeat(51)), "['event_name'] must be"],
    ['no event_time', (e) => delete e.event_time, "['event_time'] is required"],
    ['an event_time that is not integer seconds', (e) => (e.event_time = NOW_SEC + 0.5), "['event_time'] must be a Unix timestamp"],
    ['no action_source', (e) => delete e.action_source, "['action_source'] is required"],
    ['an unknown action_source', (e) => (e.action_source = 'web'), "['action_source'] must be one of"],
    ['no user_data', (e) => delete e.user_data, "['user_data'] is required"],
    ['an empty user_data', (e) => (e.user_data = {}), "['user_data'] must be an object"],
    ['an unknown field', (e) => (e.value = 3), "['value'] is not a valid parameter"],
    ['an unknown user_data field (plain email)', (e) => Object.assign(e, user({ email: 'jane@example.com' })), "['email'] is not a valid parameter"],
    ['an unhashed em', (e) => Object.assign(e, user({ em: 'jane@example.com' })), "['em'] must be hashed"],
    ['an upper-case hash', (e) => Object.assign(e, user({ ph: sha256('1312').toUpperCase() })), "['ph'] must be hashed"],
    ['a list with one unhashed value', (e) => Object.assign(e, user({ external_id: [sha256('a'), 'b'] })), "['external_id'] must be hashed"],
    ['a malformed fbc', (e) => Object.assign(e, user({ fbc: 'IwAR2xyz' })), "['fbc'] is malformed"],
    ['an fbp in seconds', (e) => Object.assign(e, user({ fbp: 'fb.1.1732000000.1234567890' })), "['fbp'] is malformed"],
    ['an invalid IP address', (e) => Object.assign(e, user({ client_ip_address: '203.0.113' })), "['client_ip_address'] must be a valid"],
    ['a website event without user agent', (e) => delete e.user_data.client_user_agent, "['client_user_agent'] is required for website events"],
    ['a website event without URL', (e) => delete e.event_source_url, "['event_source_url'] is required for website events"],
    ['an event_source_url that is not http(s)', (e) => (e.event_source_url = 'shop.example.com'), "['event_source_url'] must begin with"],
    ['an app event without app_data', (e) => (e.action_source = 'app'), "['app_data'] is required"],
    ['a Purchase without value', (e) => delete e.custom_data.value, "['value'] is required for Purchase"],
    ['a Purchase without currency', (e) => delete e.custom_data.currency, "['currency'] is required for Purchase"],
    ['a value as a string', (e) => Object.assign(e, custom({ value: '25' })), "['value'] must be a number"],
    ['a currency that is not ISO 4217', (e) => Object.assign(e, custom({ currency: 'US$' })), "['currency'] must be an ISO 4217"],
    ['a content without id', (e) => Object.assign(e, custom({ contents: [{ quantity: 1 }] })), "['contents'][0]['id'] is required"],
    ['an unknown content_type', (e) => Object.assign(e, custom({ content_type: 'sku' })), "['content_type'] must be product"],
  ])('refuses %s (and so does the output schema)', async (_what, mutate, message) => {
    const event = validEvent();
    mutate(event);
    expect(validate(event)).toBeDefined();
    const res = await post(fake, body([validEvent({ event_id: 'ok' }), event]));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 100, error_subcode: 2804019, type: 'OAuthException', error_user_title: 'Server-side API parameter error', message: 'Invalid parameter', is_transient: false });
    expect(res.json.error.error_user_msg).toContain("$['data'][1]");
    expect(res.json.error.error_user_msg).toContain(message);
    expect(fake.accepted).toHaveLength(0); // the good event of the request is refused too
  });

  it('refuses the whole request for an event older than 7 days (62 for physical_store), by its clock', async () => {
    const old = validEvent({ event_id: 'old', event_time: NOW_SEC - 7 * DAY - 1 });
    const res = await post(fake, body([validEvent(), old]));
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 100, error_subcode: 2804003, error_user_title: 'Event Timestamp Too Old' });
    expect(fake.accepted).toHaveLength(0);
    expect(await post(fake, body([validEvent({ event_time: NOW_SEC - 7 * DAY })]))).toMatchObject({ status: 200 });
    const store = { action_source: 'physical_store', event_source_url: undefined };
    expect(await post(fake, body([validEvent({ ...store, event_id: 's1', event_time: NOW_SEC - 30 * DAY })]))).toMatchObject({ status: 200 });
    expect((await post(fake, body([validEvent({ ...store, event_id: 's2', event_time: NOW_SEC - 63 * DAY })]))).json.error).toMatchObject({ error_subcode: 2804003 });
    clock = GOLDEN_NOW + 8 * DAY * 1000; // the same event, a week later
    expect((await post(fake, body([validEvent({ event_id: 'late' })]))).json.error).toMatchObject({ error_subcode: 2804003 });
    expect(fake.accepted.map((a) => a.event.event_id)).toEqual(['evt-1', 's1']);
  });

  it('deduplicates on event_name + event_id within 48 hours, and records test_event_code', async () => {
    expect(await post(fake, body([validEvent(), validEvent(), validEvent({ event_name: 'AddToCart' })], { test_event_code: 'TEST12345' }))).toMatchObject({ status: 200, json: { events_received: 3 } });
    expect(fake.duplicates).toBe(1);
    expect(fake.accepted.map((a) => [a.event.event_name, a.testEventCode])).toEqual([
      ['Purchase', 'TEST12345'],
      ['AddToCart', 'TEST12345'],
    ]);
    clock = GOLDEN_NOW + 49 * 3600 * 1000;
    await post(fake, body([validEvent({ event_time: Math.floor(clock / 1000) })]));
    expect(fake.accepted).toHaveLength(3);
    expect(fake.duplicates).toBe(1);
  });
});

describe('classify', () => {
  const req = (n: number): Pick<VendorRequest, 'items'> => ({ items: Array.from({ length: n }, (_, i) => i) });
  const metaError = (code: number, extra: Record<string, unknown> = {}) => ({ error: { message: `(#${code}) error`, type: 'OAuthException', code, fbtrace_id: 'Trace1', ...extra } });

  it('takes a request whose events_received is the count sent', () => {
    expect(classifyMetaResponse(vendorResponse(200, { events_received: 2, messages: [], fbtrace_id: 'T' }), req(2), GOLDEN_NOW)).toEqual({ outcome: 'success' });
  });

  it('retries a 2xx that does not count every event (Meta deduplicates the replay)', () => {
    expect(classifyMetaResponse(vendorResponse(200, { events_received: 1, messages: [] }), req(2), GOLDEN_NOW)).toEqual({ outcome: 'retryable', error: expect.stringContaining('events_received 1 for 2 events') });
    expect(classifyMetaResponse(vendorResponse(200, 'ok'), req(1), GOLDEN_NOW)).toEqual({ outcome: 'retryable', error: expect.stringContaining('no events_received') });
  });

  it.each([4, 17, 32, 341, 613, 80000, 80003, 80014])('code %i is throttling: retryable and throttled', (code) => {
    expect(classifyMetaResponse(vendorResponse(400, metaError(code)), req(3), GOLDEN_NOW)).toEqual({ outcome: 'retryable', throttled: true, error: expect.stringContaining(`Meta error ${code}`) });
  });

  it('reads the delay from X-Business-Use-Case-Usage (minutes) or Retry-After', () => {
    const usage = JSON.stringify({ '123': [{ type: 'ads_management', call_count: 100, estimated_time_to_regain_access: 3 }, { type: 'x', estimated_time_to_regain_access: 1 }] });
    expect(classifyMetaResponse(vendorResponse(400, metaError(80003), { 'x-business-use-case-usage': usage }), req(1), GOLDEN_NOW)).toMatchObject({ throttled: true, retryAfterMs: 180_000 });
    expect(classifyMetaResponse(vendorResponse(429, 'slow down', { 'retry-after': '7' }), req(1), GOLDEN_NOW)).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 7000 });
    expect(metaRetryAfter({ 'x-business-use-case-usage': 'not json' }, GOLDEN_NOW)).toBeUndefined();
    expect(metaRetryAfter({}, GOLDEN_NOW)).toBeUndefined();
  });

  it.each([1, 2, 368])('code %i is temporary: retryable, not throttled', (code) => {
    expect(classifyMetaResponse(vendorResponse(400, metaError(code)), req(2), GOLDEN_NOW)).toEqual({ outcome: 'retryable', error: expect.stringContaining(`Meta error ${code}`) });
  });

  it('retries is_transient errors and 5xx answers', () => {
    expect(classifyMetaResponse(vendorResponse(400, metaError(9999, { is_transient: true })), req(1), GOLDEN_NOW).outcome).toBe('retryable');
    expect(classifyMetaResponse(vendorResponse(500, metaError(9999)), req(1), GOLDEN_NOW).outcome).toBe('retryable');
    expect(classifyMetaResponse(vendorResponse(503, '<html>down</html>'), req(1), GOLDEN_NOW)).toEqual({ outcome: 'retryable', error: 'HTTP 503: <html>down</html>' });
  });

  it.each([
    [190, 'token'],
    [200, 'permission'],
    [104, 'no token'],
    [2635, 'version'],
  ])('code %i (%s) is permanent, never split', (code) => {
    const r = classifyMetaResponse(vendorResponse(400, metaError(code)), req(5), GOLDEN_NOW);
    expect(r).toEqual({ outcome: 'permanent', error: expect.stringContaining(`Meta error ${code}`) });
  });

  it('splits a multi-event request refused with code 100, since one event sinks it', () => {
    const body = metaError(100, { error_subcode: 2804003, error_user_title: 'Event Timestamp Too Old', error_user_msg: 'too far in the past' });
    expect(classifyMetaResponse(vendorResponse(400, body), req(2), GOLDEN_NOW)).toEqual({
      outcome: 'permanent',
      split: true,
      error: 'HTTP 400: Meta error 100/2804003 (OAuthException): Event Timestamp Too Old: too far in the past [fbtrace_id Trace1]',
    });
    expect(classifyMetaResponse(vendorResponse(400, body), req(1), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: expect.stringContaining('too far in the past') });
    // Subcode 33: the pixel is unknown or not allowed; sending events one by one cannot help.
    expect(classifyMetaResponse(vendorResponse(400, metaError(100, { error_subcode: 33 })), req(2), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: expect.stringContaining('100/33') });
  });

  it('falls back on the status for other answers', () => {
    expect(classifyMetaResponse(vendorResponse(404, 'Not Found'), req(1), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: 'HTTP 404: Not Found' });
    expect(classifyMetaResponse(vendorResponse(400, { error: 'text' }), req(1), GOLDEN_NOW).outcome).toBe('permanent');
  });

  it('classifies every error shape the fake answers', async () => {
    const fake = await startMetaCapiFake({ now: () => GOLDEN_NOW });
    try {
      const answers: { res: Awaited<ReturnType<typeof post>>; sent: number }[] = [];
      const send = async (data: unknown[], token = TOKEN) => answers.push({ res: await post(fake, { data, access_token: token }), sent: data.length });
      fake.throttle(1, { code: 4, minutes: 1 });
      await send([validEvent()]);
      fake.serverError(1);
      await send([validEvent()]);
      await send([validEvent()], 'wrong');
      await send([validEvent(), validEvent({ event_time: 1 })]);
      await send([validEvent({ event_id: 'ok' })]);
      const outcomes = answers.map(({ res, sent }) => classifyMetaResponse({ status: res.status, headers: res.headers, body: JSON.stringify(res.json) }, req(sent), GOLDEN_NOW));
      expect(outcomes).toEqual([
        { outcome: 'retryable', throttled: true, retryAfterMs: 60_000, error: expect.stringContaining('Meta error 4') },
        { outcome: 'retryable', error: expect.stringContaining('Meta error 2') },
        { outcome: 'permanent', error: expect.stringContaining('Meta error 190') },
        { outcome: 'permanent', split: true, error: expect.stringContaining('Meta error 100/2804003') },
        { outcome: 'success' },
      ]);
    } finally {
      await fake.close();
    }
  });
});

describe('refuse', () => {
  const ctx = requestContext(def, { pixelId: PIXEL }, { credentials: { access_token: TOKEN }, now: GOLDEN_NOW });

  it('refuses events older than 7 days (less a minute in flight), 62 days for physical_store', () => {
    expect(def.refuse!({ event_time: NOW_SEC - 7 * DAY + META_AGE_MARGIN_SECONDS }, ctx)).toBeUndefined();
    expect(def.refuse!({ event_time: NOW_SEC - 7 * DAY + META_AGE_MARGIN_SECONDS - 1 }, ctx)).toBe('event_time is less than 60 s from the age limit; Meta takes events up to 7 days old');
    expect(def.refuse!({ event_time: NOW_SEC - 7 * DAY - 1 }, ctx)).toBe('event_time is 7 days old; Meta takes events up to 7 days old');
    expect(def.refuse!({ event_time: NOW_SEC - 8 * DAY }, ctx)).toBe('event_time is 8 days old; Meta takes events up to 7 days old');
    expect(def.refuse!({ event_time: NOW_SEC - 30 * DAY, action_source: 'physical_store' }, ctx)).toBeUndefined();
    expect(def.refuse!({ event_time: NOW_SEC - 63 * DAY, action_source: 'physical_store' }, ctx)).toBe('event_time is 63 days old; Meta takes events up to 62 days old for physical_store');
  });

  it('leaves events in the future and payloads without a numeric event_time to Meta and the output schema', () => {
    expect(def.refuse!({ event_time: NOW_SEC + DAY }, ctx)).toBeUndefined();
    expect(metaStaleReason({ event_time: '1' }, GOLDEN_NOW)).toBeUndefined();
    expect(metaStaleReason({}, GOLDEN_NOW)).toBeUndefined();
  });
});

describe('end to end against the fake', () => {
  let fake: MetaCapiFake;
  beforeAll(async () => {
    fake = await startMetaCapiFake({ now: () => GOLDEN_NOW });
  });
  afterAll(() => fake.close());
  beforeEach(() => fake.reset());

  const settings = () => ({ pixelId: PIXEL, endpoint: fake.url });
  const credentials = { access_token: TOKEN };
  const events = (n: number, prefix = 'e') => Array.from({ length: n }, (_, i) => validEvent({ event_id: `${prefix}${i}` }));

  it('delivers the mapped fixtures in one request', async () => {
    const payloads = mapFixtures(def).mapped.map((m) => m.payload);
    const result = await sendWith(def, settings(), payloads, { credentials });
    expect(result).toMatchObject({ outcome: 'success', status: 200 });
    expect(result.items).toBeUndefined();
    expect(fake.accepted.map((a) => a.event)).toEqual(payloads);
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.receiver.requests[0]).toMatchObject({ method: 'POST', url: `/v26.0/${PIXEL}/events?access_token=${TOKEN}`, headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT } });
  });

  it('sends batches of at most 1,000 events', async () => {
    const result = await sendWith(def, settings(), events(1001), { credentials, delivery: { batchSize: 1000 } });
    expect(result.outcome).toBe('success');
    expect(fake.receiver.requests.map((r) => r.body.data.length).sort((a, b) => a - b)).toEqual([1, 1000]); // sent at once, in any order
    expect(fake.accepted).toHaveLength(1001);
  });

  it('fails only the bad event of a refused batch, with Meta’s reason', async () => {
    fake.rejectEvents(['e1'], 'Invalid event (test)');
    const result = await sendWith(def, settings(), events(3), { credentials });
    expect(result.outcome).toBe('permanent');
    expect(result.items).toEqual([
      { outcome: 'success' },
      { outcome: 'permanent', error: expect.stringContaining("Meta error 100/2804019 (OAuthException): Server-side API parameter error: $['data'][0]: Invalid event (test)") },
      { outcome: 'success' },
    ]);
    expect(fake.accepted.map((a) => a.event.event_id)).toEqual(['e0', 'e2']);
    expect(fake.receiver.requests.map((r) => r.body.data.map((e: any) => e.event_id))).toEqual(expect.arrayContaining([['e0', 'e1', 'e2'], ['e0'], ['e1'], ['e2']]));
    expect(fake.receiver.requests).toHaveLength(4);
  });

  it('reports throttling as retryable, throttled, with Meta’s delay; the next send goes through', async () => {
    fake.throttle(1, { code: 17, minutes: 2 });
    const throttled = await sendWith(def, settings(), events(2), { credentials });
    expect(throttled).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 120_000, status: 400, error: expect.stringContaining('(#17) User request limit reached') });
    expect(fake.accepted).toHaveLength(0);
    fake.throttle(1, { code: 80003 });
    const again = await sendWith(def, settings(), events(2), { credentials });
    expect(again).toMatchObject({ outcome: 'retryable', throttled: true });
    expect(again.retryAfterMs).toBeUndefined();
    expect(await sendWith(def, settings(), events(2), { credentials })).toMatchObject({ outcome: 'success' });
    expect(fake.accepted).toHaveLength(2);
  });

  it('refuses stale events before sending; they are never in the request', async () => {
    const stale = validEvent({ event_id: 'stale', event_time: NOW_SEC - 8 * DAY });
    const storeOk = validEvent({ event_id: 'store', action_source: 'physical_store', event_time: NOW_SEC - 30 * DAY });
    const result = await sendWith(def, settings(), [stale, validEvent({ event_id: 'fresh' }), storeOk], { credentials, now: GOLDEN_NOW });
    expect(result.outcome).toBe('success');
    expect(result.items).toEqual([
      { outcome: 'permanent', refusal: 'stale_event', error: 'event_time is 8 days old; Meta takes events up to 7 days old' },
      { outcome: 'success' },
      { outcome: 'success' },
    ]);
    expect(fake.receiver.requests.map((r) => r.body.data.map((e: any) => e.event_id))).toEqual([['fresh', 'store']]);
    const onlyStale = await sendWith(def, settings(), [stale], { credentials, now: GOLDEN_NOW });
    expect(onlyStale.items).toEqual([expect.objectContaining({ refusal: 'stale_event' })]);
    expect(fake.receiver.requests).toHaveLength(1);
  });

  it('retries when Meta fails (5xx) or is down', async () => {
    fake.serverError(1, { status: 503, body: '<html>Service Unavailable</html>' });
    expect(await sendWith(def, settings(), events(1), { credentials })).toMatchObject({ outcome: 'retryable', status: 503, error: 'HTTP 503: <html>Service Unavailable</html>' });
    fake.serverError(1);
    expect(await sendWith(def, settings(), events(1), { credentials })).toMatchObject({ outcome: 'retryable', status: 500, error: expect.stringContaining('Meta error 2') });
    await fake.down();
    try {
      const down = await sendWith(def, settings(), events(2), { credentials });
      expect(down.outcome).toBe('retryable');
      expect(down.error).toMatch(/network error: .*ECONNREFUSED/);
      expect(down.status).toBeUndefined();
    } finally {
      await fake.up();
    }
    expect(fake.accepted).toHaveLength(0);
  });

  it('fails for good with a wrong token, without splitting the batch', async () => {
    const result = await sendWith(def, settings(), events(3), { credentials: { access_token: 'EAAwrong' } });
    expect(result).toMatchObject({ outcome: 'permanent', status: 400, error: expect.stringContaining('Meta error 190') });
    expect(fake.receiver.requests).toHaveLength(1);
  });

  it('retries a send Meta did not fully count; the replay is deduplicated', async () => {
    fake.miscount(1);
    const payloads = events(2);
    expect(await sendWith(def, settings(), payloads, { credentials })).toMatchObject({ outcome: 'retryable', error: expect.stringContaining('events_received 1 for 2') });
    expect(await sendWith(def, settings(), payloads, { credentials })).toMatchObject({ outcome: 'success' });
    expect(fake.accepted).toHaveLength(2);
    expect(fake.duplicates).toBe(2);
  });

  it('sends appsecret_proof and test_event_code when configured', async () => {
    const strict = await startMetaCapiFake({ appSecret: 's3cret', now: () => GOLDEN_NOW });
    try {
      const result = await sendWith(def, { pixelId: PIXEL, endpoint: strict.url, testEventCode: 'TEST777' }, events(1), { credentials: { access_token: TOKEN, app_secret: 's3cret' } });
      expect(result.outcome).toBe('success');
      expect(strict.accepted.map((a) => a.testEventCode)).toEqual(['TEST777']);
      const missing = await sendWith(def, { pixelId: PIXEL, endpoint: strict.url }, events(1, 'm'), { credentials });
      expect(missing).toMatchObject({ outcome: 'permanent', error: expect.stringContaining('appsecret_proof') });
    } finally {
      await strict.close();
    }
  });
});
