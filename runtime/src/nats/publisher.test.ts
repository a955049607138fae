import { natsFixture } from '../test-support/nats.js';
import { BatchPublisher } from './publisher.js';
import { eventSubject } from './subjects.js';

describe('BatchPublisher', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  beforeAll(async () => {
    fx = await natsFixture();
  });
  afterAll(async () => fx.cleanup());

  it('stores every message once and reports repeated Nats-Msg-Ids as duplicates', async () => {
    const pub = new BatchPublisher(fx.nc, { stream: fx.streams.events.name });
    const subject = eventSubject(fx.streams.subjectPrefix, 'default', 'web', 'track');
    const msgs = Array.from({ length: 500 }, (_, i) => ({ subject, data: new TextEncoder().encode(`{"i":${i}}`), msgId: `m-${i}` }));
    const first = await pub.publish(msgs);
    expect(first.every((o) => o.ok && !o.duplicate)).toBe(true);
    const again = await pub.publish(msgs.slice(0, 10));
    expect(again.every((o) => o.ok && o.duplicate)).toBe(true);
    const info = await fx.jsm.streams.info(fx.streams.events.name);
    expect(info.state.messages).toBe(500);
    pub.close();
  });

  it('reports a subject no stream stores as a failure instead of hanging', async () => {
    const pub = new BatchPublisher(fx.nc, { stream: fx.streams.events.name, ackTimeoutMs: 500, attempts: 1 });
    const [outcome] = await pub.publish([{ subject: 'nowhere.at.all', data: new Uint8Array(), msgId: 'x' }]);
    expect(outcome).toEqual({ ok: false, error: expect.stringMatching(/no responders|no JetStream acknowledgement/) });
    pub.close();
  });
});

describe('desiredStreams', () => {
  it('gives the dead-letter stream a duplicate window, so a re-run never stores a dead letter twice', async () => {
    const { desiredStreams } = await import('./streams.js');
    const { streamSettings } = await import('../settings.js');
    const [, deadLetter] = desiredStreams(streamSettings({}));
    expect(deadLetter).toMatchObject({ name: 'DEADLETTER', duplicate_window: 24 * 3600 * 1e9 });
  });
});
