import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { Mapping } from '../../api/index.js';
import { ErrorCodes } from '../../errors.js';
import { compileMapping, type SegmentEvent } from '../../mapping/index.js';
import { compileOutputValidator } from '../../mapping/output-schema.js';
import { compileStarter, GOLDEN_NOW, mapFixtures, requestContext, runFolderTests, sendWith, vendorResponse, expectGolden, destinationIntegration, wire } from '../../test-support/destinations.js';
import { DESTINATIONS, createDestination, type VendorRequest } from '../index.js';
import { startGa4Fake, type Ga4Fake } from './fake.js';
import { buildGa4Requests, classifyGa4, ga4Destination, GA4_MAX_AGE_MS, GA4_MAX_BODY_BYTES, refuseGa4, validationEventIndex } from './index.js';

const SETTINGS = { measurementId: 'G-TEST123456' };
const CREDENTIALS = { api_secret: 'test-api-secret' };
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ctx = (settings: Record<string, unknown> = SETTINGS, credentials: Record<string, string> = CREDENTIALS, now = GOLDEN_NOW) => requestContext(ga4Destination, settings, { credentials, now });

const starter = compileStarter(ga4Destination);
/** The fixture events the starter maps (the others are dropped on purpose), with their payloads. */
const { mapped } = mapFixtures(ga4Destination);
const payloads = mapped.map((m) => m.payload);
const micros = (iso: string) => Date.parse(iso) * 1000;

/** A valid one-event payload of user `client`. */
function payload(name = 'search', params: Record<string, unknown> = { search_term: 'x', engagement_time_msec: 1 }, extra: Record<string, unknown> = {}, client = 'c-1'): Record<string, unknown> {
  return { client_id: client, timestamp_micros: GOLDEN_NOW * 1000 - 60_000_000, ...extra, events: [{ name, params }] };
}

describe('ga4 definition', () => {
  it('is registered under ga4 with its settings, credentials and batch limits', () => {
    expect(DESTINATIONS.ga4.batch).toEqual({ default: 25, max: 25 });
    expect(ga4Destination).toMatchObject({ type: 'ga4', settingsField: 'ga4', docsUrl: 'https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference' });
    expect(Object.keys(ga4Destination.credentials)).toEqual(['api_secret']);
  });

  it.each([
    [{}, 'exactly one of measurementId'],
    [{ measurementId: 'G-TEST123456', firebaseAppId: '1:123:android:abc' }, 'exactly one of measurementId'],
  ])('refuses settings %j', (settings, message) => {
    const integration = destinationIntegration('ga4', 'ga4', settings);
    expect(() => createDestination({ integration, credentials: CREDENTIALS, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } })).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining(message) }),
    );
  });

  it('refuses a measurement ID that is not G-…, a missing api_secret and a batch size above 25', () => {
    const create = (settings: unknown, credentials: Record<string, string>, delivery = {}) => () =>
      createDestination({ integration: destinationIntegration('ga4', 'ga4', settings, delivery), credentials, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });
    expect(create({ measurementId: 'UA-1234-1' }, CREDENTIALS)).toThrow(/measurementId/);
    expect(create(SETTINGS, {})).toThrow(/api_secret/);
    expect(create(SETTINGS, CREDENTIALS, { batchSize: 26 })).toThrow(/takes per request \(25\)/);
    expect(create(SETTINGS, CREDENTIALS, { batchSize: 25 })).not.toThrow();
  });
});

describe('starter Mapping', () => {
  it('compiles against the output schema and maps the fixtures it should', () => {
    expect(mapped.map((m) => m.name)).toEqual(['01-page', '02-products-searched', '03-product-list-viewed', '04-product-viewed', '05-product-added', '06-checkout-started', '08-order-completed', '09-order-refunded']);
    const validate = compileOutputValidator(ga4Destination.outputSchema(requestContext(ga4Destination, SETTINGS).settings)!);
    for (const p of payloads) expect(validate(p)).toBeUndefined();
  });

  it('passes its switchyard test cases (tests/*.test.yaml)', async () => {
    expect(await runFolderTests(new URL('.', import.meta.url))).toEqual({ code: 0, err: '', notPassed: [expect.stringMatching(/^20 passed, 0 failed \(2 files\)$/)] });
  });

  it('gives the same GA4 event and identity as examples/mappings/ga4-ecommerce.yaml for every example event', () => {
    const examples = path.resolve(HERE, '../../../../examples/mappings');
    const example = compileMapping((parseYaml(readFileSync(path.join(examples, 'ga4-ecommerce.yaml'), 'utf8')) as Mapping).spec);
    const events = readdirSync(path.join(examples, 'events')).map((f) => JSON.parse(readFileSync(path.join(examples, 'events', f), 'utf8')) as SegmentEvent);
    let compared = 0;
    for (const event of events) {
      const a = starter.apply(event);
      const b = example.apply(event);
      expect(a.ok).toBe(b.ok);
      if (!a.ok || !b.ok) continue;
      const pick = (p: Record<string, unknown>) => ({ client_id: p.client_id, user_id: p.user_id, timestamp_micros: p.timestamp_micros, user_properties: p.user_properties, events: p.events });
      expect(pick(a.payload)).toEqual(pick(b.payload));
      compared++;
    }
    expect(compared).toBe(14);
  });
});

describe('golden requests', () => {
  it.each(mapped)('$name alone', ({ name, payload: p }) => {
    const requests = buildGa4Requests([p], ctx());
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual([0]);
    expectGolden(new URL(`./golden/${name}.json`, import.meta.url), wire(requests[0]!));
  });

  it('all fixtures in one send: one request per user, events in order, each with its own timestamp', () => {
    const requests = buildGa4Requests(payloads, ctx());
    // 01–06 share the anonymous visitor; 08 (gtag client id, user_id, user_data) and 09 (user_id) are other bodies.
    expect(requests.map((r) => r.items)).toEqual([[0, 1, 2, 3, 4, 5], [6], [7]]);
    expectGolden(new URL('./golden/batch.json', import.meta.url), requests.map((r) => ({ ...wire(r), items: r.items })));
    const first = JSON.parse(requests[0]!.body) as { timestamp_micros?: number; events: { name: string; timestamp_micros: number }[] };
    expect(first.timestamp_micros).toBeUndefined();
    expect(first.events.map((e) => [e.name, e.timestamp_micros])).toEqual([
      ['page_view', micros('2026-11-20T15:04:01.101Z')],
      ['search', micros('2026-11-20T15:04:02.102Z')],
      ['view_item_list', micros('2026-11-20T15:04:03.103Z')],
      ['view_item', micros('2026-11-20T15:04:05.104Z')],
      ['add_to_cart', micros('2026-11-20T15:04:08.105Z')],
      ['begin_checkout', micros('2026-11-20T15:04:12.106Z')],
    ]);
  });

  it('golden files hold the documented request: POST, URL, JSON content type, MP body', () => {
    for (const { name } of mapped) {
      const g = JSON.parse(readFileSync(path.join(HERE, 'golden', `${name}.json`), 'utf8')) as ReturnType<typeof wire>;
      expect(g.method).toBe('POST');
      expect(g.url).toBe('https://www.google-analytics.com/mp/collect?measurement_id=G-TEST123456&api_secret=test-api-secret');
      expect(g.headers).toEqual({ 'content-type': 'application/json' });
      expect(Object.keys(g.body).at(-1)).toBe('events');
      expect(g.body.timestamp_micros).toBeUndefined();
      expect((g.body.events as unknown[]).length).toBe(1);
    }
  });
});

/** POSTs a golden/built request to the fake (its path and query, on the fake's host). */
async function replay(fake: Ga4Fake, r: { method: string; url: string; headers: Record<string, string>; body: unknown }): Promise<Response> {
  const u = new URL(r.url);
  return fetch(`${fake.url}${u.pathname}${u.search}`, { method: r.method, headers: r.headers, body: typeof r.body === 'string' ? r.body : JSON.stringify(r.body) });
}

describe('the fake accepts the golden requests', () => {
  let fake: Ga4Fake;
  beforeEach(async () => {
    fake = await startGa4Fake({ now: () => GOLDEN_NOW });
  });
  afterEach(() => fake.close());

  it('records every golden event and drops none', async () => {
    const files = readdirSync(path.join(HERE, 'golden')).filter((f) => f !== 'batch.json');
    expect(files).toHaveLength(mapped.length);
    for (const f of files) {
      const res = await replay(fake, JSON.parse(readFileSync(path.join(HERE, 'golden', f), 'utf8')));
      expect(res.status).toBe(204);
    }
    const batch = JSON.parse(readFileSync(path.join(HERE, 'golden', 'batch.json'), 'utf8')) as ReturnType<typeof wire>[];
    for (const r of batch) expect((await replay(fake, r)).status).toBe(204);
    expect(fake.dropped).toEqual([]);
    expect(fake.accepted.map((e) => e.name)).toEqual([...mapped.map((m) => m.payload), ...payloads].map((p) => (p.events as { name: string }[])[0]!.name));
    const purchase = fake.accepted.find((e) => e.name === 'purchase')!;
    expect(purchase).toMatchObject({ measurementId: 'G-TEST123456', clientId: '1234567890.1732000000', userId: 'u_10452', timestampMicros: micros('2026-11-20T15:04:20.108Z') });
    expect(purchase.context.user_data).toEqual({ sha256_email_address: ['bb55843f3da2af28071cd4be7ae1e05989dc6d3ea4833906f7d8fe4be35afad8'] });
  });

  it('the validation server finds nothing in them', async () => {
    const batch = JSON.parse(readFileSync(path.join(HERE, 'golden', 'batch.json'), 'utf8')) as ReturnType<typeof wire>[];
    for (const r of batch) {
      const res = await replay(fake, { ...r, url: r.url.replace('/mp/collect', '/debug/mp/collect') });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ validationMessages: [] });
    }
    expect(fake.accepted).toEqual([]);
  });
});

describe('the fake refuses what GA4 refuses', () => {
  let fake: Ga4Fake;
  beforeAll(async () => {
    fake = await startGa4Fake({ now: () => GOLDEN_NOW });
  });
  afterAll(() => fake.close());
  const web = requestContext(ga4Destination, SETTINGS).settings;
  const schemaErrors = (p: unknown) => compileOutputValidator(ga4Destination.outputSchema(web)!)(p);
  const collect = (q = 'measurement_id=G-TEST123456&api_secret=test-api-secret') => `${'/mp/collect'}?${q}`;
  const post = (body: string | object, pathAndQuery = collect(), headers: Record<string, string> = { 'content-type': 'application/json' }, method = 'POST') =>
    fetch(`${fake.url}${pathAndQuery}`, { method, headers, ...(method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
  /** The problems /mp/collect recorded for the body (it answers 204 anyway), and what /debug says. */
  async function problemsOf(body: string | object, q?: string, headers?: Record<string, string>) {
    const before = fake.dropped.length;
    const accepted = fake.accepted.length;
    const res = await post(body, collect(q), headers);
    expect(res.status).toBe(204);
    const dropped = fake.dropped.slice(before);
    const debug = (await (await post(body, `/debug${collect(q)}`, headers)).json()) as { validationMessages: { fieldPath: string; description: string; validationCode: string }[] };
    return { dropped, newlyAccepted: fake.accepted.length - accepted, messages: debug.validationMessages };
  }
  const items = (n: number, extra: Record<string, unknown> = {}) => Array.from({ length: n }, (_, i) => ({ item_id: `p${i}`, ...extra }));
  const long = (n: number) => 'x'.repeat(n);
  const hash = 'bb55843f3da2af28071cd4be7ae1e05989dc6d3ea4833906f7d8fe4be35afad8';

  it('accepts the valid base body (so each refusal below is the rule’s doing)', async () => {
    const r = await problemsOf(payload('purchase', { transaction_id: 't1', currency: 'USD', value: 1, page_title: long(300), page_location: long(1000), page_referrer: long(420), items: items(200) }));
    expect(r).toEqual({ dropped: [], newlyAccepted: 1, messages: [] });
    expect(await problemsOf(payload('search', Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`p${i}`, long(100)]))))).toMatchObject({ dropped: [], newlyAccepted: 1 });
    const exactly72h = { ...payload(), timestamp_micros: GOLDEN_NOW * 1000 - GA4_MAX_AGE_MS * 1000 };
    expect(await problemsOf(exactly72h)).toMatchObject({ dropped: [], newlyAccepted: 1 });
  });

  type Case = [rule: string, body: object, code: string, text: string, schemaRefuses: boolean];
  const cases: Case[] = [
    ['client_id is required (web stream)', { events: [{ name: 'search' }] }, 'VALUE_REQUIRED', 'client_id', true],
    ['only the reference’s body fields', payload('search', {}, { user_agent: 'Mozilla' }), 'VALUE_INVALID', 'Unknown field [user_agent]', true],
    ['at least one event', { client_id: 'c', events: [] }, 'VALUE_REQUIRED', 'at least one event', true],
    ['at most 25 events', { client_id: 'c', events: Array.from({ length: 26 }, () => ({ name: 'search' })) }, 'EXCEEDED_MAX_ENTITIES', '26 events', true],
    ['event names start with a letter', payload('_bad'), 'NAME_INVALID', 'invalid event name [_bad]', true],
    ['event names hold letters, digits and underscores', payload('add-to-cart'), 'NAME_INVALID', 'add-to-cart', true],
    ['event names are at most 40 characters', payload(`e${long(40)}`), 'VALUE_OUT_OF_BOUNDS', 'longer than 40', true],
    ['reserved event names', payload('session_start'), 'NAME_RESERVED', 'session_start', true],
    ['reserved event name prefixes', payload('firebase_thing'), 'NAME_RESERVED', 'reserved prefix [firebase_]', true],
    ['event fields are name, params, timestamp_micros', { client_id: 'c', events: [{ name: 'search', event_id: 'm1' }] }, 'VALUE_INVALID', 'unknown field [event_id]', true],
    ['at most 25 params', payload('search', Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`p${i}`, 1]))), 'EXCEEDED_MAX_ENTITIES', '26 params', true],
    ['param names are names', payload('search', { 'search-term': 'x' }), 'NAME_INVALID', 'search-term', true],
    ['param names are at most 40 characters', payload('search', { [`p${long(40)}`]: 'x' }), 'VALUE_OUT_OF_BOUNDS', 'longer than 40', true],
    ['reserved param prefixes', payload('search', { google_term: 'x' }), 'NAME_RESERVED', 'reserved prefix [google_]', true],
    ['reserved param names', payload('search', { firebase_conversion: 1 }), 'NAME_RESERVED', 'firebase_conversion', true],
    ['param values are at most 100 characters', payload('search', { search_term: long(101) }), 'VALUE_OUT_OF_BOUNDS', 'at most 100 characters', true],
    ['page_title at most 300', payload('page_view', { page_title: long(301) }), 'VALUE_OUT_OF_BOUNDS', 'at most 300 characters', true],
    ['page_referrer at most 420', payload('page_view', { page_referrer: long(421) }), 'VALUE_OUT_OF_BOUNDS', 'at most 420 characters', true],
    ['page_location at most 1000', payload('page_view', { page_location: long(1001) }), 'VALUE_OUT_OF_BOUNDS', 'at most 1000 characters', true],
    ['param values are strings or numbers', payload('search', { search_term: { q: 'x' } }), 'VALUE_OUT_OF_BOUNDS', 'not a string', true],
    ['at most 200 items', payload('view_item_list', { items: items(201) }), 'EXCEEDED_MAX_ENTITIES', '201 items', true],
    ['items need item_id or item_name', payload('view_item', { items: [{ price: 1 }] }), 'VALUE_REQUIRED', 'without item_id or item_name', true],
    ['item values are at most 100 characters', payload('view_item', { items: [{ item_id: long(101) }] }), 'VALUE_OUT_OF_BOUNDS', 'item [0] param [item_id]', true],
    ['at most 10 custom item params', payload('view_item', { items: items(1, Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`c${i}`, 'x']))) }), 'EXCEEDED_MAX_ENTITIES', '11 custom parameters', false],
    ['currency with value', payload('purchase', { transaction_id: 't', value: 25 }), 'VALUE_REQUIRED', 'no currency', true],
    ['currency is an ISO 4217 code', payload('purchase', { transaction_id: 't', value: 25, currency: 'usd' }), 'VALUE_INVALID', 'currency [usd]', true],
    ['at most 25 user properties', payload('search', {}, { user_properties: Object.fromEntries(Array.from({ length: 26 }, (_, i) => [`u${i}`, { value: 'x' }])) }), 'EXCEEDED_MAX_ENTITIES', '26 user properties', true],
    ['user property names at most 24 characters', payload('search', {}, { user_properties: { [`u${long(24)}`]: { value: 'x' } } }), 'VALUE_OUT_OF_BOUNDS', 'longer than 24', true],
    ['reserved user property names', payload('search', {}, { user_properties: { first_open_time: { value: 'x' } } }), 'NAME_RESERVED', 'first_open_time', true],
    ['user property values at most 36 characters', payload('search', {}, { user_properties: { plan: { value: long(37) } } }), 'VALUE_OUT_OF_BOUNDS', 'at most 36', true],
    ['user properties are {value}', payload('search', {}, { user_properties: { plan: 'premium' } }), 'VALUE_INVALID', '{"value"', true],
    ['user_data emails are SHA-256 hex', payload('search', {}, { user_id: 'u', user_data: { sha256_email_address: ['jane@example.com'] } }), 'VALUE_INVALID', 'sha256_email_address', true],
    ['user_data hashes are lower case', payload('search', {}, { user_id: 'u', user_data: { sha256_phone_number: [hash.toUpperCase()] } }), 'VALUE_INVALID', 'sha256_phone_number', true],
    ['consent values are GRANTED or DENIED', payload('search', {}, { consent: { ad_user_data: 'yes' } }), 'VALUE_INVALID', 'consent', true],
    ['user_id at most 256 characters', payload('search', {}, { user_id: long(257) }), 'VALUE_INVALID', 'user_id', true],
    ['timestamp_micros at most 72 hours back', { ...payload(), timestamp_micros: GOLDEN_NOW * 1000 - GA4_MAX_AGE_MS * 1000 - 1 }, 'VALUE_OUT_OF_BOUNDS', 'more than 72 hours', false],
    ['timestamp_micros not in the future', { ...payload(), timestamp_micros: GOLDEN_NOW * 1000 + 1 }, 'VALUE_OUT_OF_BOUNDS', 'in the future', false],
    ['timestamp_micros is an integer', { ...payload(), timestamp_micros: 1.5 }, 'VALUE_INVALID', 'timestamp_micros', true],
  ];

  it.each(cases)('%s', async (_rule, body, code, text, schemaRefuses) => {
    const r = await problemsOf(body);
    expect(r.newlyAccepted).toBe(0);
    expect(r.dropped.length).toBeGreaterThan(0);
    expect(r.dropped.map((d) => d.problem)).toContainEqual(expect.objectContaining({ validationCode: code, description: expect.stringContaining(text) }));
    expect(r.messages).toContainEqual(expect.objectContaining({ validationCode: code, description: expect.stringContaining(text) }));
    // The output schema refuses the same payload before it is ever sent (where the rule is static).
    if (schemaRefuses) expect(schemaErrors(body)).toBeDefined();
  });

  it('the api_secret, measurement_id and content type: the whole request is dropped (debug does not check the secret, like GA4)', async () => {
    const two = { client_id: 'c', events: [{ name: 'search' }, { name: 'view_cart' }] };
    const wrongSecret = await problemsOf(two, 'measurement_id=G-TEST123456&api_secret=nope');
    expect(wrongSecret.dropped.map((d) => [d.index, d.problem.fieldPath])).toEqual([
      [0, 'api_secret'],
      [1, 'api_secret'],
    ]);
    expect(wrongSecret.messages).toEqual([]);
    expect((await problemsOf(two, 'api_secret=test-api-secret')).dropped[0]!.problem).toMatchObject({ fieldPath: 'measurement_id', validationCode: 'VALUE_REQUIRED' });
    expect((await problemsOf(two, 'measurement_id=G-OTHER&api_secret=test-api-secret')).dropped[0]!.problem).toMatchObject({ fieldPath: 'measurement_id', validationCode: 'VALUE_INVALID' });
    expect((await problemsOf(two, undefined, { 'content-type': 'text/plain' })).dropped[0]!.problem.description).toContain('application/json');
    expect((await problemsOf('{"client_id": "c", "events": [')).dropped[0]!.problem.description).toContain('not JSON');
  });

  it('a body of 130 kB or more is dropped', async () => {
    const big = payload('view_item_list', { items: items(200, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`c${i}`, long(60)]))) });
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThanOrEqual(GA4_MAX_BODY_BYTES);
    expect((await problemsOf(big)).dropped[0]!.problem).toMatchObject({ validationCode: 'VALUE_OUT_OF_BOUNDS', description: expect.stringContaining('130kB') });
  });

  it('only POST to /mp/collect and /debug/mp/collect', async () => {
    expect((await post('', collect(), {}, 'GET')).status).toBe(405);
    expect((await post(payload(), '/collect?measurement_id=G-TEST123456&api_secret=test-api-secret')).status).toBe(404);
  });

  it('an app stream needs firebase_app_id and app_instance_id', async () => {
    const app = await startGa4Fake({ firebaseAppId: '1:123:android:abc', now: () => GOLDEN_NOW });
    try {
      const q = 'firebase_app_id=1%3A123%3Aandroid%3Aabc&api_secret=test-api-secret';
      const send = (body: object) => fetch(`${app.url}/mp/collect?${q}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      await send({ client_id: 'c', events: [{ name: 'search' }] });
      expect(app.dropped[0]!.problem).toMatchObject({ fieldPath: 'app_instance_id', validationCode: 'VALUE_REQUIRED' });
      await send({ app_instance_id: 'a'.repeat(32), events: [{ name: 'search' }] });
      expect(app.accepted).toMatchObject([{ firebaseAppId: '1:123:android:abc', appInstanceId: 'a'.repeat(32), name: 'search' }]);
    } finally {
      await app.close();
    }
  });
});

describe('buildRequests', () => {
  it('encodes the query, trims the endpoint and follows debug and app settings', () => {
    const [r] = buildGa4Requests([payload()], ctx({ ...SETTINGS, endpoint: 'http://127.0.0.1:9/proxy/' }, { api_secret: 'a+b/c= d&e' }));
    expect(r!.url).toBe('http://127.0.0.1:9/proxy/mp/collect?measurement_id=G-TEST123456&api_secret=a%2Bb%2Fc%3D+d%26e');
    const [d] = buildGa4Requests([payload()], ctx({ ...SETTINGS, debug: true }));
    expect(d!.url).toBe('https://www.google-analytics.com/debug/mp/collect?measurement_id=G-TEST123456&api_secret=test-api-secret');
    expect(JSON.parse(d!.body)).toMatchObject({ validation_behavior: 'ENFORCE_RECOMMENDATIONS' });
    const [a] = buildGa4Requests([{ app_instance_id: 'f'.repeat(32), events: [{ name: 'search' }] }], ctx({ firebaseAppId: '1:123:ios:ab12' }));
    expect(a!.url).toBe('https://www.google-analytics.com/mp/collect?firebase_app_id=1%3A123%3Aios%3Aab12&api_secret=test-api-secret');
  });

  it('batches at most 25 events per request and keeps the order', () => {
    const many = Array.from({ length: 30 }, (_, i) => payload('search', { search_term: `q${i}` }));
    const requests = buildGa4Requests(many, ctx());
    expect(requests.map((r) => r.items.length)).toEqual([25, 5]);
    expect(requests.flatMap((r) => (JSON.parse(r.body) as { events: { params: { search_term: string } }[] }).events.map((e) => e.params.search_term))).toEqual(many.map((_, i) => `q${i}`));
  });

  it('groups by the body fields besides events and timestamp_micros, whatever their key order', () => {
    const a1 = payload('search', {}, { user_properties: { plan: { value: 'x' } }, user_id: 'u' }, 'a');
    const b = payload('search', {}, {}, 'b');
    const a2 = { user_id: 'u', client_id: 'a', user_properties: { plan: { value: 'x' } }, timestamp_micros: 1, events: [{ name: 'view_cart' }] };
    const requests = buildGa4Requests([a1, b, a2], ctx());
    expect(requests.map((r) => r.items)).toEqual([[0, 2], [1]]);
    expect(JSON.parse(requests[0]!.body)).toEqual({ client_id: 'a', user_properties: { plan: { value: 'x' } }, user_id: 'u', events: [{ name: 'search', params: {}, timestamp_micros: a1.timestamp_micros }, { name: 'view_cart', timestamp_micros: 1 }] });
  });

  it('splits a group to keep each body under 130 kB', () => {
    const fat = (i: number) => payload('view_item_list', { item_list_id: `l${i}`, items: items(200) });
    const requests = buildGa4Requests(Array.from({ length: 6 }, (_, i) => fat(i)), ctx());
    expect(requests.length).toBeGreaterThan(1);
    for (const r of requests) expect(Buffer.byteLength(r.body)).toBeLessThan(GA4_MAX_BODY_BYTES);
    expect(requests.flatMap((r) => r.items)).toEqual([0, 1, 2, 3, 4, 5]);
    // Packed tight: the next request's first event would have pushed each body to the limit.
    for (let i = 0; i + 1 < requests.length; i++) {
      const next = JSON.stringify(JSON.parse(requests[i + 1]!.body).events[0]);
      expect(Buffer.byteLength(requests[i]!.body) + 1 + Buffer.byteLength(next)).toBeGreaterThanOrEqual(GA4_MAX_BODY_BYTES);
    }
    function items(n: number) {
      return Array.from({ length: n }, (_, i) => ({ item_id: `p${i}-${'x'.repeat(40)}`, item_name: 'y'.repeat(40) }));
    }
  });

  it('caps a future timestamp at now and keeps an event’s own timestamp', () => {
    const future = { ...payload(), timestamp_micros: GOLDEN_NOW * 1000 + 5_000_000 };
    const own = { client_id: 'c-1', timestamp_micros: 7, events: [{ name: 'search', timestamp_micros: GOLDEN_NOW * 1000 - 1 }] };
    const [r] = buildGa4Requests([future, own], ctx());
    expect((JSON.parse(r!.body) as { events: { timestamp_micros: number }[] }).events.map((e) => e.timestamp_micros)).toEqual([GOLDEN_NOW * 1000, GOLDEN_NOW * 1000 - 1]);
  });

  it('refuses a payload without exactly one event', () => {
    expect(() => buildGa4Requests([{ client_id: 'c', events: [] }], ctx())).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE }));
  });
});

describe('refuse', () => {
  it('refuses events more than 72 hours old, by the event’s timestamp or else the body’s', () => {
    const c = ctx();
    const at = (ageMs: number) => GOLDEN_NOW * 1000 - ageMs * 1000;
    expect(refuseGa4({ ...payload(), timestamp_micros: at(GA4_MAX_AGE_MS) }, c)).toBeUndefined();
    expect(refuseGa4({ ...payload(), timestamp_micros: at(GA4_MAX_AGE_MS + 3600_000) }, c)).toBe('event time 2026-11-17T14:10:00.000Z is more than 72 hours before 2026-11-20T15:10:00.000Z: GA4 takes events at most 72 hours old');
    expect(refuseGa4({ client_id: 'c', timestamp_micros: at(0), events: [{ name: 's', timestamp_micros: at(GA4_MAX_AGE_MS + 1) }] }, c)).toMatch(/72 hours/);
    expect(refuseGa4({ client_id: 'c', events: [{ name: 's' }] }, c)).toBeUndefined();
  });
});

describe('classify', () => {
  const request = (n: number, body = '{}'): VendorRequest => ({ method: 'POST', url: 'https://x/mp/collect', headers: {}, body, items: Array.from({ length: n }, (_, i) => i) });
  const debugCtx = ctx({ ...SETTINGS, debug: true });
  const message = (fieldPath: string, description: string, validationCode = 'VALUE_INVALID') => ({ fieldPath, description, validationCode });

  it('2xx is success, even with a body (GA4 drops silently)', () => {
    expect(classifyGa4(vendorResponse(204), request(3), ctx())).toEqual({ outcome: 'success' });
    expect(classifyGa4(vendorResponse(200, 'whatever'), request(1), ctx())).toEqual({ outcome: 'success' });
  });

  it('429 is throttled and retryable with Retry-After; 5xx retryable; other 4xx permanent', () => {
    expect(classifyGa4(vendorResponse(429, { error: { code: 429 } }, { 'retry-after': '30' }), request(1), ctx())).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 30_000 });
    expect(classifyGa4(vendorResponse(500), request(1), ctx())).toMatchObject({ outcome: 'retryable' });
    expect(classifyGa4(vendorResponse(503), request(1), ctx())).toMatchObject({ outcome: 'retryable' });
    expect(classifyGa4(vendorResponse(400, 'bad'), request(1), ctx())).toMatchObject({ outcome: 'permanent', error: 'HTTP 400: bad' });
    expect(classifyGa4(vendorResponse(403), request(1), ctx())).toMatchObject({ outcome: 'permanent' });
    expect(classifyGa4(vendorResponse(404), request(1), ctx()).throttled).toBeUndefined();
  });

  it('debug: a message naming an event fails that event only, permanently, with GA4’s words', () => {
    const r = classifyGa4(
      vendorResponse(200, { validationMessages: [message('events', 'Event at index: [1] has invalid name [_bad]. Names must start with an alphabetic character.', 'NAME_INVALID'), message('events[2].params.value', 'bad value')] }),
      request(3),
      debugCtx,
    );
    expect(r.outcome).toBe('success');
    expect([...r.items!.entries()]).toEqual([
      [1, { outcome: 'permanent', error: 'NAME_INVALID events: Event at index: [1] has invalid name [_bad]. Names must start with an alphabetic character.' }],
      [2, { outcome: 'permanent', error: 'VALUE_INVALID events[2].params.value: bad value' }],
    ]);
  });

  it('debug: a message naming no event fails the request; none is success; an unreadable answer is retryable', () => {
    expect(classifyGa4(vendorResponse(200, { validationMessages: [message('client_id', 'Measurement requires a client_id.', 'VALUE_REQUIRED')] }), request(2), debugCtx)).toEqual({
      outcome: 'permanent',
      error: 'VALUE_REQUIRED client_id: Measurement requires a client_id.',
    });
    expect(classifyGa4(vendorResponse(200, { validationMessages: [] }), request(2), debugCtx)).toEqual({ outcome: 'success' });
    expect(classifyGa4(vendorResponse(200, '<html>'), request(2), debugCtx)).toMatchObject({ outcome: 'retryable' });
    expect(classifyGa4(vendorResponse(429), request(2), debugCtx)).toMatchObject({ outcome: 'retryable', throttled: true });
  });

  it('a body of 130 kB or more fails permanently whatever GA4 answered', () => {
    expect(classifyGa4(vendorResponse(204), request(1, 'x'.repeat(GA4_MAX_BODY_BYTES)), ctx())).toMatchObject({ outcome: 'permanent', error: expect.stringContaining('130000') });
  });

  it.each([
    [{ fieldPath: 'events[12].name' }, 12],
    [{ fieldPath: 'events', description: 'Event at index: [4] has …' }, 4],
    [{ fieldPath: 'user_id', description: 'bad' }, undefined],
  ])('validationEventIndex(%j) = %j', (m, index) => {
    expect(validationEventIndex(m)).toBe(index);
  });
});

describe('end to end against the fake', () => {
  let fake: Ga4Fake;
  beforeEach(async () => {
    fake = await startGa4Fake({ now: () => GOLDEN_NOW });
  });
  afterEach(() => fake.close());
  const settings = (extra: Record<string, unknown> = {}) => ({ ...SETTINGS, endpoint: fake.url, ...extra });
  const send = (p: readonly unknown[], extra: Record<string, unknown> = {}, credentials = CREDENTIALS) => sendWith(ga4Destination, settings(extra), p, { credentials, now: GOLDEN_NOW });

  it('delivers every mapped fixture: success, nothing dropped, one request per user', async () => {
    const r = await send(payloads);
    expect(r).toMatchObject({ outcome: 'success', status: 204 });
    expect(r.items).toBeUndefined();
    expect(fake.dropped).toEqual([]);
    expect(fake.accepted.map((e) => e.name)).toEqual(['page_view', 'search', 'view_item_list', 'view_item', 'add_to_cart', 'begin_checkout', 'purchase', 'refund']);
    expect(fake.receiver.requests).toHaveLength(3);
    expect(fake.receiver.requests[0]!.headers['user-agent']).toMatch(/^switchyard\//);
  });

  it('a wrong api_secret is not an error GA4 reports: the events are dropped (so tests look at dropped)', async () => {
    const r = await send(payloads.slice(0, 1), {}, { api_secret: 'wrong' });
    expect(r.outcome).toBe('success');
    expect(fake.dropped.map((d) => d.problem.fieldPath)).toEqual(['api_secret']);
  });

  it('partial failure (debug): only the events GA4 names fail, with its reason', async () => {
    fake.rejectEvents((event) => event.name === 'purchase' || event.name === 'search');
    const r = await send(payloads, { debug: true });
    expect(r.outcome).toBe('success');
    expect(r.items!.map((i) => i.outcome)).toEqual(['success', 'permanent', 'success', 'success', 'success', 'success', 'permanent', 'success']);
    expect(r.items![1]!.error).toBe('VALUE_INVALID events: Event at index: [1] was rejected by the test (fault injection).');
    expect(r.items![6]!.error).toBe('VALUE_INVALID events: Event at index: [0] was rejected by the test (fault injection).');
    expect(fake.accepted).toEqual([]); // the validation server records nothing
  });

  it('throttling: retryable, throttled, with the Retry-After delay; then it goes through', async () => {
    fake.throttle(1, 42);
    const r = await send(payloads.slice(0, 2));
    expect(r).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 42_000, status: 429 });
    expect(fake.accepted).toEqual([]);
    expect(await send(payloads.slice(0, 2))).toMatchObject({ outcome: 'success' });
    expect(fake.accepted).toHaveLength(2);
  });

  it('stale events are refused before sending and never in the request; the others go', async () => {
    const stale = { ...payloads[0]!, timestamp_micros: GOLDEN_NOW * 1000 - GA4_MAX_AGE_MS * 1000 - 1_000_000 };
    const r = await send([stale, payloads[1]!]);
    expect(r.outcome).toBe('success');
    expect(r.items).toEqual([
      { outcome: 'permanent', refusal: 'stale_event', error: 'event time 2026-11-17T15:09:59.000Z is more than 72 hours before 2026-11-20T15:10:00.000Z: GA4 takes events at most 72 hours old' },
      { outcome: 'success' },
    ]);
    expect(fake.receiver.requests).toHaveLength(1);
    expect((fake.receiver.requests[0]!.body as { events: { name: string }[] }).events.map((e) => e.name)).toEqual(['search']);
    expect(fake.dropped).toEqual([]);
  });

  it('a dead vendor is retryable: 5xx, then connection refused', async () => {
    fake.fail(1, 500);
    expect(await send(payloads.slice(0, 1))).toMatchObject({ outcome: 'retryable', status: 500 });
    fake.fail(1, 503);
    expect(await send(payloads.slice(0, 1))).toMatchObject({ outcome: 'retryable', status: 503 });
    await fake.down();
    const r = await send(payloads.slice(0, 1));
    expect(r).toMatchObject({ outcome: 'retryable', error: expect.stringMatching(/^network error/) });
    await fake.up();
    expect(await send(payloads.slice(0, 1))).toMatchObject({ outcome: 'success' });
  });

  it('a wrong endpoint path is permanent (404)', async () => {
    expect(await sendWith(ga4Destination, { ...SETTINGS, endpoint: `${fake.url}/nope` }, payloads.slice(0, 1), { credentials: CREDENTIALS, now: GOLDEN_NOW })).toMatchObject({ outcome: 'permanent', status: 404 });
  });

  it('a future timestamp is capped at the send time, so GA4 keeps the event', async () => {
    const future = { ...payloads[1]!, timestamp_micros: GOLDEN_NOW * 1000 + 3_600_000_000 };
    expect(await send([future])).toMatchObject({ outcome: 'success' });
    expect(fake.dropped).toEqual([]);
    expect(fake.accepted[0]!.timestampMicros).toBe(GOLDEN_NOW * 1000);
  });

  it('a full batch of 25 events of one user is one request', async () => {
    const many = Array.from({ length: 25 }, (_, i) => payload('search', { search_term: `q${i}`, engagement_time_msec: 1 }));
    expect(await send(many)).toMatchObject({ outcome: 'success' });
    expect(fake.receiver.requests).toHaveLength(1);
    expect(fake.accepted).toHaveLength(25);
    expect(fake.dropped).toEqual([]);
  });
});
