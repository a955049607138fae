import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { testIntegration, uid } from '../test-support/forwarder-fixtures.js';
import { natsFixture } from '../test-support/nats.js';
import { consumerName, maxDeliveriesAdvisorySubject } from '../nats/subjects.js';
import { consumerUpdate, deleteIntegrationConsumers, ensureIntegrationConsumer, integrationConsumerConfig, normalizeIntegration } from './consumer.js';
import { ErrorCodes } from '../errors.js';

describe('integration consumers', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  beforeAll(async () => {
    fx = await natsFixture();
  });
  afterAll(async () => fx.cleanup());

  it('computes filters, ack wait, max deliver and max ack pending from the spec', () => {
    const i = normalizeIntegration(
      testIntegration('shop', { url: 'http://x', sources: ['web', 'ios', 'web'], events: { types: ['track', 'identify'] }, delivery: { batchSize: 5, concurrency: 3, timeout: '3s', retrySchedule: ['1s', '5s', '30s'] } }),
    );
    const p = fx.streams.subjectPrefix;
    expect(integrationConsumerConfig(fx.streams, i)).toEqual({
      durable_name: 'default__shop',
      description: 'Switchyard Integration default/shop',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: 11_000_000_000,
      max_deliver: 4,
      max_ack_pending: 30,
      filter_subjects: [`${p}.events.default.web.track`, `${p}.events.default.web.identify`, `${p}.events.default.ios.track`, `${p}.events.default.ios.identify`],
    });
    const all = normalizeIntegration(testIntegration('one', { url: 'http://x', sources: ['web'], delivery: { startAt: '2026-01-02T03:04:05Z', retrySchedule: [] } }));
    expect(integrationConsumerConfig(fx.streams, all)).toMatchObject({
      filter_subject: `${p}.events.default.web.*`,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: '2026-01-02T03:04:05.000Z',
      max_deliver: 1,
    });
  });

  it('applies schema defaults and refuses invalid Integrations', () => {
    const bare = testIntegration('bare', { url: 'http://x', sources: ['web'] });
    delete (bare.spec as Partial<typeof bare.spec>).delivery;
    expect(normalizeIntegration(bare).spec.delivery).toEqual({ batchSize: 1, concurrency: 8, timeout: '10s', retrySchedule: ['1s', '5s', '30s', '2m', '10m'] });
    const bad = testIntegration('bad', { url: 'http://x', sources: ['web'], delivery: { batchSize: 0 } });
    expect(() => normalizeIntegration(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, details: [expect.objectContaining({ path: '/spec/delivery/batchSize' })] }));
  });

  it('creates both consumers, is idempotent, and updates what changed', async () => {
    const name = `c-${uid()}`;
    const integration = testIntegration(name, { url: 'http://x', sources: ['a'], delivery: { timeout: '1s', retrySchedule: ['1s'] } });
    const created = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const durable = consumerName('default', name);
    expect(created.name).toBe(durable);
    expect(created.config).toMatchObject({ filter_subject: `${fx.streams.subjectPrefix}.events.default.a.*`, ack_wait: 7_000_000_000, max_deliver: 2, max_ack_pending: 8, deliver_policy: 'new' });

    const advisory = await fx.jsm.consumers.info(fx.streams.advisories.name, durable);
    expect(advisory.config).toMatchObject({ filter_subject: maxDeliveriesAdvisorySubject(fx.streams.events.name, durable), deliver_policy: 'by_start_time', ack_policy: 'explicit' });
    expect(Date.parse(advisory.config.opt_start_time!)).not.toBeNaN();
    expect(Date.parse(advisory.config.opt_start_time!)).toBe(Date.parse(created.created));

    // Nothing to change against the live config: a re-run sends no update.
    expect(consumerUpdate(created.config, integrationConsumerConfig(fx.streams, normalizeIntegration(integration)))).toEqual({});
    const again = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(again.config).toEqual(created.config);

    integration.spec.sourceRefs.push({ name: 'b' });
    integration.spec.delivery.retrySchedule = ['1s', '2s', '3s'];
    integration.spec.delivery.concurrency = 2;
    const updated = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(updated.config.filter_subject ?? '').toBe('');
    expect(updated.config.filter_subjects).toEqual([`${fx.streams.subjectPrefix}.events.default.a.*`, `${fx.streams.subjectPrefix}.events.default.b.*`]);
    expect(updated.config).toMatchObject({ max_deliver: 4, max_ack_pending: 4 });

    integration.spec.sourceRefs.pop();
    const back = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(back.config.filter_subject).toBe(`${fx.streams.subjectPrefix}.events.default.a.*`);
    expect(back.config.filter_subjects ?? []).toEqual([]);
  });

  it('deletes both consumers, and ignores missing ones', async () => {
    const integration = testIntegration(`d-${uid()}`, { url: 'http://x', sources: ['a'] });
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    await deleteIntegrationConsumers(fx.jsm, fx.streams, integration);
    const durable = consumerName('default', integration.metadata.name);
    for (const stream of [fx.streams.events.name, fx.streams.advisories.name]) {
      await expect(fx.jsm.consumers.info(stream, durable)).rejects.toMatchObject({ code: 10014 });
    }
    await expect(deleteIntegrationConsumers(fx.jsm, fx.streams, integration)).resolves.toBeUndefined();
  });
});
