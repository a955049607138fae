import { AckPolicy, DeliverPolicy, jetstream, type ConsumerInfo, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { createInbox } from '@nats-io/transport-node';
import type { Integration } from '../api/index.js';
import { publishEvents, testIntegration, trackEvent, uid } from '../test-support/forwarder-fixtures.js';
import { eventually } from '../test-support/http-receiver.js';
import { natsFixture } from '../test-support/nats.js';
import { consumerName, integrationReplayFilter, maxDeliveriesAdvisorySubject, replaySubject } from '../nats/subjects.js';
import {
  consumerBacklog,
  consumerUpdate,
  deleteIntegrationConsumers,
  ensureIntegrationConsumer,
  immutableConsumerChanges,
  integrationConsumerConfig,
  integrationConsumerInfo,
  normalizeIntegration,
} from './consumer.js';
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
      // ack wait 2 × 3 s + 5 s = 11 s, plus each retry's delay; the first delivery waits backoff[0].
      ack_wait: 12_000_000_000,
      backoff: [12_000_000_000, 16_000_000_000, 41_000_000_000],
      max_deliver: 4,
      max_ack_pending: 30,
      // Then the replay filter: dead letters replayed to this Integration alone.
      filter_subjects: [`${p}.events.default.web.track`, `${p}.events.default.web.identify`, `${p}.events.default.ios.track`, `${p}.events.default.ios.identify`, `${p}.replay.default.shop.>`],
    });
    const all = normalizeIntegration(testIntegration('one', { url: 'http://x', sources: ['web'], delivery: { startAt: '2026-01-02T03:04:05Z', retrySchedule: [] } }));
    expect(integrationConsumerConfig(fx.streams, all)).toMatchObject({
      filter_subjects: [`${p}.events.default.web.*`, `${p}.replay.default.one.>`],
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: '2026-01-02T03:04:05.000Z',
      max_deliver: 1,
      ack_wait: 9_000_000_000, // 2 × 2 s + 5 s, no retry
    });
    expect(integrationConsumerConfig(fx.streams, all)).not.toHaveProperty('backoff');
  });

  it('applies schema defaults and refuses invalid Integrations', () => {
    const bare = testIntegration('bare', { url: 'http://x', sources: ['web'] });
    delete (bare.spec as Partial<typeof bare.spec>).delivery;
    expect(normalizeIntegration(bare).spec.delivery).toEqual({ batchSize: 1, concurrency: 8, timeout: '10s', retrySchedule: ['1s', '5s', '30s', '2m', '10m'], circuitBreaker: { failures: 5, halfOpenAfter: '30s' } });
    const bad = testIntegration('bad', { url: 'http://x', sources: ['web'], delivery: { batchSize: 0 } });
    expect(() => normalizeIntegration(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, details: [expect.objectContaining({ path: '/spec/delivery/batchSize' })] }));
  });

  it('creates both consumers, is idempotent, and updates what changed, backoff included', async () => {
    const name = `c-${uid()}`;
    const integration = testIntegration(name, { url: 'http://x', sources: ['a'], delivery: { timeout: '1s', retrySchedule: ['1s'] } });
    const created = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const durable = consumerName('default', name);
    expect(created).toEqual({ info: expect.objectContaining({ name: durable }), action: 'created' });
    expect(created.info.config).toMatchObject({
      filter_subjects: [`${fx.streams.subjectPrefix}.events.default.a.*`, `${fx.streams.subjectPrefix}.replay.default.${name}.>`],
      ack_wait: 8_000_000_000,
      backoff: [8_000_000_000],
      max_deliver: 2,
      max_ack_pending: 8,
      deliver_policy: 'new',
    });

    const advisory = await fx.jsm.consumers.info(fx.streams.advisories.name, durable);
    expect(advisory.config).toMatchObject({ filter_subject: maxDeliveriesAdvisorySubject(fx.streams.events.name, durable), deliver_policy: 'by_start_time', ack_policy: 'explicit' });
    expect(Date.parse(advisory.config.opt_start_time!)).not.toBeNaN();
    expect(Date.parse(advisory.config.opt_start_time!)).toBe(Date.parse(created.info.created));

    // Nothing to change against the live config: a re-run sends no update.
    expect(consumerUpdate(created.info.config, integrationConsumerConfig(fx.streams, normalizeIntegration(integration)))).toEqual({});
    expect(immutableConsumerChanges(created.info.config, integrationConsumerConfig(fx.streams, normalizeIntegration(integration)))).toEqual([]);
    const again = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(again).toEqual({ info: expect.objectContaining({ config: created.info.config }), action: 'unchanged' });

    // startAt only matters at creation: a change of it alone changes nothing.
    integration.spec.delivery.startAt = '2026-01-01T00:00:00Z';
    expect(await ensureIntegrationConsumer(fx.jsm, fx.streams, integration)).toMatchObject({ action: 'unchanged', info: { config: { deliver_policy: 'new' } } });
    delete integration.spec.delivery.startAt;

    integration.spec.sourceRefs.push({ name: 'b' });
    integration.spec.delivery.retrySchedule = ['1s', '2s', '3s'];
    integration.spec.delivery.concurrency = 2;
    const updated = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(updated.action).toBe('updated');
    expect([...updated.changed!].sort()).toEqual(['backoff', 'filter_subjects', 'max_ack_pending', 'max_deliver']);
    expect(updated.info.config.filter_subject ?? '').toBe('');
    expect([...updated.info.config.filter_subjects!].sort()).toEqual([`${fx.streams.subjectPrefix}.events.default.a.*`, `${fx.streams.subjectPrefix}.events.default.b.*`, `${fx.streams.subjectPrefix}.replay.default.${name}.>`]);
    expect(updated.info.config).toMatchObject({ max_deliver: 4, max_ack_pending: 4, ack_wait: 8_000_000_000, backoff: [8_000_000_000, 9_000_000_000, 10_000_000_000] });
    expect(updated.info.created).toBe(created.info.created); // the same consumer, updated in place

    integration.spec.sourceRefs.pop();
    integration.spec.delivery.retrySchedule = [];
    const back = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(back).toMatchObject({ action: 'updated', changed: expect.arrayContaining(['ack_wait', 'backoff', 'max_deliver', 'filter_subjects']) });
    expect(back.info.config.filter_subject ?? '').toBe('');
    expect([...back.info.config.filter_subjects!].sort()).toEqual([`${fx.streams.subjectPrefix}.events.default.a.*`, `${fx.streams.subjectPrefix}.replay.default.${name}.>`]);
    expect(back.info.config.backoff).toBeUndefined();
    expect(back.info.config).toMatchObject({ ack_wait: 7_000_000_000, max_deliver: 1 });
    expect((await ensureIntegrationConsumer(fx.jsm, fx.streams, integration)).action).toBe('unchanged');
  });

  it('takes the dead letters replayed to its Integration and no other, and adds the replay filter to a consumer made before it', async () => {
    const source = `src-${uid()}`;
    const [a, b] = [`ra-${uid()}`, `rb-${uid()}`].map((n) => testIntegration(n, { url: 'http://x', sources: [source], delivery: { timeout: '1s', retrySchedule: [] } }));
    // A's consumer as created before replays existed: its event filter only.
    const old = { ...integrationConsumerConfig(fx.streams, normalizeIntegration(a!)), filter_subject: `${fx.streams.subjectPrefix}.events.default.${source}.*` };
    delete old.filter_subjects;
    await fx.jsm.consumers.add(fx.streams.events.name, old);
    const upgraded = await ensureIntegrationConsumer(fx.jsm, fx.streams, a!);
    expect(upgraded).toMatchObject({ action: 'updated', changed: ['filter_subjects'] });
    expect(upgraded.info.config.filter_subjects).toContain(integrationReplayFilter(fx.streams.subjectPrefix, 'default', a!.metadata.name));
    await ensureIntegrationConsumer(fx.jsm, fx.streams, b!);

    const js = jetstream(fx.nc);
    const replay = await js.publish(replaySubject(fx.streams.subjectPrefix, 'default', a!.metadata.name, source, 'track'), JSON.stringify(trackEvent('replayed-1')));
    const [event] = await publishEvents(fx.nc, fx.streams, source, [trackEvent('fresh-1')]);
    const take = async (i: Integration) => {
      const consumer = await js.consumers.get(fx.streams.events.name, consumerName('default', i.metadata.name));
      const seqs: number[] = [];
      for await (const m of await consumer.fetch({ max_messages: 10, expires: 1000 })) {
        seqs.push(m.seq);
        m.ack();
      }
      return seqs;
    };
    expect(await take(a!)).toEqual([replay.seq, event]);
    expect(await take(b!)).toEqual([event]);
  });

  /** An Integration on its own source, its consumer name and 10 stored events (their stream sequences). */
  async function withEvents(prefix: string, count = 10): Promise<{ integration: Integration; durable: string; seqs: number[]; filter: string }> {
    const source = `src-${uid()}`;
    const integration = testIntegration(`${prefix}-${uid()}`, { url: 'http://x', sources: [source], delivery: { timeout: '1s', retrySchedule: ['1s'] } });
    const seqs = await publishEvents(fx.nc, fx.streams, source, Array.from({ length: count }, (_, i) => trackEvent(`${prefix}-${i + 1}`)));
    return { integration, durable: consumerName('default', integration.metadata.name), seqs, filter: `${fx.streams.subjectPrefix}.events.default.${source}.*` };
  }

  /** Pulls up to `n` events from a pull consumer without acking them. */
  async function pull(durable: string, n: number): Promise<JsMsg[]> {
    const consumer = await jetstream(fx.nc).consumers.get(fx.streams.events.name, durable);
    const msgs: JsMsg[] = [];
    for await (const m of await consumer.fetch({ max_messages: n, expires: 2000 })) msgs.push(m);
    return msgs;
  }

  const next = async (durable: string) => (await jetstream(fx.nc).consumers.get(fx.streams.events.name, durable)).next({ expires: 2000 });
  const ackFloor = async (durable: string) => (await fx.jsm.consumers.info(fx.streams.events.name, durable)).ack_floor.stream_seq;
  const advisoryStart = async (durable: string) => Date.parse((await fx.jsm.consumers.info(fx.streams.advisories.name, durable)).config.opt_start_time!);

  /** A consumer made by hand that holds events 1–6 delivered, 1–4 acked. */
  const handMade: [string, string[], (durable: string, filter: string, seqs: number[]) => Promise<ConsumerInfo>][] = [
    [
      'an AckAll pull consumer',
      ['ack_policy'],
      async (durable, filter, seqs) => {
        const info = await fx.jsm.consumers.add(fx.streams.events.name, { durable_name: durable, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All, filter_subject: filter });
        const msgs = await pull(durable, 6);
        expect(msgs.map((m) => m.seq)).toEqual(seqs.slice(0, 6));
        await msgs[3]!.ackAck(); // AckAll: acks 1–4
        return info;
      },
    ],
    [
      'a push consumer',
      ['deliver_subject'],
      async (durable, filter, seqs) => {
        const inbox = createInbox();
        const sub = fx.nc.subscribe(inbox, { max: 6 });
        const info = await fx.jsm.consumers.add(fx.streams.events.name, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_subject: inbox, filter_subject: filter, max_ack_pending: 6 });
        let i = 0;
        for await (const m of sub) if (i++ < 4) m.respond('+ACK');
        await eventually(async () => (await ackFloor(durable)) === seqs[3], 5000, 'acks of 1–4');
        return info;
      },
    ],
  ];

  it.each(handMade)('re-creates %s from its ack floor: nothing skipped, nothing acked delivered again', async (_, immutable, makeByHand) => {
    const { integration, durable, seqs, filter } = await withEvents('hand');
    const old = await makeByHand(durable, filter, seqs);
    const desired = integrationConsumerConfig(fx.streams, normalizeIntegration(integration));
    expect(immutableConsumerChanges((await fx.jsm.consumers.info(fx.streams.events.name, durable)).config, desired)).toEqual(immutable);

    const result = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(result).toMatchObject({ action: 'recreated', changed: expect.arrayContaining([...immutable, 'ack_wait', 'backoff', 'max_deliver']) });
    expect(result.changed![0]).toBe(immutable[0]);
    expect(result.info.config).toMatchObject({ ack_policy: 'explicit', deliver_policy: 'by_start_sequence', opt_start_seq: seqs[4], backoff: desired.backoff });
    expect(result.info.config.deliver_subject).toBeUndefined();
    expect(result.info.num_pending).toBe(6);
    // Created from scratch by hand, so there was no advisory consumer: it starts at the replaced one's creation.
    expect(await advisoryStart(durable)).toBe(Date.parse(old.created));
    expect(await ensureIntegrationConsumer(fx.jsm, fx.streams, integration)).toMatchObject({ action: 'unchanged' });

    const first = await next(durable);
    expect([first?.seq, first?.info.deliveryCount, first?.json<{ messageId: string }>().messageId]).toEqual([seqs[4], 1, 'hand-5']);
  });

  it('re-creates it when the server refuses the update (replaced after we read it), once', async () => {
    const { integration, durable, seqs, filter } = await withEvents('race');
    const first = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    // Another process replaces it with an AckAll consumer (5 delivered, 1–4 acked) after our read.
    await fx.jsm.consumers.delete(fx.streams.events.name, durable);
    await fx.jsm.consumers.add(fx.streams.events.name, { durable_name: durable, ack_policy: AckPolicy.All, filter_subject: filter });
    const msgs = await pull(durable, 5);
    await msgs[3]!.ackAck();
    integration.spec.delivery.retrySchedule = ['1s', '2s'];
    const { jsm, calls } = staleFirstInfo(fx.jsm, first.info);

    const result = await ensureIntegrationConsumer(jsm, fx.streams, integration);
    expect(result).toMatchObject({ action: 'recreated', changed: ['ack_policy', 'max_deliver', 'backoff'] });
    expect(calls.update).toBe(1);
    expect(result.info.config).toMatchObject({ ack_policy: 'explicit', opt_start_seq: seqs[4], max_deliver: 3, backoff: [8_000_000_000, 9_000_000_000] });
    // The advisory consumer existed: it keeps starting at the first consumer's creation.
    expect(await advisoryStart(durable)).toBe(Date.parse(first.info.created));
    expect((await next(durable))?.seq).toBe(seqs[4]);
  });

  it('re-creates a consumer that never delivered anything where it would have started', async () => {
    // deliver `new`, created after 3 events: the 2 stored later wait for it and must not be skipped.
    const { integration, durable, filter } = await withEvents('fresh', 3);
    await fx.jsm.consumers.add(fx.streams.events.name, { durable_name: durable, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.New, filter_subject: filter });
    const later = await publishEvents(fx.nc, fx.streams, integration.spec.sourceRefs[0]!.name, [trackEvent('fresh-4'), trackEvent('fresh-5')]);
    expect((await ensureIntegrationConsumer(fx.jsm, fx.streams, integration)).info.config).toMatchObject({ deliver_policy: 'by_start_sequence', opt_start_seq: later[0] });
    expect((await next(durable))?.seq).toBe(later[0]);

    // A backfill (startAt) not begun yet keeps its start.
    const backfill = await withEvents('backfill', 3);
    backfill.integration.spec.delivery.startAt = '2020-01-01T00:00:00Z';
    await fx.jsm.consumers.add(fx.streams.events.name, { durable_name: backfill.durable, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.New, filter_subject: backfill.filter });
    const result = await ensureIntegrationConsumer(fx.jsm, fx.streams, backfill.integration);
    expect(result).toMatchObject({ action: 'recreated', info: { config: { deliver_policy: 'by_start_time', opt_start_time: '2020-01-01T00:00:00Z' } } });
    expect((await next(backfill.durable))?.seq).toBe(backfill.seqs[0]);
  });

  it('reads the live consumer and its backlog, and creates it again when deleted by hand', async () => {
    const { integration, durable, seqs } = await withEvents('backlog', 3);
    expect(await integrationConsumerInfo(fx.jsm, fx.streams, integration)).toBeUndefined();
    integration.spec.delivery.startAt = '2020-01-01T00:00:00Z';
    expect((await ensureIntegrationConsumer(fx.jsm, fx.streams, integration)).action).toBe('created');
    await pull(durable, 1); // in flight: still waiting for delivery
    const info = await integrationConsumerInfo(fx.jsm, fx.streams, integration);
    expect(info).toMatchObject({ name: durable, num_pending: 2, num_ack_pending: 1 });
    expect(consumerBacklog(info!)).toBe(seqs.length);

    await fx.jsm.consumers.delete(fx.streams.events.name, durable);
    expect(await integrationConsumerInfo(fx.jsm, fx.streams, integration)).toBeUndefined();
    const again = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(again).toEqual({ info: expect.objectContaining({ name: durable }), action: 'created' });
    expect(consumerBacklog(again.info)).toBe(seqs.length);
  });

  it('resumes a lost consumer after the last observed ack floor, not at new events', async () => {
    const { integration, durable, seqs } = await withEvents('lost', 6);
    integration.spec.delivery.startAt = '2020-01-01T00:00:00Z';
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const msgs = await pull(durable, 3);
    for (const m of msgs) await m.ackAck();
    const floor = (await integrationConsumerInfo(fx.jsm, fx.streams, integration))!.ack_floor.stream_seq;
    expect(floor).toBe(seqs[2]);
    // Lost (deleted by hand); events keep arriving meanwhile.
    await fx.jsm.consumers.delete(fx.streams.events.name, durable);
    await publishEvents(fx.nc, fx.streams, integration.spec.sourceRefs[0]!.name, [trackEvent('lost-7')]);
    const created = (await fx.jsm.streams.info(fx.streams.events.name)).created;
    const result = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration, undefined, { resumeAfter: { ackFloor: floor, streamCreated: created } });
    expect(result).toMatchObject({ action: 'created', resumedAt: seqs[3], info: { config: { deliver_policy: 'by_start_sequence', opt_start_seq: seqs[3] } } });
    expect(consumerBacklog(result.info)).toBe(4);
    expect((await next(durable))?.json<{ messageId: string }>().messageId).toBe('lost-4');
    // An existing consumer ignores resumeAfter.
    expect((await ensureIntegrationConsumer(fx.jsm, fx.streams, integration, undefined, { resumeAfter: { ackFloor: 1 } })).action).toBe('unchanged');
  });

  it('resumes from the first stored event when the stream is not the one the ack floor counts in', async () => {
    // Beyond the stream's last sequence: it was re-created.
    const { integration, durable } = await withEvents('reset', 2);
    const result = await ensureIntegrationConsumer(fx.jsm, fx.streams, integration, undefined, { resumeAfter: { ackFloor: 1_000_000_000 } });
    expect(result.info.config.deliver_policy).toBe('all');
    expect((await next(durable))?.json<{ messageId: string }>().messageId).toBe('reset-1');
    // Below the last sequence, but recorded on a stream created at another time: re-created too.
    const other = await withEvents('recreated', 2);
    const again = await ensureIntegrationConsumer(fx.jsm, fx.streams, other.integration, undefined, { resumeAfter: { ackFloor: 1, streamCreated: '2001-01-01T00:00:00Z' } });
    expect(again.info.config.deliver_policy).toBe('all');
    expect((await next(other.durable))?.json<{ messageId: string }>().messageId).toBe('recreated-1');
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

/**
 * `jsm` whose first `consumers.info` answers `stale`, as if another process replaced the consumer
 * right after we read it; `calls.update` counts update requests.
 */
function staleFirstInfo(jsm: JetStreamManager, stale: ConsumerInfo): { jsm: JetStreamManager; calls: { update: number } } {
  const calls = { update: 0 };
  let served = false;
  const consumers = new Proxy(jsm.consumers, {
    get(target, prop) {
      if (prop === 'info' && !served) {
        served = true;
        return async () => structuredClone(stale);
      }
      if (prop === 'update') calls.update++;
      const value: unknown = Reflect.get(target, prop, target);
      // The client's own calls (update reads the info again) go to the real object.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { jsm: new Proxy(jsm, { get: (target, prop) => (prop === 'consumers' ? consumers : Reflect.get(target, prop, target)) }), calls };
}
