import { readFileSync } from 'node:fs';
import { compileOutputValidator, type SegmentEvent } from '../../mapping/index.js';
import { compileStarter, destinationIntegration, expectGolden, fixtureEvents, GOLDEN_NOW, mapFixtures, requestContext, runFolderTests, sendWith, vendorResponse, wire } from '../../test-support/destinations.js';
import { DESTINATIONS, type VendorRequest } from '../index.js';
import { startSnapchatFake, type SnapchatFake } from './fake.js';
import { classifySnapchat, SNAPCHAT_EVENT_SCHEMA, snapchatDestination, snapchatEventsUrl } from './index.js';

const def = snapchatDestination;
const PIXEL = '45d06e6c-5a2f-4fa4-9d2f-0c1f0ad0c3a1';
const TOKEN = 'test-token';
const credentials = { access_token: TOKEN };
const settings = { pixelId: PIXEL };
const golden = (name: string) => new URL(`./golden/${name}.json`, import.meta.url);
const DAY = 86400;
const nowSec = Math.floor(GOLDEN_NOW / 1000);
const EM = 'bb55843f3da2af28071cd4be7ae1e05989dc6d3ea4833906f7d8fe4be35afad8';

/** The starter Mapping applied to every fixture: the mapped ones and how the others ended. */
/** A valid PURCHASE for fake and end-to-end tests, at GOLDEN_NOW minus `ageSec`. */
function event(id: string, ageSec = 60): Record<string, unknown> {
  return {
    event_name: 'PURCHASE',
    event_time: nowSec - ageSec,
    action_source: 'WEB',
    event_id: id,
    event_source_url: 'https://shop.example.com/checkout/done',
    user_data: { em: [EM], client_ip_address: '203.0.113.24', client_user_agent: 'UA/1.0' },
    custom_data: { currency: 'USD', value: 25, contents: [{ id: 'p-1', quantity: '1', item_price: '25' }] },
  };
}

describe('snapchat starter Mapping', () => {
  it('compiles against the output schema, and every mapped fixture satisfies it', () => {
    const { mapped, notMapped } = mapFixtures(def);
    const validate = compileOutputValidator(SNAPCHAT_EVENT_SCHEMA);
    for (const { name, payload } of mapped) expect([name, validate(payload)]).toEqual([name, undefined]);
    expect(mapped.map((m) => m.name)).toEqual(['01-page', '02-products-searched', '03-product-list-viewed', '04-product-viewed', '05-product-added', '06-checkout-started', '08-order-completed']);
    expect(notMapped).toEqual({
      '07-identify': 'filtered',
      '09-order-refunded': 'filtered',
      '10-group': 'filtered',
      '11-alias': 'filtered',
      '12-screen': 'filtered',
      '13-track-unicode': 'no_matching_rule',
      '14-track-server': 'no_matching_rule',
    });
  });

  it('passes its switchyard test cases (tests/*.test.yaml)', async () => {
    expect(await runFolderTests(new URL('.', import.meta.url))).toEqual({ code: 0, err: '', notPassed: [expect.stringMatching(/^19 passed, 0 failed/)] });
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['web events without a page URL', { type: 'track', event: 'Signed Up', messageId: 'm1', timestamp: '2026-11-20T15:00:00Z', context: { traits: { email: 'a@b.co' } } }, 'required', 'event_source_url'],
    ['events Snap cannot match (no email, phone, or ip with user agent)', { type: 'track', event: 'Signed Up', messageId: 'm1', timestamp: '2026-11-20T15:00:00Z', context: { ip: '203.0.113.1', page: { url: 'https://x.example/' } } }, 'anyOf', 'user_data'],
    ['purchases without any amount', { type: 'track', event: 'Order Completed', messageId: 'm1', timestamp: '2026-11-20T15:00:00Z', properties: { order_id: 'o' }, context: { ip: '203.0.113.1', userAgent: 'UA', page: { url: 'https://x.example/' } } }, 'required', 'custom_data'],
  ])('leaves %s to the output schema (dead letter invalid_output)', (_what, e, rule, at) => {
    const r = compileStarter(def).apply(e as unknown as SegmentEvent);
    if (!r.ok) throw new Error('not mapped');
    const violations = compileOutputValidator(SNAPCHAT_EVENT_SCHEMA)(r.payload);
    expect(violations).toEqual(expect.arrayContaining([expect.objectContaining({ rule })]));
    if (at) expect(violations!.some((v) => v.path.startsWith(at))).toBe(true);
  });
});

describe('snapchat golden requests', () => {
  const ctx = () => requestContext(def, settings, { credentials, now: GOLDEN_NOW });

  it('sends every mapped fixture in one request', async () => {
    const { mapped } = mapFixtures(def);
    const requests = await def.buildRequests(mapped.map((m) => m.payload), ctx());
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expectGolden(golden('batch'), wire(requests[0]!));
  });

  it.each(mapFixtures(def).mapped.map((m) => [m.name, m.payload] as const))('%s alone', async (name, payload) => {
    const [request] = await def.buildRequests([payload], ctx());
    expectGolden(golden(name), wire(request!));
  });

  it('carries the Snap click id and cookie and the hashed phone (Order Completed from a Snap ad click)', async () => {
    const fixture = fixtureEvents().find((f) => f.name === '08-order-completed')!.event as SegmentEvent & { context: Record<string, unknown> };
    const clicked = {
      ...fixture,
      context: { ...fixture.context, traits: { email: 'Jane.Doe+shop@Example.com ', phone: '+1 (312) 555-0142' }, providers: { snapchat: { sccid: '6a1f9b3e-8c2d-4e5f-9a0b-1c2d3e4f5a6b', scid: 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e' } } },
    };
    const r = compileStarter(def).apply(clicked);
    if (!r.ok) throw new Error('not mapped');
    const [request] = await def.buildRequests([r.payload], ctx());
    expectGolden(golden('08-order-completed-click'), wire(request!));
  });

  it('is built as Snap documents it: token in the query string, JSON {data}', async () => {
    const [r] = await def.buildRequests([event('e1')], requestContext(def, settings, { credentials: { access_token: 'a+b/c=' } }));
    expect(r!.method).toBe('POST');
    expect(r!.url).toBe(`https://tr.snapchat.com/v3/${PIXEL}/events?access_token=a%2Bb%2Fc%3D`);
    expect(r!.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(r!.body)).toEqual({ data: [event('e1')] });
  });

  it('uses the Test Event endpoint with validateOnly, under the endpoint path', () => {
    const s = requestContext(def, { pixelId: PIXEL, validateOnly: true, endpoint: 'http://127.0.0.1:9/snap/' }).settings;
    expect(snapchatEventsUrl(s, TOKEN)).toBe(`http://127.0.0.1:9/snap/v3/${PIXEL}/events/validate?access_token=${TOKEN}`);
  });

  it('splits sends above 2000 events, each item in exactly one request', async () => {
    const payloads = Array.from({ length: 4500 }, (_, i) => event(`e${i}`));
    const requests = await def.buildRequests(payloads, requestContext(def, settings, { credentials, batchSize: 2000 }));
    expect(requests.map((r) => JSON.parse(r.body).data.length)).toEqual([2000, 2000, 500]);
    expect(requests.flatMap((r) => r.items)).toEqual(payloads.map((_, i) => i));
  });
});

describe('snapchat fake', () => {
  let fake: SnapchatFake;
  beforeAll(async () => {
    fake = await startSnapchatFake({ pixelId: PIXEL, accessToken: TOKEN, now: () => GOLDEN_NOW });
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const post = (body: unknown, opts: { path?: string; query?: string; contentType?: string } = {}) =>
    fetch(`${fake.url}${opts.path ?? `/v3/${PIXEL}/events`}${opts.query ?? `?access_token=${TOKEN}`}`, {
      method: 'POST',
      headers: { 'content-type': opts.contentType ?? 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));

  it('accepts the golden requests as they are', async () => {
    for (const name of ['batch', '08-order-completed-click']) {
      const g = JSON.parse(readFileSync(golden(name), 'utf8')) as { method: string; url: string; headers: Record<string, string>; body: { data: unknown[] } };
      const res = await fetch(g.url.replace('https://tr.snapchat.com', fake.url), { method: g.method, headers: g.headers, body: JSON.stringify(g.body) });
      expect([name, res.status, ((await res.json()) as Record<string, unknown>).status]).toEqual([name, 200, 'VALID']);
    }
    expect(fake.accepted).toHaveLength(8);
  });

  it.each<[string, Parameters<typeof post>[1], unknown, number]>([
    ['no access_token', { query: '' }, { data: [event('a')] }, 401],
    ['a wrong access_token', { query: '?access_token=nope' }, { data: [event('a')] }, 401],
    ['another pixel', { path: '/v3/other-pixel/events' }, { data: [event('a')] }, 403],
    ['an unknown query parameter', { query: `?access_token=${TOKEN}&debug=1` }, { data: [event('a')] }, 400],
    ['a body that is not JSON', { contentType: 'text/plain' }, 'data', 400],
    ['a field beside data', {}, { data: [event('a')], pixel_id: PIXEL }, 400],
    ['an empty data array', {}, { data: [] }, 400],
    ['more than 2000 events', {}, { data: Array.from({ length: 2001 }, (_, i) => event(`e${i}`)) }, 400],
  ])('refuses the request for %s', async (_what, opts, body, status) => {
    const res = await post(body, opts);
    expect([res.status, res.body.status]).toEqual([status, 'INVALID']);
    expect(fake.accepted).toEqual([]);
  });

  const mutate = (f: (e: Record<string, any>) => void) => {
    const e = event('bad') as Record<string, any>;
    f(e);
    return e;
  };
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['no event_name', mutate((e) => delete e.event_name), 'MISSING_REQUIRED_FIELD', /event_name/],
    ['no action_source', mutate((e) => delete e.action_source), 'MISSING_REQUIRED_FIELD', /action_source/],
    ['a web event without event_source_url', mutate((e) => delete e.event_source_url), 'MISSING_REQUIRED_FIELD', /event_source_url/],
    ['an app event without app_data', mutate((e) => (e.action_source = 'MOBILE_APP')), 'MISSING_REQUIRED_FIELD', /app_data/],
    ['an unknown event name', mutate((e) => (e.event_name = 'Purchase')), 'INVALID_EVENT_NAME', /"Purchase"/],
    ['an unknown action source', mutate((e) => (e.action_source = 'website')), 'INVALID_ACTION_SOURCE', /"website"/],
    ['event_time in milliseconds', mutate((e) => (e.event_time = GOLDEN_NOW)), 'INVALID_TIMESTAMP', /future/],
    ['event_time older than 37 days', mutate((e) => (e.event_time = nowSec - 37 * DAY - 1)), 'INVALID_TIMESTAMP', /older than 37 days/],
    ['an email not hashed', mutate((e) => (e.user_data.em = ['jane@example.com'])), 'UNHASHED_PII', /user_data\.em/],
    ['a phone hash in upper case', mutate((e) => (e.user_data.ph = [EM.toUpperCase()])), 'UNHASHED_PII', /user_data\.ph/],
    ['no email, phone, madid or ip with user agent', mutate((e) => (e.user_data = { client_user_agent: 'UA/1.0', sc_click_id: 'x' })), 'INSUFFICIENT_PII', /Insufficient PII/],
    ['an invalid ip', mutate((e) => (e.user_data.client_ip_address = 'not-an-ip')), 'INVALID_IP_ADDRESS', /client_ip_address/],
    ['an unknown user_data field', mutate((e) => (e.user_data.email = 'x')), 'UNKNOWN_FIELD', /user_data\.email/],
    ['an unknown event field', mutate((e) => (e.timestamp = 1)), 'UNKNOWN_FIELD', /timestamp/],
    ['a purchase without currency', mutate((e) => delete e.custom_data.currency), 'MISSING_PRICE_OR_CURRENCY', /Purchase/],
    ['a purchase without value', mutate((e) => delete e.custom_data.value), 'MISSING_PRICE_OR_CURRENCY', /Purchase/],
    ['a lower-case currency', mutate((e) => (e.custom_data.currency = 'usd')), 'INVALID_CURRENCY', /ISO-4217/],
    ['a fractional quantity', mutate((e) => (e.custom_data.contents[0].quantity = '1.5')), 'INVALID_CONTENTS', /quantity/],
  ])('refuses the whole request for an event with %s, naming it', async (_what, bad, code, message) => {
    const res = await post({ data: [event('good'), bad] });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: 'INVALID', event: 1, errors: { codes: [code] } });
    expect(res.body.errors.error_msgs[0]).toMatch(message);
    expect(fake.accepted).toEqual([]);
  });

  it('reports each event in test mode (/events/validate) and records none', async () => {
    const res = await post({ data: [event('good'), mutate((e) => (e.user_data.em = ['plain@example.com']))] }, { path: `/v3/${PIXEL}/events/validate` });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'INVALID', test_event: true, event_logs: [{ event: 0, status: 'VALID' }, { event: 1, status: 'INVALID', errors: { codes: ['UNHASHED_PII'] } }] });
    expect(fake.accepted).toEqual([]);
    expect(fake.testAccepted.map((e) => e.event_id)).toEqual(['good']);
  });
});

describe('snapchat classify', () => {
  const req = (n: number): VendorRequest => ({ method: 'POST', url: 'https://tr.snapchat.com/v3/p/events?access_token=t', headers: {}, body: '{}', items: Array.from({ length: n }, (_, i) => i) });

  it('200 VALID is a success', () => {
    expect(classifySnapchat(vendorResponse(200, { status: 'VALID', reason: 'Events have been processed successfully.' }), req(3), GOLDEN_NOW)).toEqual({ outcome: 'success' });
  });

  it('400 INVALID splits a batch (Snap names one event, not each bad one)', () => {
    const body = { status: 'INVALID', reason: 'Invalid event', event: 1, errors: { codes: ['UNHASHED_PII'], error_msgs: ['Unhashed PII'] } };
    expect(classifySnapchat(vendorResponse(400, body), req(3), GOLDEN_NOW)).toEqual({ outcome: 'permanent', split: true, error: 'HTTP 400: Snap INVALID: Invalid event (event 1) UNHASHED_PII: Unhashed PII' });
  });

  it('400 INVALID for a single event is permanent with Snap’s reasons', () => {
    const body = { status: 'INVALID', reason: 'Invalid event', event: 0, errors: { codes: ['A', 'B'], error_msgs: ['first', 'second'] } };
    expect(classifySnapchat(vendorResponse(400, body), req(1), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: 'HTTP 400: Snap INVALID: Invalid event (event 0) A: first; B: second' });
  });

  it('a 200 saying INVALID is treated like a 400', () => {
    expect(classifySnapchat(vendorResponse(200, { status: 'INVALID', reason: 'bad' }), req(2), GOLDEN_NOW)).toMatchObject({ outcome: 'permanent', split: true });
  });

  it('a Test Event answer fails the INVALID events alone', () => {
    const body = { status: 'INVALID', test_event: true, reason: 'x', event_logs: [{ event: 0, status: 'VALID' }, { event: 1, status: 'INVALID', errors: { codes: ['INSUFFICIENT_PII'], error_msgs: ['Insufficient PII'] } }] };
    expect(classifySnapchat(vendorResponse(200, body), req(2), GOLDEN_NOW)).toEqual({ outcome: 'success', items: new Map([[1, { outcome: 'permanent', error: 'Snap refused the event: INSUFFICIENT_PII: Insufficient PII' }]]) });
  });

  it('ignores event_logs entries that name no event of the request', () => {
    const body = { status: 'INVALID', test_event: true, event_logs: [{ event: 7, status: 'INVALID' }, { event: 'x', status: 'INVALID' }] };
    expect(classifySnapchat(vendorResponse(200, body), req(2), GOLDEN_NOW)).toEqual({ outcome: 'success' });
  });

  it.each([401, 403])('%i is permanent for the whole request, never split', (status) => {
    expect(classifySnapchat(vendorResponse(status, { status: 'INVALID', reason: 'Unauthorized' }), req(3), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: `HTTP ${status}: Snap INVALID: Unauthorized` });
  });

  it('429 is throttled and retryable, with Retry-After', () => {
    expect(classifySnapchat(vendorResponse(429, { status: 'INVALID', reason: 'Too many requests' }, { 'retry-after': '12' }), req(2), GOLDEN_NOW)).toEqual({
      outcome: 'retryable',
      throttled: true,
      retryAfterMs: 12000,
      error: 'HTTP 429: Snap INVALID: Too many requests',
    });
  });

  it.each([500, 502, 503, 504])('%i is retryable', (status) => {
    const r = classifySnapchat(vendorResponse(status, 'upstream error'), req(2), GOLDEN_NOW);
    expect(r).toEqual({ outcome: 'retryable', error: `HTTP ${status}: upstream error` });
  });

  it('a 200 whose body is not JSON is a success', () => {
    expect(classifySnapchat(vendorResponse(200, ''), req(1), GOLDEN_NOW)).toEqual({ outcome: 'success' });
  });
});

describe('snapchat end to end (HttpDestination → fake)', () => {
  let fake: SnapchatFake;
  beforeAll(async () => {
    fake = await startSnapchatFake({ pixelId: PIXEL, accessToken: TOKEN, now: () => GOLDEN_NOW });
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());
  const send = (payloads: unknown[], extra: Record<string, unknown> = {}) => sendWith(def, { pixelId: PIXEL, endpoint: fake.url, ...extra }, payloads, { credentials, now: GOLDEN_NOW });

  it('delivers the mapped fixtures in one request', async () => {
    const payloads = mapFixtures(def).mapped.map((m) => m.payload);
    const r = await send(payloads);
    expect(r).toMatchObject({ outcome: 'success', status: 200 });
    expect(r.items).toBeUndefined();
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.receiver.requests[0]!.url).toBe(`/v3/${PIXEL}/events?access_token=${TOKEN}`);
    expect(fake.accepted).toEqual(payloads);
  });

  it('splits a refused batch so only the bad event fails, with Snap’s reason', async () => {
    fake.failEvents(['b'], 'Event failed validation');
    const r = await send([event('a'), event('b'), event('c')]);
    expect(r.outcome).toBe('permanent');
    expect(r.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', error: 'HTTP 400: Snap INVALID: Invalid event (event 0) INVALID_EVENT: Event failed validation' }, { outcome: 'success' }]);
    const ids = fake.receiver.requests.map((q) => q.body.data.map((e: { event_id: string }) => e.event_id).join(','));
    expect(ids[0]).toBe('a,b,c');
    expect(ids.slice(1).sort()).toEqual(['a', 'b', 'c']);
    expect(fake.accepted.map((e) => e.event_id).sort()).toEqual(['a', 'c']);
  });

  it('reads per-event results in test mode', async () => {
    const bad = event('b');
    (bad.user_data as Record<string, unknown>).em = ['plain@example.com'];
    const r = await send([event('a'), bad], { validateOnly: true });
    expect(r.outcome).toBe('success');
    expect(r.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', error: expect.stringContaining('UNHASHED_PII') }]);
    expect(fake.receiver.requests[0]!.url).toBe(`/v3/${PIXEL}/events/validate?access_token=${TOKEN}`);
    expect(fake.accepted).toEqual([]);
  });

  it('reports throttling as retryable with the Retry-After delay', async () => {
    fake.throttle(1, 7);
    expect(await send([event('a')])).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 7000, status: 429 });
    expect(fake.accepted).toEqual([]);
  });

  it('refuses events older than 37 days before sending; the others go', async () => {
    const r = await send([event('fresh'), event('stale', 38 * DAY), event('edge', 37 * DAY)]);
    expect(r.outcome).toBe('success');
    expect(r.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', refusal: 'stale_event', error: 'event_time is 38 days old; Snap takes events of the last 37 days only' }, { outcome: 'success' }]);
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.receiver.requests[0]!.body.data.map((e: { event_id: string }) => e.event_id)).toEqual(['fresh', 'edge']);
  });

  it('treats a 5xx as retryable', async () => {
    fake.serverError(1, 503);
    expect(await send([event('a')])).toMatchObject({ outcome: 'retryable', status: 503 });
  });

  it('treats a dead endpoint as retryable', async () => {
    await fake.down();
    try {
      const r = await send([event('a')]);
      expect(r.outcome).toBe('retryable');
      expect(r.error).toMatch(/network error/);
    } finally {
      await fake.up();
    }
  });

  it('is refused for a wrong token (permanent), without the token in the error', async () => {
    const r = await sendWith(def, { pixelId: PIXEL, endpoint: fake.url }, [event('a')], { credentials: { access_token: 'wrong-secret' }, now: GOLDEN_NOW });
    expect(r).toMatchObject({ outcome: 'permanent', status: 401 });
    expect(JSON.stringify(r)).not.toContain('wrong-secret');
  });

  it('needs the access_token key and a pixel id', () => {
    const create = (s: unknown, c: Record<string, string>) => () =>
      DESTINATIONS.snapchat.create({ integration: destinationIntegration('snapchat', 'snapchat', s), credentials: c, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });
    expect(create({ pixelId: PIXEL }, {})).toThrow(/holding access_token/);
    expect(create({}, credentials)).toThrow(/pixelId/);
    expect(create({ pixelId: 'a/b' }, credentials)).toThrow(/pixelId/);
    expect(create({ pixelId: PIXEL }, { access_token: 'two words' })).toThrow(/whitespace/);
  });
});
