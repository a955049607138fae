import { readFileSync } from 'node:fs';
import { compileOutputValidator, type SegmentEvent } from '../../mapping/index.js';
import { compileStarter, destinationIntegration, expectGolden, fixtureEvents, GOLDEN_NOW, mapFixtures, requestContext, runFolderTests, sendWith, vendorResponse, wire } from '../../test-support/destinations.js';
import { DESTINATIONS, type VendorRequest } from '../index.js';
import { startPinterestFake, type PinterestFake } from './fake.js';
import { classifyPinterest, PINTEREST_EVENT_SCHEMA, pinterestDestination, pinterestEventsUrl } from './index.js';

const def = pinterestDestination;
const ACCOUNT = '549755885175';
const TOKEN = 'test-token';
const credentials = { access_token: TOKEN };
const settings = { adAccountId: ACCOUNT };
const golden = (name: string) => new URL(`./golden/${name}.json`, import.meta.url);
const DAY = 86400;
const nowSec = Math.floor(GOLDEN_NOW / 1000);

/** The starter Mapping applied to every fixture: the mapped ones (name → payload) and how the others ended. */
/** A valid event for fake and classify tests, at GOLDEN_NOW minus `ageSec`. */
function event(id: string, ageSec = 60): Record<string, unknown> {
  return {
    event_name: 'checkout',
    action_source: 'web',
    event_time: nowSec - ageSec,
    event_id: id,
    user_data: { client_ip_address: '203.0.113.24', client_user_agent: 'UA/1.0', em: ['bb55843f3da2af28071cd4be7ae1e05989dc6d3ea4833906f7d8fe4be35afad8'] },
    custom_data: { currency: 'USD', value: '25', contents: [{ id: 'p-1', item_price: '25', quantity: 1 }] },
  };
}

describe('pinterest starter Mapping', () => {
  it('compiles against the output schema, and every mapped fixture satisfies it', () => {
    const { mapped, notMapped } = mapFixtures(def);
    const validate = compileOutputValidator(PINTEREST_EVENT_SCHEMA);
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
    expect(await runFolderTests(new URL('.', import.meta.url))).toEqual({ code: 0, err: '', notPassed: [expect.stringMatching(/^20 passed, 0 failed/)] });
  });

  it('refuses an event without user_data Pinterest can match (no email, no ip + user agent)', () => {
    const validate = compileOutputValidator(PINTEREST_EVENT_SCHEMA);
    const r = compileStarter(def).apply({ type: 'track', event: 'Signed Up', messageId: 'm1', timestamp: '2026-11-20T15:00:00Z', context: { ip: '203.0.113.1' } } as SegmentEvent);
    expect(r.ok).toBe(true);
    expect(validate(r.ok ? r.payload : {})).toEqual(expect.arrayContaining([expect.objectContaining({ rule: 'anyOf', path: 'user_data' })]));
  });
});

describe('pinterest golden requests', () => {
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

  it('carries the epik click id and hashed phone (Order Completed from a Pinterest ad click)', async () => {
    const fixture = fixtureEvents().find((f) => f.name === '08-order-completed')!.event as SegmentEvent & { context: Record<string, unknown> };
    const clicked = { ...fixture, context: { ...fixture.context, traits: { email: 'Jane.Doe+shop@Example.com ', phone: '+1 (312) 555-0142' }, providers: { pinterest: { epik: 'dj0yJnU9b2JDcFFHekV4SHJNcmVrbFBkUEdqakh0akdUT1VjVVUmcD0yJm49cnNBQ3F2Q2dOVDBXWWhkWklrUGxBUSZ0PUFBQUFBR1BaY3Bv' } } } };
    const r = compileStarter(def).apply(clicked);
    if (!r.ok) throw new Error('not mapped');
    const [request] = await def.buildRequests([r.payload], ctx());
    expectGolden(golden('08-order-completed-epik'), wire(request!));
  });

  it('is built as Pinterest documents it: URL, Bearer token, JSON {data}', async () => {
    const [r] = await def.buildRequests([event('e1')], ctx());
    expect(r!.method).toBe('POST');
    expect(r!.url).toBe(`https://api.pinterest.com/v5/ad_accounts/${ACCOUNT}/events`);
    expect(r!.headers).toEqual({ authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' });
    expect(JSON.parse(r!.body)).toEqual({ data: [event('e1')] });
  });

  it('adds ?test=true in test mode and keeps the endpoint path', () => {
    const s = requestContext(def, { adAccountId: ACCOUNT, test: true, endpoint: 'http://127.0.0.1:9/proxy/' }).settings;
    expect(pinterestEventsUrl(s)).toBe(`http://127.0.0.1:9/proxy/v5/ad_accounts/${ACCOUNT}/events?test=true`);
  });

  it('splits sends above 1000 events, each item in exactly one request', async () => {
    const payloads = Array.from({ length: 2500 }, (_, i) => event(`e${i}`));
    const requests = await def.buildRequests(payloads, requestContext(def, settings, { credentials, batchSize: 1000 }));
    expect(requests.map((r) => JSON.parse(r.body).data.length)).toEqual([1000, 1000, 500]);
    expect(requests.flatMap((r) => r.items)).toEqual(payloads.map((_, i) => i));
    expect(JSON.parse(requests[2]!.body).data[0].event_id).toBe('e2000');
  });
});

describe('pinterest fake', () => {
  let fake: PinterestFake;
  beforeAll(async () => {
    fake = await startPinterestFake({ adAccountId: ACCOUNT, accessToken: TOKEN, now: () => GOLDEN_NOW });
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const post = (body: unknown, opts: { path?: string; token?: string; query?: string; contentType?: string; method?: string } = {}) =>
    fetch(`${fake.url}${opts.path ?? `/v5/ad_accounts/${ACCOUNT}/events`}${opts.query ?? ''}`, {
      method: opts.method ?? 'POST',
      headers: { authorization: `Bearer ${opts.token ?? TOKEN}`, 'content-type': opts.contentType ?? 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> }));

  it('accepts the golden requests as they are', async () => {
    for (const name of ['batch', '08-order-completed-epik']) {
      const g = JSON.parse(readFileSync(golden(name), 'utf8')) as { method: string; url: string; headers: Record<string, string>; body: { data: unknown[] } };
      const url = g.url.replace('https://api.pinterest.com', fake.url);
      const res = await fetch(url, { method: g.method, headers: g.headers, body: JSON.stringify(g.body) });
      const answer = (await res.json()) as Record<string, unknown>;
      expect([name, res.status, answer.num_events_processed]).toEqual([name, 200, g.body.data.length]);
    }
    expect(fake.accepted).toHaveLength(8);
  });

  it.each<[string, Parameters<typeof post>[1], unknown, number, number]>([
    ['a wrong token', { token: 'nope' }, { data: [event('a')] }, 401, 2],
    ['another ad account', { path: '/v5/ad_accounts/123/events' }, { data: [event('a')] }, 403, 29],
    ['an ad account id that is not digits', { path: '/v5/ad_accounts/act_12/events' }, { data: [event('a')] }, 400, 4196],
    ['an unknown query parameter', { query: '?test=true&debug=1' }, { data: [event('a')] }, 400, 4196],
    ['a test value other than true/false', { query: '?test=yes' }, { data: [event('a')] }, 400, 4196],
    ['a body that is not JSON', { contentType: 'text/plain' }, 'data', 400, 4196],
    ['a field beside data', {}, { data: [event('a')], test_event_code: 'x' }, 400, 4196],
    ['an empty data array', {}, { data: [] }, 400, 4196],
    ['more than 1000 events', {}, { data: Array.from({ length: 1001 }, (_, i) => event(`e${i}`)) }, 400, 4196],
  ])('refuses the request for %s', async (_what, opts, body, status, code) => {
    const res = await post(body, opts);
    expect([res.status, res.body.code]).toEqual([status, code]);
    expect(fake.accepted).toEqual([]);
  });

  const mutate = (f: (e: Record<string, any>) => void) => {
    const e = event('bad') as Record<string, any>;
    f(e);
    return e;
  };
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['no event_id', mutate((e) => delete e.event_id), /missing required field event_id/],
    ['no user_data', mutate((e) => delete e.user_data), /missing required field user_data/],
    ['an unknown event name', mutate((e) => (e.event_name = 'purchase')), /event_name "purchase" is not a supported event/],
    ['an unknown action source', mutate((e) => (e.action_source = 'website')), /action_source "website"/],
    ['event_time in milliseconds', mutate((e) => (e.event_time = GOLDEN_NOW - 1000)), /cannot be in the future/],
    ['event_time in the future', mutate((e) => (e.event_time = nowSec + 120)), /cannot be in the future/],
    ['event_time older than 7 days', mutate((e) => (e.event_time = nowSec - 7 * DAY - 1)), /older than 7 days/],
    ['event_time as a string', mutate((e) => (e.event_time = String(nowSec))), /Unix timestamp in seconds/],
    ['an email not hashed', mutate((e) => (e.user_data.em = ['jane@example.com'])), /user_data\.em must hold SHA-256 hashes/],
    ['a hash in upper case', mutate((e) => (e.user_data.em = ['BB55843F3DA2AF28071CD4BE7AE1E05989DC6D3EA4833906F7D8FE4BE35AFAD8'])), /64 lowercase hex/],
    ['em as a string, not an array', mutate((e) => (e.user_data.em = 'bb55843f3da2af28071cd4be7ae1e05989dc6d3ea4833906f7d8fe4be35afad8')), /non-empty array/],
    ['an ip without a user agent and no email', mutate((e) => (e.user_data = { client_ip_address: '203.0.113.24' })), /needs at least one of em/],
    ['an invalid ip', mutate((e) => (e.user_data.client_ip_address = '999.1.1.1')), /not an IPv4 or IPv6/],
    ['an unknown user_data field', mutate((e) => (e.user_data.email = 'x')), /unknown field user_data\.email/],
    ['value as a number', mutate((e) => (e.custom_data.value = 25)), /value must be a decimal number as a string/],
    ['a lower-case currency', mutate((e) => (e.custom_data.currency = 'usd')), /ISO-4217/],
    ['a fractional quantity', mutate((e) => (e.custom_data.contents[0].quantity = 1.5)), /quantity must be an integer/],
    ['item_price as a number', mutate((e) => (e.custom_data.contents[0].item_price = 25)), /item_price must be a decimal/],
    ['an unknown custom_data field', mutate((e) => (e.custom_data.revenue = '1')), /unknown field custom_data\.revenue/],
    ['an unknown event field', mutate((e) => (e.timestamp = 1)), /unknown field timestamp/],
  ])('fails only the event with %s (422, per-event error_message)', async (_what, bad, message) => {
    const res = await post({ data: [event('good'), bad] });
    expect(res.status).toBe(422);
    expect(res.body.details.num_events_processed).toBe(1);
    expect(res.body.details.events[0]).toEqual({ status: 'processed', error_message: null, warning_message: null });
    expect(res.body.details.events[1].status).toBe('failed');
    expect(res.body.details.events[1].error_message).toMatch(message);
    expect(fake.accepted.map((e) => e.event_id)).toEqual(['good']);
  });

  it('validates without recording in test mode', async () => {
    const res = await post({ data: [event('t1')] }, { query: '?test=true' });
    expect(res.status).toBe(200);
    expect(fake.accepted).toEqual([]);
    expect(fake.testAccepted.map((e) => e.event_id)).toEqual(['t1']);
  });
});

describe('pinterest classify', () => {
  const req = (n: number): VendorRequest => ({ method: 'POST', url: 'https://api.pinterest.com/v5/ad_accounts/1/events', headers: {}, body: '{}', items: Array.from({ length: n }, (_, i) => i) });
  const processed = { status: 'processed', error_message: null, warning_message: null };
  const failed = (m: string) => ({ status: 'failed', error_message: m, warning_message: null });

  it('200 with every event processed is a success', () => {
    expect(classifyPinterest(vendorResponse(200, { num_events_received: 2, num_events_processed: 2, events: [processed, processed] }), req(2), GOLDEN_NOW)).toEqual({ outcome: 'success' });
  });

  it('200 with a failed event fails that event alone, with its error_message', () => {
    const r = classifyPinterest(vendorResponse(200, { num_events_received: 2, num_events_processed: 1, events: [processed, failed('bad em')] }), req(2), GOLDEN_NOW);
    expect(r).toEqual({ outcome: 'success', items: new Map([[1, { outcome: 'permanent', error: 'Pinterest refused the event: bad em' }]]) });
  });

  it('422 with the per-event list in details fails only the failed events', () => {
    const body = { code: 1, message: 'Not all events were successfully processed.', details: { num_events_received: 3, num_events_processed: 2, events: [processed, failed('event_time is older than 7 days'), processed] } };
    const r = classifyPinterest(vendorResponse(422, body), req(3), GOLDEN_NOW);
    expect(r.outcome).toBe('success');
    expect([...r.items!.entries()]).toEqual([[1, { outcome: 'permanent', error: 'Pinterest refused the event: event_time is older than 7 days' }]]);
  });

  it('422 with the list at the top level is read too', () => {
    const r = classifyPinterest(vendorResponse(422, { num_events_received: 2, num_events_processed: 1, events: [failed('x'), processed] }), req(2), GOLDEN_NOW);
    expect([...r.items!.keys()]).toEqual([0]);
  });

  it('422 without a per-event list splits the request; a single event is permanent', () => {
    const body = { code: 1, message: 'Not all events were successfully processed.', details: {} };
    expect(classifyPinterest(vendorResponse(422, body), req(3), GOLDEN_NOW)).toEqual({ outcome: 'permanent', split: true, error: 'HTTP 422: Pinterest error 1: Not all events were successfully processed.' });
    expect(classifyPinterest(vendorResponse(422, body), req(1), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: 'HTTP 422: Pinterest error 1: Not all events were successfully processed.' });
  });

  it('a per-event list of another length is not trusted', () => {
    const r = classifyPinterest(vendorResponse(422, { code: 1, message: 'm', details: { events: [failed('x')] } }), req(2), GOLDEN_NOW);
    expect(r).toMatchObject({ outcome: 'permanent', split: true });
  });

  it('400 splits a batch (one bad event refuses all) and is permanent alone', () => {
    const body = { code: 4196, message: 'The request was invalid.' };
    expect(classifyPinterest(vendorResponse(400, body), req(2), GOLDEN_NOW)).toMatchObject({ outcome: 'permanent', split: true });
    expect(classifyPinterest(vendorResponse(400, body), req(1), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: 'HTTP 400: Pinterest error 4196: The request was invalid.' });
  });

  it.each([
    [401, { code: 2, message: 'Authentication failed.' }],
    [403, { code: 29, message: 'You are not permitted to access that resource.' }],
  ])('%i is permanent for the whole request', (status, body) => {
    expect(classifyPinterest(vendorResponse(status, body), req(2), GOLDEN_NOW)).toEqual({ outcome: 'permanent', error: `HTTP ${status}: Pinterest error ${body.code}: ${body.message}` });
  });

  it('429 (code 8) is throttled and retryable, with Retry-After', () => {
    const r = classifyPinterest(vendorResponse(429, { code: 8, message: 'This request exceeded a rate limit.' }, { 'retry-after': '30' }), req(2), GOLDEN_NOW);
    expect(r).toEqual({ outcome: 'retryable', throttled: true, retryAfterMs: 30000, error: 'HTTP 429: Pinterest error 8: This request exceeded a rate limit.' });
  });

  it('code 8 under another status is throttling too', () => {
    expect(classifyPinterest(vendorResponse(403, { code: 8, message: 'rate limit' }), req(1), GOLDEN_NOW)).toMatchObject({ outcome: 'retryable', throttled: true });
  });

  it.each([
    [503, { code: 4197, message: 'The endpoint has been ramped down and is currently not accepting any traffic.' }],
    [500, 'oops'],
    [502, ''],
  ])('%i is retryable', (status, body) => {
    const r = classifyPinterest(vendorResponse(status, body), req(2), GOLDEN_NOW);
    expect(r.outcome).toBe('retryable');
    expect(r.throttled).toBeUndefined();
  });

  it('a 200 whose body is not the documented one is still a success', () => {
    expect(classifyPinterest(vendorResponse(200, 'ok'), req(2), GOLDEN_NOW)).toEqual({ outcome: 'success' });
  });
});

describe('pinterest end to end (HttpDestination → fake)', () => {
  let fake: PinterestFake;
  beforeAll(async () => {
    fake = await startPinterestFake({ adAccountId: ACCOUNT, accessToken: TOKEN, now: () => GOLDEN_NOW });
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());
  const send = (payloads: unknown[], extra: Record<string, unknown> = {}) => sendWith(def, { adAccountId: ACCOUNT, endpoint: fake.url, ...extra }, payloads, { credentials, now: GOLDEN_NOW });

  it('delivers the mapped fixtures in one request', async () => {
    const payloads = mapFixtures(def).mapped.map((m) => m.payload);
    const r = await send(payloads);
    expect(r).toMatchObject({ outcome: 'success', status: 200 });
    expect(r.items).toBeUndefined();
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.receiver.requests[0]!.headers['user-agent']).toMatch(/^switchyard\//);
    expect(fake.accepted).toEqual(payloads);
  });

  it('fails only the events Pinterest refuses, with its reason', async () => {
    fake.failEvents(['b'], 'Invalid click_id');
    const r = await send([event('a'), event('b'), event('c')]);
    expect(r.outcome).toBe('success');
    expect(r.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', error: 'Pinterest refused the event: Invalid click_id' }, { outcome: 'success' }]);
    expect(fake.accepted.map((e) => e.event_id)).toEqual(['a', 'c']);
  });

  it('splits a batch refused without per-event details, so only the bad event fails', async () => {
    fake.failEvents(['b'], 'Invalid click_id');
    fake.opaquePartialFailures(true);
    const r = await send([event('a'), event('b'), event('c')]);
    expect(r.items?.map((i) => i.outcome)).toEqual(['success', 'permanent', 'success']);
    expect(r.items?.[1]?.error).toMatch(/HTTP 422: Pinterest error 1/);
    // The batch, then each event alone; the first try processed a and c already (Pinterest deduplicates by event_id).
    const ids = fake.receiver.requests.map((q) => q.body.data.map((e: { event_id: string }) => e.event_id).join(','));
    expect(ids[0]).toBe('a,b,c');
    expect(ids.slice(1).sort()).toEqual(['a', 'b', 'c']);
  });

  it('reports throttling as retryable with the Retry-After delay', async () => {
    fake.throttle(1, 42);
    const r = await send([event('a')]);
    expect(r).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 42000, status: 429 });
    expect(fake.accepted).toEqual([]);
  });

  it('refuses events older than 7 days before sending; the others go', async () => {
    const r = await send([event('fresh'), event('stale', 7 * DAY + 3600), event('edge', 7 * DAY)]);
    expect(r.outcome).toBe('success');
    expect(r.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', refusal: 'stale_event', error: 'event_time is 7 days 1 h old; Pinterest takes events of the last 7 days only' }, { outcome: 'success' }]);
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.receiver.requests[0]!.body.data.map((e: { event_id: string }) => e.event_id)).toEqual(['fresh', 'edge']);
  });

  it('sends nothing when every event is stale', async () => {
    const r = await send([event('old', 30 * DAY)]);
    expect(r.items).toEqual([expect.objectContaining({ outcome: 'permanent', refusal: 'stale_event' })]);
    expect(fake.receiver.requests).toHaveLength(0);
  });

  it('treats a 503 as retryable', async () => {
    fake.serverError(1, 503);
    expect(await send([event('a')])).toMatchObject({ outcome: 'retryable', status: 503, error: expect.stringContaining('4197') });
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

  it('is refused when the token is wrong (permanent)', async () => {
    const r = await sendWith(def, { adAccountId: ACCOUNT, endpoint: fake.url }, [event('a')], { credentials: { access_token: 'wrong' }, now: GOLDEN_NOW });
    expect(r).toMatchObject({ outcome: 'permanent', status: 401, error: 'HTTP 401: Pinterest error 2: Authentication failed.' });
  });

  it('needs the access_token key and an ad account id', () => {
    const create = (s: unknown, c: Record<string, string>) => () =>
      DESTINATIONS.pinterest.create({ integration: destinationIntegration('pinterest', 'pinterest', s), credentials: c, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });
    expect(create({ adAccountId: ACCOUNT }, {})).toThrow(/holding access_token/);
    expect(create({}, credentials)).toThrow(/adAccountId/);
    expect(create({ adAccountId: 'act_1' }, credentials)).toThrow(/adAccountId/);
    expect(create({ adAccountId: ACCOUNT, endpoint: 'ftp://x' }, credentials)).toThrow(/endpoint/);
  });
});
