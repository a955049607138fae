import { AckPolicy, DeliverPolicy, JetStreamApiError, ReplayPolicy, type ConsumerConfig, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream';
import { EVENT_TYPES, Integration } from '../api/index.js';
import { compileValidator, createAjv, formatProblems } from '../api/validate.js';
import { effectiveBatchSize } from '../destinations/index.js';
import { systemClock, type Clock } from '../clock.js';
import { nanos, parseDuration } from '../duration.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { consumerName, integrationReplayFilter, maxDeliveriesAdvisorySubject, sourceFilter } from '../nats/subjects.js';
import type { StreamSettings } from '../settings.js';

/** Fixed part of a delivery's ack wait on top of twice the request timeout (see {@link ackWaitMs}). */
export const ACK_WAIT_MARGIN_MS = 5_000;
/** Ack wait of the advisory consumer: one advisory takes a stream read and a publish. */
export const ADVISORY_ACK_WAIT_MS = 30_000;

const CONSUMER_NOT_FOUND = 10014;
const CONSUMER_ALREADY_EXISTS = [10148, 10013, 10105];

let validateIntegration: ReturnType<typeof compileValidator<Integration>> | undefined;

/**
 * Validates an Integration against its schema and returns a copy with every default applied
 * (events.types, delivery.*, paused…), `delivery.batchSize` from its destination type when unset,
 * and `metadata.namespace` set (`default` when absent).
 * @throws SwitchyardError INVALID_RESOURCE naming every problem.
 */
export function normalizeIntegration(integration: Integration): Integration {
  validateIntegration ??= compileValidator<Integration>(Integration, createAjv());
  const copy = structuredClone(integration);
  const result = validateIntegration(copy);
  if (!result.ok) {
    const name = `${integration?.metadata?.namespace ?? 'default'}/${integration?.metadata?.name ?? '?'}`;
    throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `invalid Integration ${name}:\n${formatProblems(result.problems)}`, { details: result.problems });
  }
  result.value.metadata.namespace ??= 'default';
  result.value.spec.delivery.batchSize ??= effectiveBatchSize(result.value);
  return result.value;
}

/**
 * Base ack wait of an Integration's consumer in milliseconds: `2 × timeout + 5 s` (its `backoff`
 * adds each retry's delay to it, see {@link integrationConsumerConfig}). A message may wait in
 * the client buffer for one round of requests (≤ timeout) before its own request (≤ timeout),
 * then its dead letter is published; the ack wait must outlast all of it or JetStream would
 * redeliver a message that is still being worked on
 * (https://docs.nats.io/nats-concepts/jetstream/consumers#ackwait).
 */
export function ackWaitMs(timeoutMs: number): number {
  return timeoutMs * 2 + ACK_WAIT_MARGIN_MS;
}

/**
 * Filter subjects of an Integration: one per source × event type
 * (`<prefix>.events.<ns>.<source>.<type>`), or one `…<source>.*` per source when every type is
 * taken, then its replay filter `<prefix>.replay.<ns>.<name>.>` ({@link integrationReplayFilter}),
 * so dead letters replayed to it reach this consumer alone. Sources are de-duplicated (JetStream
 * refuses overlapping filters). Never fewer than two filters.
 */
export function integrationFilters(streams: StreamSettings, integration: Integration): string[] {
  const ns = integration.metadata.namespace ?? 'default';
  const types = [...new Set(integration.spec.events.types)];
  const all = EVENT_TYPES.every((t) => types.includes(t));
  const sources = [...new Set(integration.spec.sourceRefs.map((r) => r.name))];
  const events = sources.flatMap((s) => (all ? [sourceFilter(streams.subjectPrefix, ns, s)] : types.map((t) => sourceFilter(streams.subjectPrefix, ns, s, t))));
  return [...events, integrationReplayFilter(streams.subjectPrefix, ns, integration.metadata.name)];
}

/**
 * Desired configuration of an Integration's durable pull consumer on the events stream (pure; the
 * Integration must have its defaults applied, see {@link normalizeIntegration}):
 * - name `consumerName(ns, name)`, explicit acks;
 * - `filter_subjects` from {@link integrationFilters} (`filter_subject` when there is one);
 * - `max_deliver` = retrySchedule.length + 1 (every retry is a redelivery),
 *   `max_ack_pending` = batchSize × concurrency × 2 (one round in flight, one buffered);
 * - `backoff` (ns), one entry per retry: `backoff[i]` = {@link ackWaitMs}(timeout) + retrySchedule[i].
 *   It times redeliveries after an ack wait ran out, i.e. when the forwarder died without naking:
 *   JetStream waits `backoff[n-1]` after delivery n, so a crashed attempt is retried on the same
 *   schedule the forwarder's own naks follow (nak delay = retrySchedule[n-1]), once the attempt can
 *   no longer be in progress. Omitted when the schedule is empty;
 * - `ack_wait` = backoff[0] when there is a backoff (JetStream uses backoff[0] for the first
 *   delivery and overwrites ack_wait with it), else {@link ackWaitMs}(timeout); in ns. Either way
 *   every delivery's ack wait outlasts a request in progress;
 * - deliver policy `new`, or `by_start_time` at `delivery.startAt` (backfill). These only matter
 *   at creation: see {@link ensureIntegrationConsumer}.
 * JetStream requires max_deliver > backoff length, which `retrySchedule.length + 1` satisfies.
 * See https://docs.nats.io/nats-concepts/jetstream/consumers#configuration and
 * https://docs.nats.io/nats-concepts/jetstream/consumers#backoff.
 */
export function integrationConsumerConfig(streams: StreamSettings, integration: Integration): Partial<ConsumerConfig> & { durable_name: string } {
  const ns = integration.metadata.namespace ?? 'default';
  const { delivery } = integration.spec;
  const filters = integrationFilters(streams, integration);
  const ackWait = ackWaitMs(parseDuration(delivery.timeout));
  const backoff = delivery.retrySchedule.map((d) => nanos(ackWait + parseDuration(d)));
  const config: Partial<ConsumerConfig> & { durable_name: string } = {
    durable_name: consumerName(ns, integration.metadata.name),
    description: `Switchyard Integration ${ns}/${integration.metadata.name}`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: delivery.startAt ? DeliverPolicy.StartTime : DeliverPolicy.New,
    ack_wait: backoff[0] ?? nanos(ackWait),
    max_deliver: delivery.retrySchedule.length + 1,
    max_ack_pending: effectiveBatchSize(integration) * delivery.concurrency * 2,
  };
  if (backoff.length > 0) config.backoff = backoff;
  if (delivery.startAt) config.opt_start_time = new Date(delivery.startAt).toISOString();
  if (filters.length === 1) config.filter_subject = filters[0]!;
  else config.filter_subjects = filters;
  return config;
}

/**
 * Desired configuration of an Integration's durable consumer on the advisories stream: same name
 * as its events consumer, filtered to that consumer's max-deliveries advisories, starting at
 * `since` (the events consumer's creation), explicit acks, unlimited redeliveries.
 */
export function advisoryConsumerConfig(streams: StreamSettings, integration: Integration, since: Date): Partial<ConsumerConfig> & { durable_name: string } {
  const ns = integration.metadata.namespace ?? 'default';
  const name = consumerName(ns, integration.metadata.name);
  return {
    durable_name: name,
    description: `Switchyard Integration ${ns}/${integration.metadata.name}: max-deliveries advisories`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: since.toISOString(),
    ack_wait: nanos(ADVISORY_ACK_WAIT_MS),
    max_deliver: -1,
    max_ack_pending: 64,
    filter_subject: maxDeliveriesAdvisorySubject(streams.events.name, name),
  };
}

const filtersOf = (c: Partial<ConsumerConfig>): string[] => [...(c.filter_subjects ?? (c.filter_subject ? [c.filter_subject] : []))].sort();

/**
 * The fields of `desired` the server lets us change and that differ from `live` (empty: nothing to
 * do): description, ack_wait, max_deliver, max_ack_pending, backoff (`backoff: undefined` removes
 * it) and the filters (`filter_subject` / `filter_subjects`, the unused one `undefined`). Start
 * position fields are never part of it.
 */
export function consumerUpdate(live: ConsumerConfig, desired: Partial<ConsumerConfig>): Partial<ConsumerConfig> {
  const delta: Partial<ConsumerConfig> = {};
  for (const key of ['description', 'ack_wait', 'max_deliver', 'max_ack_pending'] as const) {
    if (desired[key] !== undefined && desired[key] !== live[key]) (delta as Record<string, unknown>)[key] = desired[key];
  }
  // An empty list and none are the same to the server (it omits an empty backoff).
  if (JSON.stringify(desired.backoff ?? []) !== JSON.stringify(live.backoff ?? [])) delta.backoff = desired.backoff?.length ? desired.backoff : undefined;
  const want = filtersOf(desired);
  if (JSON.stringify(want) !== JSON.stringify(filtersOf(live))) {
    if (want.length === 1) Object.assign(delta, { filter_subject: want[0], filter_subjects: undefined });
    else Object.assign(delta, { filter_subjects: want, filter_subject: undefined });
  }
  return delta;
}

/**
 * Consumer fields nats-server refuses to change on an update (v2.15.2 `checkNewConsumerConfig` in
 * https://github.com/nats-io/nats-server/blob/v2.15.2/server/consumer.go), that our consumers
 * depend on, each with the value an unset field means (`absent`; none: compared only when the
 * desired config sets the field) and the start of the server's refusal message. The server also
 * refuses deliver_policy, opt_start_seq and opt_start_time changes: those are deliberately not
 * compared (the start position only matters at creation), and `direct` / `sourcing` (set only on
 * the server's own mirror and source consumers).
 */
const IMMUTABLE_FIELDS: readonly { field: keyof ConsumerConfig; absent?: unknown; refusal: RegExp }[] = [
  { field: 'ack_policy', refusal: /^ack policy can not be updated/ },
  // Present means a push consumer, which our pulls cannot use.
  { field: 'deliver_subject', absent: '', refusal: /^can not update (pull consumer to push|push consumer to pull) based/ },
  { field: 'replay_policy', absent: ReplayPolicy.Instant, refusal: /^replay policy can not be updated/ },
  { field: 'mem_storage', absent: false, refusal: /^storage type can not be updated/ },
  { field: 'idle_heartbeat', absent: 0, refusal: /^heart beats can not be updated/ },
  { field: 'flow_control', absent: false, refusal: /^flow control can not be updated/ },
  { field: 'max_waiting', refusal: /^max waiting can not be updated/ },
];

const valueOf = (config: Partial<ConsumerConfig>, f: (typeof IMMUTABLE_FIELDS)[number]): unknown => config[f.field] ?? f.absent;

/**
 * The fields the server cannot update (ack_policy, deliver_subject, replay_policy, mem_storage,
 * idle_heartbeat, flow_control, max_waiting) whose `live` value differs from `desired`, in that
 * order (empty: an update will do). An unset field counts as its server default (no
 * deliver_subject = pull, replay `instant`, file storage, no heartbeat or flow control);
 * max_waiting only counts when `desired` sets it. Start position differences (deliver_policy,
 * opt_start_seq, opt_start_time) never count: a `delivery.startAt` changed after creation is not a
 * reason to re-create. Rules: https://docs.nats.io/nats-concepts/jetstream/consumers#configuration
 * and nats-server's `checkNewConsumerConfig`.
 */
export function immutableConsumerChanges(live: ConsumerConfig, desired: Partial<ConsumerConfig>): string[] {
  return IMMUTABLE_FIELDS.filter((f) => (desired[f.field] !== undefined || f.absent !== undefined) && valueOf(live, f) !== valueOf(desired, f)).map((f) => f.field);
}

/**
 * The field a JetStreamApiError refuses to update, from its message (e.g. `ack policy can not be
 * updated` → `ack_policy`; the message itself when unknown), or undefined for any other error.
 */
function refusedField(e: unknown): string | undefined {
  if (!(e instanceof JetStreamApiError) || !/can ?not (be )?update/i.test(e.message)) return undefined;
  return IMMUTABLE_FIELDS.find((f) => f.refusal.test(e.message))?.field ?? e.message;
}

/** What {@link ensureIntegrationConsumer} did to the events consumer, for the operator to report. */
/** Where a lost consumer resumes: after `ackFloor` of the events stream created at `streamCreated`. */
export interface ResumePoint {
  /** Stream sequence up to which every event was acknowledged. */
  ackFloor: number;
  /** The events stream's creation time (JetStream `created`) when `ackFloor` was observed; unknown: undefined. */
  streamCreated?: string;
}

export interface IntegrationConsumerResult {
  /** The events consumer's info after the call. */
  info: ConsumerInfo;
  /**
   * `created` (there was none), `updated` (changed in place), `recreated` (deleted and created
   * again from its ack floor, because a field had to change that the server cannot update) or
   * `unchanged`.
   */
  action: 'created' | 'updated' | 'recreated' | 'unchanged';
  /** For `created` with `resumeAfter`: the stream sequence the new consumer starts at. */
  resumedAt?: number;
  /**
   * Consumer config fields (JetStream names, e.g. `backoff`, `ack_policy`) that differed: for
   * `recreated`, those the server cannot update first. Absent for `created` and `unchanged`.
   */
  changed?: string[];
}

async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (e) {
    if (e instanceof JetStreamApiError && e.code === CONSUMER_NOT_FOUND) return undefined;
    throw e;
  }
}

const changedFields = (delta: Partial<ConsumerConfig>): string[] => [...new Set(Object.keys(delta).map((k) => (k === 'filter_subject' ? 'filter_subjects' : k)))];

/** Creates the consumer; when another process created it meanwhile, returns that one's info. */
async function createConsumer(jsm: JetStreamManager, stream: string, config: Partial<ConsumerConfig> & { durable_name: string }): Promise<{ info: ConsumerInfo; raced: boolean }> {
  try {
    return { info: await jsm.consumers.add(stream, config), raced: false };
  } catch (e) {
    if (!(e instanceof JetStreamApiError && CONSUMER_ALREADY_EXISTS.includes(e.code))) throw e;
    return { info: await jsm.consumers.info(stream, config.durable_name), raced: true };
  }
}

/**
 * Replaces a consumer by `desired`, resuming where the old one stands. Read again first (`fallback`
 * is the info read before, in case another process deleted it meanwhile): the new consumer starts
 * `by_start_sequence` at ack_floor.stream_seq + 1. The server keeps the ack floor at the start
 * sequence − 1 from creation on, so this holds for a consumer that never delivered anything too,
 * except that a `by_start_time` (Integration `startAt`) backfill not begun yet keeps its start.
 * One attempt: an error is thrown, never retried here.
 */
async function recreateConsumer(
  jsm: JetStreamManager,
  stream: string,
  desired: Partial<ConsumerConfig> & { durable_name: string },
  fallback: ConsumerInfo,
): Promise<{ info: ConsumerInfo; previous: ConsumerInfo }> {
  const previous = (await consumerInfo(jsm, stream, desired.durable_name)) ?? fallback;
  let config = desired;
  if (!(previous.delivered.consumer_seq === 0 && desired.deliver_policy === DeliverPolicy.StartTime)) {
    const { opt_start_time: _startTime, ...rest } = desired;
    config = { ...rest, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: previous.ack_floor.stream_seq + 1 };
  }
  try {
    await jsm.consumers.delete(stream, desired.durable_name);
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.code === CONSUMER_NOT_FOUND)) throw e;
  }
  return { info: (await createConsumer(jsm, stream, config)).info, previous };
}

/**
 * The config of a consumer that must resume after stream sequence `after` (it existed and was
 * lost): `by_start_sequence` at after + 1, or every stored event when the stream is not the one
 * `after` counts in (its creation time differs from `streamCreated`, or its last sequence is below
 * `after`): the stream itself was re-created, so all it holds is new.
 */
async function resumeConfig(jsm: JetStreamManager, stream: string, desired: Partial<ConsumerConfig> & { durable_name: string }, after: number, streamCreated?: string): Promise<Partial<ConsumerConfig> & { durable_name: string }> {
  const { opt_start_time: _startTime, ...rest } = desired;
  const { state, created } = await jsm.streams.info(stream);
  if ((streamCreated !== undefined && created !== streamCreated) || state.last_seq < after) return { ...rest, deliver_policy: DeliverPolicy.All };
  return { ...rest, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 };
}

/**
 * Brings one consumer to `desired`: creates it, updates the fields that can be updated, or
 * re-creates it (see recreateConsumer) when a field must change that the server cannot update,
 * found by {@link immutableConsumerChanges} or by the server refusing the update.
 */
async function reconcileConsumer(
  jsm: JetStreamManager,
  stream: string,
  desired: Partial<ConsumerConfig> & { durable_name: string },
  resume?: ResumePoint,
): Promise<IntegrationConsumerResult & { previous?: ConsumerInfo }> {
  let live = await consumerInfo(jsm, stream, desired.durable_name);
  if (!live) {
    const resumed = resume === undefined ? undefined : await resumeConfig(jsm, stream, desired, resume.ackFloor, resume.streamCreated);
    const created = await createConsumer(jsm, stream, resumed ?? desired);
    if (!created.raced) return { info: created.info, action: 'created', ...(resumed ? { resumedAt: resumed.opt_start_seq ?? created.info.delivered.stream_seq + 1 } : {}) };
    live = created.info; // another process created it meanwhile: check it like an existing one
  }
  const delta = consumerUpdate(live.config, desired);
  const immutable = immutableConsumerChanges(live.config, desired);
  if (immutable.length > 0) {
    const { info, previous } = await recreateConsumer(jsm, stream, desired, live);
    return { info, action: 'recreated', changed: [...new Set([...immutable, ...changedFields(delta)])], previous };
  }
  if (Object.keys(delta).length === 0) return { info: live, action: 'unchanged' };
  // The client merges the patch over a fresh info read. It also restates the fields that cannot be
  // updated as we checked them, so if the consumer was replaced meanwhile the server refuses instead
  // of applying our change to a consumer we did not check.
  const patch: Partial<ConsumerConfig> = { ...delta };
  for (const f of IMMUTABLE_FIELDS) if (desired[f.field] !== undefined || f.absent !== undefined) (patch as Record<string, unknown>)[f.field] = valueOf(desired, f);
  try {
    return { info: await jsm.consumers.update(stream, desired.durable_name, patch), action: 'updated', changed: changedFields(delta) };
  } catch (e) {
    const refused = refusedField(e);
    if (refused === undefined) throw e;
    const { info, previous } = await recreateConsumer(jsm, stream, desired, live);
    return { info, action: 'recreated', changed: [...new Set([refused, ...changedFields(delta)])], previous };
  }
}

/**
 * Creates an Integration's JetStream consumers, or brings existing ones up to date. Idempotent and
 * safe to run concurrently from several processes (the operator, `switchyard dev`, `forward
 * --create-consumer`). Two durable pull consumers, both named `consumerName(ns, name)`:
 * 1. on the events stream, configured by {@link integrationConsumerConfig}. When it exists:
 *    - the fields the server lets us change (ack_wait, backoff, max_deliver, max_ack_pending,
 *      filters, description) are updated when they differ (`updated`);
 *    - when a field differs that the server cannot update ({@link immutableConsumerChanges}: e.g.
 *      a consumer made by hand with AckAll, or a push consumer), or the server refuses the update as
 *      such, it is deleted and created again from the old one's ack floor (`recreated`):
 *      `by_start_sequence` at ack_floor.stream_seq + 1, so no event is skipped and none acked in
 *      order is delivered again. At-least-once: events in flight at that moment, and events acked
 *      out of order above the ack floor, may be delivered once more; their delivery counts start
 *      over; a forwarder pulling from the old consumer loses it (its acks no longer count). Two
 *      processes re-creating at once may both do it, each from an ack floor, so still nothing is
 *      skipped;
 *    - deliver policy and start time stay as created: `startAt` only matters at creation, and a
 *      change of it alone neither updates nor re-creates the consumer;
 *    When it is missing but `options.resumeAfter` is given (the stream sequence the Integration's
 *    consumer had acknowledged everything up to, and the stream it counts in, as last observed),
 *    the consumer existed and was
 *    lost (deleted by hand, or with the server's state): it is created to start right after that
 *    sequence (every stored event when the stream was re-created since) instead of at new events,
 *    so the events stored meanwhile are not skipped
 *    (`resumedAt`); those acked since the observation are delivered once more (at-least-once);
 * 2. on the advisories stream, {@link advisoryConsumerConfig}, created when missing (never changed)
 *    starting at the events consumer's creation time (the replaced consumer's after a re-creation;
 *    `clock.now()` when the server reports none), so the forwarder dead-letters events JetStream
 *    gave up on. A re-creation leaves an existing one as it is: its start stays the first events
 *    consumer's creation, and advisories the old consumer left are still handled.
 * Updates and re-creations follow https://docs.nats.io/nats-concepts/jetstream/consumers#configuration.
 * @returns what was done to the events consumer, with its info.
 * @throws SwitchyardError INVALID_RESOURCE for an invalid Integration; JetStreamApiError when the
 * server refuses a configuration (other than as a field that cannot be updated), the consumer
 * vanishes during an update, or a stream is missing (run ensureStreams first).
 */
export async function ensureIntegrationConsumer(
  jsm: JetStreamManager,
  streams: StreamSettings,
  integration: Integration,
  clock: Clock = systemClock,
  options: { resumeAfter?: ResumePoint } = {},
): Promise<IntegrationConsumerResult> {
  const normalized = normalizeIntegration(integration);
  const { previous, ...result } = await reconcileConsumer(jsm, streams.events.name, integrationConsumerConfig(streams, normalized), options.resumeAfter);
  const createdAt = previous?.created ?? result.info.created;
  const since = createdAt ? new Date(createdAt) : new Date(clock.now());
  const advisory = advisoryConsumerConfig(streams, normalized, since);
  if (!(await consumerInfo(jsm, streams.advisories.name, advisory.durable_name))) await createConsumer(jsm, streams.advisories.name, advisory);
  return result;
}

/**
 * The live info of an Integration's events consumer, or undefined when it does not exist (never
 * created, or deleted by hand: {@link ensureIntegrationConsumer} creates it again). The operator
 * reads it periodically for {@link consumerBacklog}.
 * @throws JetStreamApiError for other failures, e.g. the events stream is missing.
 */
export async function integrationConsumerInfo(jsm: JetStreamManager, streams: StreamSettings, integration: Pick<Integration, 'metadata'>): Promise<ConsumerInfo | undefined> {
  return consumerInfo(jsm, streams.events.name, consumerName(integration.metadata.namespace ?? 'default', integration.metadata.name));
}

/**
 * Events waiting for delivery on a consumer: `num_pending` (matching events not delivered yet) +
 * `num_ack_pending` (delivered, not acked yet: in flight or waiting for a redelivery), a count of
 * events. See https://docs.nats.io/nats-concepts/jetstream/consumers (consumer info).
 */
export function consumerBacklog(info: ConsumerInfo): number {
  return info.num_pending + info.num_ack_pending;
}

/**
 * Deletes an Integration's consumers (events and advisories); missing ones are ignored. Events
 * stay in the stream for other Integrations.
 */
export async function deleteIntegrationConsumers(jsm: JetStreamManager, streams: StreamSettings, integration: Pick<Integration, 'metadata'>): Promise<void> {
  const name = consumerName(integration.metadata.namespace ?? 'default', integration.metadata.name);
  for (const stream of [streams.events.name, streams.advisories.name]) {
    try {
      await jsm.consumers.delete(stream, name);
    } catch (e) {
      if (!(e instanceof JetStreamApiError && e.code === CONSUMER_NOT_FOUND)) throw e;
    }
  }
}
