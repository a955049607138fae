// End to end, in one process but with every real part: Segment-spec fixtures posted as raw HTTP
// and through the real @segment/analytics-node SDK to our ingestion, stored in JetStream, mapped
// with the bundled example Mapping and delivered to a webhook receiver on loopback.
import { readFile, readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Analytics } from '@segment/analytics-node';
import { request } from 'undici';
import { loadResources, type Integration } from '../api/index.js';
import { ensureIntegrationConsumer, startForwarder, type Forwarder } from '../forward/index.js';
import { startIngestion } from '../ingestion/index.js';
import { resolveLocal } from '../local/resolve.js';
import { natsFixture } from '../test-support/nats.js';
import { silentLogger } from '../logger.js';
import { createRegistry } from '../metrics.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const fixturesDir = path.join(here, '../test-support/fixtures');
const NOW = Date.parse('2026-11-20T15:05:00.000Z');
const WRITE_KEY = 'wk_local_example_web';

type Event = Record<string, any>;

async function fixtures(): Promise<Event[]> {
  const dir = path.join(fixturesDir, 'events');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(path.join(dir, n), 'utf8')) as Event));
}

describe('pipeline end to end', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let receiver: Server;
  const received: { body: any; headers: Record<string, unknown> }[] = [];
  let forwarder: Forwarder;
  let ingestion: Awaited<ReturnType<typeof startIngestion>>;
  let expected: Record<string, unknown>;

  beforeAll(async () => {
    fx = await natsFixture();
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ body: JSON.parse(Buffer.concat(chunks).toString()), headers: req.headers });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const { port } = receiver.address() as { port: number };

    const { resources, problems } = await loadResources([path.join(repoRoot, 'examples')]);
    expect(problems).toEqual([]);
    const { plan } = resolveLocal(resources);
    const config = plan.forwarders[0]!;
    const integration: Integration = structuredClone(config.integration);
    integration.spec.destination.webhook!.url = `http://127.0.0.1:${port}/webhook`;
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    forwarder = await startForwarder({ nc: fx.nc, streams: fx.streams, config: { ...config, integration }, logger: silentLogger, registry: createRegistry({ defaultMetrics: false }) });
    ingestion = await startIngestion({
      nc: fx.nc,
      streams: fx.streams,
      sources: plan.sources,
      clock: { now: () => NOW },
      logger: silentLogger,
      registry: createRegistry({ defaultMetrics: false }),
      port: 0,
      host: '127.0.0.1',
    });
    expected = JSON.parse(await readFile(path.join(fixturesDir, 'expected/example-webhook.json'), 'utf8'));
  });

  afterAll(async () => {
    await ingestion?.close();
    await forwarder?.stop();
    receiver?.close();
    await fx?.cleanup();
  });

  async function waitFor(count: number) {
    for (let i = 0; i < 400 && received.length < count; i++) await new Promise((r) => setTimeout(r, 25));
    // Anything delivered twice would arrive right behind the rest.
    await new Promise((r) => setTimeout(r, 300));
  }

  it('delivers exactly the mapped payload of every fixture once, sent as raw HTTP', async () => {
    const events = await fixtures();
    const res = await request(`${ingestion.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ writeKey: WRITE_KEY, batch: events }),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ success: true });
    await waitFor(events.length);

    const byId = Object.fromEntries(received.map((r) => [r.body.messageId, r.body]));
    expect(received).toHaveLength(events.length);
    expect(byId).toEqual(expected);
    expect(received[0]!.headers).toMatchObject({ authorization: 'Bearer local-example-token', 'x-switchyard-example': 'true', 'content-type': 'application/json' });
  });

  it('delivers the same payloads for events sent through @segment/analytics-node', async () => {
    received.length = 0;
    const events = await fixtures();
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: ingestion.url, flushAt: 5, maxRetries: 1 });
    const errors: unknown[] = [];
    analytics.on('error', (e) => errors.push(e));
    for (const e of events) {
      const common = { messageId: `sdk-${e.messageId}`, timestamp: e.timestamp, context: e.context, integrations: e.integrations };
      const ids = e.userId ? { userId: e.userId, anonymousId: e.anonymousId } : { anonymousId: e.anonymousId };
      switch (e.type) {
        case 'track':
          analytics.track({ ...common, ...ids, event: e.event, properties: e.properties });
          break;
        case 'page':
          analytics.page({ ...common, ...ids, name: e.name, properties: e.properties });
          break;
        case 'screen':
          analytics.screen({ ...common, ...ids, name: e.name, properties: e.properties });
          break;
        case 'identify':
          analytics.identify({ ...common, ...ids, traits: e.traits });
          break;
        case 'group':
          analytics.group({ ...common, ...ids, groupId: e.groupId, traits: e.traits });
          break;
        case 'alias':
          analytics.alias({ ...common, userId: e.userId, previousId: e.previousId });
          break;
      }
    }
    await analytics.closeAndFlush();
    expect(errors).toEqual([]);
    await waitFor(events.length);

    expect(received).toHaveLength(events.length);
    for (const { body } of received) {
      const original = (body.messageId as string).replace(/^sdk-/, '');
      const want = structuredClone(expected[original]) as Record<string, unknown>;
      // The SDK stamps its own sentAt, so the skew-corrected timestamp differs from the raw run.
      expect({ ...body, timestamp: undefined }).toEqual({ ...want, messageId: `sdk-${original}`, timestamp: undefined });
      expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
    }
  });
});
