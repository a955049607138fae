import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream } from '@nats-io/jetstream';
import { nanos } from '../duration.js';
import { silentLogger } from '../logger.js';
import { consumerName, maxDeliveriesAdvisorySubject } from '../nats/subjects.js';
import { publishEvents, readDeadLetters, testIntegration, testMapping, trackEvent, uid } from '../test-support/forwarder-fixtures.js';
import { eventually, startTestReceiver, type TestReceiver } from '../test-support/http-receiver.js';
import { useNatsFixture } from '../test-support/nats.js';
import { ensureIntegrationConsumer } from './consumer.js';
import { startForwarder, type Forwarder } from './forwarder.js';
import type { Integration } from '../api/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const { fx, cleanups } = useNatsFixture();

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const consumerInfo = (integration: Integration) => fx.jsm.consumers.info(fx.streams.events.name, consumerName('default', integration.metadata.name));

async function receiverFor(respond?: TestReceiver['respond']): Promise<TestReceiver> {
  const r = await startTestReceiver(respond ? { respond } : {});
  cleanups.push(() => r.close().catch(() => undefined));
  return r;
}

async function forwarderFor(integration: Integration): Promise<Forwarder> {
  const f = await startForwarder({ nc: fx.nc, streams: fx.streams, config: { integration, mapping: testMapping(), credentials: {} }, logger: silentLogger });
  cleanups.push(() => f.stop());
  return f;
}

const later = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

it('delivers every event after the receiver was killed and came back on the same port', async () => {
  const receiver = await receiverFor(() => ({ hold: later(20) }));
  const source = `src-${uid()}`;
  const integration = testIntegration(`down-${uid()}`, { url: receiver.url, sources: [source], delivery: { concurrency: 2, retrySchedule: Array(10).fill('200ms') } });
  await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
  const forwarder = await forwarderFor(integration);
  const messageIds = ids(20, 'd');
  await publishEvents(fx.nc, fx.streams, source, messageIds.map((id) => trackEvent(id)));
  await receiver.waitFor((r) => r.length >= 4);
  await receiver.close();
  const before = receiver.requests.length;
  await later(400);
  await receiver.restart();
  await eventually(() => forwarder.stats.delivered === 20, 15_000, 'all 20 delivered');
  expect(new Set(receiver.requests.map((r) => r.body.messageId))).toEqual(new Set(messageIds));
  expect(before).toBeLessThan(20);
  expect(forwarder.stats.retried).toBeGreaterThan(0);
  expect(forwarder.stats.deadLettered).toBe(0);
  expect(await consumerInfo(integration)).toMatchObject({ num_pending: 0, num_ack_pending: 0 });
});

it('stop() waits for the request in flight, acks it, and pulls nothing more', async () => {
  let release!: () => void;
  let releasedAt = 0;
  const held = new Promise<void>((r) => (release = () => ((releasedAt = performance.now()), r())));
  const receiver = await receiverFor((req) => (req.index === 0 ? { hold: held } : undefined));
  const source = `src-${uid()}`;
  const integration = testIntegration(`stop-${uid()}`, { url: receiver.url, sources: [source], delivery: { concurrency: 1, timeout: '5s' } });
  await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
  const forwarder = await forwarderFor(integration);
  await publishEvents(fx.nc, fx.streams, source, ids(4, 's').map((id) => trackEvent(id)));
  await receiver.waitFor((r) => r.length === 1);

  let stoppedAt = 0;
  const stopping = forwarder.stop().then(() => (stoppedAt = performance.now()));
  await later(200);
  expect(stoppedAt).toBe(0); // still waiting for the held request
  release();
  await stopping;
  expect(stoppedAt).toBeGreaterThan(releasedAt);

  // Whatever JetStream had handed over was delivered and acked; the rest waits in the stream.
  const info = await consumerInfo(integration);
  expect(info.num_ack_pending).toBe(0);
  expect(info.num_redelivered).toBe(0);
  expect(forwarder.stats.delivered).toBe(receiver.requests.length);
  expect(forwarder.stats.delivered + info.num_pending).toBe(4);
  expect(forwarder.stats.delivered).toBeGreaterThanOrEqual(1);
  const count = receiver.requests.length;
  await publishEvents(fx.nc, fx.streams, source, [trackEvent('after-stop')]);
  await later(200);
  expect(receiver.requests).toHaveLength(count);
});

it('dead-letters an event JetStream gave up on (max-deliveries advisory), once', async () => {
  const receiver = await receiverFor();
  const source = `src-${uid()}`;
  const integration = testIntegration(`adv-${uid()}`, { url: receiver.url, sources: [source], delivery: { retrySchedule: ['100ms'] } });
  await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
  const durable = consumerName('default', integration.metadata.name);
  // A worker that takes the event and dies without answering, until JetStream gives up (max_deliver 2).
  // With a backoff, JetStream times redeliveries by it (backoff[0] for the first delivery), not ack_wait.
  await fx.jsm.consumers.update(fx.streams.events.name, durable, { ack_wait: nanos(300), backoff: [nanos(300)] });
  const event = trackEvent('lost-1');
  const [seq] = await publishEvents(fx.nc, fx.streams, source, [event]);
  const raw = await jetstream(fx.nc).consumers.get(fx.streams.events.name, durable);
  const first = await raw.next({ expires: 2000 });
  const second = await raw.next({ expires: 2000 });
  expect([first?.seq, second?.seq, second?.info.deliveryCount]).toEqual([seq, seq, 2]);
  const advisorySubject = maxDeliveriesAdvisorySubject(fx.streams.events.name, durable);
  await later(400); // the second delivery's ack wait runs out too

  // A new forwarder: its first pull makes JetStream notice the exhausted event and emit the
  // advisory (for pull consumers it does so on the next pull), which lands in the advisories stream.
  await ensureIntegrationConsumer(fx.jsm, fx.streams, integration); // restores ack_wait and backoff
  const forwarder = await forwarderFor(integration);
  await eventually(() => forwarder.stats.deadLettered === 1, 5000, 'the dead letter');
  const mine = async () => (await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === integration.metadata.name);
  const letters = await mine();
  expect(letters).toEqual([
    {
      subject: expect.any(String),
      msgId: `${durable}:${seq}`,
      reason: 'max_deliver_exceeded',
      letter: expect.objectContaining({ reason: 'max_deliver_exceeded', attempts: 2, streamSeq: seq, subject: `${fx.streams.subjectPrefix}.events.default.${source}.track`, source: `default/${source}`, event }),
    },
  ]);
  expect(receiver.requests).toHaveLength(0);
  await eventually(async () => (await fx.jsm.consumers.info(fx.streams.advisories.name, durable)).num_ack_pending === 0);

  // The same advisory seen again (a re-run after a crash) stores no second dead letter.
  await forwarder.stop();
  const advisory = await fx.jsm.streams.getMessage(fx.streams.advisories.name, { last_by_subj: advisorySubject });
  expect(advisory!.json()).toMatchObject({ type: 'io.nats.jetstream.advisory.v1.max_deliver', stream_seq: seq, deliveries: 2 });
  await jetstream(fx.nc).publish(advisorySubject, advisory!.data);
  const again = await forwarderFor(integration);
  await eventually(() => again.stats.deadLettered === 1, 5000, 'the repeated advisory');
  expect(await mine()).toHaveLength(1);
});

describe('a forwarder process killed with SIGKILL', () => {
  const children: ChildProcess[] = [];
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-fwd-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs `switchyard forward`, the command a forwarder Deployment runs, resolving once it consumes. */
  function run(configFile: string, settingsFile: string): Promise<ChildProcess> {
    const args = ['forward', '--config', configFile, '--settings', settingsFile, '--create-consumer', '--metrics-port', '0'];
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'runtime/src/cli/bin.ts'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('forwarder started')) resolve(child);
      });
      child.once('exit', (code) => reject(new Error(`forwarder process exited (${code}) before ready:\n${err}`)));
    });
  }

  it('loses no event: everything is delivered at least once after a restart', async () => {
    const receiver = await receiverFor(() => ({ hold: later(25) }));
    const source = `src-${uid()}`;
    const integration = testIntegration(`kill-${uid()}`, { url: receiver.url, sources: [source], delivery: { concurrency: 2, timeout: '500ms', retrySchedule: ['200ms', '200ms'] } });
    const configFile = path.join(dir, 'forwarder.json');
    await writeFile(configFile, JSON.stringify({ integration, mapping: testMapping() }));
    const settingsFile = path.join(dir, 'settings.json');
    await writeFile(settingsFile, JSON.stringify({ nats: { servers: [process.env.NATS_URL] }, streams: fx.streams }));

    const first = await run(configFile, settingsFile);
    const messageIds = ids(20, 'k');
    await publishEvents(fx.nc, fx.streams, source, messageIds.map((id) => trackEvent(id)));
    await receiver.waitFor((r) => r.length >= 5);
    const exited = new Promise((r) => first.once('exit', r));
    first.kill('SIGKILL');
    await exited;
    const atKill = new Set(receiver.requests.map((r) => r.body.messageId));
    expect(atKill.size).toBeLessThan(20);

    const second = await run(configFile, settingsFile);
    // Unacked events come back after the ack wait (2 × 500 ms + 5 s).
    await eventually(async () => {
      const info = await consumerInfo(integration);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    }, 20_000, 'every event acked');
    expect(new Set(receiver.requests.map((r) => r.body.messageId))).toEqual(new Set(messageIds));
    expect((await readDeadLetters(fx.jsm, fx.streams)).filter((d) => d.letter.integration.name === integration.metadata.name)).toEqual([]);

    const code = await new Promise<number | null>((resolve) => {
      second.once('exit', (c) => resolve(c));
      second.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }, 40_000);
});
