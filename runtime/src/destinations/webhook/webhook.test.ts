import type { Integration } from '../../api/index.js';
import { ErrorCodes } from '../../errors.js';
import { normalizeIntegration } from '../../forward/consumer.js';
import { testIntegration } from '../../test-support/forwarder-fixtures.js';
import { startTestReceiver, type TestReceiver } from '../../test-support/http-receiver.js';
import { DESTINATIONS, HttpDestination, USER_AGENT, createDestination, RUNTIME_VERSION } from '../index.js';
import { classifyStatus, parseRetryAfter } from '../http.js';
import { signWebhook, verifyWebhookSignature, webhookHeaders, WebhookDestination } from './index.js';

const clock = { now: () => Date.parse('2015-10-21T07:27:58.000Z') };

function destination(url: string, extra: Parameters<typeof testIntegration>[1] extends infer O ? Partial<O> : never = {}, credentials: Record<string, string> = {}, timeoutMs = 2000) {
  const integration: Integration = normalizeIntegration(testIntegration('hook', { url, sources: ['web'], ...extra }));
  return createDestination({ integration, credentials, timeoutMs, clock });
}

describe('classifyStatus', () => {
  it.each([
    [200, 'success'],
    [204, 'success'],
    [299, 'success'],
    [301, 'permanent'],
    [400, 'permanent'],
    [401, 'permanent'],
    [404, 'permanent'],
    [408, 'retryable'],
    [413, 'permanent'],
    [429, 'retryable'],
    [500, 'retryable'],
    [501, 'permanent'],
    [502, 'retryable'],
    [503, 'retryable'],
    [504, 'retryable'],
    [505, 'permanent'],
    [599, 'retryable'],
  ])('%i is %s', (status, outcome) => {
    expect(classifyStatus(status)).toBe(outcome);
  });
});

describe('parseRetryAfter', () => {
  it.each<[string | string[] | undefined, number | undefined]>([
    ['120', 120_000],
    [' 0 ', 0],
    [['3', '9'], 3000],
    ['Wed, 21 Oct 2015 07:28:00 GMT', 2000],
    ['Wed, 21 Oct 2015 07:00:00 GMT', 0],
    ['soon', undefined],
    ['1.5', undefined],
    ['-3', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %j', (value, ms) => {
    expect(parseRetryAfter(value, clock)).toBe(ms);
  });
});

describe('webhook headers', () => {
  it('merges settings and every credentials key case-insensitively; content-type is always JSON', () => {
    const h = webhookHeaders({ url: 'http://x', method: 'POST', headers: { 'X-Team': 'a', Authorization: 'from-settings', 'Content-Type': 'text/plain' } }, { authorization: 'Bearer s3cret\n', 'X-Api-Key': 'k' });
    expect(h).toEqual({ 'user-agent': USER_AGENT, 'x-team': 'a', authorization: 'Bearer s3cret', 'x-api-key': 'k', 'content-type': 'application/json' });
    expect(USER_AGENT).toBe(`switchyard/${RUNTIME_VERSION}`);
    expect(RUNTIME_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [{ 'bad header': 'x' }, 'not a valid HTTP header name'],
    [{ host: 'evil' }, 'cannot set the host header'],
    [{ 'Content-Length': '1' }, 'cannot set the content-length header'],
    [{ 'x-a': 'line\r\nInjected: 1' }, 'line break'],
  ])('refuses credentials %j', (credentials, message) => {
    expect(() => destination('http://127.0.0.1:9', {}, credentials)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining(message) }));
  });

  it('is the registry entry for webhook', () => {
    expect(DESTINATIONS.webhook).toBe(WebhookDestination);
    expect(destination('http://127.0.0.1:9')).toBeInstanceOf(HttpDestination);
  });
});

describe('WebhookDestination over HTTP', () => {
  let receiver: TestReceiver;
  beforeAll(async () => {
    receiver = await startTestReceiver();
  });
  afterAll(async () => receiver.close());
  beforeEach(() => {
    receiver.requests.length = 0;
    receiver.respond = () => undefined;
  });

  it('sends one payload as the body with batchSize 1, with settings and secret headers', async () => {
    const d = destination(`${receiver.url}/hook?x=1`, { headers: { 'X-Team': 'growth' }, method: 'PUT' }, { Authorization: 'Bearer t0k' });
    const result = await d.send([{ event: 'purchase', value: 0, nested: { ok: false } }]);
    await d.close();
    expect(result).toMatchObject({ outcome: 'success', status: 200 });
    expect(receiver.requests).toHaveLength(1);
    const [req] = receiver.requests;
    expect(req!.method).toBe('PUT');
    expect(req!.url).toBe('/hook?x=1');
    expect(req!.text).toBe('{"event":"purchase","value":0,"nested":{"ok":false}}');
    expect(req!.headers).toMatchObject({ 'content-type': 'application/json', 'user-agent': USER_AGENT, 'x-team': 'growth', authorization: 'Bearer t0k' });
  });

  it('wraps payloads in {"batch": [...]} when batchSize is above 1', async () => {
    const d = destination(receiver.url, { delivery: { batchSize: 10 } });
    expect(await d.send([{ a: 1 }, { b: 2 }])).toMatchObject({ outcome: 'success', status: 200 });
    expect(await d.send([{ c: 3 }])).toMatchObject({ outcome: 'success' });
    await d.close();
    expect(receiver.requests.map((r) => r.text)).toEqual(['{"batch":[{"a":1},{"b":2}]}', '{"batch":[{"c":3}]}']);
  });

  it('reports status, Retry-After and the start of the body of a failure', async () => {
    receiver.respond = () => ({ status: 429, headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:03 GMT' }, body: 'x'.repeat(2000) });
    const d = destination(receiver.url);
    const result = await d.send([{}]);
    await d.close();
    expect(result).toMatchObject({ outcome: 'retryable', status: 429, retryAfterMs: 5000 });
    expect(result.error).toMatch(/^HTTP 429: x+$/);
    expect(result.error!.length).toBeLessThan(600);
  });

  it('classifies a 400 as permanent', async () => {
    receiver.respond = () => ({ status: 400, body: '{"error":"bad field"}' });
    const d = destination(receiver.url);
    expect(await d.send([{}])).toMatchObject({ outcome: 'permanent', status: 400, error: 'HTTP 400: {"error":"bad field"}' });
    await d.close();
  });

  it('turns a timeout into a retryable failure', async () => {
    let release!: () => void;
    receiver.respond = () => ({ hold: new Promise<void>((r) => (release = r)) });
    const d = destination(receiver.url, {}, {}, 200);
    const result = await d.send([{}]);
    release();
    await d.close();
    expect(result).toMatchObject({ outcome: 'retryable', error: 'timeout after 200ms' });
    expect(result.status).toBeUndefined();
  });

  it('turns a refused connection into a retryable failure', async () => {
    const dead = await startTestReceiver();
    await dead.close();
    const d = destination(dead.url);
    const result = await d.send([{}]);
    await d.close();
    expect(result.outcome).toBe('retryable');
    expect(result.error).toMatch(/network error: .*ECONNREFUSED/);
  });

  it('sends several payloads as one request each with batchSize 1, each with its own outcome', async () => {
    receiver.respond = (r) => ((r.body as { n: number }).n === 2 ? { status: 400, body: 'no' } : undefined);
    const d = destination(receiver.url);
    const result = await d.send([{ n: 1 }, { n: 2 }]);
    await d.close();
    expect(receiver.requests.map((r) => r.text).sort()).toEqual(['{"n":1}', '{"n":2}']);
    expect(result.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', error: 'HTTP 400: no' }]);
  });

  it('signs the body with HMAC-SHA256 over timestamp and body, keeping the secret out of the headers', async () => {
    const d = destination(receiver.url, { signature: { secretKey: 'signing-key', header: 'X-Signature' } }, { 'signing-key': 'whsec_abc', Authorization: 'Bearer t' });
    expect(await d.send([{ event: 'purchase' }])).toMatchObject({ outcome: 'success' });
    await d.close();
    const [req] = receiver.requests;
    const header = String(req!.headers['x-signature']);
    const t = Date.parse('2015-10-21T07:27:58.000Z') / 1000;
    expect(header).toBe(signWebhook('whsec_abc', req!.text, t));
    expect(header).toMatch(/^t=1445412478,v1=[0-9a-f]{64}$/);
    expect(JSON.stringify(req!.headers)).not.toContain('whsec_abc');
    expect(req!.headers['signing-key']).toBeUndefined();
    expect(req!.headers.authorization).toBe('Bearer t');
    // What a receiver checks: authentic, fresh, untampered.
    expect(verifyWebhookSignature('whsec_abc', header, req!.text, t * 1000 + 60_000)).toBe(true);
    expect(verifyWebhookSignature('whsec_abc', header, `${req!.text} `, t * 1000)).toBe(false);
    expect(verifyWebhookSignature('other', header, req!.text, t * 1000)).toBe(false);
    expect(verifyWebhookSignature('whsec_abc', header, req!.text, t * 1000 + 301_000)).toBe(false);
    expect(verifyWebhookSignature('whsec_abc', undefined, req!.text, t * 1000)).toBe(false);
  });

  it('refuses a signature whose secret key is not in the Secret', () => {
    expect(() => destination(receiver.url, { signature: { secretKey: 'missing', header: 'X-Signature' } }, {})).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('no key missing') }));
  });
});
