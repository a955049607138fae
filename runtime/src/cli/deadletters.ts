import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { NAME_PATTERN } from '../api/common.js';
import type { DeadLetterReason } from '../forward/dead-letter.js';
import {
  DEAD_LETTER_REASONS,
  getDeadLetter,
  listDeadLetters,
  replayDeadLetters,
  replayFailed,
  type DeadLetterFilter,
  type IntegrationRef,
  type ReplayResult,
  type StoredDeadLetter,
} from '../forward/dead-letters.js';
import { parseDuration } from '../duration.js';
import { connectOrStartNats } from '../local/nats.js';
import { consumerName } from '../nats/subjects.js';
import { DEFAULT_DEV_STORE } from './dev.js';
import type { StreamSettings } from '../settings.js';
import { loadProcessSettings } from './common.js';

/** Rows `list` shows unless `--limit` says otherwise. */
export const DEFAULT_LIST_LIMIT = 50;
/** Longest error text in a `list` row; longer ones are cut (`show` has it whole). */
const ERROR_WIDTH = 60;

const namePattern = new RegExp(NAME_PATTERN);

/**
 * Parses `--integration`: `<namespace>/<name>`, or `<name>` in namespace `default`.
 * @throws InvalidArgumentError (a usage error) when either part is not a Kubernetes name.
 */
export function parseIntegrationRef(value: string): IntegrationRef {
  const parts = value.split('/');
  const [namespace, name] = parts.length === 1 ? ['default', parts[0]!] : parts.length === 2 ? [parts[0]!, parts[1]!] : ['', ''];
  if (!namePattern.test(namespace) || !namePattern.test(name)) throw new InvalidArgumentError('expected <namespace>/<name> or <name> (namespace default), Kubernetes names');
  return { namespace, name };
}

/**
 * Parses `--since`: a duration back from `now` (`30m`, `1h`, `7d`) or an ISO-8601 date/time.
 * @throws InvalidArgumentError when it is neither.
 */
export function parseSince(value: string, now: number = Date.now()): Date {
  try {
    return new Date(now - parseDuration(value));
  } catch {
    const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(at)) throw new InvalidArgumentError('expected a duration (30m, 1h, 7d) or an ISO-8601 time');
    return new Date(at);
  }
}

const positiveInt = (what: string) => (value: string): number => {
  if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError(`expected a ${what} (a whole number ≥ 1)`);
  return Number(value);
};

/** Options every `deadletters` command takes. */
interface CommonOptions {
  integration: IntegrationRef;
  settings?: string;
  natsUrl?: string;
  natsStore: string;
}

/** Adds the options shared by the `deadletters` commands: which Integration, and how to reach NATS (as `dev` does). */
function withCommonOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--integration <ns/name|name>', 'the Integration whose dead letters to read (namespace default when only a name is given)', parseIntegrationRef)
    .option('--settings <file>', 'settings file {nats, streams} (YAML or JSON); stream names and subject prefix must match the cluster\'s (default: the built-in defaults)')
    .option('--nats-url <url>', 'NATS server URL(s), comma-separated (default: NATS_URL or nats://127.0.0.1:4222)')
    .option(
      '--nats-store <dir>',
      "when no usable NATS answers at the URL: the store of `switchyard dev`'s nats-server, whose running server is used (or, when no dev runs, one is started on it for this command)",
      DEFAULT_DEV_STORE,
    );
}

/** Connects with the command's settings, runs `work` with a JetStream manager, then closes the connection. */
async function withJetStream<T>(opts: CommonOptions, notice: (line: string) => void, work: (jsm: JetStreamManager, streams: StreamSettings) => Promise<T>): Promise<T> {
  const settings = await loadProcessSettings(opts.settings, opts.natsUrl);
  // Like `dev`: the cluster's NATS when it answers, else the one of the local dev store.
  const { nc, local } = await connectOrStartNats(settings.nats, (line) => notice(`nats: ${line}`), { storeDir: opts.natsStore, attach: true });
  try {
    return await work(await jetstreamManager(nc), settings.streams);
  } finally {
    await nc.close();
    await local?.stop();
  }
}

const cut = (s: string, width: number): string => {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
};

/** `track Order Completed`, `page Home`, `identify`… of a dead letter's event; `-` without one. */
function eventLabel(event: unknown): string {
  if (!event || typeof event !== 'object') return '-';
  const e = event as Record<string, unknown>;
  const name = typeof e.event === 'string' ? e.event : typeof e.name === 'string' ? e.name : undefined;
  return [typeof e.type === 'string' ? e.type : '?', name].filter(Boolean).join(' ');
}

const messageIdOf = (event: unknown): string => (event && typeof event === 'object' && typeof (event as { messageId?: unknown }).messageId === 'string' ? (event as { messageId: string }).messageId : '-');

/** The `list` table: one row per dead letter, columns padded to the widest cell. */
export function formatDeadLetterTable(letters: readonly StoredDeadLetter[]): string {
  const rows = [
    ['SEQ', 'FAILED AT', 'REASON', 'STATUS', 'ATTEMPTS', 'MESSAGE ID', 'EVENT', 'ERROR'],
    ...letters.map(({ seq, letter }) => [
      String(seq),
      letter.failedAt,
      letter.reason,
      letter.status === undefined ? '-' : String(letter.status),
      String(letter.attempts),
      messageIdOf(letter.event),
      eventLabel(letter.event),
      letter.error ? cut(letter.error, ERROR_WIDTH) : '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** One line per replay result, as `replay` prints it. */
export function formatReplayResult(r: ReplayResult): string {
  const id = r.messageId ? ` (messageId ${r.messageId})` : '';
  const kept = r.deleted ? 'dead letter deleted' : 'dead letter kept';
  switch (r.outcome) {
    case 'replayed':
      return `replayed ${r.seq}${id} → events stream seq ${r.replaySeq}, ${r.error ? r.error.replace(/^replayed, but /, 'but ') : kept}`;
    case 'duplicate':
      return `already replayed ${r.seq}${id}: the same letter was replayed within the events stream's duplicate window, not stored again; ${r.error ? r.error.replace(/^replayed, but /, 'but ') : kept}`;
    case 'dry_run':
      return `would replay ${r.seq}${id} on ${r.subject}`;
    default:
      return `not replayed ${r.seq}${id}: ${r.error}`;
  }
}

/** The summary line of `replay`. */
function replaySummary(results: readonly ReplayResult[], dryRun: boolean): string {
  const count = (f: (r: ReplayResult) => boolean) => results.filter(f).length;
  const failed = count((r) => !['replayed', 'duplicate', 'dry_run'].includes(r.outcome));
  if (dryRun) return `dry run: ${count((r) => r.outcome === 'dry_run')} would be replayed, ${failed} could not be; nothing published or deleted`;
  const parts = [`${count((r) => r.outcome === 'replayed')} replayed`, `${count((r) => r.outcome === 'duplicate')} already replayed`, `${failed} not replayed`];
  const undeleted = count((r) => (r.outcome === 'replayed' || r.outcome === 'duplicate') && r.error !== undefined);
  if (undeleted) parts.push(`${undeleted} dead letter(s) not deleted`);
  return parts.join(', ');
}

/**
 * `switchyard deadletters list|show|replay --integration <ns/name|name>`: inspects one
 * Integration's dead letters in the dead-letter stream and replays them to that Integration alone
 * (see replayDeadLetters in forward/dead-letters.ts). NATS and stream names come from
 * `--settings`/`--nats-url` as for `dev`. Exit codes: 0 done, 1 a letter not found or not replayed
 * (or a NATS failure), 2 usage error.
 */
export function registerDeadLetters(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  const group = program.command('deadletters').description("inspect an Integration's dead letters and replay them to it");

  withCommonOptions(group.command('list'))
    .description('list dead letters, oldest first: seq, failedAt, reason, status, attempts, messageId, event, error')
    .addOption(new Option('--reason <reason>', 'only this reason (default: all)').choices(DEAD_LETTER_REASONS))
    .option('--since <when>', 'only letters stored since: a duration back from now (30m, 1h, 7d) or an ISO-8601 time (default: all)', (v) => parseSince(v))
    .option('--limit <n>', 'at most this many, the oldest that match', positiveInt('limit'), DEFAULT_LIST_LIMIT)
    .option('--json', 'print the dead letters as a JSON array (with events and headers) instead of a table (default: a table)')
    .action(async (opts: CommonOptions & { reason?: DeadLetterReason; since?: Date; limit: number; json?: boolean }) => {
      const filter: DeadLetterFilter = { ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.since ? { since: opts.since } : {}), limit: opts.limit + 1 };
      const { found, known } = await withJetStream(opts, err, async (jsm, streams) => ({
        found: await listDeadLetters(jsm, streams, opts.integration, filter),
        // Whether the Integration has a consumer: a mistyped name would otherwise just list nothing.
        known: await jsm.consumers.info(streams.events.name, consumerName(opts.integration.namespace, opts.integration.name)).then(
          () => true,
          () => false,
        ),
      }));
      const shown = found.slice(0, opts.limit);
      if (opts.json) {
        out(JSON.stringify(shown, null, 2));
        return;
      }
      const label = `${opts.integration.namespace}/${opts.integration.name}`;
      if (shown.length === 0) {
        out(`no dead letters of ${label}${opts.reason || opts.since ? ' matching the filters' : ''}`);
        if (!known) err(`note: no Integration ${label} delivers from this NATS (no consumer ${consumerName(opts.integration.namespace, opts.integration.name)}); check the namespace/name`);
        return;
      }
      out(formatDeadLetterTable(shown));
      if (found.length > shown.length) out(`more dead letters of ${label} match: only the first ${opts.limit} shown (raise --limit, or narrow with --since or --reason)`);
    });

  withCommonOptions(group.command('show'))
    .description('print one dead letter as JSON: seq, subject, storedAt, headers and the letter with its event')
    .argument('<seq>', 'its sequence in the dead-letter stream (the SEQ column of list)', positiveInt('sequence'))
    .action(async (seq: number, opts: CommonOptions) => {
      const found = await withJetStream(opts, err, (jsm, streams) => getDeadLetter(jsm, streams, opts.integration, seq));
      if (!found) {
        err(`no dead letter of ${opts.integration.namespace}/${opts.integration.name} at sequence ${seq}`);
        process.exitCode = 1;
        return;
      }
      out(JSON.stringify(found, null, 2));
    });

  withCommonOptions(group.command('replay'))
    .description('publish dead-lettered events again, unchanged (same messageId), to this Integration alone; each dead letter is deleted once its replay is stored')
    .argument('[seq...]', 'sequences in the dead-letter stream to replay (or --all)', (v: string, prev: number[] = []) => [...prev, positiveInt('sequence')(v)])
    .option('--all', 'replay every dead letter of the Integration (narrowed by --reason, --since, --limit), oldest first')
    .addOption(new Option('--reason <reason>', 'with --all: only this reason (default: all)').choices(DEAD_LETTER_REASONS))
    .option('--since <when>', 'with --all: only letters stored since a duration back from now (30m, 1h) or an ISO-8601 time (default: all)', (v) => parseSince(v))
    .option('--limit <n>', 'with --all: at most this many, the oldest (default: no limit)', positiveInt('limit'))
    .option('--keep', 'keep the dead letters after replaying them (default: delete each once its replay is stored)')
    .option('--dry-run', 'only print what would be replayed (default: replay)')
    .option('--json', 'print the results as a JSON array (default: one line each and a summary)')
    .action(async (seqs: number[] | undefined, opts: CommonOptions & { all?: boolean; reason?: DeadLetterReason; since?: Date; limit?: number; keep?: boolean; dryRun?: boolean; json?: boolean }, cmd: Command) => {
      const given = seqs ?? [];
      if ((given.length > 0) === !!opts.all) cmd.error(opts.all ? 'error: give sequences or --all, not both' : 'error: give the sequences to replay, or --all', { exitCode: 2 });
      if (!opts.all && (opts.reason || opts.since || opts.limit !== undefined)) cmd.error('error: --reason, --since and --limit only go with --all', { exitCode: 2 });
      const results = await withJetStream(opts, err, (jsm, streams) =>
        replayDeadLetters(jsm, streams, opts.integration, {
          ...(opts.all ? { filter: { ...(opts.reason ? { reason: opts.reason } : {}), ...(opts.since ? { since: opts.since } : {}), ...(opts.limit !== undefined ? { limit: opts.limit } : {}) } } : { seqs: given }),
          keep: !!opts.keep,
          dryRun: !!opts.dryRun,
        }),
      );
      if (opts.json) out(JSON.stringify(results, null, 2));
      else if (results.length === 0) out(`no dead letters of ${opts.integration.namespace}/${opts.integration.name} to replay`);
      else {
        for (const r of results) (replayFailed(r) ? err : out)(formatReplayResult(r));
        out(replaySummary(results, !!opts.dryRun));
      }
      if (results.some(replayFailed)) process.exitCode = 1;
    });
}
