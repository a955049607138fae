// End to end with a vendor destination: Segment-spec fixtures posted to the real ingestion, stored in
// JetStream, mapped by the meta-capi starter Mapping and delivered by the real forwarder to the Meta
// Conversions API fake (which enforces Meta's rules). Covers what only the whole pipeline shows:
// throttling held and resent, one refused event out of a batch, a stale event never sent, and the
// replay of a dead letter keeping the vendor-facing event_id.
import { request } from 'undici';
import type { Integration } from '../api/index.js';
import { metaCapiDestination } from '../destinations/meta-capi/index.js';
import { FAKE_META_ACCESS_TOKEN, FAKE_META_PIXEL_ID, startMetaCapiFake, type MetaCapiFake } from '../destinations/meta-capi/fake.js';
import { ensureIntegrationConsumer, listDeadLetters, replayDeadLetters, startForwarder, type DeliveryRecord, type Forwarder } from '../forward/index.js';
import { startIngestion } from '../ingestion/index.js';
import { silentLogger } from '../logger.js';
import { createRegistry } from '../metrics.js';
import { compileStarter, fixtureEvents, GOLDEN_NOW, starterResource } from '../test-support/destinations.js';
import { eventually } from '../test-support/http-receiver.js';
import { natsFixture } from '../test-support/nats.js';

const NOW = GOLDEN_NOW;
const WRITE_KEY = 'wk_e2e_meta';
const DAY = 24 * 60 * 60 * 1000;

describe('meta-capi end to end', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let fake: MetaCapiFake;
  let forwarder: Forwarder;
  let ingestion: Awaited<ReturnType<typeof startIngestion>>;
  const records: DeliveryRecord[] = [];
  const integration: Integration = {
    apiVersion: 'switchyard.io/v1alpha1',
    kind: 'Integration',
    metadata: { name: 'meta', namespace: 'default' },
    spec: {
      sourceRefs: [{ name: 'web' }],
      mappingRef: { name: 'meta-capi-starter' },
      destination: { type: 'meta-capi', metaCapi: { pixelId: FAKE_META_PIXEL_ID, apiVersion: 'v26.0', endpoint: 'http://placeholder' } },
      credentialsSecretRef: { name: 'meta' },
      events: { types: ['track', 'page', 'screen', 'identify', 'group', 'alias'] },
      consent: { categories: [] },
      delivery: { batchSize: 50, concurrency: 2, timeout: '2s', retrySchedule: ['200ms', '200ms'], circuitBreaker: { failures: 5, halfOpenAfter: '30s' } },
      forwarder: { replicas: 1 },
      paused: false,
    },
  };

  beforeAll(async () => {
    fx = await natsFixture();
    fake = await startMetaCapiFake({ now: () => NOW });
    integration.spec.destination.metaCapi!.endpoint = fake.url;
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    forwarder = await startForwarder({
      nc: fx.nc,
      streams: fx.streams,
      config: { integration, mapping: starterResource(metaCapiDestination), credentials: { access_token: FAKE_META_ACCESS_TOKEN } },
      clock: { now: () => NOW },
      logger: silentLogger,
      registry: createRegistry({ defaultMetrics: false }),
      throttleBackoff: { initialMs: 100, maxMs: 200 },
      onDelivery: (d) => records.push(d),
    });
    ingestion = await startIngestion({
      nc: fx.nc,
      streams: fx.streams,
      sources: [{ namespace: 'default', name: 'web', writeKey: WRITE_KEY, allowedOrigins: [], limits: { maxEventBytes: 32_768, maxBatchBytes: 512_000, eventsPerSecond: 10_000, burst: 10_000 } }],
      clock: { now: () => NOW },
      logger: silentLogger,
      registry: createRegistry({ defaultMetrics: false }),
      port: 0,
      host: '127.0.0.1',
    });
  });

  afterAll(async () => {
    await ingestion?.close();
    await forwarder?.stop();
    await fake?.close();
    await fx?.cleanup();
  });

  it('delivers the fixtures through throttling, isolates a refused event, never sends a stale one, and replays with the same event_id', async () => {
    const mapping = compileStarter(metaCapiDestination);
    const fixtures = fixtureEvents().map((f) => f.event);
    const mapped = fixtures.filter((e) => mapping.apply(e).ok);
    expect(mapped.length).toBeGreaterThanOrEqual(5);
    const order = fixtures.find((e) => e.event === 'Order Completed')!;
    const stale = { ...order, messageId: 'e2e-stale', timestamp: new Date(NOW - 8 * DAY).toISOString(), sentAt: undefined };
    const refused = mapped.find((e) => e.event === 'Product Added')!;
    fake.rejectEvents([String(refused.messageId)], 'Invalid parameter');
    fake.throttle(2);

    const res = await request(`${ingestion.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ writeKey: WRITE_KEY, batch: [...fixtures, stale] }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();

    const settled = fixtures.length + 1;
    await eventually(() => records.filter((r) => r.outcome !== 'retried').length >= settled, 20_000, 'every event settled');
    const delivered = new Set(fake.accepted.map((a) => a.event.event_id));
    for (const e of mapped) if (e !== refused) expect(delivered).toContain(e.messageId);
    expect(delivered).not.toContain(refused.messageId);
    // The stale event never reached Meta: Meta would refuse the whole request for it.
    const sentIds = fake.answers.flatMap((a) => ((a.request.body as { data?: { event_id: string }[] }).data ?? []).map((d) => d.event_id));
    expect(sentIds).not.toContain('e2e-stale');
    // Throttled twice, yet no retry was spent: every delivered event went on its first delivery.
    expect(records.filter((r) => r.outcome === 'delivered').every((r) => r.attempt === 1)).toBe(true);
    expect(fake.answers.slice(0, 2).map((a) => a.body.error?.code)).toEqual([17, 17]);

    const letters = await listDeadLetters(fx.jsm, fx.streams, { namespace: 'default', name: 'meta' });
    const byReason = Object.fromEntries(letters.map((l) => [l.letter.reason, l.letter]));
    expect(Object.keys(byReason).sort()).toEqual(['permanent_failure', 'stale_event']);
    expect(byReason.stale_event).toMatchObject({ event: { messageId: 'e2e-stale' }, error: expect.stringMatching(/7 days|days old/) });
    expect(byReason.permanent_failure).toMatchObject({ event: { messageId: refused.messageId }, error: expect.stringContaining('Invalid parameter') });

    // After the fix, a replay reaches Meta once, with the event_id the pixel and the first attempt used.
    fake.reset();
    const refusedLetter = letters.find((l) => l.letter.reason === 'permanent_failure')!;
    const replayed = await replayDeadLetters(fx.jsm, fx.streams, { namespace: 'default', name: 'meta' }, { seqs: [refusedLetter.seq] });
    expect(replayed.map((r) => r.outcome)).toEqual(['replayed']);
    await eventually(() => fake.accepted.length === 1, 10_000, 'the replayed event at Meta');
    expect(fake.accepted[0]!.event).toMatchObject({ event_id: refused.messageId, event_name: 'AddToCart' });
    expect((await listDeadLetters(fx.jsm, fx.streams, { namespace: 'default', name: 'meta' })).map((l) => l.letter.reason)).toEqual(['stale_event']);
  });
});
