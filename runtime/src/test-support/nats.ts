import { randomBytes } from 'node:crypto';
import { jetstreamManager, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../nats/connection.js';
import { ensureStreams } from '../nats/streams.js';
import { natsSettings, streamSettings, type NatsSettings, type StreamSettings } from '../settings.js';

/** NATS settings pointing at the suite's server (NATS_URL set by the global setup). */
export function testNatsSettings(): Readonly<NatsSettings> {
  if (!process.env.NATS_URL) throw new Error('NATS_URL is not set: run the tests through jest (global setup starts nats-server)');
  return natsSettings({ servers: [process.env.NATS_URL] });
}

/**
 * Stream settings unique to one test (own subject prefix and stream names), so test files running
 * in parallel against the one server never see each other's messages.
 */
export function isolatedStreamSettings(overrides: { events?: Partial<StreamSettings['events']> } = {}): Readonly<StreamSettings> {
  const id = randomBytes(4).toString('hex');
  return streamSettings({
    subjectPrefix: `t${id}`,
    events: { name: `EVENTS_${id}`, storage: 'memory', ...overrides.events },
    deadLetter: { name: `DEADLETTER_${id}` },
    advisories: { name: `ADVISORIES_${id}` },
  });
}

/** A connection plus isolated, created streams; `cleanup` deletes the streams and closes. */
export async function natsFixture(overrides: Parameters<typeof isolatedStreamSettings>[0] = {}): Promise<{
  nc: NatsConnection;
  jsm: JetStreamManager;
  nats: Readonly<NatsSettings>;
  streams: Readonly<StreamSettings>;
  cleanup(): Promise<void>;
}> {
  const nats = testNatsSettings();
  const streams = isolatedStreamSettings(overrides);
  const nc = await connectNats(nats);
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, streams);
  return {
    nc,
    jsm,
    nats,
    streams,
    async cleanup() {
      for (const name of [streams.events.name, streams.deadLetter.name, streams.advisories.name]) {
        await jsm.streams.delete(name).catch(() => undefined);
      }
      await nc.close();
    },
  };
}

/** What {@link natsFixture} resolves to. */
export type NatsFixture = Awaited<ReturnType<typeof natsFixture>>;

/**
 * Registers the hooks of a test file sharing one {@link natsFixture}: created before all tests,
 * cleaned up after them; `cleanups` run (last first) after each test. `fx` is filled in `beforeAll`.
 */
export function useNatsFixture(): { fx: NatsFixture; cleanups: (() => Promise<unknown>)[] } {
  const fx = {} as NatsFixture;
  const cleanups: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    Object.assign(fx, await natsFixture());
  });
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });
  afterAll(async () => fx.cleanup?.());
  return { fx, cleanups };
}

/**
 * The messages of a stream from sequence `fromSeq` (default its first) to its last, in order; gaps
 * (deleted messages) are skipped.
 */
export async function streamMessages(jsm: JetStreamManager, stream: string, fromSeq = 0): Promise<StoredMsg[]> {
  const { state } = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  for (let seq = Math.max(fromSeq, state.first_seq); state.messages > 0 && seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) out.push(m);
  }
  return out;
}
