import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { ErrorCodes } from '../errors.js';
import type { Integration, MappingSpec } from '../api/index.js';
import { silentLogger } from '../logger.js';
import { consumerName, deadLetterSubject } from '../nats/subjects.js';
import { publishEvents, readDeadLetters, testIntegration, testMapping, trackEvent, uid } from '../test-support/forwarder-fixtures.js';
import { eventually, startTestReceiver, type Responder, type TestReceiver } from '../test-support/http-receiver.js';
import { useNatsFixture } from '../test-support/nats.js';
import { USER_AGENT } from '../destinations/index.js';
import { ensureIntegrationConsumer } from './consumer.js';
import { compileMapping } from '../mapping/index.js';
import { MAX_RETRY_AFTER_MS, describeViolations, retryDelayMs, startForwarder, type DeliveryRecord, type Forwarder } from './forwarder.js';

const { fx, cleanups } = useNatsFixture();

async function metric(registry: Registry, name: string, labels: Record<string, string>, sample = name): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  return data.values
    .filter((v) => (v as { metricName?: string }).metricName === undefined || (v as { metricName?: string }).metricName === sample)
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

interface Setup {
  source: string;
  integration: Integration;
  receiver: TestReceiver;
  forwarder: Forwarder;
  records: DeliveryRecord[];
  registry: Registry;
  label: string;
  publish(events: Record<string, unknown>[], headers?: Record<string, string>): Promise<number[]>;
}

/** A receiver, an Integration on a fresh source, its consumers and (unless `start: false`) its forwarder. */
async function setup(
  options: {
    respond?: Responder;
    delivery?: Partial<Integration['spec']['delivery']>;
    events?: Partial<Integration['spec']['events']>;
    mapping?: MappingSpec;
    credentials?: Record<string, string>;
    headers?: Record<string, string>;
    before?: (s: Omit<Setup, 'forwarder'>) => Promise<void>;
    paused?: boolean;
    receiver?: TestReceiver;
    consent?: string[];
    payloadSchema?: object;
    logger?: Logger;
  } = {},
): Promise<Setup> {
  const source = `src-${uid()}`;
  const receiver = options.receiver ?? (await startTestReceiver(options.respond ? { respond: options.respond } : {}));
  if (!options.receiver) cleanups.push(() => receiver.close());
  const name = `int-${uid()}`;
  const integration = testIntegration(name, {
    url: `${receiver.url}/hook`,
    sources: [source],
    ...(options.delivery ? { delivery: options.delivery } : {}),
    ...(options.events ? { events: options.events } : {}),
    ...(options.headers ? { headers: options.headers } : {}),
    ...(options.paused ? { paused: true } : {}),
    ...(options.consent ? { consent: options.consent } : {}),
    ...(options.payloadSchema ? { payloadSchema: options.payloadSchema } : {}),
  });
  await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
  const registry = new Registry();
  const records: DeliveryRecord[] = [];
  const partial = { source, integration, receiver, records, registry, label: `default/${name}`, publish: (events: Record<string, unknown>[], headers?: Record<string, string>) => publishEvents(fx.nc, fx.streams, source, events, 'default', headers) };
  await options.before?.(partial);
  const forwarder = await startForwarder({
    nc: fx.nc,
    streams: fx.streams,
    config: { integration, mapping: testMapping(options.mapping), credentials: options.credentials ?? {} },
    logger: options.logger ?? silentLogger,
    registry,
    lagIntervalMs: 100,
    onDelivery: (d) => records.push(d),
  });
  cleanups.push(() => forwarder.stop());
  return { ...partial, forwarder };
}

const ids = (n: number, prefix = 'm') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const payload = (id: string, props: Record<string, unknown> = {}) => ({ event: 'Order Completed', messageId: id, type: 'track', props });

describe('retryDelayMs', () => {
  it.each<[number[], number, number | undefined, number]>([
    [[200, 500], 1, undefined, 200],
    [[200, 500], 2, undefined, 500],
    [[200, 500], 2, 100, 500],
    [[200, 500], 1, 1000, 1000],
    [[200], 1, 10 * MAX_RETRY_AFTER_MS, MAX_RETRY_AFTER_MS],
    [[0], 1, undefined, 100],
    [[0], 1, 0, 100],
    [[200, 500], 7, undefined, 500],
  ])('schedule %j, attempt %i, Retry-After %j → %i ms', (schedule, attempt, retryAfter, expected) => {
    expect(retryDelayMs(schedule, attempt, retryAfter)).toBe(expected);
  });
});

describe('delivery', () => {
  it('delivers each mapped event as its own request with batchSize 1, with settings and secret headers', async () => {
    const s = await setup({ credentials: { Authorization: 'Bearer s3cret' }, headers: { 'X-Team': 'growth' } });
    const messageIds = ids(3);
    await s.publish(messageIds.map((id, i) => trackEvent(id, 'Order Completed', { n: i, zero: 0, empty: '' })));
    await s.receiver.waitFor((r) => r.length >= 3);
    const bodies = s.receiver.requests.map((r) => r.text).sort();
    expect(bodies).toEqual(messageIds.map((id, i) => JSON.stringify(payload(id, { n: i, zero: 0, empty: '' }))).sort());
    for (const r of s.receiver.requests) {
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/hook');
      expect(r.headers).toMatchObject({ authorization: 'Bearer s3cret', 'x-team': 'growth', 'content-type': 'application/json', 'user-agent': USER_AGENT });
    }
    await eventually(() => s.records.length === 3);
    expect(s.records.map((r) => r.outcome)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(s.records[0]).toMatchObject({ integration: s.label, source: `default/${s.source}`, status: 200, attempt: 1, name: 'Order Completed', type: 'track' });
    expect(s.forwarder.stats).toMatchObject({ delivered: 3, retried: 0, deadLettered: 0 });
    expect(await metric(s.registry, 'switchyard_deliveries_total', { integration: s.label, outcome: 'delivered' })).toBe(3);
    expect(await metric(s.registry, 'switchyard_delivery_attempt_duration_seconds', { integration: s.label }, 'switchyard_delivery_attempt_duration_seconds_count')).toBe(3);
    // Acked: nothing pending on the consumer, and the lag gauge follows.
    await eventually(async () => (await fx.jsm.consumers.info(fx.streams.events.name, consumerName('default', s.integration.metadata.name))).num_ack_pending === 0);
    await eventually(() => s.forwarder.stats.pending === 0);
    expect(await metric(s.registry, 'switchyard_consumer_pending', { integration: s.label })).toBe(0);
  });

  it('groups events into {"batch": [...]} requests of up to batchSize', async () => {
    const messageIds = ids(5);
    const s = await setup({
      delivery: { batchSize: 3, concurrency: 1 },
      // Published before the forwarder starts, so all five wait in the stream.
      before: async (p) => void (await p.publish(messageIds.map((id) => trackEvent(id)))),
    });
    await s.receiver.waitFor((r) => r.length >= 2);
    expect(s.receiver.requests.map((r) => r.text)).toEqual([
      JSON.stringify({ batch: messageIds.slice(0, 3).map((id) => payload(id)) }),
      JSON.stringify({ batch: messageIds.slice(3).map((id) => payload(id)) }),
    ]);
    await eventually(() => s.forwarder.stats.delivered === 5);
  });

  it('retries a 503 and delivers once the receiver answers 200', async () => {
    const seen = new Set<string>();
    const s = await setup({
      respond: (r) => {
        const id = r.body?.messageId as string;
        if (seen.has(id)) return undefined;
        seen.add(id);
        return { status: 503, body: 'busy' };
      },
    });
    await s.publish([trackEvent('r1'), trackEvent('r2')]);
    await eventually(() => s.forwarder.stats.delivered === 2);
    const byId = (id: string) => s.receiver.requests.filter((r) => r.body?.messageId === id).length;
    expect([byId('r1'), byId('r2')]).toEqual([2, 2]);
    const r1 = s.records.filter((r) => r.messageId === 'r1');
    expect(r1).toEqual([
      expect.objectContaining({ outcome: 'retried', status: 503, attempt: 1, retryInMs: 200, error: 'HTTP 503: busy' }),
      expect.objectContaining({ outcome: 'delivered', status: 200, attempt: 2 }),
    ]);
    expect(await metric(s.registry, 'switchyard_retries_total', { integration: s.label })).toBe(2);
    expect(await metric(s.registry, 'switchyard_deliveries_total', { integration: s.label, outcome: 'retried' })).toBe(2);
    expect((await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === s.integration.metadata.name)).toEqual([]);
  });

  it('honours a Retry-After longer than the retry schedule', async () => {
    let first = true;
    const s = await setup({
      delivery: { retrySchedule: ['200ms'] },
      respond: () => {
        if (!first) return undefined;
        first = false;
        return { status: 503, headers: { 'retry-after': '1' } };
      },
    });
    await s.publish([trackEvent('ra')]);
    await eventually(() => s.forwarder.stats.delivered === 1);
    const [a, b] = s.receiver.requests;
    expect(s.receiver.requests).toHaveLength(2);
    // The schedule alone would retry after 200 ms; Retry-After asked for 1 s.
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(950);
    expect(s.records[0]).toMatchObject({ outcome: 'retried', status: 503, retryInMs: 1000 });
  });

  it('holds throttled events for the Retry-After and sends them again without spending a retry', async () => {
    let throttles = 2;
    const lines: Record<string, unknown>[] = [];
    const s = await setup({
      delivery: { retrySchedule: ['200ms'] },
      respond: () => (throttles-- > 0 ? { status: 429, headers: { 'retry-after': '1' } } : undefined),
      logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
    });
    await s.publish([trackEvent('th')]);
    await eventually(() => s.forwarder.stats.delivered === 1, 10_000);
    const [a, b, c] = s.receiver.requests;
    expect(s.receiver.requests).toHaveLength(3);
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(950);
    expect(c!.at - b!.at).toBeGreaterThanOrEqual(950);
    // One schedule entry only, yet two throttled rounds did not exhaust it: still the first delivery.
    expect(s.records).toEqual([expect.objectContaining({ outcome: 'delivered', status: 200, attempt: 1 })]);
    expect(await metric(s.registry, 'switchyard_throttled_total', { integration: s.label })).toBe(2);
    expect(lines.filter((l) => l.msg === 'throttled by the destination; holding events until the pause ends')).toEqual([
      expect.objectContaining({ events: 1, messageIds: ['th'], status: 429, retryAfterMs: 1000 }),
      expect.objectContaining({ events: 1, messageIds: ['th'], status: 429, retryAfterMs: 1000 }),
    ]);
    expect(await metric(s.registry, 'switchyard_retries_total', { integration: s.label })).toBe(0);
  });

  it('opens the circuit on a dead destination: probes it instead of hammering it, and spends no retries meanwhile', async () => {
    let up = false;
    const s = await setup({
      delivery: { retrySchedule: ['100ms', '100ms', '100ms'], circuitBreaker: { failures: 2, halfOpenAfter: '500ms' } },
      respond: () => (up ? undefined : { status: 503, body: 'down' }),
    });
    await s.publish([trackEvent('cb')]);
    await s.receiver.waitFor((r) => r.length >= 4, 10_000);
    const at = s.receiver.requests.map((r) => r.at);
    // Two failures 100 ms apart open the circuit; from then on only one probe per 500 ms.
    for (let i = 2; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(450);
    expect(await metric(s.registry, 'switchyard_circuit_open', { integration: s.label })).toBe(1);
    up = true;
    await eventually(() => s.forwarder.stats.delivered === 1, 10_000);
    // Four and more requests with three retries would have exhausted the event; the probes spent none.
    expect(s.forwarder.stats.deadLettered).toBe(0);
    expect(s.records.map((r) => [r.outcome, r.attempt])).toEqual([
      ['retried', 1],
      ['delivered', 2],
    ]);
    expect(await metric(s.registry, 'switchyard_circuit_open', { integration: s.label })).toBe(0);
  });

  it('keeps the Integration under its rate limit', async () => {
    const s = await setup({ delivery: { batchSize: 10, rateLimit: { eventsPerSecond: 4 } } });
    await s.publish(ids(8, 'rl').map((id) => trackEvent(id)));
    await eventually(() => s.forwarder.stats.delivered === 8, 10_000);
    const at = s.receiver.requests.map((r) => r.at);
    const sizes = s.receiver.requests.map((r) => (r.body as { batch: unknown[] }).batch.length);
    // A send carries at most one window (4 events); the second window opens a second later.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(4);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(8);
    expect(at.at(-1)! - at[0]!).toBeGreaterThanOrEqual(900);
  });

  it("keeps the event's Sy-Consent-Missing header on its dead letter, so a replay keeps the Source's consent policy", async () => {
    const s = await setup({ respond: () => ({ status: 400 }) });
    await s.publish([trackEvent('consent-1')], { 'Sy-Consent-Missing': 'deny' });
    await eventually(() => s.forwarder.stats.deadLettered === 1);
    const subject = deadLetterSubject(fx.streams.subjectPrefix, 'default', s.integration.metadata.name);
    const stored = await fx.jsm.streams.getMessage(fx.streams.deadLetter.name, { last_by_subj: subject });
    expect(stored!.header.get('Sy-Consent-Missing')).toBe('deny');
    expect(stored!.header.get('Sy-Reason')).toBe('permanent_failure');
  });

  it('dead-letters a 400 at once, with reason and status, and does not retry it', async () => {
    const s = await setup({ respond: () => ({ status: 400, body: '{"error":"missing field"}' }) });
    const event = trackEvent('bad-1', 'Order Completed', { total: 3 });
    const [seq] = await s.publish([event]);
    await eventually(() => s.forwarder.stats.deadLettered === 1);
    const letters = (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === s.integration.metadata.name);
    expect(letters).toHaveLength(1);
    const consumer = consumerName('default', s.integration.metadata.name);
    expect(letters[0]).toEqual({
      subject: deadLetterSubject(fx.streams.subjectPrefix, 'default', s.integration.metadata.name),
      msgId: `${consumer}:${seq}`,
      reason: 'permanent_failure',
      letter: {
        integration: { namespace: 'default', name: s.integration.metadata.name },
        reason: 'permanent_failure',
        status: 400,
        error: 'HTTP 400: {"error":"missing field"}',
        attempts: 1,
        failedAt: expect.any(String),
        streamSeq: seq,
        subject: `${fx.streams.subjectPrefix}.events.default.${s.source}.track`,
        source: `default/${s.source}`,
        event,
      },
    });
    expect(Number.isNaN(Date.parse(letters[0]!.letter.failedAt))).toBe(false);
    // Terminated: not pending, never redelivered.
    const info = await fx.jsm.consumers.info(fx.streams.events.name, consumer);
    expect(info).toMatchObject({ num_ack_pending: 0, num_redelivered: 0, num_pending: 0 });
    expect(s.receiver.requests).toHaveLength(1);
    expect(await metric(s.registry, 'switchyard_dead_letters_total', { integration: s.label, reason: 'permanent_failure' })).toBe(1);
    expect(s.records).toEqual([expect.objectContaining({ outcome: 'dead_lettered', reason: 'permanent_failure', status: 400, attempt: 1 })]);
  });

  it('dead-letters an event still failing on its last attempt', async () => {
    const s = await setup({ delivery: { retrySchedule: ['100ms', '100ms'] }, respond: () => ({ status: 500 }) });
    const [seq] = await s.publish([trackEvent('ex-1')]);
    await eventually(() => s.forwarder.stats.deadLettered === 1);
    expect(s.receiver.requests).toHaveLength(3);
    expect(s.records.map((r) => `${r.outcome}@${r.attempt}`)).toEqual(['retried@1', 'retried@2', 'dead_lettered@3']);
    const [letter] = (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === s.integration.metadata.name);
    expect(letter!.letter).toMatchObject({ reason: 'retries_exhausted', status: 500, attempts: 3, streamSeq: seq });
    const info = await fx.jsm.consumers.info(fx.streams.events.name, consumerName('default', s.integration.metadata.name));
    expect(info.num_ack_pending).toBe(0);
  });

  it('stamps dead letters with the injected clock', async () => {
    const receiver = await startTestReceiver({ respond: () => ({ status: 404 }) });
    cleanups.push(() => receiver.close());
    const source = `src-${uid()}`;
    const integration = testIntegration(`clk-${uid()}`, { url: receiver.url, sources: [source] });
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const forwarder = await startForwarder({
      nc: fx.nc,
      streams: fx.streams,
      config: { integration, mapping: testMapping(), credentials: {} },
      clock: { now: () => Date.parse('2030-01-02T03:04:05.678Z') },
      logger: silentLogger,
    });
    cleanups.push(() => forwarder.stop());
    await publishEvents(fx.nc, fx.streams, source, [trackEvent('clk')]);
    await eventually(() => forwarder.stats.deadLettered === 1);
    const [letter] = (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === integration.metadata.name);
    expect(letter!.letter).toMatchObject({ failedAt: '2030-01-02T03:04:05.678Z', status: 404, reason: 'permanent_failure' });
  });
});

describe('filtering', () => {
  it('skips track events whose name is not in events.names, but not other types', async () => {
    const s = await setup({ events: { names: ['Order Completed'] } });
    await s.publish([trackEvent('keep'), trackEvent('skip', 'Cart Viewed'), { type: 'page', name: 'Home', messageId: 'pg' }, trackEvent('keep2')]);
    await eventually(() => s.records.length === 4);
    expect(s.receiver.requests.map((r) => r.body.messageId).sort()).toEqual(['keep', 'keep2', 'pg']);
    expect(s.records.find((r) => r.messageId === 'skip')).toMatchObject({ outcome: 'skipped', reason: 'event_name' });
    expect(s.forwarder.stats).toMatchObject({ delivered: 3, skipped: 1 });
    expect(await metric(s.registry, 'switchyard_deliveries_total', { integration: s.label, outcome: 'skipped' })).toBe(1);
  });

  it('takes only the event types of events.types', async () => {
    const s = await setup({ events: { types: ['identify'] } });
    await s.publish([trackEvent('t1'), { type: 'identify', userId: 'u', messageId: 'id1' }]);
    await s.receiver.waitFor((r) => r.length >= 1);
    await eventually(() => s.forwarder.stats.delivered === 1);
    expect(s.receiver.requests.map((r) => r.body.messageId)).toEqual(['id1']);
    // The track event is not even offered to the consumer.
    const info = await fx.jsm.consumers.info(fx.streams.events.name, consumerName('default', s.integration.metadata.name));
    expect(info).toMatchObject({ num_pending: 0, num_ack_pending: 0, delivered: { consumer_seq: 1 } });
  });

  it('acks and counts events the mapping drops', async () => {
    const s = await setup({ mapping: { eventSpecific: { 'Order Completed': { fields: [{ to: 'id', from: 'messageId' }] } } } });
    await s.publish([trackEvent('x1', 'Other'), trackEvent('x2')]);
    await eventually(() => s.records.length === 2);
    expect(s.receiver.requests.map((r) => r.text)).toEqual(['{"id":"x2"}']);
    expect(s.records.find((r) => r.messageId === 'x1')).toMatchObject({ outcome: 'dropped', reason: 'no_matching_rule' });
    expect(await metric(s.registry, 'switchyard_deliveries_total', { integration: s.label, outcome: 'dropped' })).toBe(1);
    await eventually(async () => (await fx.jsm.consumers.info(fx.streams.events.name, consumerName('default', s.integration.metadata.name))).num_ack_pending === 0);
  });

  it('skips events failing events.where, counted by reason', async () => {
    const s = await setup({ events: { where: [{ path: 'properties.revenue', gt: 0 }, { path: 'context.userAgent', notIn: ['bot'] }] } });
    await s.publish([trackEvent('big', 'Order Completed', { revenue: 10 }), trackEvent('zero', 'Order Completed', { revenue: 0 }), trackEvent('none')]);
    await eventually(() => s.records.length === 3);
    expect(s.receiver.requests.map((r) => r.body.messageId)).toEqual(['big']);
    expect(s.records.filter((r) => r.outcome === 'skipped').map((r) => [r.messageId, r.reason]).sort()).toEqual([
      ['none', 'event_filter'],
      ['zero', 'event_filter'],
    ]);
    expect(await metric(s.registry, 'switchyard_events_not_delivered_total', { integration: s.label, reason: 'event_filter' })).toBe(2);
  });

  it('skips events that opt out of a needed consent category, and those without a preference from a deny Source', async () => {
    const s = await setup({ consent: ['Advertising'] });
    const withConsent = (id: string, prefs: Record<string, unknown> | undefined) => ({ ...trackEvent(id), ...(prefs ? { context: { consent: { categoryPreferences: prefs } } } : {}) });
    await s.publish([withConsent('yes', { Advertising: true, Analytics: false }), withConsent('no', { Advertising: false }), withConsent('silent-allow', undefined)]);
    await s.publish([withConsent('silent-deny', { Analytics: true }), withConsent('yes-deny', { Advertising: true })], { 'Sy-Consent-Missing': 'deny' });
    await eventually(() => s.records.length === 5);
    expect(s.receiver.requests.map((r) => r.body.messageId).sort()).toEqual(['silent-allow', 'yes', 'yes-deny']);
    expect(s.records.filter((r) => r.outcome === 'skipped').map((r) => [r.messageId, r.reason]).sort()).toEqual([
      ['no', 'consent_denied'],
      ['silent-deny', 'consent_denied'],
    ]);
    expect(await metric(s.registry, 'switchyard_events_not_delivered_total', { integration: s.label, reason: 'consent_denied' })).toBe(2);
  });

  it('counts events dropped by a Mapping drop condition as filtered', async () => {
    const s = await setup({ mapping: { drop: [{ path: 'properties.test', equals: true }], default: { fields: [{ to: 'id', from: 'messageId' }] } } });
    await s.publish([trackEvent('t', 'Order Completed', { test: true }), trackEvent('real')]);
    await eventually(() => s.records.length === 2);
    expect(s.receiver.requests.map((r) => r.text)).toEqual(['{"id":"real"}']);
    expect(s.records.find((r) => r.messageId === 't')).toMatchObject({ outcome: 'dropped', reason: 'filtered' });
    expect(await metric(s.registry, 'switchyard_events_not_delivered_total', { integration: s.label, reason: 'filtered' })).toBe(1);
  });

  it('dead-letters an event the Mapping fails on, naming the rule and field, and delivers the rest of its batch', async () => {
    const s = await setup({ delivery: { batchSize: 10 }, mapping: { default: { fields: [{ to: 'id', from: 'messageId' }, { to: 'value', from: 'properties.revenue', required: true }] } } });
    await s.publish([trackEvent('ok1', 'Order Completed', { revenue: 1 }), trackEvent('bad'), trackEvent('ok2', 'Order Completed', { revenue: 2 })]);
    await eventually(() => s.records.length === 3);
    expect(s.receiver.requests.flatMap((r) => (r.body as { batch: { id: string }[] }).batch.map((p) => p.id)).sort()).toEqual(['ok1', 'ok2']);
    const [letter] = (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === s.integration.metadata.name);
    expect(letter!.letter).toMatchObject({ reason: 'mapping_failed', error: expect.stringMatching(/^value: required field value has no value: .*\(rule \/default\/fields\/1\)$/) });
    expect((letter!.letter.event as { messageId: string }).messageId).toBe('bad');
  });

  it('dead-letters a payload that fails the destination schema, never sending it', async () => {
    const payloadSchema = { type: 'object', required: ['id'], properties: { id: { type: 'string' }, value: { type: 'number', minimum: 0 } } };
    const s = await setup({ payloadSchema, mapping: { default: { fields: [{ to: 'id', from: 'messageId' }, { to: 'value', from: 'properties.revenue' }] } } });
    await s.publish([trackEvent('neg', 'Order Completed', { revenue: -5 }), trackEvent('fine', 'Order Completed', { revenue: 5 })]);
    await eventually(() => s.records.length === 2);
    expect(s.receiver.requests.map((r) => r.body)).toEqual([{ id: 'fine', value: 5 }]);
    const [letter] = (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === s.integration.metadata.name);
    expect(letter!.letter).toMatchObject({ reason: 'invalid_output', error: expect.stringContaining('value must be >= 0 (minimum; written by rule /default/fields/1)') });
  });

  it('says which rule gave no value for a required output field', () => {
    const mapping = compileMapping({ default: { fields: [{ to: 'user.email', from: 'traits.email' }, { to: 'id', from: 'messageId' }] } });
    const event = { type: 'identify', messageId: 'm', traits: {} };
    const text = describeViolations(mapping, event, [
      { instancePath: '/user', path: 'user', rule: 'required', message: 'is required' },
      { instancePath: '/other', path: 'other', rule: 'required', message: 'is required' },
    ]);
    expect(text).toBe(
      'output does not satisfy the destination schema: user is required (required; rule /default/fields/0 gave no value: absent (missing)); other is required (required; no rule writes it)',
    );
  });

  it('dead-letters a stored message that is not a JSON object', async () => {
    const s = await setup();
    await fx.nc.publish(`${fx.streams.subjectPrefix}.events.default.${s.source}.track`, 'not json{');
    await eventually(() => s.forwarder.stats.deadLettered === 1);
    const [letter] = (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === s.integration.metadata.name);
    expect(letter!.letter).toMatchObject({ reason: 'invalid_event', event: 'not json{', attempts: 1 });
    expect(s.receiver.requests).toHaveLength(0);
  });

  it('delivers nothing while paused; events wait in the stream', async () => {
    const s = await setup({ paused: true });
    await s.publish([trackEvent('p1'), trackEvent('p2')]);
    await new Promise((r) => setTimeout(r, 300));
    const info = await fx.jsm.consumers.info(fx.streams.events.name, consumerName('default', s.integration.metadata.name));
    expect(info).toMatchObject({ num_pending: 2, num_ack_pending: 0 });
    expect(s.receiver.requests).toHaveLength(0);
  });
});

describe('isolation and start position', () => {
  it('keeps delivering integration B while integration A\'s destination hangs', async () => {
    const releases: (() => void)[] = [];
    const slow = await setup({
      delivery: { concurrency: 2, timeout: '20s' },
      respond: () => ({ hold: new Promise<void>((r) => releases.push(r)) }),
    });
    const fast = await setup();
    await slow.publish(ids(4, 'a').map((id) => trackEvent(id)));
    // A's two request slots are taken by requests that will not answer.
    await slow.receiver.waitFor((r) => r.length === 2);
    await fast.publish(ids(6, 'b').map((id) => trackEvent(id)));
    await eventually(() => fast.forwarder.stats.delivered === 6);
    expect(fast.receiver.requests.map((r) => r.body.messageId).sort()).toEqual(ids(6, 'b'));
    // Meanwhile A delivered nothing and has no more requests out than its concurrency.
    expect(slow.forwarder.stats.delivered).toBe(0);
    expect(slow.receiver.requests).toHaveLength(2);
    expect(slow.forwarder.stats.inFlight).toBe(2);
    slow.receiver.respond = () => undefined;
    releases.forEach((r) => r());
    await eventually(() => slow.forwarder.stats.delivered === 4);
  });

  it('backfills from startAt while the default takes only new events', async () => {
    const receiver = await startTestReceiver();
    cleanups.push(() => receiver.close());
    const source = `src-${uid()}`;
    const startAt = new Date(Date.now() - 60_000).toISOString();
    await publishEvents(fx.nc, fx.streams, source, ids(3, 'old').map((id) => trackEvent(id)));
    const make = async (name: string, delivery: Partial<Integration['spec']['delivery']>) => {
      const integration = testIntegration(name, { url: `${receiver.url}/${name}`, sources: [source], delivery });
      await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
      const f = await startForwarder({ nc: fx.nc, streams: fx.streams, config: { integration, mapping: testMapping(), credentials: {} }, logger: silentLogger });
      cleanups.push(() => f.stop());
      return f;
    };
    const backfill = await make(`bf-${uid()}`, { startAt, concurrency: 1 });
    const live = await make(`nw-${uid()}`, { concurrency: 1 });
    await publishEvents(fx.nc, fx.streams, source, ids(2, 'new').map((id) => trackEvent(id)));
    await eventually(() => backfill.stats.delivered === 5 && live.stats.delivered === 2);
    const got = (who: string) => receiver.requests.filter((r) => r.url.startsWith(`/${who}`)).map((r) => r.body.messageId);
    expect(got('bf-')).toEqual([...ids(3, 'old'), ...ids(2, 'new')]);
    expect(got('nw-')).toEqual(ids(2, 'new'));
  });
});

describe('logs and start-up errors', () => {
  it('logs each delivery at info, retries at warn and dead letters at error, with the event identity', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    let failedOnce = false;
    const receiver = await startTestReceiver({
      respond: (r) => {
        if (r.body?.messageId === 'bad') return { status: 422 };
        if (!failedOnce) {
          failedOnce = true;
          return { status: 502 };
        }
        return undefined;
      },
    });
    cleanups.push(() => receiver.close());
    const source = `src-${uid()}`;
    const integration = testIntegration(`log-${uid()}`, { url: receiver.url, sources: [source], delivery: { concurrency: 1 } });
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    const forwarder = await startForwarder({ nc: fx.nc, streams: fx.streams, config: { integration, mapping: testMapping(), credentials: {} }, logger });
    cleanups.push(() => forwarder.stop());
    await publishEvents(fx.nc, fx.streams, source, [trackEvent('good'), trackEvent('bad')]);
    await eventually(() => forwarder.stats.delivered === 1 && forwarder.stats.deadLettered === 1);
    const label = `default/${integration.metadata.name}`;
    const identity = { integration: label, source: `default/${source}` };
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ level: 40, msg: 'delivery failed; will retry', ...identity, messageId: 'good', status: 502, attempt: 1, durationMs: expect.any(Number), retryInMs: 200 }),
        expect.objectContaining({ level: 30, msg: 'delivered', ...identity, messageId: 'good', status: 200, attempt: 2, durationMs: expect.any(Number) }),
        expect.objectContaining({ level: 50, msg: 'dead-lettered', ...identity, messageId: 'bad', status: 422, attempt: 1, reason: 'permanent_failure' }),
      ]),
    );
  });

  it('refuses to start without the consumers ensureIntegrationConsumer creates', async () => {
    const integration = testIntegration(`none-${uid()}`, { url: 'http://127.0.0.1:9', sources: ['x'] });
    await expect(startForwarder({ nc: fx.nc, streams: fx.streams, config: { integration, mapping: testMapping(), credentials: {} }, logger: silentLogger })).rejects.toMatchObject({
      code: ErrorCodes.MISSING_REFERENCE,
      message: expect.stringContaining('ensureIntegrationConsumer'),
    });
  });

  it('refuses an invalid Mapping with the compiler\'s problems', async () => {
    const integration = testIntegration(`badmap-${uid()}`, { url: 'http://127.0.0.1:9', sources: ['x'] });
    await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
    await expect(
      startForwarder({ nc: fx.nc, streams: fx.streams, config: { integration, mapping: testMapping({ default: { fields: [{ to: 'a', from: 'constructor' }] } }), credentials: {} }, logger: silentLogger }),
    ).rejects.toMatchObject({ code: ErrorCodes.INVALID_MAPPING, details: [expect.objectContaining({ path: '/default/fields/0/from' })] });
  });
});
