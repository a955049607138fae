// Size limits (after decompression), per-Source rate limits and CORS, against a real nats-server.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { natsFixture } from '../test-support/nats.js';
import { startIngestion, type IngestionSource } from './index.js';

const LIMITS = { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 };
const WEB: IngestionSource = { namespace: 'shop', name: 'web', writeKey: 'wk_web_0123456789', allowedOrigins: ['https://shop.example.com'], limits: LIMITS };
const BACKEND: IngestionSource = { namespace: 'shop', name: 'backend', writeKey: 'wk_backend_0123456789', allowedOrigins: [], limits: LIMITS };
const SMALL: IngestionSource = { namespace: 'shop', name: 'small', writeKey: 'wk_small_0123456789', allowedOrigins: [], limits: { ...LIMITS, maxBatchBytes: 2048, maxEventBytes: 1024 } };
// capacity 3 events per 3 s window
const SLOW: IngestionSource = { namespace: 'shop', name: 'slow', writeKey: 'wk_slow_0123456789', allowedOrigins: [], limits: { ...LIMITS, eventsPerSecond: 1, burst: 2 } };
const OPEN: IngestionSource = { namespace: 'other', name: 'open', writeKey: 'wk_open_0123456789', allowedOrigins: ['*'], limits: LIMITS };

type Json = Record<string, any>;

describe('ingestion limits and CORS', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let ingestion: Awaited<ReturnType<typeof startIngestion>>;

  beforeEach(async () => {
    fx = await natsFixture();
    ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [WEB, BACKEND, SMALL, SLOW, OPEN], host: '127.0.0.1' });
  });
  afterEach(async () => {
    await ingestion.close();
    await fx.cleanup();
  });

  async function send(path: string, body: unknown, opts: { key?: string; headers?: Record<string, string>; method?: 'POST' | 'OPTIONS' } = {}) {
    const res = await request(`${ingestion.url}${path}`, {
      method: opts.method ?? 'POST',
      headers: {
        ...(opts.method === 'OPTIONS' ? {} : { 'content-type': 'application/json' }),
        ...(opts.key ? { authorization: `Basic ${Buffer.from(`${opts.key}:`).toString('base64')}` } : {}),
        ...opts.headers,
      },
      ...(opts.method === 'OPTIONS' ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text ? (JSON.parse(text) as Json) : undefined };
  }
  const count = async () => (await fx.jsm.streams.info(fx.streams.events.name)).state.messages;

  it('stops a gzip bomb at the body limit without inflating it (413, fast)', async () => {
    // 200 gzip members of 10 MiB of zeros: 2 MiB on the wire, 2 GiB inflated. Inflating it all takes
    // seconds of CPU (and, buffered, 2 GiB of memory); stopping at 500 KiB takes milliseconds.
    const member = gzipSync(Buffer.alloc(10 * 1024 * 1024), { level: 9 });
    const bomb = Buffer.concat(Array.from({ length: 200 }, () => member));
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const res = await send('/v1/batch', bomb, { key: WEB.writeKey, headers: { 'content-encoding': 'gzip' } });
    const elapsed = performance.now() - started;
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ success: false, errors: [{ field: '/', rule: 'maxBatchBytes' }] });
    expect(elapsed).toBeLessThan(2000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    // the same bomb without a Basic key is bounded by the largest limit of all Sources
    const anonymous = await send('/v1/batch', bomb, { headers: { 'content-encoding': 'gzip' } });
    expect(anonymous.status).toBe(413);
    expect(await count()).toBe(0);
  });

  it('answers 413 to a body over maxBatchBytes, declared or not', async () => {
    const big = JSON.stringify({ batch: [{ type: 'track', event: 'E', userId: 'u', properties: { pad: 'x'.repeat(600 * 1024) } }] });
    expect((await send('/v1/batch', big, { key: WEB.writeKey })).status).toBe(413);
    // chunked (no Content-Length): counted while reading
    const chunked = await request(`${ingestion.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WEB.writeKey}:`).toString('base64')}` },
      body: Readable.from((function* () {
        for (let i = 0; i < 8; i++) yield Buffer.from(i === 0 ? big.slice(0, 100 * 1024) : ' '.repeat(100 * 1024));
      })()),
    });
    expect(chunked.statusCode).toBe(413);
    await chunked.body.dump();
    expect(await count()).toBe(0);
  });

  it('applies the Source\'s own maxBatchBytes when the write key comes in the body or in Basic auth', async () => {
    const body = { writeKey: SMALL.writeKey, batch: [{ type: 'track', event: 'E', userId: 'u', properties: { pad: 'x'.repeat(500) } }, { type: 'track', event: 'E', userId: 'u', properties: { pad: 'x'.repeat(900) } }, { type: 'identify', userId: 'u', traits: { pad: 'y'.repeat(800) } }] };
    expect(JSON.stringify(body).length).toBeGreaterThan(2048);
    // parsed under the largest limit (500 KiB), then refused by SMALL's 2 KiB
    const inBody = await send('/v1/batch', body);
    expect(inBody).toMatchObject({ status: 413, body: { errors: [{ rule: 'maxBatchBytes', message: expect.stringContaining('2048') }] } });
    const inBasic = await send('/v1/batch', body, { key: SMALL.writeKey });
    expect(inBasic.status).toBe(413);
    // a gzipped body small on the wire is measured inflated
    const gz = await send('/v1/batch', gzipSync(JSON.stringify(body)), { headers: { 'content-encoding': 'gzip' } });
    expect(gz.status).toBe(413);
    expect(await count()).toBe(0);
  });

  it('refuses an event over maxEventBytes and stores the rest of its batch (207)', async () => {
    const batch = [
      { type: 'track', event: 'Small', userId: 'u', messageId: 's1' },
      { type: 'track', event: 'Huge', userId: 'u', messageId: 'huge', properties: { pad: 'x'.repeat(40 * 1024) } },
      { type: 'track', event: 'Small', userId: 'u', messageId: 's2' },
    ];
    const res = await send('/v1/batch', { batch }, { key: WEB.writeKey });
    expect(res.status).toBe(207);
    expect(res.body).toEqual({
      success: false,
      accepted: 2,
      rejected: 1,
      errors: [{ index: 1, field: '/', rule: 'maxEventBytes', message: expect.stringMatching(/^call is \d+ bytes, more than 32768$/) }],
    });
    expect(await count()).toBe(2);
  });

  it('rate-limits per Source in events: 429 with Retry-After, nothing stored, refused events not charged', async () => {
    const events = (n: number, tag: string) => ({ batch: Array.from({ length: n }, (_, i) => ({ type: 'track', event: 'E', userId: 'u', messageId: `${tag}-${i}` })) });
    // more than the budget ever holds: retrying cannot help, so not 429
    const tooMany = await send('/v1/batch', events(4, 'big'), { key: SLOW.writeKey });
    expect(tooMany).toMatchObject({ status: 413, body: { errors: [{ field: '/batch', rule: 'rateLimit' }] } });
    expect((await send('/v1/batch', events(2, 'a'), { key: SLOW.writeKey })).status).toBe(200);
    const limited = await send('/v1/batch', events(2, 'b'), { key: SLOW.writeKey });
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ success: false, errors: [{ rule: 'rateLimit' }] });
    const retryAfter = Number(limited.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3);
    // the refused 2 were given back: 1 more still fits
    expect((await send('/v1/batch', events(1, 'c'), { key: SLOW.writeKey })).status).toBe(200);
    // other Sources have their own budget
    expect((await send('/v1/batch', events(5, 'd'), { key: WEB.writeKey })).status).toBe(200);
    expect(await count()).toBe(8);
  });

  describe('CORS', () => {
    const SHOP = 'https://shop.example.com';

    it('answers a preflight for an origin any Source allows, and refuses others', async () => {
      const ok = await send('/v1/batch', undefined, { method: 'OPTIONS', headers: { origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
      expect(ok.status).toBe(204);
      expect(ok.headers).toMatchObject({
        'access-control-allow-origin': SHOP,
        'access-control-allow-methods': expect.stringContaining('POST'),
        'access-control-allow-headers': 'authorization,content-type',
      });
      // OPEN allows '*', so any origin passes the preflight
      const anyOrigin = await send('/v1/t', undefined, { method: 'OPTIONS', headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' } });
      expect(anyOrigin.headers['access-control-allow-origin']).toBe('https://elsewhere.example');

      await ingestion.close();
      ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [WEB, BACKEND], host: '127.0.0.1' });
      const denied = await send('/v1/batch', undefined, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      expect(denied.status).toBe(403);
      expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('checks the actual request against its own Source\'s origins', async () => {
      const event = { userId: 'u', event: 'E' };
      const allowed = await send('/v1/track', { ...event, writeKey: WEB.writeKey }, { headers: { origin: SHOP, 'content-type': 'text/plain' } });
      expect(allowed.status).toBe(200);
      expect(allowed.headers['access-control-allow-origin']).toBe(SHOP);
      // SHOP is allowed by WEB, not by BACKEND
      const otherSource = await send('/v1/track', { ...event, writeKey: BACKEND.writeKey }, { headers: { origin: SHOP } });
      expect(otherSource).toMatchObject({ status: 403, body: { errors: [{ rule: 'origin' }] } });
      // The page may read the refusal, so the tag drops its events instead of retrying.
      expect(otherSource.headers['access-control-allow-origin']).toBe(SHOP);
      const basicOther = await send('/v1/track', event, { key: BACKEND.writeKey, headers: { origin: SHOP } });
      expect(basicOther.status).toBe(403);
      const unlisted = await send('/v1/track', event, { key: WEB.writeKey, headers: { origin: 'https://evil.example' } });
      expect(unlisted.status).toBe(403);
      // '*' allows any origin
      const open = await send('/v1/track', event, { key: OPEN.writeKey, headers: { origin: 'https://anything.example' } });
      expect(open.status).toBe(200);
      expect(open.headers['access-control-allow-origin']).toBe('https://anything.example');
      // server SDKs send no Origin and are unaffected
      const server = await send('/v1/track', event, { key: BACKEND.writeKey });
      expect(server.status).toBe(200);
      expect(server.headers['access-control-allow-origin']).toBeUndefined();
      expect(await count()).toBe(3);
    });
  });
});
