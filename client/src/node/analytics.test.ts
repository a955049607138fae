// The Node SDK against the real ingestion API and a real nats-server: calls in, JetStream messages
// read back. Failures come from real servers on loopback: a closed port, a proxy answering 503,
// 429 or nothing before forwarding, the ingestion's own 4xx and 207 answers.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import { startIngestion, type IngestionSource } from '@switchyard/runtime';
import { request } from 'undici';
import { freePort } from '../../../runtime/src/local/nats-server.js';
import { eventually } from '../../../runtime/src/test-support/http-receiver.js';
import { natsFixture, streamMessages } from '../../../runtime/src/test-support/nats.js';
import { retryDelay } from '../core/backoff.js';
import type { SegmentEvent } from '../core/event.js';
import { Analytics, AnalyticsError, AnalyticsErrorCodes, CLIENT_VERSION, type AnalyticsSettings, type DeliveryInfo, type HttpRequestInfo, type RetryInfo } from './index.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const sdkEntry = fileURLToPath(new URL('./index.ts', import.meta.url));

const NOW = new Date('2026-03-01T12:00:00.000Z');
const INGEST_NOW = Date.parse('2026-03-01T12:00:05.000Z');

const SOURCE: IngestionSource = {
  namespace: 'shop',
  name: 'backend',
  writeKey: 'wk_backend_0123456789',
  allowedOrigins: [],
  limits: { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 },
};

type Json = Record<string, any>;

/** What a proxy does with one request: answer with `status`, never answer, pass it to the ingestion, or pass it once `release` resolved. */
type Behaviour = { status: number; headers?: Record<string, string>; body?: string } | 'hang' | 'forward' | { release: Promise<void> };

/**
 * A loopback HTTP server in front of the ingestion: the n-th request gets `script[n]` (then
 * `otherwise`). Records every request it gets.
 */
async function startProxy(target: string, script: Behaviour[], otherwise: Behaviour = 'forward') {
  const requests: { body: string; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    requests.push({ body, headers: req.headers });
    const behaviour = script[requests.length - 1] ?? otherwise;
    if (behaviour === 'hang') return;
    if (typeof behaviour === 'object' && 'release' in behaviour) await behaviour.release;
    if (behaviour === 'forward' || 'release' in behaviour) {
      const answer = await request(`${target}${req.url}`, { method: 'POST', headers: { authorization: req.headers.authorization!, 'content-type': req.headers['content-type']! }, body });
      res.writeHead(answer.statusCode, { 'content-type': 'application/json' });
      res.end(await answer.body.text());
      return;
    }
    res.writeHead(behaviour.status, { 'content-type': 'application/json', ...behaviour.headers });
    res.end(behaviour.body ?? '{"success":false}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    batches: () => requests.map((r) => (JSON.parse(r.body) as { batch: Json[] }).batch),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Resolves once `values` holds `n` entries (checked on each `event` of `emitter`). */
function whenCount(emitter: Analytics, event: 'deliver' | 'retry' | 'http_request', values: unknown[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (values.length >= n) {
        emitter.off(event, check);
        resolve();
      }
    };
    emitter.on(event, check);
    check();
  });
}

describe('Node SDK against the ingestion API', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let ingestion: Awaited<ReturnType<typeof startIngestion>>;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    fx = await natsFixture();
    ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [SOURCE], clock: { now: () => INGEST_NOW }, host: '127.0.0.1' });
  });
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
    await ingestion.close();
    await fx.cleanup();
  });

  /** Every event of the events stream, in order. */
  async function stored(): Promise<Json[]> {
    return (await streamMessages(fx.jsm, fx.streams.events.name)).map((m) => m.json<Json>());
  }

  /** An SDK for the test (pinned clock and jitter, a listener on every event), closed after it. */
  function sdk(settings: Partial<AnalyticsSettings> = {}) {
    const analytics = new Analytics({ writeKey: SOURCE.writeKey, host: ingestion.url, clock: { now: () => NOW }, random: () => 0, ...settings });
    const requests: HttpRequestInfo[] = [];
    const retries: RetryInfo[] = [];
    const delivered: DeliveryInfo[] = [];
    const errors: AnalyticsError[] = [];
    analytics.on('http_request', (r) => requests.push(r));
    analytics.on('retry', (r) => retries.push(r));
    analytics.on('deliver', (d) => delivered.push(d));
    analytics.on('error', (e) => errors.push(e));
    cleanups.push(() => analytics.closeAndFlush({ timeout: 100 }));
    /** Batches of the requests sent, as parsed bodies. */
    const bodies = () => requests.map((r) => JSON.parse(r.body) as { batch: Json[]; sentAt: string });
    return { analytics, requests, retries, delivered, errors, bodies };
  }

  /** Makes a track call; resolves with what its callback got. */
  function track(analytics: Analytics, params: Json): Promise<{ error: AnalyticsError | undefined; event: SegmentEvent }> {
    return new Promise((resolve) => analytics.track(params as Parameters<Analytics['track']>[0], (error, { event }) => resolve({ error, event })));
  }

  it('stores every call type with the Segment Spec shape, the library, a node- messageId and the call time', async () => {
    const { analytics, requests, bodies, errors } = sdk({ flushAt: 6 });
    const outcomes = await Promise.all([
      new Promise((resolve) => analytics.track({ userId: 'u1', event: 'Order Completed', properties: { revenue: 25 }, context: { locale: 'fr-FR', library: { name: 'other' } } }, (e) => resolve(e))),
      new Promise((resolve) => analytics.page({ anonymousId: 'a1', name: 'Home', category: 'Docs', timestamp: new Date('2026-03-01T11:59:00.000Z'), messageId: 'page-1' }, (e) => resolve(e))),
      new Promise((resolve) => analytics.screen({ userId: 'u1', name: 'Main', integrations: { All: false } }, (e) => resolve(e))),
      new Promise((resolve) => analytics.identify({ userId: 'u1', anonymousId: 'a1', traits: { plan: 'pro' } }, (e) => resolve(e))),
      new Promise((resolve) => analytics.group({ userId: 'u1', groupId: 'g1', traits: { name: 'Acme' } }, (e) => resolve(e))),
      new Promise((resolve) => analytics.alias({ userId: 'u1', previousId: 'a1' }, (e) => resolve(e))),
    ]);
    expect(outcomes).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
    expect(errors).toEqual([]);

    expect(requests).toHaveLength(1);
    expect(requests[0]!.url).toBe(`${ingestion.url}/v1/batch`);
    expect(requests[0]!.headers).toEqual({
      authorization: `Basic ${Buffer.from(`${SOURCE.writeKey}:`).toString('base64')}`,
      'content-type': 'application/json',
      'user-agent': `switchyard-node/${CLIENT_VERSION}`,
    });
    const body = bodies()[0]!;
    expect(Object.keys(body)).toEqual(['batch', 'sentAt']);
    expect(body.sentAt).toBe(NOW.toISOString());

    const events = await stored();
    expect(events.map((e) => e.type)).toEqual(['track', 'page', 'screen', 'identify', 'group', 'alias']);
    const library = { name: '@switchyard/client', version: CLIENT_VERSION };
    const common = { sentAt: NOW.toISOString(), receivedAt: new Date(INGEST_NOW).toISOString(), messageId: expect.stringMatching(/^node-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/) };
    // Called at NOW, sent at NOW, received 5 s later: the ingestion moves the timestamp by the skew.
    const at = { originalTimestamp: NOW.toISOString(), timestamp: new Date(INGEST_NOW).toISOString() };
    expect(events[0]).toEqual({ type: 'track', userId: 'u1', event: 'Order Completed', properties: { revenue: 25 }, context: { locale: 'fr-FR', library, ip: '127.0.0.1' }, ...common, ...at });
    expect(events[1]).toEqual({
      type: 'page',
      anonymousId: 'a1',
      name: 'Home',
      category: 'Docs',
      properties: { category: 'Docs' },
      context: { library, ip: '127.0.0.1' },
      ...common,
      messageId: 'page-1',
      originalTimestamp: '2026-03-01T11:59:00.000Z',
      timestamp: new Date(INGEST_NOW - 60_000).toISOString(),
    });
    expect(events[2]).toEqual({ type: 'screen', userId: 'u1', name: 'Main', properties: {}, integrations: { All: false }, context: { library, ip: '127.0.0.1' }, ...common, ...at });
    expect(events[3]).toEqual({ type: 'identify', userId: 'u1', anonymousId: 'a1', traits: { plan: 'pro' }, context: { library, ip: '127.0.0.1' }, ...common, ...at });
    expect(events[4]).toEqual({ type: 'group', userId: 'u1', groupId: 'g1', traits: { name: 'Acme' }, context: { library, ip: '127.0.0.1' }, ...common, ...at });
    expect(events[5]).toEqual({ type: 'alias', userId: 'u1', previousId: 'a1', context: { library, ip: '127.0.0.1' }, ...common, ...at });
  });

  it('sends a request as soon as flushAt events are queued, and the rest on flush()', async () => {
    const { analytics, bodies, delivered } = sdk({ flushAt: 3, flushInterval: 3_600_000 });
    for (let i = 0; i < 7; i++) analytics.track({ userId: 'u', event: `E${i}` });
    await whenCount(analytics, 'deliver', delivered, 2);
    expect(bodies().map((b) => b.batch.map((e) => e.event))).toEqual([
      ['E0', 'E1', 'E2'],
      ['E3', 'E4', 'E5'],
    ]);
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(bodies().map((b) => b.batch.length)).toEqual([3, 3, 1]);
    expect((await stored()).map((e) => e.event)).toEqual(['E0', 'E1', 'E2', 'E3', 'E4', 'E5', 'E6']);
  });

  it('sends a request as soon as the queued events fill maxBatchBytes, never a larger body', async () => {
    const maxBatchBytes = 2048;
    const { analytics, requests, bodies, delivered } = sdk({ flushAt: 100, flushInterval: 3_600_000, maxBatchBytes, maxEventBytes: 1024 });
    // about 640 bytes each: two fit in a request, three do not
    for (let i = 0; i < 6; i++) analytics.track({ userId: 'u', event: `E${i}`, properties: { pad: 'x'.repeat(500) } });
    await whenCount(analytics, 'deliver', delivered, 2);
    expect(bodies().map((b) => b.batch.map((e) => e.event))).toEqual([
      ['E0', 'E1'],
      ['E2', 'E3'],
    ]);
    await analytics.flush();
    expect(bodies().map((b) => b.batch.length)).toEqual([2, 2, 2]);
    for (const r of requests) expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(maxBatchBytes);
    expect(await stored()).toHaveLength(6);
  });

  it('sends what is queued flushInterval ms after the first event, without flush()', async () => {
    const { analytics, bodies, delivered } = sdk({ flushAt: 100, flushInterval: 20 });
    analytics.track({ userId: 'u', event: 'A' });
    analytics.track({ userId: 'u', event: 'B' });
    await whenCount(analytics, 'deliver', delivered, 1);
    expect(bodies().map((b) => b.batch.map((e) => e.event))).toEqual([['A', 'B']]);
    expect((await stored()).map((e) => e.event)).toEqual(['A', 'B']);
  });

  it('flush() resolves once every queued event is stored and its callback has run', async () => {
    const { analytics, requests } = sdk({ flushAt: 100, flushInterval: 3_600_000 });
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(requests).toHaveLength(0);
    const called: string[] = [];
    for (const name of ['A', 'B', 'C']) analytics.track({ userId: 'u', event: name }, (error, { event }) => called.push(`${event.event}:${error?.code ?? 'ok'}`));
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(called).toEqual(['A:ok', 'B:ok', 'C:ok']);
    expect((await stored()).map((e) => e.event)).toEqual(['A', 'B', 'C']);
  });

  it('closeAndFlush() delivers everything queued and in flight, then refuses calls', async () => {
    const { analytics, bodies, errors } = sdk({ flushAt: 10, flushInterval: 3_600_000 });
    for (let i = 0; i < 25; i++) analytics.track({ userId: 'u', event: `E${i}` });
    expect(await analytics.closeAndFlush()).toEqual({ undelivered: [] });
    expect(bodies().map((b) => b.batch.length)).toEqual([10, 10, 5]);
    expect((await stored()).map((e) => e.event)).toEqual(Array.from({ length: 25 }, (_, i) => `E${i}`));

    const late = await track(analytics, { userId: 'u', event: 'Late' });
    expect(late.error).toBeInstanceOf(AnalyticsError);
    expect(late.error).toMatchObject({ name: 'AnalyticsError', code: AnalyticsErrorCodes.CLOSED, events: [late.event] });
    expect(errors).toEqual([late.error]);
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(bodies()).toHaveLength(3);
  });

  it('keeps up to maxInFlight requests in flight at once, and no more; each event is stored once', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const proxy = await startProxy(ingestion.url, [{ release: held }, { release: held }, { release: held }]);
    cleanups.push(proxy.close);
    const { analytics, requests } = sdk({ host: proxy.url, flushAt: 2, maxInFlight: 3 });
    const calls = Array.from({ length: 10 }, (_, i) => track(analytics, { userId: 'u', event: `E${i}`, messageId: `m-${i}` }));
    await eventually(() => proxy.requests.length === 3, 10_000, 'three requests at the proxy');
    // None of the three is answered yet: a fourth request would break the limit.
    expect(requests).toHaveLength(3);
    release();
    const outcomes = await Promise.all(calls);
    expect(outcomes.map((o) => o.error)).toEqual(Array(10).fill(undefined));
    expect(proxy.requests).toHaveLength(5);
    expect((await stored()).map((e) => e.messageId).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m-${i}`).sort());
  });

  it('retries while the ingestion is down and delivers once it listens, with the same messageId and timestamp', async () => {
    const port = await freePort();
    const { analytics, requests, bodies, retries } = sdk({ host: `http://127.0.0.1:${port}`, maxRetries: 50, retryMinDelayMs: 10, retryMaxDelayMs: 50 });
    let second: Awaited<ReturnType<typeof startIngestion>> | undefined;
    analytics.once('retry', () => {
      void startIngestion({ nc: fx.nc, streams: fx.streams, sources: [SOURCE], host: '127.0.0.1', port }).then((i) => {
        second = i;
      });
    });
    cleanups.push(async () => second?.close());
    analytics.track({ userId: 'u', event: 'A' });
    analytics.identify({ userId: 'u' });
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(retries[0]!.error.message).toMatch(/network error .*ECONNREFUSED/);
    expect(retries[0]).toMatchObject({ attempt: 1, events: [{ event: 'A' }, { type: 'identify' }] });
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests.map((r) => r.attempt)).toEqual(requests.map((_, i) => i + 1));
    const first = bodies()[0]!.batch;
    for (const b of bodies()) expect(b.batch).toEqual(first);
    const events = await stored();
    expect(events.map((e) => [e.messageId, e.originalTimestamp])).toEqual(first.map((e) => [e.messageId, e.timestamp]));
  });

  it('retries 503 answers with backoff and stores each event once', async () => {
    const proxy = await startProxy(ingestion.url, [{ status: 503 }, { status: 503 }]);
    cleanups.push(proxy.close);
    const delays = { retryMinDelayMs: 10, retryMaxDelayMs: 1000 };
    const { analytics, retries } = sdk({ host: proxy.url, maxRetries: 3, ...delays });
    const outcomes = Promise.all([track(analytics, { userId: 'u', event: 'A' }), track(analytics, { userId: 'u', event: 'B' })]);
    await analytics.flush();
    expect((await outcomes).map((o) => o.error)).toEqual([undefined, undefined]);
    expect(retries.map((r) => [r.attempt, r.status, r.delayMs])).toEqual([
      [1, 503, retryDelay(1, delays, () => 0)],
      [2, 503, retryDelay(2, delays, () => 0)],
    ]);
    const batches = proxy.batches();
    expect(batches).toHaveLength(3);
    expect(batches[1]).toEqual(batches[0]);
    expect(batches[2]).toEqual(batches[0]);
    expect(proxy.requests[2]!.headers['user-agent']).toMatch(/^switchyard-node\//);
    expect((await stored()).map((e) => e.event)).toEqual(['A', 'B']);
  });

  it('waits for Retry-After (seconds or date, capped at retryMaxDelayMs) instead of its backoff', async () => {
    const anHourAgo = new Date(NOW.getTime() - 3_600_000).toUTCString();
    const proxy = await startProxy(ingestion.url, [
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 503, headers: { 'retry-after': anHourAgo } },
    ]);
    cleanups.push(proxy.close);
    // backoff alone would wait 100 ms (random 0: half of 200) before each retry
    const { analytics, retries } = sdk({ host: proxy.url, retryMinDelayMs: 200, retryMaxDelayMs: 300 });
    analytics.track({ userId: 'u', event: 'A' });
    await analytics.flush();
    expect(retries.map((r) => [r.status, r.delayMs])).toEqual([
      [429, 300],
      [503, 0],
    ]);
    expect(await stored()).toHaveLength(1);
  });

  it('fails the events with RETRIES_EXHAUSTED after maxRetries retries', async () => {
    const proxy = await startProxy(ingestion.url, [], { status: 503, body: '{"success":false,"errors":[{"field":"/","rule":"unavailable","message":"down"}]}' });
    cleanups.push(proxy.close);
    const { analytics, errors } = sdk({ host: proxy.url, maxRetries: 2, retryMinDelayMs: 1, retryMaxDelayMs: 5 });
    const outcomes = Promise.all([track(analytics, { userId: 'u', event: 'A' }), track(analytics, { userId: 'u', event: 'B' })]);
    const result = await analytics.flush();
    expect(proxy.requests).toHaveLength(3);
    expect(result.undelivered.map((e) => e.event)).toEqual(['A', 'B']);
    expect(errors).toHaveLength(1);
    const [error] = errors;
    expect(error).toMatchObject({ code: AnalyticsErrorCodes.RETRIES_EXHAUSTED, status: 503, message: expect.stringMatching(/after 3 attempts/) });
    expect(error!.events.map((e) => e.event)).toEqual(['A', 'B']);
    expect((error!.cause as Error).message).toMatch(/^HTTP 503: .*down/);
    expect((await outcomes).map((o) => o.error)).toEqual([error, error]);
    expect(await stored()).toHaveLength(0);
  });

  it('retries a request the server does not answer within httpRequestTimeout', async () => {
    const proxy = await startProxy(ingestion.url, ['hang']);
    cleanups.push(proxy.close);
    // (a forwarded attempt may time out too on a loaded machine: the resend is then de-duplicated)
    const { analytics, retries } = sdk({ host: proxy.url, httpRequestTimeout: 100, maxRetries: 10, retryMinDelayMs: 1, retryMaxDelayMs: 5 });
    analytics.track({ userId: 'u', event: 'A', messageId: 'm-1' });
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(retries.length).toBeGreaterThanOrEqual(1);
    for (const retry of retries) {
      expect(retry.status).toBeUndefined();
      expect(retry.error.message).toMatch(/no answer .* within httpRequestTimeout \(100 ms\)/);
    }
    expect(proxy.batches().map((b) => b[0]!.messageId)).toEqual(Array(retries.length + 1).fill('m-1'));
    expect((await stored()).map((e) => e.messageId)).toEqual(['m-1']);
  });

  it('treats 401 and 413 as final: one attempt, the events failed with REQUEST_REFUSED', async () => {
    const wrongKey = sdk({ writeKey: 'wk_nobody_000000' });
    const outcome = track(wrongKey.analytics, { userId: 'u', event: 'A' });
    expect((await wrongKey.analytics.flush()).undelivered).toHaveLength(1);
    const { error } = await outcome;
    expect(error).toMatchObject({ code: AnalyticsErrorCodes.REQUEST_REFUSED, status: 401, problems: [{ field: '/writeKey', rule: 'writeKey' }] });
    expect(wrongKey.errors).toEqual([error]);
    expect(wrongKey.requests).toHaveLength(1);

    ingestion.setSources([{ ...SOURCE, limits: { ...SOURCE.limits, maxBatchBytes: 2048 } }]);
    const big = sdk({ flushAt: 10 });
    for (let i = 0; i < 4; i++) big.analytics.track({ userId: 'u', event: `E${i}`, properties: { pad: 'x'.repeat(700) } });
    const result = await big.analytics.flush();
    expect(result.undelivered.map((e) => e.event)).toEqual(['E0', 'E1', 'E2', 'E3']);
    expect(big.errors).toHaveLength(1);
    expect(big.errors[0]).toMatchObject({ code: AnalyticsErrorCodes.REQUEST_REFUSED, status: 413, problems: [{ rule: 'maxBatchBytes' }] });
    expect(big.errors[0]!.events).toHaveLength(4);
    expect(big.requests).toHaveLength(1);
    expect(await stored()).toHaveLength(0);
  });

  it('on a 207 stores the valid events and fails the refused one alone with its problems; a 400 fails each by name', async () => {
    const { analytics, errors, delivered, requests } = sdk({ flushAt: 3 });
    const outcomes = await Promise.all([
      track(analytics, { userId: 'u', event: 'Good', messageId: 'good-1' }),
      // passed through as given; the ingestion refuses it by the Segment schema
      track(analytics, { userId: 'u', event: 'Bad', messageId: 'bad-1', timestamp: 'not a date' }),
      track(analytics, { userId: 'u', event: 'Good', messageId: 'good-2' }),
    ]);
    expect(requests).toHaveLength(1);
    expect(outcomes.map((o) => o.error?.code)).toEqual([undefined, AnalyticsErrorCodes.EVENT_REJECTED, undefined]);
    expect(errors).toEqual([outcomes[1]!.error]);
    expect(errors[0]).toMatchObject({ status: 207, events: [{ messageId: 'bad-1' }], problems: [{ index: 1, field: '/timestamp', rule: 'format' }], message: expect.stringMatching(/bad-1/) });
    expect(delivered).toEqual([{ events: [outcomes[0]!.event, outcomes[2]!.event], status: 207, attempt: 1 }]);
    expect((await stored()).map((e) => e.messageId)).toEqual(['good-1', 'good-2']);

    const second = sdk({ flushAt: 2 });
    const refused = await Promise.all([
      track(second.analytics, { userId: 'u', event: 'Bad', messageId: 'bad-2', timestamp: 'no' }),
      track(second.analytics, { userId: 'u', event: 'Bad', messageId: 'bad-3', timestamp: 'never' }),
    ]);
    expect(refused.map((o) => [o.error?.code, o.error?.status, o.error?.events.map((e) => e.messageId)])).toEqual([
      [AnalyticsErrorCodes.EVENT_REJECTED, 400, ['bad-2']],
      [AnalyticsErrorCodes.EVENT_REJECTED, 400, ['bad-3']],
    ]);
    expect(second.requests).toHaveLength(1);
    expect(await stored()).toHaveLength(2);
  });

  it('resends the events after the last one named when a 207 names fewer refusals than it counts', async () => {
    const { analytics, errors, bodies } = sdk({ flushAt: 200, flushInterval: 3_600_000 });
    // 105 refused events, more than the 100 problems an answer lists, then 5 valid ones
    for (let i = 0; i < 105; i++) analytics.track({ userId: 'u', event: 'Bad', messageId: `bad-${i}`, timestamp: 'not a date' });
    for (let i = 0; i < 5; i++) analytics.track({ userId: 'u', event: 'Good', messageId: `good-${i}` });
    const result = await analytics.flush();
    expect(bodies().map((b) => b.batch.length)).toEqual([110, 10]);
    expect(bodies()[1]!.batch.map((e) => e.messageId)).toEqual([...Array.from({ length: 5 }, (_, i) => `bad-${100 + i}`), ...Array.from({ length: 5 }, (_, i) => `good-${i}`)]);
    expect(errors).toHaveLength(105);
    expect(errors.every((e) => e.code === AnalyticsErrorCodes.EVENT_REJECTED && e.events.length === 1)).toBe(true);
    expect(result.undelivered.map((e) => e.messageId)).toEqual(Array.from({ length: 105 }, (_, i) => `bad-${i}`));
    // the valid events were stored by the first request; the resend is de-duplicated
    expect((await stored()).map((e) => e.messageId)).toEqual(Array.from({ length: 5 }, (_, i) => `good-${i}`));
  });

  it('treats a redirect as final and reports refusals an answer counts without naming them', async () => {
    const proxy = await startProxy(ingestion.url, [
      { status: 302, headers: { location: '/elsewhere' }, body: '' },
      { status: 207, body: '{"success":false,"accepted":1,"rejected":1,"errors":[]}' },
    ]);
    cleanups.push(proxy.close);
    const { analytics, errors, delivered } = sdk({ host: proxy.url, flushAt: 1 });
    const redirected = await track(analytics, { userId: 'u', event: 'A' });
    expect(redirected.error).toMatchObject({ code: AnalyticsErrorCodes.REQUEST_REFUSED, status: 302 });
    analytics.track({ userId: 'u', event: 'B' });
    await analytics.flush();
    expect(errors.map((e) => [e.code, e.status, e.events.length, e.message])).toEqual([
      [AnalyticsErrorCodes.REQUEST_REFUSED, 302, 1, expect.stringMatching(/HTTP 302/)],
      [AnalyticsErrorCodes.EVENT_REJECTED, 207, 0, expect.stringMatching(/refused 1 events of a request without naming them/)],
    ]);
    expect(delivered.map((d) => d.status)).toEqual([207]);
    expect(proxy.requests).toHaveLength(2);
  });

  it('refuses at the call, without sending, events too large, without identity or name, not serialisable, or with an invalid Date', async () => {
    const { analytics, requests, errors } = sdk({ maxEventBytes: 1024 });
    const circular: Json = {};
    circular.self = circular;
    const outcomes = await Promise.all([
      track(analytics, { userId: 'u', event: 'Huge', properties: { pad: 'x'.repeat(2000) } }),
      track(analytics, { event: 'Nobody' }),
      track(analytics, { userId: 'u' }),
      track(analytics, { userId: 'u', event: 'Loop', properties: circular }),
      new Promise<AnalyticsError | undefined>((resolve) => analytics.group({ userId: 'u' } as never, (e) => resolve(e))).then((error) => ({ error })),
      new Promise<AnalyticsError | undefined>((resolve) => analytics.alias({ userId: 'u' } as never, (e) => resolve(e))).then((error) => ({ error })),
      track(analytics, { userId: 'u', event: 'Numbered', messageId: 5 }),
      track(analytics, { userId: 'u', event: 'Bad Date', timestamp: new Date('not a date') }),
    ]);
    expect(outcomes.map((o) => o.error?.code)).toEqual([
      AnalyticsErrorCodes.EVENT_TOO_LARGE,
      AnalyticsErrorCodes.INVALID_EVENT,
      AnalyticsErrorCodes.INVALID_EVENT,
      AnalyticsErrorCodes.INVALID_EVENT,
      AnalyticsErrorCodes.INVALID_EVENT,
      AnalyticsErrorCodes.INVALID_EVENT,
      AnalyticsErrorCodes.INVALID_EVENT,
      AnalyticsErrorCodes.INVALID_EVENT,
    ]);
    expect(outcomes.map((o) => o.error?.message)).toEqual([
      expect.stringMatching(/is \d+ bytes as JSON, more than maxEventBytes \(1024\)/),
      expect.stringMatching(/track needs a userId or an anonymousId/),
      expect.stringMatching(/track needs an event name/),
      expect.stringMatching(/cannot be serialised as JSON/),
      expect.stringMatching(/group needs a groupId/),
      expect.stringMatching(/alias needs a previousId/),
      expect.stringMatching(/messageId must be a non-empty string/),
      expect.stringMatching(/timestamp is an invalid Date/),
    ]);
    expect(errors).toHaveLength(8);
    expect(await analytics.flush()).toEqual({ undelivered: [] });
    expect(requests).toHaveLength(0);
  });

  it('refuses calls beyond maxQueueSize events held', async () => {
    const { analytics } = sdk({ maxQueueSize: 2, flushAt: 100, flushInterval: 3_600_000 });
    const outcomes = Promise.all([track(analytics, { userId: 'u', event: 'A' }), track(analytics, { userId: 'u', event: 'B' }), track(analytics, { userId: 'u', event: 'C' })]);
    await analytics.flush();
    expect((await outcomes).map((o) => o.error?.code)).toEqual([undefined, undefined, AnalyticsErrorCodes.QUEUE_FULL]);
    expect((await stored()).map((e) => e.event)).toEqual(['A', 'B']);
  });

  it('closeAndFlush({ timeout }) abandons what is not delivered in time and reports it', async () => {
    const proxy = await startProxy(ingestion.url, [], 'hang');
    cleanups.push(proxy.close);
    const { analytics, errors } = sdk({ host: proxy.url });
    const outcomes = Promise.all([track(analytics, { userId: 'u', event: 'A' }), track(analytics, { userId: 'u', event: 'B' })]);
    const result = await analytics.closeAndFlush({ timeout: 50 });
    expect(result.undelivered.map((e) => e.event)).toEqual(['A', 'B']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: AnalyticsErrorCodes.CLOSE_TIMEOUT, message: expect.stringMatching(/within the closeAndFlush timeout of 50 ms/) });
    expect((await outcomes).map((o) => o.error)).toEqual([errors[0], errors[0]]);
    expect(analytics.closeAndFlush()).toBe(analytics.closeAndFlush());
  });

  /** Runs `code` (an ES module importing the SDK from `process.env.SDK`) in a child Node process, as an application would. */
  function child(code: string) {
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: repoRoot,
      env: { ...process.env, SDK: sdkEntry, HOST: ingestion.url, WRITE_KEY: SOURCE.writeKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => proc.exitCode === null && proc.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const printed = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => stdout.includes(text) && (proc.stdout.off('data', check), resolve());
        proc.stdout.on('data', check);
        check();
      });
    return { proc, exited, printed, output: () => ({ stdout, stderr }) };
  }

  it('in an application: failures without an error listener are warnings, a throwing callback does not stop delivery', async () => {
    const app = child(`
      const { Analytics } = await import(process.env.SDK);
      process.on('uncaughtException', (e) => console.log('uncaught:', e.message));
      const analytics = new Analytics({ writeKey: process.env.WRITE_KEY, host: process.env.HOST });
      analytics.track({ event: 'Nobody' });
      analytics.track({ userId: 'u', event: 'A' }, () => { throw new Error('callback failed'); });
      analytics.track({ userId: 'u', event: 'B' });
      console.log(JSON.stringify(await analytics.closeAndFlush()));
    `);
    expect(await app.exited).toBe(0);
    const { stdout, stderr } = app.output();
    expect(stderr).toMatch(/\[SY_CLIENT_INVALID_EVENT\] AnalyticsError: track needs a userId or an anonymousId/);
    expect(stdout).toContain('uncaught: callback failed');
    expect(stdout).toContain('{"undelivered":[]}');
    expect((await stored()).map((e) => e.event)).toEqual(['A', 'B']);
  });

  it('in an application: the README shutdown recipe delivers what is queued on SIGTERM', async () => {
    const app = child(`
      const { Analytics } = await import(process.env.SDK);
      const analytics = new Analytics({ writeKey: process.env.WRITE_KEY, host: process.env.HOST, flushInterval: 3600000 });
      const server = setInterval(() => {}, 1000); // stands for the application's HTTP server
      process.once('SIGTERM', async () => {
        clearInterval(server);
        const { undelivered } = await analytics.closeAndFlush({ timeout: 10000 });
        if (undelivered.length > 0) console.error(undelivered.length + ' events not delivered');
        process.exitCode = undelivered.length > 0 ? 1 : 0;
      });
      for (let i = 0; i < 3; i++) analytics.track({ userId: 'u', event: 'E' + i });
      console.log('ready');
    `);
    await app.printed('ready');
    expect(await stored()).toHaveLength(0);
    app.proc.kill('SIGTERM');
    expect(await app.exited).toBe(0);
    expect((await stored()).map((e) => e.event)).toEqual(['E0', 'E1', 'E2']);
  });

  it('does nothing but call back when disabled, and needs no host', async () => {
    const analytics = new Analytics({ writeKey: SOURCE.writeKey, disable: true });
    const sent: unknown[] = [];
    analytics.on('http_request', (r) => sent.push(r));
    const { error, event } = await track(analytics, { userId: 'u', event: 'A' });
    expect(error).toBeUndefined();
    expect(event).toMatchObject({ type: 'track', event: 'A' });
    expect(await analytics.closeAndFlush()).toEqual({ undelivered: [] });
    expect(sent).toEqual([]);
  });

  it('sends bodies the ingestion stores as it stores those of @segment/analytics-node', async () => {
    type Method = 'track' | 'page' | 'screen' | 'identify' | 'group' | 'alias';
    const CALLS: [Method, Json][] = [
      ['track', { userId: 'u1', event: 'Order Completed', properties: { revenue: 25 }, context: { locale: 'fr-FR' } }],
      ['page', { anonymousId: 'a1', name: 'Home', category: 'Docs' }],
      ['screen', { userId: 'u1', name: 'Main' }],
      ['identify', { userId: 'u1', traits: { plan: 'pro' } }],
      ['group', { userId: 'u1', groupId: 'g1' }],
      ['alias', { userId: 'u1', previousId: 'a1' }],
    ];
    const calls = (prefix: string) => CALLS.map(([method, params], i) => [method, { ...params, messageId: `${prefix}-${i}`, timestamp: new Date('2026-03-01T11:00:00.000Z') }] as const);

    const segment = new SegmentAnalytics({ writeKey: SOURCE.writeKey, host: ingestion.url, path: '/v1/batch', flushAt: 6 });
    const segmentStatuses: number[] = [];
    segment.on('http_response', (r) => segmentStatuses.push(r.status));
    for (const [method, params] of calls('segment')) (segment[method] as (p: Json) => void).call(segment, params);
    await segment.closeAndFlush();

    const ours = sdk({ flushAt: 6 });
    const ourStatuses: number[] = [];
    ours.analytics.on('http_response', (r) => ourStatuses.push(r.status));
    for (const [method, params] of calls('ours')) (ours.analytics[method] as (p: Json) => void).call(ours.analytics, params);
    await ours.analytics.flush();

    expect(segmentStatuses).toEqual([200]);
    expect(ourStatuses).toEqual([200]);
    const events = await stored();
    expect(events).toHaveLength(12);
    // What differs by design: the library, analytics-node's _metadata and empty integrations, the
    // messageIds given, and the send time (and so the skew-corrected timestamp).
    const comparable = ({ messageId: _m, _metadata, sentAt: _s, receivedAt: _r, timestamp: _t, integrations, context, ...rest }: Json) => ({
      ...rest,
      ...(integrations && Object.keys(integrations).length > 0 ? { integrations } : {}),
      context: { ...context, library: undefined },
    });
    expect(events.slice(6).map(comparable)).toEqual(events.slice(0, 6).map(comparable));
    expect(events[0]!.context.library.name).toBe('@segment/analytics-node');
    expect(events[6]!.context.library.name).toBe('@switchyard/client');
  });
});
