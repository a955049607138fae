import { createHash } from 'node:crypto';
import { ErrorCodes } from '../../errors.js';
import { compileOutputValidator } from '../../mapping/index.js';
import {
  GOLDEN_NOW,
  compileStarter,
  destinationIntegration,
  expectGolden,
  fixtureEvents,
  requestContext,
  runFolderTests,
  sendWith,
  vendorResponse,
  wire,
} from '../../test-support/destinations.js';
import { DEFINITIONS, DESTINATIONS, type VendorRequest } from '../index.js';
import { startTiktokFake, type TiktokFake } from './fake.js';
import { TIKTOK_MAX_EVENTS, TIKTOK_TRACK_PATH, classifyTiktok, tiktokDestination, tiktokEventSchema } from './index.js';

const PIXEL = 'C4TIKTOKPIXEL0000001';
const TOKEN = 'tt-test-access-token';
const settings = { pixelCode: PIXEL };
const credentials = { access_token: TOKEN };
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const compiled = compileStarter(tiktokDestination);
const outcomes = fixtureEvents().map(({ name, event }) => ({ name, event, result: compiled.apply(event) }));
const mapped = outcomes.flatMap((o) => (o.result.ok ? [{ name: o.name, event: o.event, payload: o.result.payload }] : []));

/** Sends a built request to the fake (its URL's origin replaced), returning TikTok's answer. */
async function post(fake: TiktokFake, r: Pick<VendorRequest, 'method' | 'url' | 'headers' | 'body'>): Promise<{ status: number; answer: any }> {
  const url = new URL(r.url);
  const res = await fetch(`${fake.url}${url.pathname}${url.search}`, { method: r.method, headers: r.headers, body: r.body });
  const text = await res.text();
  let answer: unknown = text;
  try {
    answer = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, answer };
}

describe('tiktok starter Mapping and golden requests', () => {
  it('is the registry entry for tiktok', () => {
    expect(DEFINITIONS.tiktok).toBe(tiktokDestination);
    expect(tiktokDestination).toMatchObject({ type: 'tiktok', settingsField: 'tiktok', batch: { default: 100, max: 1000 } });
  });

  it('maps the fixture e-commerce events to TikTok standard events and drops the rest on purpose', () => {
    const summary = Object.fromEntries(outcomes.map((o) => [o.name, o.result.ok ? o.result.name : (o.result.dropped ?? `failed: ${o.result.failed?.message}`)]));
    expect(summary).toEqual({
      '01-page': 'filtered',
      '02-products-searched': 'Search',
      '03-product-list-viewed': 'filtered',
      '04-product-viewed': 'ViewContent',
      '05-product-added': 'AddToCart',
      '06-checkout-started': 'InitiateCheckout',
      '07-identify': 'filtered',
      '08-order-completed': 'Purchase',
      '09-order-refunded': 'filtered',
      '10-group': 'filtered',
      '11-alias': 'filtered',
      '12-screen': 'filtered',
      '13-track-unicode': 'no_matching_rule',
      '14-track-server': 'no_matching_rule',
    });
  });

  it('writes payloads that satisfy the output schema of a web Integration, with event_id = messageId and event_time in seconds', () => {
    const validate = compileOutputValidator(tiktokEventSchema({ eventSource: 'web' }));
    for (const { name, event, payload } of mapped) {
      expect([name, validate(payload)]).toEqual([name, undefined]);
      expect(payload.event_id).toBe(event.messageId);
      expect(payload.event_time).toBe(Math.floor(Date.parse(String(event.timestamp)) / 1000));
    }
  });

  it('hashes the email of the order as TikTok normalizes it (trimmed, lowercased) and the user id as external_id', () => {
    const order = mapped.find((m) => m.name === '08-order-completed')!.payload as any;
    expect(order.user.email).toBe(sha256('jane.doe+shop@example.com'));
    expect(order.user.external_id).toBe(sha256('u_10452'));
  });

  it('golden: every mapped fixture in one request', async () => {
    const ctx = requestContext(tiktokDestination, settings, { credentials, now: GOLDEN_NOW });
    const requests = await tiktokDestination.buildRequests(
      mapped.map((m) => m.payload),
      ctx,
    );
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual(mapped.map((_, i) => i));
    expectGolden(new URL('./golden/batch.json', import.meta.url), wire(requests[0]!));
  });

  it.each(mapped.map((m) => [m.name, m.payload] as const))('golden: %s alone', async (name, payload) => {
    const ctx = requestContext(tiktokDestination, settings, { credentials, now: GOLDEN_NOW });
    const requests = await tiktokDestination.buildRequests([payload], ctx);
    expect(requests).toHaveLength(1);
    expectGolden(new URL(`./golden/${name}.json`, import.meta.url), wire(requests[0]!));
  });

  it('passes its switchyard test cases', async () => {
    expect(await runFolderTests(new URL('.', import.meta.url))).toEqual({ code: 0, err: '', notPassed: [expect.stringMatching(/^18 passed, 0 failed \(3 files\)$/)] });
  });
});

describe('tiktok buildRequests', () => {
  it('puts at most 1000 events in a request, test_event_code and event_source at the top, the token in Access-Token', async () => {
    const ctx = requestContext(tiktokDestination, { ...settings, testEventCode: 'TEST123', endpoint: 'https://proxy.example/tiktok/' }, { credentials, batchSize: 1000 });
    const payloads = Array.from({ length: TIKTOK_MAX_EVENTS + 1 }, (_, i) => ({ event: 'ViewContent', event_time: 1795187045, event_id: `e${i}` }));
    const requests = await tiktokDestination.buildRequests(payloads, ctx);
    expect(requests.map((r) => r.items.length)).toEqual([1000, 1]);
    expect(requests[1]!.items).toEqual([1000]);
    const [first] = requests.map(wire);
    expect(first).toMatchObject({
      method: 'POST',
      url: `https://proxy.example/tiktok${TIKTOK_TRACK_PATH}`,
      headers: { 'access-token': TOKEN, 'content-type': 'application/json' },
      body: { event_source: 'web', event_source_id: PIXEL, test_event_code: 'TEST123' },
    });
    expect(Object.keys(first!.body)).toEqual(['event_source', 'event_source_id', 'test_event_code', 'data']);
    expect(first!.body.data).toHaveLength(1000);
  });

  it('refuses an Integration without an access token or with one that cannot be a header', () => {
    const create = (creds: Record<string, string>) => DESTINATIONS.tiktok.create({ integration: destinationIntegration('tiktok', 'tiktok', settings), credentials: creds, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });
    expect(() => create({})).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('access_token') }));
    expect(() => create({ access_token: 'abc def' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('access_token') }));
    expect(() => DESTINATIONS.tiktok.create({ integration: destinationIntegration('tiktok', 'tiktok', {}), credentials, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('pixelCode') }),
    );
  });

  it('refuses events older than maxEventAge only when it is set', () => {
    const payload = { event: 'Purchase', event_time: Math.floor(GOLDEN_NOW / 1000) - 8 * 86400 };
    expect(tiktokDestination.refuse!(payload, requestContext(tiktokDestination, settings))).toBeUndefined();
    const ctx = requestContext(tiktokDestination, { ...settings, maxEventAge: '7d' }, { now: GOLDEN_NOW });
    expect(tiktokDestination.refuse!(payload, ctx)).toBe('event_time is 8d 0h old; destination.tiktok.maxEventAge is 7d');
    expect(tiktokDestination.refuse!({ ...payload, event_time: payload.event_time + 86400 + 1 }, ctx)).toBeUndefined();
  });
});

describe('tiktok output schema', () => {
  const base = () => structuredClone(mapped.find((m) => m.name === '08-order-completed')!.payload) as Record<string, any>;

  it.each<[string, (e: Record<string, any>) => void, string | undefined, ((e: Record<string, any>) => void)?]>([
    ['event_time in milliseconds', (e) => (e.event_time *= 1000), 'web', undefined],
    ['an unhashed email', (e) => (e.user.email = 'jane@example.com'), 'web', undefined],
    ['an uppercase hash', (e) => (e.user.email = e.user.email.toUpperCase()), 'web', undefined],
    ['an unsupported currency', (e) => (e.properties.currency = 'XAU'), 'web', undefined],
    ['a web event without page', (e) => delete e.page, 'web', undefined],
    ['an unknown user field', (e) => (e.user.phone_number = e.user.email), 'web', undefined],
    ['an invalid ip', (e) => (e.user.ip = '203.0.113.999'), undefined, undefined],
    ['a custom offline event', (e) => (e.event = 'Wunschliste'), 'offline', undefined],
    ['a standard CRM event', (e) => (e.event = 'Purchase'), 'crm', (e) => Object.assign(e, { event: 'LeadQualified', lead: { lead_id: 'l1' } })],
    ['a CRM event without lead', (e) => delete e.lead, 'crm', (e) => Object.assign(e, { event: 'LeadQualified', lead: { lead_id: 'l1' } })],
  ])('refuses %s', (_, mutate, source, prepare) => {
    const event = base();
    prepare?.(event);
    const schemaOf = (s: string | undefined) => compileOutputValidator(tiktokEventSchema(s ? { eventSource: s as 'web' } : undefined));
    expect(schemaOf(source)(event)).toBeUndefined();
    mutate(event);
    expect(schemaOf(source)(event)).toBeDefined();
  });

  it('takes IPv6 addresses, lists of hashes and custom web event names', () => {
    const event = base();
    Object.assign(event.user, { ip: '2001:db8:1111:a:b0::200', email: [event.user.email, sha256('jane@example.com')] });
    event.event = 'Wunschliste geöffnet';
    expect(compileOutputValidator(tiktokEventSchema({ eventSource: 'web' }))(event)).toBeUndefined();
  });
});

describe('the TikTok fake', () => {
  let fake: TiktokFake;
  beforeAll(async () => {
    fake = await startTiktokFake({ accessToken: TOKEN, eventSources: { [PIXEL]: 'web', '7300000000000000001': 'offline', '7300000000000000002': 'crm' } });
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const build = async (payloads: Record<string, unknown>[], extra: Record<string, unknown> = {}) =>
    (await tiktokDestination.buildRequests(payloads, requestContext(tiktokDestination, { ...settings, endpoint: fake.url, ...extra }, { credentials })))[0]!;

  it('accepts the golden requests and records their events', async () => {
    const request = await build(mapped.map((m) => m.payload));
    expect(await post(fake, request)).toEqual({ status: 200, answer: { code: 0, message: 'OK', request_id: expect.any(String), data: {} } });
    expect(fake.accepted.map((a) => a.event)).toEqual(mapped.map((m) => m.payload));
    expect(fake.accepted.every((a) => a.eventSource === 'web' && a.eventSourceId === PIXEL && a.testEventCode === undefined)).toBe(true);
    for (const m of mapped) {
      const single = await build([m.payload], { testEventCode: 'TEST123' });
      expect((await post(fake, single)).answer.code).toBe(0);
    }
    expect(fake.accepted.at(-1)?.testEventCode).toBe('TEST123');
  });

  type Wire = ReturnType<typeof wire>;
  const valid = async (): Promise<Wire> => wire(await build([structuredClone(mapped.find((m) => m.name === '08-order-completed')!.payload)]));
  const send = (w: Wire, body: unknown = w.body) => post(fake, { method: w.method, url: w.url, headers: w.headers, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it.each<[string, (w: Wire) => unknown, number, string]>([
    ['a wrong access token', (w) => (w.headers['access-token'] = 'nope'), 40105, 'Access token'],
    ['no access token', (w) => delete w.headers['access-token'], 40105, 'Access token'],
    ['another Content-Type', (w) => (w.headers['content-type'] = 'text/plain'), 40002, 'Content-Type'],
    ['an event source the token cannot use', (w) => (w.body.event_source_id = 'C4OTHERPIXEL00000001'), 40001, 'No permission'],
    ['an unknown event_source', (w) => (w.body.event_source = 'store'), 40002, 'event_source'],
    ['an event source of another kind', (w) => (w.body.event_source = 'offline'), 40002, 'is not a offline event source'],
    ['more than 1000 events', (w) => (w.body.data = Array.from({ length: 1001 }, (_, i) => ({ ...w.body.data[0], event_id: `e${i}` }))), 40002, 'at most 1000'],
    ['data that is not a list', (w) => (w.body.data = w.body.data[0]), 40002, 'data must be a list'],
    ['an event without a name', (w) => delete w.body.data[0].event, 40002, 'data[0].event'],
    ['event_time in milliseconds', (w) => (w.body.data[0].event_time *= 1000), 40002, 'event_time'],
    ['event_time as an ISO string', (w) => (w.body.data[0].event_time = '2026-11-20T15:04:20Z'), 40002, 'event_time'],
    ['a web event without event_id', (w) => delete w.body.data[0].event_id, 40002, 'event_id'],
    ['an unhashed email', (w) => (w.body.data[0].user.email = 'jane.doe+shop@example.com'), 40002, 'user.email must be SHA-256'],
    ['an uppercase SHA-256 email', (w) => (w.body.data[0].user.email = w.body.data[0].user.email.toUpperCase()), 40002, 'user.email must be SHA-256'],
    ['an unhashed phone in a list', (w) => (w.body.data[0].user.phone = [sha256('+13125550142'), '+13125550142']), 40002, 'user.phone[1]'],
    ['an unhashed external_id', (w) => (w.body.data[0].user.external_id = 'u_10452'), 40002, 'user.external_id'],
    ['an invalid ip', (w) => (w.body.data[0].user.ip = 'localhost'), 40002, 'user.ip'],
    ['a field of the old API (user.phone_number)', (w) => (w.body.data[0].user.phone_number = sha256('+13125550142')), 40002, 'user.phone_number is not a field'],
    ['an unsupported currency', (w) => (w.body.data[0].properties.currency = 'usd'), 40002, 'currency'],
    ['a value as a string', (w) => (w.body.data[0].properties.value = '25.00'), 40002, 'properties.value'],
    ['a content_id as a number', (w) => (w.body.data[0].properties.contents[0].content_id = 507), 40002, 'contents[0].content_id'],
    ['a web event without page', (w) => delete w.body.data[0].page, 40002, 'page is required'],
    ['a page url without scheme', (w) => (w.body.data[0].page.url = 'shop.example.com/checkout/done'), 40002, 'page.url'],
  ])('refuses %s', async (_, mutate, code, message) => {
    const w = await valid();
    expect((await send(w)).answer.code).toBe(0);
    fake.reset();
    mutate(w);
    const { status, answer } = await send(w);
    expect(status).toBe(200);
    expect(answer).toEqual({ code, message: expect.stringContaining(message), request_id: expect.any(String), data: {} });
    expect(fake.accepted).toHaveLength(0);
  });

  it('refuses a body that is not JSON', async () => {
    const w = await valid();
    expect((await send(w, '{"event_source":')).answer).toMatchObject({ code: 40002, message: expect.stringContaining('not valid JSON') });
  });

  it('takes standard events only for offline sources and custom events only for CRM sources', async () => {
    const w = await valid();
    const event = { event: 'Purchase', event_time: w.body.data[0].event_time, user: w.body.data[0].user, properties: w.body.data[0].properties };
    const body = (source: string, id: string, e: object) => ({ event_source: source, event_source_id: id, data: [e] });
    expect((await send(w, body('offline', '7300000000000000001', event))).answer.code).toBe(0);
    expect((await send(w, body('offline', '7300000000000000001', { ...event, event: 'StoreVisitCustom' }))).answer).toMatchObject({ code: 40002, message: expect.stringContaining('not a standard event') });
    expect((await send(w, body('crm', '7300000000000000002', { ...event, event: 'LeadQualified', lead: { lead_id: 'l-1' } }))).answer.code).toBe(0);
    expect((await send(w, body('crm', '7300000000000000002', { ...event, lead: { lead_id: 'l-1' } }))).answer).toMatchObject({ code: 40002, message: expect.stringContaining('custom events only') });
    expect((await send(w, body('crm', '7300000000000000002', { ...event, event: 'LeadQualified' }))).answer).toMatchObject({ code: 40002, message: expect.stringContaining('lead_id') });
  });

  it('answers 404 for another path and 405 for another method', async () => {
    const w = await valid();
    expect((await post(fake, { ...w, body: JSON.stringify(w.body), url: `${fake.url}/open_api/v1.2/pixel/track/` })).status).toBe(404);
    expect((await post(fake, { ...w, body: JSON.stringify(w.body), url: `${fake.url}/open_api/v1.3/event/track` })).status).toBe(404);
    expect((await post(fake, { ...w, method: 'PUT', body: JSON.stringify(w.body) })).status).toBe(405);
  });

  it('injects throttling, errors and refused events', async () => {
    const w = await valid();
    fake.throttle(1, 30);
    const throttled = await post(fake, { ...w, body: JSON.stringify(w.body) });
    expect(throttled.answer.code).toBe(40100);
    fake.failNext(1, { status: 503 });
    expect((await send(w)).status).toBe(503);
    fake.failNext(1, { code: 50000 });
    expect((await send(w)).answer.code).toBe(50000);
    fake.rejectEvents([w.body.data[0].event_id]);
    expect((await send(w)).answer).toMatchObject({ code: 40002, message: expect.stringContaining(w.body.data[0].event_id) });
    expect(fake.accepted).toHaveLength(0);
  });
});

describe('tiktok classify', () => {
  const one = { items: [0] };
  const many = { items: [0, 1, 2] };
  const ok = (code: number, message = 'x') => vendorResponse(200, { code, message, request_id: '202611201510000001', data: {} });

  it.each<[string, ReturnType<typeof vendorResponse>, { items: number[] }, object]>([
    ['code 0', ok(0, 'OK'), many, { outcome: 'success' }],
    ['code 40100 (rate limit)', ok(40100, 'Too many requests'), many, { outcome: 'retryable', throttled: true, error: 'TikTok code 40100: Too many requests (request_id 202611201510000001)' }],
    ['code 40100 with Retry-After', { ...ok(40100), headers: { 'retry-after': '30' } }, one, { outcome: 'retryable', throttled: true, retryAfterMs: 30_000 }],
    ['code 40002 on several events', ok(40002, 'Invalid parameter'), many, { outcome: 'permanent', split: true, error: expect.stringContaining('40002: Invalid parameter') }],
    ['code 40001 (no permission)', ok(40001), many, { outcome: 'permanent', error: expect.stringContaining('40001') }],
    ['code 40105 (access token)', ok(40105), many, { outcome: 'permanent' }],
    ['code 50000 (system error)', ok(50000), many, { outcome: 'retryable', error: expect.stringContaining('50000') }],
    ['code 20001 (partial success)', ok(20001, 'Partial success'), many, { outcome: 'success', error: expect.stringContaining('20001') }],
    ['an unknown code', ok(12345), many, { outcome: 'retryable' }],
    ['a 200 that is not JSON', vendorResponse(200, '<html>gateway</html>'), many, { outcome: 'retryable', error: expect.stringContaining('without a TikTok answer') }],
    ['a 200 without a code', vendorResponse(200, { ok: true }), many, { outcome: 'retryable' }],
    ['HTTP 503', vendorResponse(503, 'unavailable'), many, { outcome: 'retryable', error: 'HTTP 503: unavailable' }],
    ['HTTP 429', vendorResponse(429, '', { 'retry-after': '5' }), many, { outcome: 'retryable', throttled: true, retryAfterMs: 5000 }],
    ['HTTP 400', vendorResponse(400, 'bad'), many, { outcome: 'permanent' }],
  ])('%s', (_, response, request, expected) => {
    const result = classifyTiktok(response, request, GOLDEN_NOW);
    expect(result).toEqual(expect.objectContaining(expected));
    if (!('split' in expected)) expect(result.split).toBeUndefined();
    if (!('throttled' in expected)) expect(result.throttled).toBeUndefined();
  });

  it('does not split a parameter error of a single event', () => {
    expect(classifyTiktok(ok(40002), one, GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: expect.stringContaining('40002') });
  });
});

describe('TikTok destination over HTTP (sendWith, against the fake)', () => {
  let fake: TiktokFake;
  beforeAll(async () => {
    fake = await startTiktokFake({ accessToken: TOKEN, eventSources: { [PIXEL]: 'web' } });
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const payloads = () => mapped.map((m) => structuredClone(m.payload));
  const tiktok = (extra: Record<string, unknown> = {}) => ({ ...settings, endpoint: fake.url, ...extra });

  it('delivers a batch in one request', async () => {
    const result = await sendWith(tiktokDestination, tiktok(), payloads(), { credentials });
    expect(result).toMatchObject({ outcome: 'success', status: 200 });
    expect(result.items).toBeUndefined();
    expect(fake.requests).toHaveLength(1);
    expect(fake.accepted.map((a) => a.event)).toEqual(mapped.map((m) => m.payload));
  });

  it('fails only the refused event of a batch, with TikTok reason, by sending each event alone once', async () => {
    const batch = payloads();
    fake.rejectEvents([batch[1]!.event_id as string]);
    const result = await sendWith(tiktokDestination, tiktok(), batch, { credentials });
    expect(result.items).toHaveLength(batch.length);
    expect(result.items![1]).toEqual({ outcome: 'permanent', error: expect.stringMatching(/^TikTok code 40002: Invalid parameter: data\[0\] \(event_id .+\) was refused \(request_id \d+\)$/) });
    expect(result.items!.filter((_, i) => i !== 1).every((it) => it.outcome === 'success' && it.error === undefined)).toBe(true);
    expect(fake.requests).toHaveLength(1 + batch.length);
    expect(fake.accepted.map((a) => a.event.event_id)).toEqual(expect.arrayContaining(batch.filter((_, i) => i !== 1).map((p) => p.event_id)));
    expect(fake.accepted).toHaveLength(batch.length - 1);
  });

  it('reports throttling as retryable and throttled, with the delay when one is given', async () => {
    fake.throttle(1);
    expect(await sendWith(tiktokDestination, tiktok(), payloads(), { credentials })).toMatchObject({ outcome: 'retryable', throttled: true, status: 200, error: expect.stringContaining('40100') });
    fake.throttle(1, 60);
    const result = await sendWith(tiktokDestination, tiktok(), payloads(), { credentials });
    expect(result).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 60_000 });
    expect(fake.accepted).toHaveLength(0);
  });

  it('refuses stale events before sending when maxEventAge is set, and sends the others', async () => {
    const batch = payloads();
    const now = (batch[0]!.event_time as number) * 1000 + 7 * 86_400_000 + 1000; // the first event is 7 days and 1 s old
    const result = await sendWith(tiktokDestination, tiktok({ maxEventAge: '7d' }), batch, { credentials, now });
    expect(result.items![0]).toEqual({ outcome: 'permanent', refusal: 'stale_event', error: expect.stringContaining('maxEventAge is 7d') });
    expect(result.items!.slice(1).every((it) => it.outcome === 'success')).toBe(true);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]!.body.data.map((e: { event_id: string }) => e.event_id)).toEqual(batch.slice(1).map((p) => p.event_id));
  });

  it('retries when TikTok fails: HTTP 503, code 50000, or no answer at all', async () => {
    fake.failNext(1, { status: 503 });
    expect(await sendWith(tiktokDestination, tiktok(), payloads(), { credentials })).toMatchObject({ outcome: 'retryable', status: 503 });
    fake.failNext(1, { code: 50000, message: 'Internal service error.' });
    expect(await sendWith(tiktokDestination, tiktok(), payloads(), { credentials })).toMatchObject({ outcome: 'retryable', status: 200, error: expect.stringContaining('50000: Internal service error.') });
    await fake.down();
    try {
      const result = await sendWith(tiktokDestination, tiktok(), payloads(), { credentials });
      expect(result.outcome).toBe('retryable');
      expect(result.error).toMatch(/network error: .*ECONNREFUSED/);
    } finally {
      await fake.up();
    }
    expect(fake.accepted).toHaveLength(0);
  });

  it('fails the whole send for a bad token, without splitting', async () => {
    const result = await sendWith(tiktokDestination, tiktok(), payloads(), { credentials: { access_token: 'revoked-token' } });
    expect(result).toMatchObject({ outcome: 'permanent', error: expect.stringContaining('40105') });
    expect(fake.requests).toHaveLength(1);
  });
});
