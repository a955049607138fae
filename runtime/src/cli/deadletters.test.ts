import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { DeadLetterPublisher, ensureIntegrationConsumer, type DeadLetter } from '../forward/index.js';
import { consumerName } from '../nats/subjects.js';
import { testIntegration, trackEvent, uid } from '../test-support/forwarder-fixtures.js';
import { natsFixture, type NatsFixture } from '../test-support/nats.js';
import { useTempDirs } from '../test-support/temp.js';
import { main } from './index.js';
import { parseIntegrationRef, parseSince } from './deadletters.js';

const tempDir = useTempDirs('sy-deadletters-');
let fx: NatsFixture;
let settings: string;

beforeAll(async () => {
  fx = await natsFixture();
  settings = path.join(await tempDir(), 'settings.json');
  await writeFile(settings, JSON.stringify({ nats: { servers: [process.env.NATS_URL] }, streams: fx.streams }));
});
afterAll(async () => fx.cleanup());

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'switchyard', 'deadletters', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** An Integration with its consumer (so replays are taken) on a fresh source, and its dead letters (sequences). */
async function seeded(letters: Partial<DeadLetter>[]): Promise<{ name: string; source: string; seqs: number[] }> {
  const source = `src-${uid()}`;
  const integration = testIntegration(`cli-${uid()}`, { url: 'http://127.0.0.1:9/hook', sources: [source] });
  await ensureIntegrationConsumer(fx.jsm, fx.streams, integration);
  const name = integration.metadata.name;
  const publisher = new DeadLetterPublisher(fx.nc, fx.streams, consumerName('default', name));
  const seqs: number[] = [];
  for (const [i, l] of letters.entries()) {
    const letter: DeadLetter = {
      integration: { namespace: 'default', name },
      reason: 'permanent_failure',
      status: 400,
      error: `HTTP 400: {"error":"field props is not allowed"}\n${'x'.repeat(100)}`,
      attempts: 1,
      failedAt: `2026-01-01T00:00:0${i}.000Z`,
      streamSeq: 100 + i,
      subject: `${fx.streams.subjectPrefix}.events.default.${source}.track`,
      source: `default/${source}`,
      event: trackEvent(`msg-${i}`),
      ...l,
    };
    seqs.push((await publisher.publish(letter)).seq);
  }
  return { name, source, seqs };
}

describe('switchyard deadletters', () => {
  it('lists an Integration’s dead letters as a table, filtered, limited, or as JSON', async () => {
    const { name, seqs } = await seeded([{}, { reason: 'retries_exhausted', status: 503, error: 'HTTP 503' }, { reason: 'max_deliver_exceeded', event: null, status: undefined, attempts: 6, error: 'JetStream gave up' }]);
    const conn = ['--integration', `default/${name}`, '--settings', settings];

    const table = await run('list', ...conn);
    expect(table).toMatchObject({ code: 0, err: '' });
    const lines = table.out.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^SEQ +FAILED AT +REASON +STATUS +ATTEMPTS +MESSAGE ID +EVENT +ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${seqs[0]} +2026-01-01T00:00:00.000Z +permanent_failure +400 +1 +msg-0 +track Order Completed +HTTP 400: \\{"error":"field props is not allowed"\\} x+…$`));
    expect(lines[1]!.length).toBeLessThan(200);
    expect(lines[2]).toMatch(new RegExp(`^${seqs[1]} .* retries_exhausted +503 +1 +msg-1 +track Order Completed +HTTP 503$`));
    expect(lines[3]).toMatch(new RegExp(`^${seqs[2]} .* max_deliver_exceeded +- +6 +- +- +JetStream gave up$`));

    // A bare name means namespace default.
    const byReason = await run('list', '--integration', name, '--settings', settings, '--reason', 'retries_exhausted');
    expect(byReason.out.split('\n').slice(1).map((l) => l.split(' ')[0])).toEqual([String(seqs[1])]);

    const limited = await run('list', ...conn, '--limit', '2');
    expect(limited.out.split('\n').slice(1, 3).map((l) => l.split(' ')[0])).toEqual([String(seqs[0]), String(seqs[1])]);
    expect(limited.out).toMatch(/more dead letters of default\/.* match: only the first 2 shown/);

    const json = await run('list', ...conn, '--json', '--reason', 'permanent_failure');
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ seq: seqs[0], headers: expect.objectContaining({ 'Sy-Reason': 'permanent_failure' }), letter: expect.objectContaining({ event: trackEvent('msg-0') }) })]);

    const recent = await run('list', ...conn, '--since', '1h');
    expect(recent.out.split('\n')).toHaveLength(4);
    expect(await run('list', ...conn, '--since', '2999-01-01T00:00:00Z')).toMatchObject({ code: 0, out: `no dead letters of default/${name} matching the filters` });
    const unknown = `none-${uid()}`;
    expect(await run('list', '--integration', `default/${unknown}`, '--settings', settings)).toMatchObject({
      code: 0,
      out: `no dead letters of default/${unknown}`,
      err: `note: no Integration default/${unknown} delivers from this NATS (no consumer default__${unknown}); check the namespace/name`,
    });
  });

  it('shows one dead letter whole, and exits 1 for a sequence not of this Integration', async () => {
    const { name, seqs } = await seeded([{}]);
    const other = await seeded([{}]);
    const shown = await run('show', String(seqs[0]), '--integration', name, '--settings', settings);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.out)).toMatchObject({ seq: seqs[0], headers: { 'Sy-Integration': `default/${name}` }, letter: { error: expect.stringContaining('x'.repeat(100)), event: trackEvent('msg-0') } });
    const missing = await run('show', String(other.seqs[0]), '--integration', name, '--settings', settings);
    expect(missing).toMatchObject({ code: 1, out: '', err: `no dead letter of default/${name} at sequence ${other.seqs[0]}` });
  });

  it('replays, reports what it could not replay with exit code 1, and honours --dry-run and --keep', async () => {
    const { name, source, seqs } = await seeded([{}, { reason: 'max_deliver_exceeded', event: null }, {}]);
    const conn = ['--integration', name, '--settings', settings];

    const dry = await run('replay', '--all', '--dry-run', ...conn);
    expect(dry.code).toBe(1);
    expect(dry.out).toContain(`would replay ${seqs[0]} (messageId msg-0) on ${fx.streams.subjectPrefix}.replay.default.${name}.${source}.track`);
    expect(dry.err).toMatch(new RegExp(`^not replayed ${seqs[1]}: no event to replay`));
    expect(dry.out).toContain('dry run: 2 would be replayed, 1 could not be; nothing published or deleted');

    const kept = await run('replay', String(seqs[0]), '--keep', ...conn);
    expect(kept).toMatchObject({ code: 0, err: '' });
    expect(kept.out).toMatch(new RegExp(`^replayed ${seqs[0]} \\(messageId msg-0\\) → events stream seq \\d+, dead letter kept\\n1 replayed, 0 already replayed, 0 not replayed$`));

    const all = await run('replay', '--all', '--reason', 'permanent_failure', ...conn);
    expect(all.code).toBe(0);
    expect(all.out).toContain(`already replayed ${seqs[0]} (messageId msg-0)`);
    expect(all.out).toContain(`replayed ${seqs[2]} (messageId msg-2) → events stream seq`);
    expect(all.out).toMatch(/1 replayed, 1 already replayed, 0 not replayed$/);

    const rest = await run('replay', String(seqs[1]), String(seqs[2]), ...conn);
    expect(rest.code).toBe(1);
    expect(rest.err.split('\n')).toEqual([`not replayed ${seqs[1]}: no event to replay: the event was no longer in the events stream when it was dead-lettered`, `not replayed ${seqs[2]}: no dead letter of default/${name} at sequence ${seqs[2]}`]);
    expect(rest.out).toBe('0 replayed, 0 already replayed, 2 not replayed');

    // What the Integration's consumer gets: msg-0 once, then msg-2.
    const consumer = await jetstream(fx.nc).consumers.get(fx.streams.events.name, consumerName('default', name));
    const got: string[] = [];
    for await (const m of await consumer.fetch({ max_messages: 10, expires: 1000 })) {
      got.push(m.json<{ messageId: string }>().messageId);
      m.ack();
    }
    expect(got).toEqual(['msg-0', 'msg-2']);
    expect((await run('list', ...conn)).out.split('\n').slice(1).map((l) => l.split(' ')[0])).toEqual([String(seqs[1])]);
  });

  it('refuses bad usage with exit code 2', async () => {
    const conn = ['--settings', settings];
    for (const args of [
      ['replay', '--integration', 'a', ...conn],
      ['replay', '1', '--all', '--integration', 'a', ...conn],
      ['replay', '1', '--reason', 'permanent_failure', '--integration', 'a', ...conn],
      ['replay', 'x', '--integration', 'a', ...conn],
      ['list', '--integration', 'Bad_Name', ...conn],
      ['list', '--integration', 'a/b/c', ...conn],
      ['list', '--integration', 'a', '--reason', 'nope', ...conn],
      ['list', '--integration', 'a', '--since', 'yesterday', ...conn],
      ['list', '--integration', 'a', '--limit', '0', ...conn],
      ['list', ...conn],
      ['show', '--integration', 'a', ...conn],
    ]) {
      const r = await run(...args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.err).not.toBe('');
    }
  });

  it('states the defaults in its help', async () => {
    const help = async (command: string) => {
      const r = await run(command, '--help');
      expect(r.code).toBe(0);
      return r.out.replace(/\s+/g, ' ');
    };
    const list = await help('list');
    expect(list).toMatch(/--limit <n> at most this many, the oldest that match \(default: 50\)/);
    expect(list).toMatch(/--nats-url <url> NATS server URL\(s\), comma-separated \(default: NATS_URL or nats:\/\/127.0.0.1:4222\)/);
    expect(list).toMatch(/--reason <reason> only this reason \(default: all\)/);
    const replay = await help('replay');
    expect(replay).toMatch(/--keep keep the dead letters after replaying them \(default: delete each once its replay is stored\)/);
    expect(replay).toMatch(/--limit <n> with --all: at most this many, the oldest \(default: no limit\)/);
  });
});

describe('option parsing', () => {
  it('reads --integration and --since', () => {
    expect(parseIntegrationRef('shop/meta.eu')).toEqual({ namespace: 'shop', name: 'meta.eu' });
    expect(parseIntegrationRef('meta')).toEqual({ namespace: 'default', name: 'meta' });
    const now = Date.parse('2026-01-02T00:00:00Z');
    expect(parseSince('1h', now).toISOString()).toBe('2026-01-01T23:00:00.000Z');
    expect(parseSince('2026-01-01T12:00:00Z', now).toISOString()).toBe('2026-01-01T12:00:00.000Z');
    expect(parseSince('2026-01-01', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});
