// The real @segment/analytics-node SDK against the ingestion API: its events are stored, and it
// neither retries nor resends after a 207 (partly accepted) or a 400 (nothing accepted).
import { Analytics } from '@segment/analytics-node';
import { natsFixture, streamMessages } from '../test-support/nats.js';
import { startIngestion, type IngestionSource } from './index.js';

const WEB: IngestionSource = {
  namespace: 'shop',
  name: 'server',
  writeKey: 'wk_server_0123456789',
  allowedOrigins: [],
  limits: { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 },
};

type Json = Record<string, any>;

describe('@segment/analytics-node against the ingestion API', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let ingestion: Awaited<ReturnType<typeof startIngestion>>;

  beforeEach(async () => {
    fx = await natsFixture();
    ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources: [WEB], host: '127.0.0.1' });
  });
  afterEach(async () => {
    await ingestion.close();
    await fx.cleanup();
  });

  async function stored(): Promise<Json[]> {
    return (await streamMessages(fx.jsm, fx.streams.events.name)).map((m) => m.json<Json>());
  }

  function sdk() {
    const analytics = new Analytics({ writeKey: WEB.writeKey, host: ingestion.url, path: '/v1/batch', flushAt: 3, flushInterval: 200, maxRetries: 2 });
    const statuses: number[] = [];
    const errors: unknown[] = [];
    analytics.on('http_response', (r) => statuses.push(r.status));
    analytics.on('error', (e) => errors.push(e));
    return { analytics, statuses, errors };
  }

  it('stores every call the SDK sends', async () => {
    const { analytics, statuses, errors } = sdk();
    analytics.identify({ userId: 'u1', traits: { plan: 'pro' } });
    analytics.track({ userId: 'u1', event: 'Order Completed', properties: { revenue: 25 } });
    analytics.page({ anonymousId: 'a1', name: 'Home' });
    analytics.screen({ userId: 'u1', name: 'Main' });
    analytics.group({ userId: 'u1', groupId: 'g1', traits: { name: 'Acme' } });
    analytics.alias({ userId: 'u1', previousId: 'a1' });
    await analytics.closeAndFlush();
    expect(errors).toEqual([]);
    expect(statuses).toEqual([200, 200]);
    const events = await stored();
    expect(events.map((e) => e.type)).toEqual(['identify', 'track', 'page', 'screen', 'group', 'alias']);
    expect(events[1]).toMatchObject({ event: 'Order Completed', userId: 'u1', properties: { revenue: 25 }, context: { library: { name: '@segment/analytics-node' } } });
    expect(events.every((e) => typeof e.messageId === 'string' && !e.messageId.startsWith('sy-') && typeof e.receivedAt === 'string')).toBe(true);
  });

  it('treats a 207 as delivered (no retry, nothing resent) and a 400 as a final failure', async () => {
    const { analytics, statuses, errors } = sdk();
    // The SDK passes a string timestamp through unchecked; the API refuses it by the Segment schema.
    analytics.track({ userId: 'u1', event: 'Good', messageId: 'good-1' });
    analytics.track({ userId: 'u1', event: 'Bad', messageId: 'bad-1', timestamp: 'not a date' });
    analytics.track({ userId: 'u1', event: 'Good', messageId: 'good-2' });
    await analytics.closeAndFlush();
    expect(statuses).toEqual([207]);
    expect(errors).toEqual([]);
    expect((await stored()).map((e) => e.messageId)).toEqual(['good-1', 'good-2']);

    const second = sdk();
    second.analytics.track({ userId: 'u1', event: 'Bad', messageId: 'bad-2', timestamp: 'not a date' });
    await second.analytics.closeAndFlush();
    // 400 is final for the SDK: one request, the failure reported, nothing stored
    expect(second.statuses).toEqual([400]);
    expect(second.errors).toHaveLength(1);
    expect(await stored()).toHaveLength(2);
  });
});
