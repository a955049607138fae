import { readFileSync } from 'node:fs';
import type { Integration } from '../../api/index.js';
import { compileIntegrationRoute } from '../../forward/route.js';
import { compileOutputValidator, type SegmentEvent } from '../../mapping/index.js';
import { GOLDEN_NOW, compileStarter, destinationIntegration, expectGolden, fixtureEvents, mapFixtures, requestContext, runFolderTests, sendWith, starterResource, vendorResponse } from '../../test-support/destinations.js';
import { DESTINATIONS, type RequestContext, type VendorRequest, type VendorResponse } from '../index.js';
import { startGoogleAdsFake, type GoogleAdsFake } from './fake.js';
import { MAX_CONVERSIONS_PER_REQUEST, TOKEN_REFRESH_MARGIN_MS, classifyUploadResponse, conversionActionResource, googleAdsDestination as def, parseDuration, type GoogleAdsSettings } from './index.js';

const DAY = 86_400_000;

/** Credentials the fake accepts (its defaults). */
const CREDENTIALS = { developer_token: 'fake-developer-token', client_id: 'fake-client.apps.googleusercontent.com', client_secret: 'fake-client-secret', refresh_token: '1//fake-refresh-token' };
/** Settings of the golden requests: Google's own endpoints. */
const GOLDEN_SETTINGS = { customerId: '1234567890', conversionActions: { purchase: '987654321' } };
const settingsFor = (fake: GoogleAdsFake, extra: Partial<GoogleAdsSettings> = {}) => ({ ...GOLDEN_SETTINGS, endpoint: fake.url, tokenEndpoint: fake.tokenUrl, ...extra });

/** Inline events covering the other shapes: gbraid, phone only (slot 0 left empty), consent, no order id. */
const EXTRA_EVENTS: SegmentEvent[] = [
  {
    type: 'track',
    event: 'Order Completed',
    messageId: 'ios-order-2',
    timestamp: '2026-11-20T09:30:05.000-06:00',
    properties: { order_id: 'o-2', revenue: 19.9, currency: 'eur' },
    context: { traits: { phone: '+1 (312) 555-0142' }, consent: { categoryPreferences: { ad_user_data: true } }, providers: { googleGtag: { data: { gbraid: '0AAAAAoXgbraid' } } } },
  } as SegmentEvent,
  {
    type: 'track',
    event: 'Order Completed',
    messageId: 'ajs-next-no-order-id',
    timestamp: '2026-11-20T14:00:00.000Z',
    properties: { total: 5 },
    traits: { email: 'Jane.Doe@gmail.com' },
    context: { providers: { googleGtag: { data: { wbraid: 'WBRAIDweb-click' } } } },
  } as SegmentEvent,
];
function extraPayloads(): Record<string, unknown>[] {
  const compiled = compileStarter(def);
  return EXTRA_EVENTS.map((e) => {
    const r = compiled.apply(e);
    if (!r.ok) throw new Error(`extra event not mapped: ${JSON.stringify(r)}`);
    return r.payload;
  });
}

/** ctx.fetch standing in for Google's token endpoint in pure tests; records the exchanges. */
function tokenStub(token = 'ya29.golden-access-token', exchanges: Omit<VendorRequest, 'items'>[] = []): RequestContext<GoogleAdsSettings>['fetch'] {
  return async (r) => {
    exchanges.push(r);
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: token, expires_in: 3599, scope: 'https://www.googleapis.com/auth/adwords', token_type: 'Bearer' }) };
  };
}

const readGolden = (name: string): unknown => JSON.parse(readFileSync(new URL(`./golden/${name}.json`, import.meta.url), 'utf8'));
const asGolden = (r: VendorRequest) => ({ method: r.method, url: r.url, headers: r.headers, body: JSON.parse(r.body) as unknown });

/** Sends a built request to the fake as is, except its base URL. */
async function replay(fake: GoogleAdsFake, r: { method: string; url: string; headers: Record<string, string>; body: string }): Promise<{ status: number; json: any }> {
  const url = r.url.replace('https://googleads.googleapis.com', fake.url);
  const res = await fetch(url, { method: r.method, headers: r.headers, body: r.body });
  return { status: res.status, json: await res.json() };
}

// ---- starter Mapping ---------------------------------------------------------------------------

describe('google-ads starter Mapping', () => {
  it('maps the fixtures: Order Completed (it has a gclid) becomes a purchase; the rest is dropped on purpose', () => {
    const compiled = compileStarter(def);
    const outcomes = Object.fromEntries(fixtureEvents().map(({ name, event }) => {
      const r = compiled.apply(event);
      return [name, r.ok ? r.name : r.dropped ?? 'failed'];
    }));
    expect(outcomes).toEqual({
      '01-page': 'filtered',
      '02-products-searched': 'filtered',
      '03-product-list-viewed': 'filtered',
      '04-product-viewed': 'filtered',
      '05-product-added': 'filtered',
      '06-checkout-started': 'filtered',
      '07-identify': 'filtered',
      '08-order-completed': 'purchase',
      '09-order-refunded': 'filtered',
      '10-group': 'filtered',
      '11-alias': 'filtered',
      '12-screen': 'filtered',
      '13-track-unicode': 'filtered',
      '14-track-server': 'filtered',
    });
  });

  it('passes its switchyard test cases (tests/*.test.yaml)', async () => {
    expect(await runFolderTests(new URL('.', import.meta.url))).toEqual({ code: 0, err: '', notPassed: [expect.stringMatching(/^24 passed, 0 failed/)] });
  });

  it('writes payloads valid for an Integration that configures purchase', () => {
    const validate = compileOutputValidator(def.outputSchema(requestContext(def, GOLDEN_SETTINGS).settings)!);
    for (const p of [...mapFixtures(def).mapped.map((f) => f.payload), ...extraPayloads()]) expect(validate(p)).toBeUndefined();
  });

  it('is incompatible with an Integration that does not configure the purchase action, naming the rule', () => {
    const integration = destinationIntegration('google-ads', 'googleAds', { customerId: '1234567890', conversionActions: { lead: '1' } }) as Integration;
    expect(() => compileIntegrationRoute(integration, starterResource(def))).toThrow(expect.objectContaining({ details: expect.arrayContaining([expect.objectContaining({ path: expect.stringContaining('/eventSpecific/Order Completed/fields/0'), rule: 'pattern' })]) }));
  });
});

// ---- output schema, settings, credentials -----------------------------------------------------

describe('google-ads output schema', () => {
  const valid = { gclid: 'EAIaIQobChMI-test', conversionAction: 'purchase', conversionDateTime: '2026-11-20 15:04:20+00:00' };
  const validate = compileOutputValidator(def.outputSchema(requestContext(def, GOLDEN_SETTINGS).settings)!);
  const mappingLevel = compileOutputValidator(def.outputSchema(undefined)!);

  it('takes a minimal click conversion, an id or a resource name', () => {
    expect(validate(valid)).toBeUndefined();
    expect(validate({ ...valid, conversionAction: '42' })).toBeUndefined();
    expect(validate({ ...valid, conversionAction: 'customers/1/conversionActions/2' })).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['no click id', { gclid: undefined }, 'oneOf', ''],
    ['two click ids', { gbraid: 'b' }, 'oneOf', ''],
    ['a key the Integration does not configure', { conversionAction: 'lead' }, 'pattern', 'conversionAction'],
    ['no conversionAction', { conversionAction: undefined }, 'required', 'conversionAction'],
    ['an ISO date-time', { conversionDateTime: '2026-11-20T15:04:20Z' }, 'pattern', 'conversionDateTime'],
    ['a date-time without offset', { conversionDateTime: '2026-11-20 15:04:20' }, 'pattern', 'conversionDateTime'],
    ['hour 24', { conversionDateTime: '2026-11-20 24:04:20+00:00' }, 'pattern', 'conversionDateTime'],
    ['an offset beyond ±14:00', { conversionDateTime: '2026-11-20 15:04:20+15:00' }, 'pattern', 'conversionDateTime'],
    ['a lower-case currency', { currencyCode: 'usd' }, 'pattern', 'currencyCode'],
    ['a 4-letter currency', { currencyCode: 'USDT' }, 'pattern', 'currencyCode'],
    ['a string value', { conversionValue: '12' }, 'type', 'conversionValue'],
    ['6 user identifiers', { userIdentifiers: Array.from({ length: 6 }, () => ({ hashedEmail: 'a'.repeat(64) })) }, 'maxItems', 'userIdentifiers'],
    ['an upper-case hash', { userIdentifiers: [{ hashedEmail: 'A'.repeat(64) }] }, 'anyOf', 'userIdentifiers[0]'],
    ['an unhashed email', { userIdentifiers: [{ hashedEmail: 'jane@example.com' }] }, 'anyOf', 'userIdentifiers[0]'],
    ['email and phone in one identifier', { userIdentifiers: [{ hashedEmail: 'a'.repeat(64), hashedPhoneNumber: 'b'.repeat(64) }] }, 'anyOf', 'userIdentifiers[0]'],
    ['adPersonalization (not for click conversions)', { consent: { adPersonalization: 'GRANTED' } }, 'additionalProperties', 'consent.adPersonalization'],
    ['an unknown consent status', { consent: { adUserData: 'YES' } }, 'enum', 'consent.adUserData'],
    ['a field ClickConversion does not have', { event_name: 'purchase' }, 'additionalProperties', 'event_name'],
  ])('refuses %s', (_, change, rule, path) => {
    const payload = Object.fromEntries(Object.entries({ ...valid, ...change }).filter(([, v]) => v !== undefined));
    expect(validate(payload)).toEqual(expect.arrayContaining([expect.objectContaining({ rule, path })]));
  });

  it('takes any key at the Mapping level, and null identifier slots', () => {
    expect(mappingLevel({ ...valid, conversionAction: 'lead' })).toBeUndefined();
    expect(mappingLevel({ ...valid, userIdentifiers: [null, { hashedPhoneNumber: 'b'.repeat(64) }] })).toBeUndefined();
    expect(mappingLevel({ ...valid, conversionAction: 'no spaces please' })).toEqual(expect.arrayContaining([expect.objectContaining({ rule: 'pattern' })]));
  });

  it('resolves conversionAction keys and ids to resource names', () => {
    const s = { customerId: '1234567890', conversionActions: { purchase: '987654321' } };
    expect(conversionActionResource('purchase', s)).toBe('customers/1234567890/conversionActions/987654321');
    expect(conversionActionResource('42', s)).toBe('customers/1234567890/conversionActions/42');
    expect(conversionActionResource('customers/5/conversionActions/6', s)).toBe('customers/5/conversionActions/6');
    expect(conversionActionResource('lead', s)).toBe('lead'); // sent as is: Google refuses that row alone
    expect(conversionActionResource('toString', s)).toBe('toString');
  });
});

describe('google-ads settings and credentials', () => {
  const integration = (settings: unknown) => destinationIntegration('google-ads', 'googleAds', settings);
  const create = (settings: unknown, credentials: Record<string, string>) => DESTINATIONS['google-ads'].create({ integration: integration(settings), credentials, timeoutMs: 1000, clock: { now: () => GOLDEN_NOW } });

  it('applies the defaults', () => {
    const ctx = requestContext(def, { customerId: '1234567890' });
    expect(ctx.settings).toEqual({ customerId: '1234567890', conversionActions: {}, validateOnly: false, apiVersion: 'v26', endpoint: 'https://googleads.googleapis.com', tokenEndpoint: 'https://oauth2.googleapis.com/token' });
  });

  it.each([
    ['a customer id with dashes', { customerId: '123-456-7890' }, 'customerId'],
    ['a 9-digit customer id', { customerId: '123456789' }, 'customerId'],
    ['a login customer id with dashes', { customerId: '1234567890', loginCustomerId: '111-222-3333' }, 'loginCustomerId'],
    ['a conversion action id that is not digits', { customerId: '1234567890', conversionActions: { purchase: 'AW-123/abc' } }, 'conversionActions'],
    ['a conversion action key with a space', { customerId: '1234567890', conversionActions: { 'my purchase': '1' } }, 'conversionActions'],
    ['an API version that is not vN', { customerId: '1234567890', apiVersion: '26' }, 'apiVersion'],
    ['no customer id', {}, 'customerId'],
  ])('refuses %s', (_, settings, field) => {
    expect(() => create(settings, CREDENTIALS)).toThrow(expect.objectContaining({ message: expect.stringContaining(field) }));
  });

  it.each<[string, Record<string, string>, RegExp]>([
    ['no developer token', { access_token: 'ya29.x' }, /developer_token/],
    ['a refresh token without its client', { developer_token: 'd', refresh_token: 'r' }, /has refresh_token but not client_id, client_secret/],
    ['neither OAuth client nor access token', { developer_token: 'd' }, /client_id, client_secret and refresh_token \(or an access_token\)/],
    ['a developer token with a line break', { developer_token: 'd\nx-evil: 1', access_token: 'a' }, /line break/],
  ])('refuses credentials with %s', (_, credentials, message) => {
    expect(() => create({ customerId: '1234567890' }, credentials)).toThrow(message);
  });

  it('takes OAuth credentials, or a plain access token', () => {
    expect(() => create({ customerId: '1234567890' }, CREDENTIALS)).not.toThrow();
    expect(() => create({ customerId: '1234567890' }, { developer_token: 'd', access_token: 'ya29.x' })).not.toThrow();
  });
});

// ---- golden requests ---------------------------------------------------------------------------

describe('google-ads golden requests', () => {
  const ctx = (exchanges: Omit<VendorRequest, 'items'>[] = []) => requestContext(def, GOLDEN_SETTINGS, { credentials: CREDENTIALS, now: GOLDEN_NOW, fetch: tokenStub(undefined, exchanges) });

  it('exchanges the refresh token at Google’s token endpoint first', async () => {
    const exchanges: Omit<VendorRequest, 'items'>[] = [];
    await def.buildRequests(mapFixtures(def).mapped.map((f) => f.payload), ctx(exchanges));
    expect(exchanges).toHaveLength(1);
    const [r] = exchanges;
    expectGolden(new URL('./golden/oauth-token.json', import.meta.url), { method: r!.method, url: r!.url, headers: r!.headers, body: Object.fromEntries(new URLSearchParams(r!.body)) });
    expect(r!.body).toBe('grant_type=refresh_token&client_id=fake-client.apps.googleusercontent.com&client_secret=fake-client-secret&refresh_token=1%2F%2Ffake-refresh-token');
  });

  it('sends every fixture the Mapping maps in one request', async () => {
    const requests = await def.buildRequests(mapFixtures(def).mapped.map((f) => f.payload), ctx());
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual([0]);
    expectGolden(new URL('./golden/all-fixtures.json', import.meta.url), asGolden(requests[0]!));
  });

  it.each(mapFixtures(def).mapped.map((f) => [f.name, f.payload] as const))('sends %s alone', async (name, payload) => {
    const requests = await def.buildRequests([payload], ctx());
    expect(requests).toHaveLength(1);
    expectGolden(new URL(`./golden/${name}.json`, import.meta.url), asGolden(requests[0]!));
  });

  it('sends a mixed batch: gbraid and wbraid, phone only (empty slot removed), consent, messageId as order id', async () => {
    const requests = await def.buildRequests([...mapFixtures(def).mapped.map((f) => f.payload), ...extraPayloads()], ctx());
    expect(requests).toHaveLength(1);
    expect(requests[0]!.items).toEqual([0, 1, 2]);
    const body = JSON.parse(requests[0]!.body) as { conversions: Record<string, unknown>[] };
    expect(body.conversions[1]!.userIdentifiers).toEqual([{ hashedPhoneNumber: '4190048c4c41d9080d6d474ab829376a02c6bd5e620a1040c17420a865a221c1' }]);
    expectGolden(new URL('./golden/mixed-batch.json', import.meta.url), asGolden(requests[0]!));
  });

  it('adds login-customer-id and validateOnly when set', async () => {
    const c = requestContext(def, { ...GOLDEN_SETTINGS, loginCustomerId: '1112223334', validateOnly: true }, { credentials: CREDENTIALS, fetch: tokenStub() });
    const [r] = await def.buildRequests(mapFixtures(def).mapped.map((f) => f.payload), c);
    expect(r!.headers['login-customer-id']).toBe('1112223334');
    expect(JSON.parse(r!.body)).toMatchObject({ partialFailure: true, validateOnly: true });
  });

  it(`splits batches above ${MAX_CONVERSIONS_PER_REQUEST} conversions`, async () => {
    const one = mapFixtures(def).mapped[0]!.payload;
    const requests = await def.buildRequests(Array.from({ length: 2001 }, () => one), requestContext(def, GOLDEN_SETTINGS, { credentials: CREDENTIALS, fetch: tokenStub(), batchSize: 2000 }));
    expect(requests.map((r) => r.items.length)).toEqual([2000, 1]);
    expect(requests[1]!.items).toEqual([2000]);
    expect((JSON.parse(requests[0]!.body) as { conversions: unknown[] }).conversions).toHaveLength(2000);
  });

  it('uses a plain access token as is, with no exchange', async () => {
    const exchanges: Omit<VendorRequest, 'items'>[] = [];
    const c = requestContext(def, GOLDEN_SETTINGS, { credentials: { developer_token: 'd', access_token: 'ya29.plain' }, fetch: tokenStub(undefined, exchanges) });
    const [r] = await def.buildRequests(mapFixtures(def).mapped.map((f) => f.payload), c);
    expect(r!.headers.authorization).toBe('Bearer ya29.plain');
    expect(exchanges).toHaveLength(0);
  });

  it.each<[string, VendorResponse, boolean]>([
    ['503 from the token endpoint', vendorResponse(503, 'unavailable'), false],
    ['429 from the token endpoint', vendorResponse(429, { error: 'rate_limited' }), false],
    ['a 200 without access_token', vendorResponse(200, { token_type: 'Bearer' }), false],
    ['400 invalid_grant', vendorResponse(400, { error: 'invalid_grant', error_description: 'Bad Request' }), true],
    ['401 invalid_client', vendorResponse(401, { error: 'invalid_client', error_description: 'Unauthorized' }), true],
  ])('a token exchange answered with %s fails the send (permanent: %s)', async (_, response, permanent) => {
    const c = requestContext(def, GOLDEN_SETTINGS, { credentials: CREDENTIALS, fetch: async () => response });
    const failure = await Promise.resolve(def.buildRequests(mapFixtures(def).mapped.map((f) => f.payload), c)).then(() => undefined, (e: unknown) => e as Error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure!.name === 'SwitchyardError').toBe(permanent);
    expect(failure!.message).toContain(`OAuth token endpoint answered HTTP ${response.status}`);
  });

  describe('accepted by the fake', () => {
    let fake: GoogleAdsFake;
    beforeAll(async () => {
      fake = await startGoogleAdsFake();
    });
    afterAll(async () => fake.close());
    beforeEach(() => fake.reset());

    it.each(['all-fixtures', ...mapFixtures(def).mapped.map((f) => f.name), 'mixed-batch'])('golden/%s.json', async (name) => {
      const golden = readGolden(name) as { method: string; url: string; headers: Record<string, string>; body: { conversions: unknown[] } };
      const token = fake.issueToken();
      const res = await replay(fake, { ...golden, headers: { ...golden.headers, authorization: `Bearer ${token}` }, body: JSON.stringify(golden.body) });
      expect(res).toEqual({ status: 200, json: { results: expect.any(Array), jobId: expect.any(String) } });
      expect(res.json.results.every((r: object) => Object.keys(r).length > 0)).toBe(true);
      expect(fake.accepted.map((a) => a.conversion)).toEqual(golden.body.conversions);
    });

    it('golden/oauth-token.json', async () => {
      const golden = readGolden('oauth-token') as { method: string; url: string; headers: Record<string, string>; body: Record<string, string> };
      const res = await fetch(fake.tokenUrl, { method: golden.method, headers: golden.headers, body: new URLSearchParams(golden.body).toString() });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ access_token: expect.stringMatching(/^ya29\./), expires_in: 3599, scope: 'https://www.googleapis.com/auth/adwords', token_type: 'Bearer' });
    });
  });
});

// ---- the fake refuses what Google refuses ------------------------------------------------------

describe('google-ads fake', () => {
  let fake: GoogleAdsFake;
  beforeAll(async () => {
    fake = await startGoogleAdsFake();
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const good = (extra: Record<string, unknown> = {}) => ({ gclid: 'EAIaIQobChMI-good', conversionAction: 'customers/1234567890/conversionActions/987654321', conversionDateTime: '2026-11-20 15:04:20+00:00', orderId: `o-${Math.random()}`, ...extra });
  const post = async (body: unknown, headers: Record<string, string | undefined> = {}, path = '/v26/customers/1234567890:uploadClickConversions', method = 'POST') => {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries({ authorization: `Bearer ${fake.issueToken()}`, 'developer-token': 'fake-developer-token', 'content-type': 'application/json', ...headers })) if (v !== undefined) h[k] = v;
    const res = await fetch(`${fake.url}${path}`, { method, headers: h, ...(method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const request = (conversions: unknown[], extra: Record<string, unknown> = {}) => ({ conversions, partialFailure: true, ...extra });
  const codeOf = (json: any) => json.error?.details?.find((d: any) => d['@type'].endsWith('GoogleAdsFailure'))?.errors?.[0]?.errorCode;

  it('accepts a valid conversion and records it', async () => {
    const c = good();
    const res = await post(request([c]));
    expect(res).toEqual({ status: 200, json: { results: [{ gclid: c.gclid, conversionAction: c.conversionAction, conversionDateTime: c.conversionDateTime }], jobId: expect.stringMatching(/^[0-9]+$/) } });
    expect(fake.accepted).toEqual([{ customerId: '1234567890', jobId: res.json.jobId, conversion: c }]);
  });

  describe('refuses the whole request (RPC error)', () => {
    it.each<[string, () => Promise<{ status: number; json: any }>, number, string, Record<string, string> | undefined]>([
      ['without Authorization', () => post(request([good()]), { authorization: undefined }), 401, 'UNAUTHENTICATED', undefined],
      ['with an unknown token', () => post(request([good()]), { authorization: 'Bearer ya29.made-up' }), 401, 'UNAUTHENTICATED', undefined],
      ['with a token that is not Bearer', () => post(request([good()]), { authorization: `Basic ${fake.issueToken()}` }), 401, 'UNAUTHENTICATED', undefined],
      ['without developer-token', () => post(request([good()]), { 'developer-token': undefined }), 400, 'INVALID_ARGUMENT', { requestError: 'DEVELOPER_TOKEN_PARAMETER_MISSING' }],
      ['with a wrong developer-token', () => post(request([good()]), { 'developer-token': 'other' }), 401, 'UNAUTHENTICATED', { authenticationError: 'DEVELOPER_TOKEN_INVALID' }],
      ['for a customer id with dashes', () => post(request([good()]), {}, '/v26/customers/123-456-7890:uploadClickConversions'), 400, 'INVALID_ARGUMENT', { requestError: 'INVALID_CUSTOMER_ID' }],
      ['for a customer the user cannot reach', () => post(request([good()]), {}, '/v26/customers/9999999999:uploadClickConversions'), 403, 'PERMISSION_DENIED', { authorizationError: 'USER_PERMISSION_DENIED' }],
      ['with a login-customer-id with dashes', () => post(request([good()]), { 'login-customer-id': '111-222-3333' }), 400, 'INVALID_ARGUMENT', { headerError: 'INVALID_LOGIN_CUSTOMER_ID' }],
      ['for an API version it does not serve', () => post(request([good()]), {}, '/v19/customers/1234567890:uploadClickConversions'), 404, 'NOT_FOUND', undefined],
      ['with GET', () => post(undefined, {}, '/v26/customers/1234567890:uploadClickConversions', 'GET'), 404, 'NOT_FOUND', undefined],
      ['that is not JSON', () => post('{conversions: [', {}), 400, 'INVALID_ARGUMENT', undefined],
      ['that is not sent as JSON', () => post(request([good()]), { 'content-type': 'text/plain' }), 400, 'INVALID_ARGUMENT', undefined],
      ['with an unknown top-level field', () => post(request([good()], { partial_failure_mode: true })), 400, 'INVALID_ARGUMENT', undefined],
      ['without partialFailure', () => post({ conversions: [good()] }), 400, 'INVALID_ARGUMENT', { partialFailureError: 'PARTIAL_FAILURE_MODE_REQUIRED' }],
      ['with partialFailure false', () => post(request([good()], { partialFailure: false })), 400, 'INVALID_ARGUMENT', { partialFailureError: 'PARTIAL_FAILURE_MODE_REQUIRED' }],
      ['without conversions', () => post(request([])), 400, 'INVALID_ARGUMENT', { fieldError: 'REQUIRED' }],
      ['with 2001 conversions', () => post(request(Array.from({ length: 2001 }, (_, i) => good({ orderId: `o${i}` })))), 400, 'INVALID_ARGUMENT', { conversionUploadError: 'TOO_MANY_CONVERSIONS_IN_REQUEST' }],
      ['with a conversion field ClickConversion does not have', () => post(request([good(), good({ eventName: 'purchase' })])), 400, 'INVALID_ARGUMENT', undefined],
      ['with a null user identifier', () => post(request([good({ userIdentifiers: [null, { hashedEmail: 'a'.repeat(64) }] })])), 400, 'INVALID_ARGUMENT', undefined],
      ['with email and phone in one identifier (a oneof)', () => post(request([good({ userIdentifiers: [{ hashedEmail: 'a'.repeat(64), hashedPhoneNumber: 'b'.repeat(64) }] })])), 400, 'INVALID_ARGUMENT', undefined],
      ['with an unknown consent status', () => post(request([good({ consent: { adUserData: 'YES' } })])), 400, 'INVALID_ARGUMENT', undefined],
      ['with a value that is not a number', () => post(request([good({ conversionValue: 'ten' })])), 400, 'INVALID_ARGUMENT', undefined],
      ['with a number where a string goes', () => post(request([good({ orderId: 1001 })])), 400, 'INVALID_ARGUMENT', undefined],
    ])('%s', async (_, send, status, rpcStatus, code) => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.json.error).toMatchObject({ code: status, status: rpcStatus, message: expect.any(String) });
      if (code) expect(codeOf(res.json)).toEqual(code);
      expect(fake.accepted).toHaveLength(0);
    });

    it('names the conversion a JSON value error is in', async () => {
      const res = await post(request([good(), good({ consent: { adUserData: 'YES' } })]));
      expect(res.json.error.details).toEqual([{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'conversions[1].consent.ad_user_data', description: expect.stringContaining("Invalid value at 'conversions[1].consent.ad_user_data'") }] }]);
    });

    it('refuses an expired token by its clock', async () => {
      let now = GOLDEN_NOW;
      const clocked = await startGoogleAdsFake({ now: () => now, tokenTtlSeconds: 3599 });
      try {
        const token = clocked.issueToken();
        now += 3599_000;
        const res = await fetch(`${clocked.url}/v26/customers/1234567890:uploadClickConversions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'developer-token': 'fake-developer-token', 'content-type': 'application/json' }, body: JSON.stringify(request([good()])) });
        expect(res.status).toBe(401);
        expect(((await res.json()) as any).error.details[0]).toMatchObject({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_EXPIRED' });
      } finally {
        await clocked.close();
      }
    });
  });

  describe('refuses single conversions (partial failure), taking the others', () => {
    it.each<[string, Record<string, unknown>, Record<string, string>, string]>([
      ['no click id', { gclid: undefined }, { fieldError: 'REQUIRED' }, 'gclid'],
      ['gbraid and wbraid', { gclid: undefined, gbraid: 'GBRAIDabcdef', wbraid: 'WBRAIDabcdef' }, { conversionUploadError: 'GBRAID_WBRAID_BOTH_SET' }, 'wbraid'],
      ['gclid and gbraid', { gbraid: 'GBRAIDabcdef' }, { fieldError: 'VALUE_MUST_BE_UNSET' }, 'gbraid'],
      ['a gclid that cannot be decoded', { gclid: 'not a gclid!' }, { conversionUploadError: 'UNPARSEABLE_GCLID' }, 'gclid'],
      ['no conversion action', { conversionAction: undefined }, { fieldError: 'REQUIRED' }, 'conversion_action'],
      ['a conversion action that is not a resource name', { conversionAction: 'purchase' }, { requestError: 'RESOURCE_NAME_MALFORMED' }, 'conversion_action'],
      ['an unknown conversion action', { conversionAction: 'customers/1234567890/conversionActions/111' }, { conversionUploadError: 'NO_CONVERSION_ACTION_FOUND' }, 'conversion_action'],
      ['no conversion date-time', { conversionDateTime: undefined }, { fieldError: 'REQUIRED' }, 'conversion_date_time'],
      ['an ISO 8601 date-time', { conversionDateTime: '2026-11-20T15:04:20Z' }, { dateError: 'INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET' }, 'conversion_date_time'],
      ['a date that does not exist', { conversionDateTime: '2026-02-30 15:04:20+00:00' }, { dateError: 'INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET' }, 'conversion_date_time'],
      ['a conversion older than 90 days', { conversionDateTime: '2026-08-20 15:09:59+00:00' }, { conversionUploadError: 'EXPIRED_EVENT' }, 'conversion_date_time'],
      ['a lower-case currency', { currencyCode: 'usd' }, { currencyCodeError: 'UNSUPPORTED' }, 'currency_code'],
      ['an unknown currency', { currencyCode: 'XYZ' }, { currencyCodeError: 'UNSUPPORTED' }, 'currency_code'],
      ['6 user identifiers', { userIdentifiers: Array.from({ length: 6 }, () => ({ hashedEmail: 'a'.repeat(64) })) }, { collectionSizeError: 'TOO_MANY' }, 'user_identifiers'],
      ['an unhashed email', { userIdentifiers: [{ hashedEmail: 'jane@example.com' }] }, { conversionUploadError: 'INVALID_USER_IDENTIFIER' }, 'user_identifiers'],
      ['an upper-case hex hash', { userIdentifiers: [{ hashedPhoneNumber: 'A'.repeat(64) }] }, { conversionUploadError: 'INVALID_USER_IDENTIFIER' }, 'user_identifiers'],
      ['an identifier that is neither email nor phone', { userIdentifiers: [{ userIdentifierSource: 'FIRST_PARTY' }] }, { conversionUploadError: 'UNSUPPORTED_USER_IDENTIFIER' }, 'user_identifiers'],
      ['consent for ad personalization', { consent: { adUserData: 'GRANTED', adPersonalization: 'GRANTED' } }, { fieldError: 'VALUE_MUST_BE_UNSET' }, 'consent'],
      ['an empty order id', { orderId: '' }, { stringLengthError: 'EMPTY' }, 'order_id'],
    ])('%s', async (_, change, code, field) => {
      const ok = good();
      const bad = Object.fromEntries(Object.entries(good(change)).filter(([, v]) => v !== undefined));
      const res = await post(request([ok, bad]));
      expect(res.status).toBe(200);
      expect(res.json.results).toEqual([expect.objectContaining({ gclid: ok.gclid }), {}]);
      expect(res.json.partialFailureError).toMatchObject({ code: 3, message: expect.stringContaining('at conversions[1]') });
      const failure = res.json.partialFailureError.details[0];
      expect(failure['@type']).toBe('type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure');
      expect(failure.errors[0]).toMatchObject({ errorCode: code, message: expect.any(String) });
      expect(failure.errors[0].location.fieldPathElements.slice(0, 2)).toEqual([{ fieldName: 'conversions', index: 1 }, expect.objectContaining({ fieldName: field })]);
      expect(fake.accepted.map((a) => a.conversion)).toEqual([ok]);
    });

    it('duplicate order ids in one request: both refused', async () => {
      const res = await post(request([good({ orderId: 'same' }), good({ orderId: 'same', gclid: 'EAIaIQobChMI-other' }), good({ gclid: 'EAIaIQobChMI-third' })]));
      expect(res.json.results.map((r: object) => Object.keys(r).length > 0)).toEqual([false, false, true]);
      expect(res.json.partialFailureError.message).toMatch(/^Multiple errors in ‘details’\. First error: Imported events include multiple conversions with the same order ID/);
      expect(res.json.partialFailureError.details[0].errors.map((e: any) => e.errorCode)).toEqual([{ conversionUploadError: 'DUPLICATE_ORDER_ID' }, { conversionUploadError: 'DUPLICATE_ORDER_ID' }]);
    });

    it('an order id already recorded, and the same click and time again', async () => {
      const first = good({ orderId: 'o-1' });
      await post(request([first]));
      const res = await post(request([good({ orderId: 'o-1', gclid: 'EAIaIQobChMI-other' }), { ...first, orderId: 'o-2' }]));
      expect(res.json.partialFailureError.details[0].errors.map((e: any) => e.errorCode)).toEqual([{ conversionUploadError: 'ORDER_ID_ALREADY_IN_USE' }, { conversionUploadError: 'CLICK_CONVERSION_ALREADY_EXISTS' }]);
      expect(fake.accepted).toHaveLength(1);
    });

    it('validateOnly: errors only, no results, nothing recorded', async () => {
      const res = await post(request([good(), good({ gclid: 'bad gclid!' })], { validateOnly: true }));
      expect(res.status).toBe(200);
      expect(res.json.results).toBeUndefined();
      expect(res.json.partialFailureError.details[0].errors).toHaveLength(1);
      expect(fake.accepted).toHaveLength(0);
    });
  });

  describe('OAuth token endpoint', () => {
    const exchange = (form: Record<string, string>, contentType = 'application/x-www-form-urlencoded') => fetch(fake.tokenUrl, { method: 'POST', headers: { 'content-type': contentType }, body: new URLSearchParams(form).toString() }).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
    const form = { grant_type: 'refresh_token', client_id: CREDENTIALS.client_id, client_secret: CREDENTIALS.client_secret, refresh_token: CREDENTIALS.refresh_token };

    it('issues a token that the API takes', async () => {
      const res = await exchange(form);
      expect(res.status).toBe(200);
      const api = await post(request([good()]), { authorization: `Bearer ${res.json.access_token}` });
      expect(api.status).toBe(200);
    });

    it.each<[string, Record<string, string>, string | undefined, number, string]>([
      ['another grant type', { ...form, grant_type: 'client_credentials' }, undefined, 400, 'unsupported_grant_type'],
      ['an unknown client', { ...form, client_id: 'x' }, undefined, 401, 'invalid_client'],
      ['a wrong client secret', { ...form, client_secret: 'x' }, undefined, 401, 'invalid_client'],
      ['a wrong refresh token', { ...form, refresh_token: 'x' }, undefined, 400, 'invalid_grant'],
      ['a JSON body', form, 'application/json', 400, 'invalid_request'],
    ])('refuses %s', async (_, f, contentType, status, error) => {
      const res = await exchange(f, contentType);
      expect(res).toEqual({ status, json: { error, error_description: expect.any(String) } });
    });

    it('refuses a revoked refresh token', async () => {
      fake.revokeRefreshToken();
      expect(await exchange(form)).toMatchObject({ status: 400, json: { error: 'invalid_grant' } });
    });
  });
});

// ---- classify ------------------------------------------------------------------------------------

describe('google-ads classify', () => {
  const request = (items: number, token = 'ya29.t1'): VendorRequest => ({ method: 'POST', url: 'https://googleads.googleapis.com/v26/customers/1234567890:uploadClickConversions', headers: { authorization: `Bearer ${token}` }, body: '{}', items: Array.from({ length: items }, (_, i) => i) });
  const ctx = (credentials: Record<string, string> = CREDENTIALS) => requestContext(def, GOLDEN_SETTINGS, { credentials });
  const classify = (response: VendorResponse, items = 1, c = ctx(), token?: string) => def.classify(response, request(items, token), c);
  const FAILURE = 'type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure';
  const rowError = (index: number, code: Record<string, string>, message: string, field = 'gclid') => ({ errorCode: code, message, location: { fieldPathElements: [{ fieldName: 'conversions', index }, { fieldName: field }] } });
  const partial = (errors: object[], results?: object[]) => vendorResponse(200, { ...(results ? { results } : {}), partialFailureError: { code: 3, message: 'Multiple errors', details: [{ '@type': FAILURE, errors, requestId: 'req-1' }] }, jobId: '7' });
  const rpc = (code: number, status: string, message: string, errors?: object[], extra: object[] = []) =>
    vendorResponse(code, { error: { code, message, status, details: [...(errors ? [{ '@type': FAILURE, errors, requestId: 'req-2' }] : []), ...extra] } });

  it('2xx without partialFailureError: every conversion taken', () => {
    expect(classify(vendorResponse(200, { results: [{ gclid: 'g' }, { gclid: 'h' }], jobId: '1' }), 2)).toEqual({ outcome: 'success' });
    expect(classify(vendorResponse(200, { jobId: '1' }), 2)).toEqual({ outcome: 'success' }); // validateOnly
  });

  it('partial failure: only the named rows fail, permanently, with Google’s message, code and field', () => {
    const r = classify(partial([rowError(0, { conversionUploadError: 'UNPARSEABLE_GCLID' }, 'The imported gclid could not be decoded.'), rowError(2, { conversionUploadError: 'NO_CONVERSION_ACTION_FOUND' }, 'The conversion action specified in the upload request cannot be found.', 'conversion_action')], [{}, { gclid: 'ok' }, {}]), 3);
    expect(r.outcome).toBe('success');
    expect([...r.items!.entries()]).toEqual([
      [0, { outcome: 'permanent', error: 'The imported gclid could not be decoded. [conversionUploadError: UNPARSEABLE_GCLID] at conversions[0].gclid (requestId req-1)' }],
      [2, { outcome: 'permanent', error: 'The conversion action specified in the upload request cannot be found. [conversionUploadError: NO_CONVERSION_ACTION_FOUND] at conversions[2].conversion_action (requestId req-1)' }],
    ]);
  });

  it('rows Google asks to retry later (click under 6 hours old, new action, internal error) are retryable', () => {
    const r = classify(partial([rowError(0, { conversionUploadError: 'TOO_RECENT_EVENT' }, 'The click associated with the given identifier or iOS URL parameter occurred less than 6 hours ago. Retry after 6 hours have passed.'), rowError(1, { conversionUploadError: 'TOO_RECENT_CONVERSION_ACTION' }, 'too recent action'), rowError(2, { internalError: 'INTERNAL_ERROR' }, 'An internal error has occurred.')]), 3);
    expect([...r.items!.values()].map((i) => i.outcome)).toEqual(['retryable', 'retryable', 'retryable']);
  });

  it('a row with a transient and a permanent error is permanent', () => {
    const r = classify(partial([rowError(0, { internalError: 'INTERNAL_ERROR' }, 'x'), rowError(0, { conversionUploadError: 'UNPARSEABLE_GCLID' }, 'y')]), 1);
    expect(r.items!.get(0)).toMatchObject({ outcome: 'permanent', error: expect.stringMatching(/^x .*; y /) });
  });

  it('rows Google already has (a replay) are delivered, with the reason kept', () => {
    const r = classify(partial([rowError(0, { conversionUploadError: 'ORDER_ID_ALREADY_IN_USE' }, 'The imported event includes an order ID that was previously recorded, so the event was not processed.', 'order_id'), rowError(1, { conversionUploadError: 'CLICK_CONVERSION_ALREADY_EXISTS' }, 'same click and time')]), 2);
    expect(r.items!.get(0)).toEqual({ outcome: 'success', error: expect.stringMatching(/^already recorded by Google Ads: The imported event includes an order ID/) });
    expect(r.items!.get(1)!.outcome).toBe('success');
  });

  it('errors that name no row go to the rows left without a result', () => {
    const r = classifyUploadResponse(JSON.stringify({ results: [{ gclid: 'a' }, {}], partialFailureError: { code: 3, message: 'm', details: [{ '@type': FAILURE, errors: [{ errorCode: { internalError: 'INTERNAL_ERROR' }, message: 'no location' }] }] } }), 2);
    expect([...r.items!.entries()]).toEqual([[1, { outcome: 'retryable', error: 'no location [internalError: INTERNAL_ERROR]' }]]);
  });

  it('a partialFailureError without GoogleAdsFailure fails the rows without a result with its message', () => {
    const r = classifyUploadResponse(JSON.stringify({ results: [{}, { gclid: 'b' }], partialFailureError: { code: 3, message: 'Something failed, at conversions[0]' } }), 2);
    expect([...r.items!.entries()]).toEqual([[0, { outcome: 'permanent', error: 'Something failed, at conversions[0]' }]]);
  });

  it('a 2xx that is not JSON is retryable (order ids dedupe the replay)', () => {
    expect(classify(vendorResponse(200, '<html>proxy</html>'))).toMatchObject({ outcome: 'retryable', error: expect.stringContaining('unreadable') });
  });

  it.each<[string, VendorResponse, number | undefined]>([
    ['QuotaErrorDetails.retry_delay', rpc(429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', [{ errorCode: { quotaError: 'RESOURCE_TEMPORARILY_EXHAUSTED' }, message: 'Too many requests.', details: { quotaErrorDetails: { rateScope: 'DEVELOPER', retryDelay: '30s' } } }]), 30_000],
    ['google.rpc.RetryInfo', rpc(429, 'RESOURCE_EXHAUSTED', 'Quota exceeded.', undefined, [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '2.500s' }]), 2_500],
    ['Retry-After', vendorResponse(429, { error: { code: 429, message: 'Too many', status: 'RESOURCE_EXHAUSTED' } }, { 'retry-after': '7' }), 7_000],
    ['no delay at all', vendorResponse(429, { error: { code: 429, message: 'Too many', status: 'RESOURCE_EXHAUSTED' } }), undefined],
  ])('429 RESOURCE_EXHAUSTED is throttled, with the delay of %s', (_, response, delay) => {
    const r = classify(response);
    expect(r).toMatchObject({ outcome: 'retryable', throttled: true, error: expect.stringMatching(/^HTTP 429 RESOURCE_EXHAUSTED: /) });
    expect(r.retryAfterMs).toBe(delay);
  });

  it.each<[number, string]>([
    [503, 'UNAVAILABLE'],
    [504, 'DEADLINE_EXCEEDED'],
    [500, 'INTERNAL'],
    [409, 'ABORTED'],
  ])('%i %s is retryable', (code, status) => {
    expect(classify(rpc(code, status, 'try later'))).toEqual({ outcome: 'retryable', error: `HTTP ${code} ${status}: try later` });
  });

  it.each<[string, VendorResponse]>([
    ['403 PERMISSION_DENIED', rpc(403, 'PERMISSION_DENIED', 'The caller does not have permission', [{ errorCode: { authorizationError: 'USER_PERMISSION_DENIED' }, message: "User doesn't have permission to access customer." }])],
    ['401 DEVELOPER_TOKEN_INVALID', rpc(401, 'UNAUTHENTICATED', 'Request is missing required authentication credential.', [{ errorCode: { authenticationError: 'DEVELOPER_TOKEN_INVALID' }, message: 'The developer token is not valid.' }])],
    ['400 DEVELOPER_TOKEN_PARAMETER_MISSING', rpc(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [{ errorCode: { requestError: 'DEVELOPER_TOKEN_PARAMETER_MISSING' }, message: 'developer-token parameter is missing.' }])],
    ['400 TOO_MANY_CONVERSIONS_IN_REQUEST', rpc(400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [{ errorCode: { conversionUploadError: 'TOO_MANY_CONVERSIONS_IN_REQUEST' }, message: 'Upload fewer than 2001 events in a single request.', location: { fieldPathElements: [{ fieldName: 'conversions' }] } }])],
    ['404 (no such version)', vendorResponse(404, '<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>')],
  ])('%s is permanent, not split', (_, response) => {
    const r = classify(response, 3);
    expect(r.outcome).toBe('permanent');
    expect(r.split).toBeUndefined();
    expect(r.throttled).toBeUndefined();
  });

  it('a 400 Google gives for a value in one conversion is split so only that one fails', () => {
    const body = rpc(400, 'INVALID_ARGUMENT', "Invalid value at 'conversions[1].consent.ad_user_data' (type.googleapis.com/google.ads.googleads.v26.enums.ConsentStatusEnum.ConsentStatus), \"YES\"", undefined, [
      { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'conversions[1].consent.ad_user_data', description: 'Invalid value' }] },
    ]);
    expect(classify(body, 3)).toMatchObject({ outcome: 'permanent', split: true, error: expect.stringContaining("Invalid value at 'conversions[1]") });
    expect(classify(body, 1).split).toBeUndefined();
  });

  describe('401 about the access token', () => {
    const expired = rpc(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.', undefined, [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_EXPIRED' }]);

    it('is permanent with a plain access token (it cannot be refreshed)', () => {
      expect(classify(expired, 1, ctx({ developer_token: 'd', access_token: 'ya29.t1' }))).toMatchObject({ outcome: 'permanent', error: expect.stringContaining('so it can be refreshed') });
    });

    it('drops the cached token and is retryable once; the refreshed token refused again is permanent', async () => {
      const c = requestContext(def, GOLDEN_SETTINGS, { credentials: CREDENTIALS, fetch: tokenStub('ya29.t1') });
      await def.buildRequests([], c);
      expect(classify(expired, 1, c, 'ya29.t1')).toMatchObject({ outcome: 'retryable', error: expect.stringContaining('refreshed for the next attempt') });
      c.fetch = tokenStub('ya29.t2');
      await def.buildRequests([], c); // the next attempt exchanges again
      expect(classify(expired, 1, c, 'ya29.t2')).toMatchObject({ outcome: 'permanent', error: expect.stringContaining('refused again after a refresh') });
    });

    it('a refreshed token that works is refreshed again next time it is refused', async () => {
      const c = requestContext(def, GOLDEN_SETTINGS, { credentials: CREDENTIALS, fetch: tokenStub('ya29.t1') });
      await def.buildRequests([], c);
      classify(expired, 1, c, 'ya29.t1');
      c.fetch = tokenStub('ya29.t2');
      await def.buildRequests([], c);
      expect(classify(vendorResponse(200, { results: [{}] }), 1, c, 'ya29.t2').outcome).toBe('success');
      expect(classify(expired, 1, c, 'ya29.t2').outcome).toBe('retryable');
    });
  });

  it('parses Google durations', () => {
    expect([parseDuration('30s'), parseDuration('0.5s'), parseDuration('1.000000001s'), parseDuration('30'), parseDuration(30)]).toEqual([30_000, 500, 1_000, undefined, undefined]);
  });
});

// ---- refuse ------------------------------------------------------------------------------------

describe('google-ads refuse', () => {
  const ctx = requestContext(def, GOLDEN_SETTINGS, { now: GOLDEN_NOW });
  const at = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '+00:00');

  it('sends conversions up to 90 days old, refuses older ones', () => {
    expect(def.refuse!({ conversionDateTime: at(GOLDEN_NOW - 90 * DAY) }, ctx)).toBeUndefined();
    expect(def.refuse!({ conversionDateTime: '2026-11-20 15:04:20+00:00' }, ctx)).toBeUndefined();
    expect(def.refuse!({ conversionDateTime: at(GOLDEN_NOW - 90 * DAY - 1000) }, ctx)).toBe(`conversionDateTime ${at(GOLDEN_NOW - 90 * DAY - 1000)} is 90 days old; Google Ads takes click conversions at most 90 days after the click (EXPIRED_EVENT)`);
  });

  it('reads the offset', () => {
    // 2026-08-22 09:00-06:00 = 15:00Z: 90 days and 10 minutes before GOLDEN_NOW.
    expect(def.refuse!({ conversionDateTime: '2026-08-22 09:00:00-06:00' }, ctx)).toMatch(/is 90 days old/);
    expect(def.refuse!({ conversionDateTime: '2026-08-22 09:20:00-06:00' }, ctx)).toBeUndefined();
  });

  it('leaves what it cannot read to the output schema', () => {
    expect(def.refuse!({ conversionDateTime: '2020-01-01T00:00:00Z' }, ctx)).toBeUndefined();
    expect(def.refuse!({}, ctx)).toBeUndefined();
  });
});

// ---- end to end: HttpDestination over HTTP against the fake ------------------------------------

describe('google-ads end to end against the fake', () => {
  let fake: GoogleAdsFake;
  beforeAll(async () => {
    fake = await startGoogleAdsFake();
  });
  afterAll(async () => fake.close());
  beforeEach(() => fake.reset());

  const payloads = () => [...mapFixtures(def).mapped.map((f) => f.payload), ...extraPayloads()];
  const tokenExchanges = () => fake.receiver.requests.filter((r) => r.url === '/token').length;

  it('delivers the starter payloads in one request, after one token exchange', async () => {
    const result = await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(result).toMatchObject({ outcome: 'success', status: 200 });
    expect(result.items).toBeUndefined();
    expect(tokenExchanges()).toBe(1);
    expect(fake.uploads()).toHaveLength(1);
    expect(fake.accepted.map((a) => a.conversion.conversionAction)).toEqual(Array(3).fill('customers/1234567890/conversionActions/987654321'));
    expect(fake.accepted.map((a) => a.conversion.orderId)).toEqual(['50314b8e9bcf000000000000', 'o-2', 'ajs-next-no-order-id']);
  });

  it('partial failure: only the bad conversions fail, with Google’s reason', async () => {
    const [a, b, c] = payloads();
    const unknownAction = { ...b!, conversionAction: '111' };
    const badClick = { ...c!, wbraid: 'bad wbraid!' };
    const result = await sendWith(def, settingsFor(fake), [a, unknownAction, badClick], { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(result.outcome).toBe('success');
    expect(result.items).toEqual([
      { outcome: 'success' },
      { outcome: 'permanent', error: expect.stringMatching(/^The conversion action specified in the upload request cannot be found\..* \[conversionUploadError: NO_CONVERSION_ACTION_FOUND\] at conversions\[1\]\.conversion_action \(requestId fakeReq\d+\)$/) },
      { outcome: 'permanent', error: expect.stringMatching(/\[conversionUploadError: UNPARSEABLE_WBRAID\] at conversions\[2\]\.wbraid/) },
    ]);
    expect(fake.accepted.map((x) => x.conversion.orderId)).toEqual(['50314b8e9bcf000000000000']);
  });

  it('a click under 6 hours old is retryable, the others delivered', async () => {
    fake.failRows((conversion) => (conversion.gbraid ? { errorCode: { conversionUploadError: 'TOO_RECENT_EVENT' }, message: 'The click associated with the given identifier or iOS URL parameter occurred less than 6 hours ago. Retry after 6 hours have passed.' } : undefined));
    const result = await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(result.outcome).toBe('success');
    expect(result.items!.map((i) => i.outcome)).toEqual(['success', 'retryable', 'success']);
    expect(result.items![1]!.error).toMatch(/TOO_RECENT_EVENT/);
  });

  it('a replay of delivered conversions counts as delivered', async () => {
    await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    const again = await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(again.outcome).toBe('success');
    expect(again.items!.map((i) => i.outcome)).toEqual(['success', 'success', 'success']);
    expect(again.items!.every((i) => i.error?.startsWith('already recorded by Google Ads: '))).toBe(true);
    expect(fake.accepted).toHaveLength(3);
  });

  it('throttling: retryable, throttled, with Google’s retry delay; nothing recorded', async () => {
    fake.throttle(1, '30s');
    const result = await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(result).toMatchObject({ outcome: 'retryable', throttled: true, retryAfterMs: 30_000, status: 429, error: expect.stringMatching(/^HTTP 429 RESOURCE_EXHAUSTED: Too many requests\. Retry in 30s\. \[quotaError: RESOURCE_TEMPORARILY_EXHAUSTED\]/) });
    expect(fake.accepted).toHaveLength(0);
  });

  it('refuses stale conversions before sending: they are never in the request', async () => {
    const [fresh] = payloads();
    const stale = { ...fresh!, orderId: 'old', conversionDateTime: '2026-08-20 15:04:20+00:00' };
    const result = await sendWith(def, settingsFor(fake), [stale, fresh], { credentials: CREDENTIALS, now: GOLDEN_NOW, delivery: { batchSize: 200 } });
    expect(result.outcome).toBe('success');
    expect(result.items).toEqual([{ outcome: 'permanent', refusal: 'stale_event', error: expect.stringMatching(/^conversionDateTime 2026-08-20 15:04:20\+00:00 is 92 days old/) }, { outcome: 'success' }]);
    expect(fake.uploads()).toHaveLength(1);
    expect(fake.uploads()[0]!.body.conversions).toEqual([expect.objectContaining({ orderId: fresh!.orderId })]);
  });

  it('sends nothing when every conversion is stale', async () => {
    const stale = { ...payloads()[0]!, conversionDateTime: '2026-01-01 00:00:00+00:00' };
    const result = await sendWith(def, settingsFor(fake), [stale], { credentials: CREDENTIALS });
    expect(result.items).toEqual([expect.objectContaining({ refusal: 'stale_event' })]);
    expect(fake.receiver.requests).toHaveLength(0);
  });

  it.each<[string, (f: GoogleAdsFake) => void, number, RegExp]>([
    ['503 UNAVAILABLE', (f) => f.unavailable(1), 503, /^HTTP 503 UNAVAILABLE: The service is currently unavailable\.$/],
    ['504 DEADLINE_EXCEEDED', (f) => f.deadline(1), 504, /^HTTP 504 DEADLINE_EXCEEDED: /],
  ])('a dead vendor (%s) is retryable', async (_, fault, status, error) => {
    fault(fake);
    const result = await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(result).toMatchObject({ outcome: 'retryable', status, error: expect.stringMatching(error) });
    expect(result.throttled).toBeUndefined();
  });

  it('a closed port is retryable', async () => {
    const dead = await startGoogleAdsFake();
    await dead.close();
    const result = await sendWith(def, settingsFor(dead), payloads(), { credentials: CREDENTIALS });
    expect(result).toMatchObject({ outcome: 'retryable', error: expect.stringMatching(/network error: .*ECONNREFUSED/) });
  });

  it('a revoked refresh token is permanent, naming the Secret keys to fix', async () => {
    fake.revokeRefreshToken();
    const result = await sendWith(def, settingsFor(fake), payloads(), { credentials: CREDENTIALS });
    expect(result).toMatchObject({ outcome: 'permanent', error: expect.stringMatching(/OAuth token endpoint answered HTTP 400 invalid_grant: Token has been expired or revoked\. \(check client_id, client_secret and refresh_token/) });
    expect(fake.uploads()).toHaveLength(0);
  });

  it('a wrong developer token is permanent', async () => {
    const result = await sendWith(def, settingsFor(fake), payloads(), { credentials: { ...CREDENTIALS, developer_token: 'wrong' } });
    expect(result).toMatchObject({ outcome: 'permanent', status: 401, error: expect.stringContaining('DEVELOPER_TOKEN_INVALID') });
  });

  it('validateOnly: Google checks, records nothing', async () => {
    const result = await sendWith(def, settingsFor(fake, { validateOnly: true }), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
    expect(result.outcome).toBe('success');
    expect(fake.uploads()[0]!.body.validateOnly).toBe(true);
    expect(fake.accepted).toHaveLength(0);
  });

  it('through a manager account: login-customer-id', async () => {
    const managed = await startGoogleAdsFake({ loginCustomerId: '1112223334' });
    try {
      expect((await sendWith(def, settingsFor(managed), payloads(), { credentials: CREDENTIALS })).status).toBe(403);
      const result = await sendWith(def, settingsFor(managed, { loginCustomerId: '1112223334' }), payloads(), { credentials: CREDENTIALS, delivery: { batchSize: 200 } });
      expect(result).toMatchObject({ outcome: 'success' });
      expect(managed.uploads()[1]!.headers['login-customer-id']).toBe('1112223334');
    } finally {
      await managed.close();
    }
  });

  describe('one destination across sends (token cache)', () => {
    let now = GOLDEN_NOW;
    const create = (credentials: Record<string, string> = CREDENTIALS) =>
      DESTINATIONS['google-ads'].create({ integration: destinationIntegration('google-ads', 'googleAds', settingsFor(fake), { batchSize: 200 }), credentials, timeoutMs: 2000, clock: { now: () => now } });
    beforeEach(() => {
      now = GOLDEN_NOW;
    });

    it('reuses the token until shortly before it expires', async () => {
      const d = create();
      try {
        expect((await d.send(payloads())).outcome).toBe('success');
        expect(tokenExchanges()).toBe(1);
        now += 3599_000 - TOKEN_REFRESH_MARGIN_MS - 1;
        expect((await d.send([{ ...payloads()[0]!, orderId: 'o-later', gclid: 'EAIaIQobChMI-later' }])).outcome).toBe('success');
        expect(tokenExchanges()).toBe(1);
        now += 1;
        expect((await d.send([{ ...payloads()[0]!, orderId: 'o-next', gclid: 'EAIaIQobChMI-next' }])).outcome).toBe('success');
        expect(tokenExchanges()).toBe(2);
        expect(fake.accepted).toHaveLength(5);
      } finally {
        await d.close();
      }
    });

    it('a token Google expired early: retryable once, then refreshed and delivered', async () => {
      const d = create();
      try {
        expect((await d.send([payloads()[0]!])).outcome).toBe('success');
        fake.expireTokens();
        const refused = await d.send([payloads()[1]!]);
        expect(refused).toMatchObject({ outcome: 'retryable', status: 401, error: expect.stringContaining('access token refreshed for the next attempt') });
        const retried = await d.send([payloads()[1]!]);
        expect(retried).toMatchObject({ outcome: 'success', status: 200 });
        expect(tokenExchanges()).toBe(2);
        expect(fake.accepted).toHaveLength(2);
      } finally {
        await d.close();
      }
    });

    it('a plain access token Google refuses is permanent', async () => {
      const d = create({ developer_token: CREDENTIALS.developer_token, access_token: 'ya29.not-issued' });
      try {
        expect(await d.send([payloads()[0]!])).toMatchObject({ outcome: 'permanent', status: 401, error: expect.stringContaining('access_token of the credentials Secret was refused') });
        expect(tokenExchanges()).toBe(0);
      } finally {
        await d.close();
      }
    });
  });
});
