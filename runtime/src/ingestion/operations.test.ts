// Health, readiness, metrics, publish failures and live Source reloads of the ingestion API.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { connectNats } from '../nats/connection.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { Registry } from '../metrics.js';
import { natsFixture } from '../test-support/nats.js';
import { startIngestion, type IngestionSource } from './index.js';

const LIMITS = { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 };
const WEB: IngestionSource = { namespace: 'shop', name: 'web', writeKey: 'wk_web_0123456789', allowedOrigins: [], limits: LIMITS };

type Json = Record<string, any>;

async function call(url: string, opts: { method?: 'GET' | 'POST'; key?: string; body?: unknown } = {}) {
  const res = await request(url, {
    method: opts.method ?? 'GET',
    headers: { 'content-type': 'application/json', ...(opts.key ? { authorization: `Basic ${Buffer.from(`${opts.key}:`).toString('base64')}` } : {}) },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, body: res.headers['content-type']?.toString().includes('json') ? (JSON.parse(text) as Json) : undefined };
}

describe('ingestion operations', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  beforeEach(async () => {
    fx = await natsFixture();
  });
  afterEach(async () => fx.cleanup());

  const count = async () => (await fx.jsm.streams.info(fx.streams.events.name)).state.messages;

  it('is healthy while serving and ready only while NATS is connected; events then get 503', async () => {
    const nc = await connectNats(fx.nats);
    const ingestion = await startIngestion({ nc, streams: fx.streams, sources: [WEB], host: '127.0.0.1', publishAckTimeoutMs: 300 });
    try {
      expect((await call(`${ingestion.url}/healthz`)).status).toBe(200);
      expect(await call(`${ingestion.url}/readyz`)).toMatchObject({ status: 200, body: { status: 'ready' } });
      await nc.close();
      expect(await call(`${ingestion.url}/readyz`)).toMatchObject({ status: 503, body: { status: 'not ready' } });
      expect((await call(`${ingestion.url}/healthz`)).status).toBe(200);
      const res = await call(`${ingestion.url}/v1/track`, { method: 'POST', key: WEB.writeKey, body: { userId: 'u', event: 'E' } });
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.body).toMatchObject({ success: false, errors: [{ rule: 'unavailable' }] });
      expect(res.body).not.toHaveProperty('accepted');
      expect(await count()).toBe(0);
    } finally {
      await ingestion.close();
    }
  });

  it('answers 503 with Retry-After when JetStream refuses the events', async () => {
    // The expected stream does not exist: JetStream refuses every message.
    const streams = { ...fx.streams, events: { ...fx.streams.events, name: 'NO_SUCH_STREAM' } };
    const ingestion = await startIngestion({ nc: fx.nc, streams, sources: [WEB], host: '127.0.0.1', publishAckTimeoutMs: 500 });
    try {
      const res = await call(`${ingestion.url}/v1/batch`, { method: 'POST', key: WEB.writeKey, body: { batch: [{ type: 'track', event: 'E', userId: 'u' }] } });
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.body!.errors[0].message).toMatch(/could not be stored/);
      expect(await count()).toBe(0);
    } finally {
      await ingestion.close();
    }
  });

  it('counts received, accepted and rejected events, requests and publish time on /metrics', async () => {
    const registry = new Registry();
    const ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [WEB], host: '127.0.0.1', registry });
    try {
      const batch = [{ type: 'track', event: 'E', userId: 'u' }, { type: 'track', userId: 'u' }, { type: 'identify', userId: 'u' }];
      expect((await call(`${ingestion.url}/v1/batch`, { method: 'POST', key: WEB.writeKey, body: { batch } })).status).toBe(207);
      expect((await call(`${ingestion.url}/v1/track`, { method: 'POST', key: 'wk_nobody_000000', body: {} })).status).toBe(401);
      const metrics = await call(`${ingestion.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
      const lines = metrics.text.split('\n');
      expect(lines).toEqual(
        expect.arrayContaining([
          'switchyard_ingest_events_received_total{source="shop/web"} 3',
          'switchyard_ingest_events_accepted_total{source="shop/web"} 2',
          'switchyard_ingest_events_rejected_total{source="shop/web",reason="invalid"} 1',
          'switchyard_ingest_requests_total{route="/v1/batch",status="207"} 1',
          'switchyard_ingest_requests_total{route="/v1/track",status="401"} 1',
          'switchyard_ingest_publish_duration_seconds_count 1',
        ]),
      );
    } finally {
      await ingestion.close();
    }
  });

  it('swaps Sources live: write keys, origins and limits; a key conflict keeps the old Sources', async () => {
    const ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [WEB], host: '127.0.0.1' });
    try {
      const event = { userId: 'u', event: 'E' };
      const rotated: IngestionSource = { ...WEB, writeKey: 'wk_web_rotated_000', limits: { ...LIMITS, maxEventBytes: 1024 } };
      ingestion.setSources([rotated]);
      expect((await call(`${ingestion.url}/v1/track`, { method: 'POST', key: WEB.writeKey, body: event })).status).toBe(401);
      expect((await call(`${ingestion.url}/v1/track`, { method: 'POST', key: rotated.writeKey, body: event })).status).toBe(200);
      const big = await call(`${ingestion.url}/v1/track`, { method: 'POST', key: rotated.writeKey, body: { ...event, properties: { pad: 'x'.repeat(2000) } } });
      expect(big.body).toMatchObject({ errors: [{ rule: 'maxEventBytes' }] });

      let thrown: unknown;
      try {
        ingestion.setSources([rotated, { ...rotated, name: 'copy' }]);
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(SwitchyardError);
      expect((thrown as SwitchyardError).code).toBe(ErrorCodes.WRITE_KEY_CONFLICT);
      expect((await call(`${ingestion.url}/v1/track`, { method: 'POST', key: rotated.writeKey, body: event })).status).toBe(200);

      ingestion.setSources([]);
      expect((await call(`${ingestion.url}/v1/track`, { method: 'POST', key: rotated.writeKey, body: event })).status).toBe(401);
      expect(await count()).toBe(2);
    } finally {
      await ingestion.close();
    }
  });

  it('logs rejected events with source and messageId (debug) and a summary per request', async () => {
    const lines: Json[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(JSON.parse(chunk.toString())), done()) });
    const ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [WEB], host: '127.0.0.1', logger: pino({ level: 'debug' }, sink) });
    try {
      const batch = [{ type: 'track', event: 'E', userId: 'u', messageId: 'ok-1' }, { type: 'track', userId: 'u', messageId: 'bad-1' }];
      expect((await call(`${ingestion.url}/v1/batch`, { method: 'POST', key: WEB.writeKey, body: { batch } })).status).toBe(207);
      expect(lines).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ level: 20, msg: 'event rejected', source: 'shop/web', messageId: 'bad-1', index: 1, problems: [expect.objectContaining({ field: '/event', rule: 'required' })] }),
          expect.objectContaining({ msg: 'ingestion request', route: '/v1/batch', status: 207, source: 'shop/web', received: 2, accepted: 1 }),
        ]),
      );
    } finally {
      await ingestion.close();
    }
  });
});
