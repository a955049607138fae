import { AckPolicy, jetstream } from '@nats-io/jetstream';
import type { Integration } from '../api/index.js';
import { ErrorCodes } from '../errors.js';
import { silentLogger } from '../logger.js';
import { consumerName, deadLetterSubject, integrationReplayFilter, messageDedupId, replaySubject } from '../nats/subjects.js';
import { publishEvents, testIntegration, testMapping, trackEvent, uid } from '../test-support/forwarder-fixtures.js';
import { eventually, startTestReceiver, type TestReceiver } from '../test-support/http-receiver.js';
import { useNatsFixture } from '../test-support/nats.js';
import { ensureIntegrationConsumer } from './consumer.js';
import { DeadLetterPublisher, type DeadLetter } from './dead-letter.js';
import { getDeadLetter, listDeadLetters, replayDeadLetters, replayFailed, REPLAY_OF_HEADER, type IntegrationRef } from './dead-letters.js';
import { startForwarder, type DeliveryRecord } from './forwarder.js';

const { fx, cleanups } = useNatsFixture();

interface Pair {
  source: string;
  a: { ref: IntegrationRef; receiver: TestReceiver; records: DeliveryRecord[] };
  b: { ref: IntegrationRef; receiver: TestReceiver; records: DeliveryRecord[] };
  /** While true, A's receiver answers 400. */
  broken: { a: boolean };
  publish(ids: string[]): Promise<number[]>;
}

/** Two Integrations A and B on one fresh Source, each with its receiver and running forwarder; A's receiver refuses (400) while `broken.a`. */
async function pair(): Promise<Pair> {
  const source = `src-${uid()}`;
  const broken = { a: true };
  const start = async (name: string, respond?: () => { status: number; body: string } | undefined) => {
    const receiver = await startTestReceiver(respond ? { respond } : {});
    cleanups.push(() => receiver.close());
    const integration: Integration = testIntegration(name, { url: `${receiver.url}/hook`, sources: [source], delivery: { retrySchedule: [] } });
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const records: DeliveryRecord[] = [];
    const forwarder = await startForwarder({ nc: fx.nc, streams: fx.streams, config: { integration, mapping: testMapping(), credentials: {} }, logger: silentLogger, onDelivery: (d) => records.push(d) });
    cleanups.push(() => forwarder.stop());
    return { ref: { namespace: 'default', name }, receiver, records };
  };
  const a = await start(`a-${uid()}`, () => (broken.a ? { status: 400, body: '{"error":"unknown field props"}' } : undefined));
  const b = await start(`b-${uid()}`);
  return { source, a, b, broken, publish: (ids) => publishEvents(fx.nc, fx.streams, source, ids.map((id) => trackEvent(id))) };
}

const messageIds = (r: TestReceiver) => r.requests.map((q) => q.body?.messageId as string);

/** Publishes a marker event and waits until both receivers have it: whatever either would get before it has arrived by then. */
async function settle(p: Pair, marker: string): Promise<void> {
  p.broken.a = false;
  await p.publish([marker]);
  await p.a.receiver.waitFor((r) => r.some((q) => q.body?.messageId === marker));
  await p.b.receiver.waitFor((r) => r.some((q) => q.body?.messageId === marker));
}

describe('dead-letter inspection and replay', () => {
  it('lists a refused event, replays it to its Integration alone once fixed, with the same messageId, and deletes the letter', async () => {
    const p = await pair();
    const [original] = await p.publish(['order-1']);
    await p.b.receiver.waitFor((r) => r.length === 1);
    await eventually(async () => (await listDeadLetters(fx.jsm, fx.streams, p.a.ref)).length === 1, 10_000, "A's dead letter");

    const [listed] = await listDeadLetters(fx.jsm, fx.streams, p.a.ref);
    expect(listed).toMatchObject({
      subject: deadLetterSubject(fx.streams.subjectPrefix, 'default', p.a.ref.name),
      headers: { 'Sy-Reason': 'permanent_failure', 'Sy-Integration': `default/${p.a.ref.name}`, 'Nats-Msg-Id': `${consumerName('default', p.a.ref.name)}:${original}` },
      letter: { reason: 'permanent_failure', status: 400, attempts: 1, streamSeq: original, source: `default/${p.source}`, event: { messageId: 'order-1', type: 'track' } },
    });
    expect(listed!.letter.error).toContain('unknown field props');
    expect(Date.parse(listed!.storedAt)).not.toBeNaN();
    expect(await getDeadLetter(fx.jsm, fx.streams, p.a.ref, listed!.seq)).toEqual(listed);
    // B delivered it: B has no dead letter, and A's letter is not B's.
    expect(await listDeadLetters(fx.jsm, fx.streams, p.b.ref)).toEqual([]);
    expect(await getDeadLetter(fx.jsm, fx.streams, p.b.ref, listed!.seq)).toBeUndefined();

    p.broken.a = false;
    // Still inside the events stream's duplicate window: the ingestion's id of order-1 is swallowed…
    const again = await jetstream(fx.nc).publish(`${fx.streams.subjectPrefix}.events.default.${p.source}.track`, JSON.stringify(trackEvent('order-1')), { msgID: messageDedupId('default', p.source, 'order-1') });
    expect(again.duplicate).toBe(true);
    // …while the replay is stored and delivered.
    const [result] = await replayDeadLetters(fx.jsm, fx.streams, p.a.ref, { seqs: [listed!.seq] });
    expect(result).toEqual({
      seq: listed!.seq,
      outcome: 'replayed',
      reason: 'permanent_failure',
      messageId: 'order-1',
      subject: replaySubject(fx.streams.subjectPrefix, 'default', p.a.ref.name, p.source, 'track'),
      replaySeq: expect.any(Number),
      deleted: true,
    });
    expect(replayFailed(result!)).toBe(false);
    const stored = await fx.jsm.streams.getMessage(fx.streams.events.name, { seq: result!.replaySeq! });
    expect(stored!.json()).toEqual(trackEvent('order-1'));
    expect([stored!.header.get('Sy-Source'), stored!.header.get(REPLAY_OF_HEADER), stored!.header.get('Nats-Msg-Id')]).toEqual([`default/${p.source}`, String(listed!.seq), `replay:default/${p.a.ref.name}/${listed!.seq}`]);

    await settle(p, 'marker-1');
    expect(messageIds(p.a.receiver)).toEqual(['order-1', 'order-1', 'marker-1']);
    expect(p.a.receiver.requests[1]!.body).toEqual(p.b.receiver.requests[0]!.body);
    expect(messageIds(p.b.receiver)).toEqual(['order-1', 'marker-1']);
    expect(p.a.records.find((r) => r.streamSeq === result!.replaySeq)).toMatchObject({ outcome: 'delivered', messageId: 'order-1', source: `default/${p.source}`, type: 'track' });
    expect(await listDeadLetters(fx.jsm, fx.streams, p.a.ref)).toEqual([]);
  });

  it('keeps the letter with keep, and a letter replayed twice within the window is delivered once', async () => {
    const p = await pair();
    await p.publish(['order-2']);
    await eventually(async () => (await listDeadLetters(fx.jsm, fx.streams, p.a.ref)).length === 1, 10_000, "A's dead letter");
    const { seq } = (await listDeadLetters(fx.jsm, fx.streams, p.a.ref))[0]!;
    p.broken.a = false;

    const [first] = await replayDeadLetters(fx.jsm, fx.streams, p.a.ref, { seqs: [seq], keep: true });
    expect(first).toMatchObject({ outcome: 'replayed', deleted: false });
    expect(first!.error).toBeUndefined();
    expect((await listDeadLetters(fx.jsm, fx.streams, p.a.ref)).map((d) => d.seq)).toEqual([seq]);

    const [second] = await replayDeadLetters(fx.jsm, fx.streams, p.a.ref, { seqs: [seq, seq], keep: true });
    expect(second).toMatchObject({ outcome: 'duplicate', replaySeq: first!.replaySeq, deleted: false });
    expect(replayFailed(second!)).toBe(false);

    // Without keep, a duplicate still removes the letter: it was replayed.
    const third = await replayDeadLetters(fx.jsm, fx.streams, p.a.ref, { seqs: [seq] });
    expect(third).toEqual([expect.objectContaining({ outcome: 'duplicate', deleted: true })]);
    expect(await listDeadLetters(fx.jsm, fx.streams, p.a.ref)).toEqual([]);

    await settle(p, 'marker-2');
    expect(messageIds(p.a.receiver)).toEqual(['order-2', 'order-2', 'marker-2']);
    expect(messageIds(p.b.receiver)).toEqual(['order-2', 'marker-2']);
    // Gone now: a later replay of it finds nothing.
    expect(await replayDeadLetters(fx.jsm, fx.streams, p.a.ref, { seqs: [seq] })).toEqual([{ seq, outcome: 'not_found', error: expect.stringContaining(`at sequence ${seq}`), deleted: false }]);
  });
});

describe('selecting and refusing', () => {
  /** Stores dead letters for an Integration (no forwarder), returning their dead-letter sequences. */
  async function store(ref: IntegrationRef, letters: Partial<DeadLetter>[]): Promise<number[]> {
    const publisher = new DeadLetterPublisher(fx.nc, fx.streams, consumerName(ref.namespace, ref.name));
    const seqs = [];
    for (const [i, l] of letters.entries()) {
      const letter: DeadLetter = {
        integration: ref,
        reason: 'permanent_failure',
        status: 400,
        attempts: 1,
        failedAt: new Date().toISOString(),
        streamSeq: 1000 + i,
        subject: `${fx.streams.subjectPrefix}.events.default.web.track`,
        source: 'default/web',
        event: trackEvent(`${ref.name}-${i}`),
        ...l,
      };
      seqs.push((await publisher.publish(letter)).seq);
    }
    return seqs;
  }

  it('filters by reason, since and limit, oldest first, and only the Integration’s own letters', async () => {
    const ref = { namespace: 'default', name: `f-${uid()}` };
    const other = { namespace: 'default', name: `g-${uid()}` };
    const [s0, s1] = await store(ref, [{}, { reason: 'retries_exhausted', status: 503 }]);
    const [o0] = await store(other, [{}]);
    // `since` compares stored times in milliseconds: start the next letters on a later one.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const [s2, s3] = await store(ref, [{ reason: 'mapping_failed', streamSeq: 2000 }, { streamSeq: 2001 }]);

    const all = await listDeadLetters(fx.jsm, fx.streams, ref);
    expect(all.map((d) => d.seq)).toEqual([s0, s1, s2, s3]);
    expect((await listDeadLetters(fx.jsm, fx.streams, ref, { reason: 'permanent_failure' })).map((d) => d.seq)).toEqual([s0, s3]);
    expect((await listDeadLetters(fx.jsm, fx.streams, ref, { limit: 2 })).map((d) => d.seq)).toEqual([s0, s1]);
    expect((await listDeadLetters(fx.jsm, fx.streams, ref, { reason: 'permanent_failure', limit: 1 })).map((d) => d.seq)).toEqual([s0]);
    expect((await listDeadLetters(fx.jsm, fx.streams, ref, { since: new Date(all[2]!.storedAt) })).map((d) => d.seq)).toEqual([s2, s3]);
    expect(await listDeadLetters(fx.jsm, fx.streams, ref, { since: new Date(Date.parse(all[3]!.storedAt) + 1) })).toEqual([]);
    expect(await getDeadLetter(fx.jsm, fx.streams, ref, o0!)).toBeUndefined();
    expect(await getDeadLetter(fx.jsm, fx.streams, ref, 10_000_000)).toBeUndefined();
    expect((await listDeadLetters(fx.jsm, fx.streams, other)).map((d) => d.seq)).toEqual([o0]);
  });

  it('reports letters without an event and unknown sequences, replays the rest, and a dry run publishes nothing', async () => {
    const source = `src-${uid()}`;
    const integration = testIntegration(`r-${uid()}`, { url: 'http://127.0.0.1:9/hook', sources: [source] });
    const ref = { namespace: 'default', name: integration.metadata.name };
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const [gone, raw, good] = await store(ref, [
      { reason: 'max_deliver_exceeded', event: null, subject: '', attempts: 3, error: 'JetStream gave up on the event, and it is no longer in the events stream' },
      { reason: 'invalid_event', event: 'not json{' },
      // No source field: taken from the event subject.
      { source: undefined, subject: `${fx.streams.subjectPrefix}.events.default.${source}.track` },
    ]);

    const before = (await fx.jsm.streams.info(fx.streams.events.name)).state.last_seq;
    const dry = await replayDeadLetters(fx.jsm, fx.streams, ref, { dryRun: true });
    expect(dry.map((r) => [r.seq, r.outcome])).toEqual([[gone, 'no_event'], [raw, 'no_event'], [good, 'dry_run']]);
    expect(dry[2]!.subject).toBe(replaySubject(fx.streams.subjectPrefix, 'default', ref.name, source, 'track'));
    expect((await fx.jsm.streams.info(fx.streams.events.name)).state.last_seq).toBe(before);
    expect((await listDeadLetters(fx.jsm, fx.streams, ref)).length).toBe(3);

    const results = await replayDeadLetters(fx.jsm, fx.streams, ref, { seqs: [gone!, 999_999, good!] });
    expect(results).toEqual([
      { seq: gone, outcome: 'no_event', reason: 'max_deliver_exceeded', error: expect.stringMatching(/no event to replay: the event was no longer in the events stream/), deleted: false },
      { seq: 999_999, outcome: 'not_found', error: expect.any(String), deleted: false },
      expect.objectContaining({ seq: good, outcome: 'replayed', deleted: true }),
    ]);
    expect(results.map(replayFailed)).toEqual([true, true, false]);
    // The letters not replayed stay.
    expect((await listDeadLetters(fx.jsm, fx.streams, ref)).map((d) => d.seq)).toEqual([gone, raw]);
    const consumer = await jetstream(fx.nc).consumers.get(fx.streams.events.name, consumerName('default', ref.name));
    const msg = await consumer.next({ expires: 2000 });
    expect([msg?.subject, msg?.headers?.get('Sy-Source')]).toEqual([replaySubject(fx.streams.subjectPrefix, 'default', ref.name, source, 'track'), `default/${source}`]);
  });

  it('refuses to replay when nothing would take the replay, and keeps the letters', async () => {
    const source = `src-${uid()}`;
    const integration = testIntegration(`n-${uid()}`, { url: 'http://127.0.0.1:9/hook', sources: [source] });
    const ref = { namespace: 'default', name: integration.metadata.name };
    const [seq] = await store(ref, [{ source: `default/${source}` }]);
    // No consumer at all.
    await expect(replayDeadLetters(fx.jsm, fx.streams, ref, { seqs: [seq!] })).rejects.toMatchObject({ code: ErrorCodes.MISSING_REFERENCE, message: expect.stringContaining('no consumer') });
    // A consumer made before replays existed: its events filter only.
    await fx.jsm.consumers.add(fx.streams.events.name, { durable_name: consumerName('default', ref.name), ack_policy: AckPolicy.Explicit, filter_subject: `${fx.streams.subjectPrefix}.events.default.${source}.*` });
    await expect(replayDeadLetters(fx.jsm, fx.streams, ref)).rejects.toMatchObject({
      code: ErrorCodes.MISSING_REFERENCE,
      message: expect.stringContaining(`${integrationReplayFilter(fx.streams.subjectPrefix, 'default', ref.name)} missing`),
    });
    expect((await listDeadLetters(fx.jsm, fx.streams, ref)).map((d) => d.seq)).toEqual([seq]);
    // Brought up to date, it takes them.
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    expect(await replayDeadLetters(fx.jsm, fx.streams, ref)).toEqual([expect.objectContaining({ seq, outcome: 'replayed', deleted: true })]);
  });
});
