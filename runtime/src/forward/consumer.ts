import { AckPolicy, DeliverPolicy, JetStreamApiError, type ConsumerConfig, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream';
import { EVENT_TYPES, Integration } from '../api/index.js';
import { compileValidator, createAjv, formatProblems } from '../api/validate.js';
import { systemClock, type Clock } from '../clock.js';
import { nanos, parseDuration } from '../duration.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { consumerName, maxDeliveriesAdvisorySubject, sourceFilter } from '../nats/subjects.js';
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
 * (events.types, delivery.*, paused…) and `metadata.namespace` set (`default` when absent).
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
  return result.value;
}

/**
 * Ack wait of an Integration's consumer in milliseconds: `2 × timeout + 5 s`. A message may wait in
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
 * taken. Sources are de-duplicated (JetStream refuses overlapping filters).
 */
export function integrationFilters(streams: StreamSettings, integration: Integration): string[] {
  const ns = integration.metadata.namespace ?? 'default';
  const types = [...new Set(integration.spec.events.types)];
  const all = EVENT_TYPES.every((t) => types.includes(t));
  const sources = [...new Set(integration.spec.sourceRefs.map((r) => r.name))];
  return sources.flatMap((s) => (all ? [sourceFilter(streams.subjectPrefix, ns, s)] : types.map((t) => sourceFilter(streams.subjectPrefix, ns, s, t))));
}

/**
 * Desired configuration of an Integration's durable pull consumer on the events stream (pure; the
 * Integration must have its defaults applied, see {@link normalizeIntegration}):
 * - name `consumerName(ns, name)`, explicit acks;
 * - `filter_subjects` from {@link integrationFilters} (`filter_subject` when there is one);
 * - `ack_wait` {@link ackWaitMs}, `max_deliver` = retrySchedule.length + 1 (every retry is a redelivery),
 *   `max_ack_pending` = batchSize × concurrency × 2 (one round in flight, one buffered);
 * - deliver policy `new`, or `by_start_time` at `delivery.startAt` (backfill).
 * See https://docs.nats.io/nats-concepts/jetstream/consumers#configuration.
 */
export function integrationConsumerConfig(streams: StreamSettings, integration: Integration): Partial<ConsumerConfig> & { durable_name: string } {
  const ns = integration.metadata.namespace ?? 'default';
  const { delivery } = integration.spec;
  const filters = integrationFilters(streams, integration);
  const config: Partial<ConsumerConfig> & { durable_name: string } = {
    durable_name: consumerName(ns, integration.metadata.name),
    description: `Switchyard Integration ${ns}/${integration.metadata.name}`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: delivery.startAt ? DeliverPolicy.StartTime : DeliverPolicy.New,
    ack_wait: nanos(ackWaitMs(parseDuration(delivery.timeout))),
    max_deliver: delivery.retrySchedule.length + 1,
    max_ack_pending: delivery.batchSize * delivery.concurrency * 2,
  };
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

/** The fields of `desired` the server lets us change and that differ from `live` (empty: nothing to do). */
export function consumerUpdate(live: ConsumerConfig, desired: Partial<ConsumerConfig>): Partial<ConsumerConfig> {
  const delta: Partial<ConsumerConfig> = {};
  for (const key of ['description', 'ack_wait', 'max_deliver', 'max_ack_pending'] as const) {
    if (desired[key] !== undefined && desired[key] !== live[key]) (delta as Record<string, unknown>)[key] = desired[key];
  }
  const want = filtersOf(desired);
  if (JSON.stringify(want) !== JSON.stringify(filtersOf(live))) {
    if (want.length === 1) Object.assign(delta, { filter_subject: want[0], filter_subjects: undefined });
    else Object.assign(delta, { filter_subjects: want, filter_subject: undefined });
  }
  return delta;
}

async function consumerInfo(jsm: JetStreamManager, stream: string, name: string): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (e) {
    if (e instanceof JetStreamApiError && e.code === CONSUMER_NOT_FOUND) return undefined;
    throw e;
  }
}

async function createOrUpdate(jsm: JetStreamManager, stream: string, desired: Partial<ConsumerConfig> & { durable_name: string }, update: boolean): Promise<ConsumerInfo> {
  let live = await consumerInfo(jsm, stream, desired.durable_name);
  if (!live) {
    try {
      return await jsm.consumers.add(stream, desired);
    } catch (e) {
      // Another process created it meanwhile: fall through to the update.
      if (!(e instanceof JetStreamApiError && CONSUMER_ALREADY_EXISTS.includes(e.code))) throw e;
      live = await jsm.consumers.info(stream, desired.durable_name);
    }
  }
  if (!update) return live;
  const delta = consumerUpdate(live.config, desired);
  return Object.keys(delta).length > 0 ? jsm.consumers.update(stream, desired.durable_name, delta) : live;
}

/**
 * Creates an Integration's JetStream consumers, or brings existing ones up to date. Idempotent and
 * safe to run concurrently from several processes (the operator, `switchyard dev`, `forward
 * --create-consumer`). Two durable pull consumers, both named `consumerName(ns, name)`:
 * 1. on the events stream, configured by {@link integrationConsumerConfig}. When it exists, the fields
 *    the server lets us change (ack_wait, max_deliver, max_ack_pending, filters, description) are
 *    updated when they differ; deliver policy and start time stay as created (`startAt` only matters
 *    at creation);
 * 2. on the advisories stream, {@link advisoryConsumerConfig}, starting at the events consumer's
 *    creation time (or `clock.now()` when the server reports none), so the forwarder dead-letters
 *    events JetStream gave up on.
 * @returns the events consumer's info.
 * @throws SwitchyardError INVALID_RESOURCE for an invalid Integration; JetStreamApiError when the
 * server refuses a configuration or a stream is missing (run ensureStreams first).
 */
export async function ensureIntegrationConsumer(jsm: JetStreamManager, streams: StreamSettings, integration: Integration, clock: Clock = systemClock): Promise<ConsumerInfo> {
  const normalized = normalizeIntegration(integration);
  const info = await createOrUpdate(jsm, streams.events.name, integrationConsumerConfig(streams, normalized), true);
  const created = info.created ? new Date(info.created) : new Date(clock.now());
  await createOrUpdate(jsm, streams.advisories.name, advisoryConsumerConfig(streams, normalized, created), false);
  return info;
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
