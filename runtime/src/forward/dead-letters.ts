import { JetStreamApiError, type JetStreamManager, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { EVENT_TYPES, type EventType } from '../api/index.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { CONSENT_MISSING_HEADER } from '../ingestion/nats.js';
import { consumerName, deadLetterSubject, integrationReplayFilter, parseDeliverySubject, replayDedupId, replaySubject } from '../nats/subjects.js';
import type { StreamSettings } from '../settings.js';
import type { DeadLetter, DeadLetterReason } from './dead-letter.js';

/**
 * Reading and replaying one Integration's dead letters (`switchyard deadletters`). Dead letters are
 * read from the dead-letter stream one by one, by subject (`STREAM.MSG.GET` with `next_by_subj`,
 * https://docs.nats.io/reference/jetstream/api/stream/msg-get), oldest first;
 * a replay publishes the stored event again on the Integration's replay subject in the events
 * stream, which only that Integration's consumer takes.
 */

/** Every {@link DeadLetterReason}, in the order of its docstring (for option checks and help texts). */
export const DEAD_LETTER_REASONS = ['permanent_failure', 'retries_exhausted', 'max_deliver_exceeded', 'invalid_event', 'mapping_failed', 'invalid_output', 'stale_event'] as const satisfies readonly DeadLetterReason[];
// Compile-time check that the list names every reason.
const _everyReason: [Exclude<DeadLetterReason, (typeof DEAD_LETTER_REASONS)[number]>] extends [never] ? true : never = true;
void _everyReason;

/** Header of a replayed event: the dead-letter stream sequence it was replayed from. */
export const REPLAY_OF_HEADER = 'Sy-Replay-Of';

/** An Integration, by namespace and name. */
export interface IntegrationRef {
  namespace: string;
  name: string;
}

/** A dead letter as stored in the dead-letter stream. */
export interface StoredDeadLetter {
  /** Sequence in the dead-letter stream: what `show` and `replay` take. */
  seq: number;
  /** `<prefix>.deadletter.<ns>.<integration>`. */
  subject: string;
  /** ISO-8601 time the dead-letter stream stored it (server clock). */
  storedAt: string;
  /** Message headers (first value of each): `Nats-Msg-Id`, `Sy-Reason`, `Sy-Integration`… */
  headers: Record<string, string>;
  /** The dead letter itself. */
  letter: DeadLetter;
}

/** Which dead letters {@link listDeadLetters} returns. Every field optional; all must hold. */
export interface DeadLetterFilter {
  /** Only letters with this reason. */
  reason?: DeadLetterReason;
  /** Only letters stored at or after this time (the dead-letter stream's time). */
  since?: Date;
  /** At most this many (the oldest that match). Default: no limit. */
  limit?: number;
}

/**
 * Reads the message at `seq`, or with `nextBySubject` the first one at or after `seq` on that
 * subject; null when there is none (the client maps "no message found", 10037, to null). The
 * client's type lacks `next_by_subj` for `STREAM.MSG.GET`, which the server accepts
 * (`next_by_subj`: "combined with sequence gets the next message for a subject with the given
 * sequence or higher", https://docs.nats.io/reference/jetstream/api/stream/msg-get).
 */
function readMessage(jsm: JetStreamManager, stream: string, seq: number, nextBySubject?: string): Promise<StoredMsg | null> {
  const query = nextBySubject ? ({ seq, next_by_subj: nextBySubject } as unknown as MsgRequest) : { seq };
  return jsm.streams.getMessage(stream, query);
}

/** The stored message as a dead letter, or undefined when it is not one's JSON object. */
function toStored(m: StoredMsg): StoredDeadLetter | undefined {
  let letter: DeadLetter;
  try {
    letter = m.json<DeadLetter>();
  } catch {
    return undefined;
  }
  if (!letter || typeof letter !== 'object' || typeof letter.reason !== 'string') return undefined;
  const headers: Record<string, string> = {};
  for (const key of m.header.keys()) headers[key] = m.header.get(key);
  return { seq: m.seq, subject: m.subject, storedAt: m.time.toISOString(), headers, letter };
}

/**
 * Every dead letter of one Integration, oldest first, lazily (one stream read per letter).
 * Messages on its subject that are not a dead letter's JSON are passed over.
 */
async function* deadLettersOf(jsm: JetStreamManager, streams: StreamSettings, integration: IntegrationRef): AsyncGenerator<StoredDeadLetter> {
  const subject = deadLetterSubject(streams.subjectPrefix, integration.namespace, integration.name);
  let seq = 1;
  for (;;) {
    const m = await readMessage(jsm, streams.deadLetter.name, seq, subject);
    if (!m) return;
    seq = m.seq + 1;
    const stored = toStored(m);
    if (stored) yield stored;
  }
}

/** Whether a stored dead letter passes `filter` (limit aside). */
function matches(d: StoredDeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reason && d.letter.reason !== filter.reason) return false;
  if (filter.since && Date.parse(d.storedAt) < filter.since.getTime()) return false;
  return true;
}

/**
 * One Integration's dead letters (subject `<prefix>.deadletter.<ns>.<name>` of the dead-letter
 * stream) that pass `filter`, oldest first, each with its dead-letter stream sequence, storage time
 * and headers. Reads the stream one message at a time; stops after `filter.limit` matches.
 * @throws JetStreamApiError when the dead-letter stream is missing or the server refuses the read.
 */
export async function listDeadLetters(jsm: JetStreamManager, streams: StreamSettings, integration: IntegrationRef, filter: DeadLetterFilter = {}): Promise<StoredDeadLetter[]> {
  const out: StoredDeadLetter[] = [];
  if (filter.limit !== undefined && filter.limit <= 0) return out;
  for await (const d of deadLettersOf(jsm, streams, integration)) {
    if (!matches(d, filter)) continue;
    out.push(d);
    if (filter.limit !== undefined && out.length >= filter.limit) break;
  }
  return out;
}

/**
 * The dead letter at sequence `seq` of the dead-letter stream, or undefined when there is none,
 * it belongs to another Integration, or it is not a dead letter's JSON.
 * @throws JetStreamApiError when the dead-letter stream is missing or the server refuses the read.
 */
export async function getDeadLetter(jsm: JetStreamManager, streams: StreamSettings, integration: IntegrationRef, seq: number): Promise<StoredDeadLetter | undefined> {
  if (!Number.isSafeInteger(seq) || seq < 1) return undefined;
  const m = await readMessage(jsm, streams.deadLetter.name, seq);
  if (!m || m.subject !== deadLetterSubject(streams.subjectPrefix, integration.namespace, integration.name)) return undefined;
  return toStored(m);
}

/**
 * What became of one dead letter in {@link replayDeadLetters}:
 * - `replayed`: stored in the events stream on the replay subject (`replaySeq`);
 * - `duplicate`: the same letter was already replayed within the events stream's duplicate window
 *   (same `Nats-Msg-Id`), so nothing was stored again and it is not delivered twice;
 * - `dry_run`: would have been replayed (`subject`), nothing done;
 * - `no_event`: the letter holds no event object to replay (max_deliver_exceeded whose event had
 *   aged out of the events stream, or an invalid_event whose stored message was not JSON);
 * - `not_found`: no dead letter of this Integration at that sequence (deleted, expired, or another's);
 * - `failed`: it could not be replayed (`error`: unknown source or type, publish refused…).
 */
export type ReplayOutcome = 'replayed' | 'duplicate' | 'dry_run' | 'no_event' | 'not_found' | 'failed';

/** One dead letter's result in {@link replayDeadLetters}. */
export interface ReplayResult {
  /** Dead-letter stream sequence. */
  seq: number;
  outcome: ReplayOutcome;
  /** Why it was not replayed (no_event, not_found, failed), or why the dead letter is still there. */
  error?: string;
  /** Reason the event was dead-lettered. */
  reason?: DeadLetterReason;
  /** Segment messageId of the event, when it has one. */
  messageId?: string;
  /** Replay subject it was (or would be) published on. */
  subject?: string;
  /** Sequence of the replayed event in the events stream (replayed, duplicate). */
  replaySeq?: number;
  /** Whether the dead letter was deleted from the dead-letter stream (never with `keep` or `dryRun`). */
  deleted: boolean;
}

/** Options of {@link replayDeadLetters}. */
export interface ReplayOptions {
  /**
   * Dead-letter stream sequences to replay, in this order (repeats ignored). When absent, every
   * dead letter of the Integration passing `filter` is replayed, oldest first.
   */
  seqs?: number[];
  /** Which letters, when `seqs` is absent. Default: all. */
  filter?: DeadLetterFilter;
  /** Keep the dead letters after replaying them. Default false: each is deleted once its replay is stored. */
  keep?: boolean;
  /** Only say what would be replayed. Default false. */
  dryRun?: boolean;
  /** How long to wait for each JetStream acknowledgement, in ms. Default 5 000. */
  timeoutMs?: number;
}

/** True when a result needs attention: not replayed (or a dry run that could not be), or replayed but its dead letter could not be deleted. */
export function replayFailed(r: ReplayResult): boolean {
  return !(r.outcome === 'replayed' || r.outcome === 'duplicate' || r.outcome === 'dry_run') || r.error !== undefined;
}

const isEventType = (t: unknown): t is EventType => typeof t === 'string' && (EVENT_TYPES as readonly string[]).includes(t);

/** Where a stored dead letter's event goes: its Source name and event type, or why it cannot be replayed. */
function target(streams: StreamSettings, d: StoredDeadLetter): { source: string; type: EventType; event: Record<string, unknown> } | { outcome: 'no_event' | 'failed'; error: string } {
  const { letter } = d;
  const event = letter.event;
  if (!event || typeof event !== 'object' || Array.isArray(event)) {
    const why = event === null || event === undefined ? 'the event was no longer in the events stream when it was dead-lettered' : 'the stored event is not a JSON object';
    return { outcome: 'no_event', error: `no event to replay: ${why}` };
  }
  const parsed = parseDeliverySubject(streams.subjectPrefix, letter.subject);
  // Sy-Source is `namespace/name`; the Source lives in the Integration's namespace.
  const source = letter.source ? letter.source.slice(letter.source.indexOf('/') + 1) : parsed?.source;
  if (!source) return { outcome: 'failed', error: 'its Source is unknown (no source and no event subject in the dead letter)' };
  const record = event as Record<string, unknown>;
  const type = isEventType(record.type) ? record.type : isEventType(parsed?.type) ? parsed.type : undefined;
  if (!type) return { outcome: 'failed', error: `its event type is unknown (${JSON.stringify(record.type ?? null)})` };
  return { source, type, event: record };
}

/**
 * Checks that a replay would be consumed: the events stream takes the Integration's replay
 * subjects, and its consumer filters on them. Without this, a replay would be stored where nothing
 * reads it while its dead letter is deleted.
 * @throws SwitchyardError MISSING_REFERENCE naming what is missing.
 */
async function assertReplayable(jsm: JetStreamManager, streams: StreamSettings, integration: IntegrationRef, probe: string): Promise<void> {
  const label = `${integration.namespace}/${integration.name}`;
  const stream = await jsm.streams.find(probe).catch(() => undefined);
  if (stream !== streams.events.name) {
    throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `the events stream ${streams.events.name} does not take replays (subject ${probe}${stream ? ` belongs to stream ${stream}` : ' has no stream'}): update the streams (the operator and every process do it at start)`);
  }
  const name = consumerName(integration.namespace, integration.name);
  let filters: string[];
  try {
    const { config } = await jsm.consumers.info(streams.events.name, name);
    filters = config.filter_subjects ?? (config.filter_subject ? [config.filter_subject] : []);
  } catch (e) {
    if (e instanceof JetStreamApiError && e.code === 10014) throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `Integration ${label}: no consumer ${name} on stream ${streams.events.name}, so nothing would deliver a replay`, { cause: e });
    throw e;
  }
  const filter = integrationReplayFilter(streams.subjectPrefix, integration.namespace, integration.name);
  if (!filters.includes(filter)) {
    throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `Integration ${label}: its consumer ${name} does not take replays (filters ${filters.join(', ') || 'none'}; ${filter} missing): update it first (the operator, or forward --create-consumer)`);
  }
}

/**
 * Replays dead letters of one Integration: for each chosen letter holding an event object,
 * publishes the stored event unchanged (so its messageId, the vendor-facing event id of the
 * starter Mappings, stays the same and the vendor dedups) on
 * `<prefix>.replay.<ns>.<integration>.<source>.<type>` in the events stream, which only this
 * Integration's consumer takes, with headers `Sy-Source` (`<ns>/<source>`), `Sy-Replay-Of` (the
 * dead-letter sequence), `Sy-Consent-Missing` when the dead letter carries it, and `Nats-Msg-Id`
 * `replay:<ns>/<integration>/<dead-letter seq>`: not the ingestion's id, so a replay inside the
 * duplicate window is stored, while the same letter replayed twice inside it is stored once
 * (`duplicate`). Once JetStream acknowledged the replay, the dead letter is deleted (unless
 * `keep`); when that fails the result is still `replayed`, with `error` set. Letters are handled
 * one at a time, oldest first (or in `seqs` order); a failure does not stop the others.
 * Before publishing anything, checks that the events stream takes replay subjects and the
 * Integration's consumer filters on its replay subject (skipped for a dry run).
 * @returns one result per chosen letter (see {@link ReplayOutcome}; {@link replayFailed} tells which need attention).
 * @throws SwitchyardError MISSING_REFERENCE when the stream or consumer does not take replays;
 * JetStreamApiError when the dead-letter stream cannot be read.
 */
export async function replayDeadLetters(jsm: JetStreamManager, streams: StreamSettings, integration: IntegrationRef, options: ReplayOptions = {}): Promise<ReplayResult[]> {
  const { namespace, name } = integration;
  const chosen: (StoredDeadLetter | number)[] = [];
  if (options.seqs) {
    for (const seq of new Set(options.seqs)) chosen.push((await getDeadLetter(jsm, streams, integration, seq)) ?? seq);
  } else {
    chosen.push(...(await listDeadLetters(jsm, streams, integration, options.filter)));
  }
  const js = jsm.jetstream();
  const results: ReplayResult[] = [];
  let checked = !!options.dryRun;
  for (const d of chosen) {
    if (typeof d === 'number') {
      results.push({ seq: d, outcome: 'not_found', error: `no dead letter of ${namespace}/${name} at sequence ${d}`, deleted: false });
      continue;
    }
    const { letter } = d;
    const messageId = letter.event && typeof letter.event === 'object' && typeof (letter.event as { messageId?: unknown }).messageId === 'string' ? (letter.event as { messageId: string }).messageId : undefined;
    const base = { seq: d.seq, reason: letter.reason, ...(messageId !== undefined ? { messageId } : {}) };
    const to = target(streams, d);
    if ('outcome' in to) {
      results.push({ ...base, outcome: to.outcome, error: to.error, deleted: false });
      continue;
    }
    const subject = replaySubject(streams.subjectPrefix, namespace, name, to.source, to.type);
    if (options.dryRun) {
      results.push({ ...base, outcome: 'dry_run', subject, deleted: false });
      continue;
    }
    if (!checked) {
      await assertReplayable(jsm, streams, integration, subject);
      checked = true;
    }
    const h = natsHeaders();
    h.set('Sy-Source', `${namespace}/${to.source}`);
    h.set(REPLAY_OF_HEADER, String(d.seq));
    const consent = d.headers[CONSENT_MISSING_HEADER];
    if (consent) h.set(CONSENT_MISSING_HEADER, consent);
    let ack;
    try {
      ack = await js.publish(subject, JSON.stringify(to.event), {
        msgID: replayDedupId(namespace, name, d.seq),
        expect: { streamName: streams.events.name },
        headers: h,
        timeout: options.timeoutMs ?? 5_000,
      });
    } catch (e) {
      results.push({ ...base, outcome: 'failed', subject, error: `publish failed: ${(e as Error).message}`, deleted: false });
      continue;
    }
    const result: ReplayResult = { ...base, outcome: ack.duplicate ? 'duplicate' : 'replayed', subject, replaySeq: ack.seq, deleted: false };
    if (!options.keep) {
      try {
        result.deleted = await jsm.streams.deleteMessage(streams.deadLetter.name, d.seq);
        if (!result.deleted) result.error = 'replayed, but the dead letter could not be deleted';
      } catch (e) {
        // Deleted meanwhile (another replay) is as good as deleted.
        if (e instanceof JetStreamApiError && e.code === 10057 && /no message found/i.test(e.message)) result.deleted = true;
        else result.error = `replayed, but the dead letter could not be deleted: ${(e as Error).message}`;
      }
    }
    results.push(result);
  }
  return results;
}
