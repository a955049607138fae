import { jetstream, jetstreamManager, JetStreamApiError, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import type { Integration, Mapping } from '../api/index.js';
import { systemClock, type Clock } from '../clock.js';
import { createDestination, effectiveBatchSize, type Destination, type ItemResult, type SendResult } from '../destinations/index.js';
import { parseDuration } from '../duration.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { CONSENT_MISSING_HEADER } from '../ingestion/nats.js';
import type { CompiledMapping, OutputViolation, SegmentEvent } from '../mapping/index.js';
import { consumerName, parseDeliverySubject } from '../nats/subjects.js';
import type { StreamSettings } from '../settings.js';
import { consumerBacklog, normalizeIntegration } from './consumer.js';
import { DeadLetterPublisher, type DeadLetter, type DeadLetterReason } from './dead-letter.js';
import { DeliveryGate, breakerCountsFailure, type DeliveryGateOptions } from './gate.js';
import { compileIntegrationRoute, type IntegrationRoute } from './route.js';
import { forwarderMetrics, type DeliveryOutcomeLabel, type ForwarderMetrics } from './metrics.js';

/** What one forwarder runs: an Integration (metadata.namespace set), its Mapping and the decoded credentials Secret. */
export interface ForwarderConfig {
  integration: Integration;
  mapping: Mapping;
  /** Key → value of the Integration's credentials Secret; `{}` when it has none. */
  credentials: Record<string, string>;
}

/** One event's outcome, as handed to `onDelivery` (and logged). */
export interface DeliveryRecord {
  /** `namespace/name` of the Integration. */
  integration: string;
  outcome: DeliveryOutcomeLabel;
  /** Segment messageId of the event, when it has one. */
  messageId?: string;
  /** `namespace/name` of the Source (Sy-Source header). */
  source?: string;
  /** Event type (track, page…). */
  type?: string;
  /** Output event name given by the Mapping. */
  name?: string;
  /** Sequence of the event in the events stream. */
  streamSeq: number;
  /** Delivery attempt, 1-based (JetStream delivery count). */
  attempt: number;
  /** HTTP status of the attempt, when the destination answered. */
  status?: number;
  /** Wall time of the destination request in milliseconds. */
  durationMs?: number;
  /** Delay before the next attempt in milliseconds (outcome `retried`). */
  retryInMs?: number;
  /** Why it was dropped (`no_matching_rule`), skipped (`event_name`, `event_type`) or dead-lettered. */
  reason?: string;
  /** The failure, for retried and dead-lettered events. */
  error?: string;
}

/** Running totals of one forwarder (events, not requests, except `inFlight`). */
export interface ForwarderStats {
  delivered: number;
  retried: number;
  deadLettered: number;
  skipped: number;
  dropped: number;
  /** Destination requests in progress. */
  inFlight: number;
  /** Messages received from JetStream and not yet in a request. */
  buffered: number;
  /** Last consumer num_pending + num_ack_pending read (see lagIntervalMs), undefined before the first read. */
  pending: number | undefined;
}

/** A running forwarder. */
export interface Forwarder {
  /** `namespace/name` of the Integration. */
  readonly integration: string;
  /** Live counters (the object is updated in place). */
  readonly stats: Readonly<ForwarderStats>;
  /**
   * Graceful stop: stops pulling, delivers what was already received (in-flight requests and the
   * small buffer JetStream already handed over, so no delivery attempt is wasted), acks / naks /
   * dead-letters each of them (acks are confirmed by the server), then closes the destination's
   * connections. Resolves when all of that is done; calling it again returns the same promise.
   * Bounded by about two request timeouts.
   */
  stop(): Promise<void>;
}

/** Options of {@link startForwarder}. */
export interface ForwarderOptions {
  nc: NatsConnection;
  streams: StreamSettings;
  config: ForwarderConfig;
  /** Time source for dead letters' failedAt and Retry-After dates. Default: the system clock. */
  clock?: Clock;
  /** Default: {@link createLogger}. */
  logger?: Logger;
  /** Prometheus registry for the forwarder metrics (shared by forwarders of a process). Default: a private one. */
  registry?: Registry;
  /** How often consumer info is read for `switchyard_consumer_pending`, in ms. Default 10 000. */
  lagIntervalMs?: number;
  /**
   * When fewer than batchSize events are buffered while JetStream reports more pending, how long to
   * wait for them before sending a partial batch, in ms. Default 50. Only used with batchSize > 1.
   */
  batchLingerMs?: number;
  /** Called for every event outcome (after it was acked, nak'ed or dead-lettered). */
  onDelivery?: (d: DeliveryRecord) => void;
  /**
   * Pause after a throttled send without Retry-After, in ms: exponential from `initialMs` up to
   * `maxMs`. Default {initialMs: 1000, maxMs: 60000}.
   */
  throttleBackoff?: DeliveryGateOptions['throttleBackoff'];
}

/** Longest `Retry-After` honoured, in ms; a longer one is cut to this. */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;
/** Shortest delay before a redelivery, in ms, whatever the retry schedule says. */
export const MIN_RETRY_DELAY_MS = 100;
/** Delay before retrying an event whose dead letter could not be stored, in ms. */
const DEAD_LETTER_RETRY_MS = 5_000;
/** A message buffered this long (ms) gets a "working" signal (ack wait restarted) when its request starts. */
const WORKING_AFTER_MS = 1_000;
/** While events wait for the gate, their ack wait is restarted this often, in ms (well under any ack wait: 2 × timeout + 5 s). */
const KEEP_ALIVE_MS = 2_000;
/**
 * Longest time events are held by the forwarder (throttled, or waiting on an open circuit) and sent
 * again after each pause or probe, before they follow the retry schedule, in ms.
 */
export const MAX_HOLD_MS = 15 * 60 * 1000;
/** Pause before re-subscribing after the message iterator ended unexpectedly, in ms. */
const RESUBSCRIBE_MS = 1_000;

/**
 * Delay before the next attempt of an event that failed on attempt `attempt` (1-based):
 * `retrySchedule[attempt-1]`, or the destination's Retry-After when longer (capped at
 * {@link MAX_RETRY_AFTER_MS}), never under {@link MIN_RETRY_DELAY_MS}.
 */
export function retryDelayMs(scheduleMs: readonly number[], attempt: number, retryAfterMs?: number): number {
  const base = scheduleMs[Math.min(attempt, scheduleMs.length) - 1] ?? 0;
  const asked = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
  return Math.max(MIN_RETRY_DELAY_MS, base, asked);
}

/** The messageIds of held events for a log line: the first 20. */
const heldIds = (items: readonly Item[]): (string | undefined)[] => items.slice(0, 20).map((i) => i.messageId);

interface Item {
  msg: JsMsg;
  event: SegmentEvent;
  messageId: string | undefined;
  source: string | undefined;
  type: string | undefined;
  name: string;
  payload: Record<string, unknown>;
}

class ForwarderImpl implements Forwarder {
  readonly integration: string;
  readonly stats: ForwarderStats = { delivered: 0, retried: 0, deadLettered: 0, skipped: 0, dropped: 0, inFlight: 0, buffered: 0, pending: undefined };

  private readonly ns: string;
  private readonly name: string;
  private readonly consumer: string;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly scheduleMs: number[];
  private readonly metrics: ForwarderMetrics;
  private readonly deadLetters: DeadLetterPublisher;
  private readonly js: JetStreamClient;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly lingerMs: number;
  private readonly gate: DeliveryGate;

  /** Messages received and not yet in a request, with when they arrived (performance.now()). */
  private readonly queue: { msg: JsMsg; at: number }[] = [];
  private active = 0;
  private lastPending = 0;
  private lingerTimer: NodeJS.Timeout | undefined;
  private lingerExpired = false;
  private stopping = false;
  private readerDone = false;
  private messages: ConsumerMessages | undefined;
  private advisories: ConsumerMessages | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  private readonly wakers = new Set<() => void>();
  private readonly loops: Promise<void>[] = [];
  private drained: (() => void) | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly streams: StreamSettings,
    integration: Integration,
    private readonly route: IntegrationRoute,
    private readonly destination: Destination,
    private readonly options: ForwarderOptions,
  ) {
    this.ns = integration.metadata.namespace ?? 'default';
    this.name = integration.metadata.name;
    this.integration = `${this.ns}/${this.name}`;
    this.consumer = consumerName(this.ns, this.name);
    const { delivery } = integration.spec;
    this.batchSize = effectiveBatchSize(integration);
    this.concurrency = delivery.concurrency;
    this.scheduleMs = delivery.retrySchedule.map(parseDuration);
    this.clock = options.clock ?? systemClock;
    this.log = (options.logger ?? createLogger()).child({ integration: this.integration });
    this.metrics = forwarderMetrics(options.registry ?? new Registry());
    this.deadLetters = new DeadLetterPublisher(nc, streams, this.consumer);
    this.js = jetstream(nc);
    this.lingerMs = options.batchLingerMs ?? 50;
    const breaker = delivery.circuitBreaker ?? { failures: 5, halfOpenAfter: '30s' };
    this.gate = new DeliveryGate({
      ...(delivery.rateLimit ? { rateLimit: delivery.rateLimit } : {}),
      replicas: integration.spec.forwarder?.replicas ?? 1,
      breakerFailures: breaker.failures,
      halfOpenAfterMs: parseDuration(breaker.halfOpenAfter),
      ...(options.throttleBackoff ? { throttleBackoff: options.throttleBackoff } : {}),
      // Pauses elapse in real time even when tests pin the event clock (vendor age rules, failedAt).
      clock: { now: () => performance.now() },
      onCircuit: (state) => {
        this.metrics.circuitOpen.labels(this.integration).set(state === 'closed' ? 0 : 1);
        if (state === 'open') this.log.error({ failures: breaker.failures, probeInMs: parseDuration(breaker.halfOpenAfter) }, 'circuit open: the destination keeps failing; sending one probe after the pause');
        else if (state === 'closed') this.log.info('circuit closed: the destination answers again');
      },
    });
    // A send never carries more events than one rate-limit window holds.
    this.batchSize = Math.min(this.batchSize, this.gate.maxEventsPerSend);
  }

  start(paused: boolean): void {
    this.metrics.pending.labels(this.integration).set(0);
    this.metrics.circuitOpen.labels(this.integration).set(0);
    if (paused) {
      this.readerDone = true;
      this.log.info('integration paused: not delivering, events wait in the stream');
      return;
    }
    this.loops.push(this.readLoop(), this.advisoryLoop());
    const interval = this.options.lagIntervalMs ?? 10_000;
    void this.refreshPending();
    this.lagTimer = setInterval(() => void this.refreshPending(), interval);
    this.lagTimer.unref();
  }

  // ---- consuming ---------------------------------------------------------------------------

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private async readLoop(): Promise<void> {
    while (!this.stopping && !this.nc.isClosed()) {
      try {
        const consumer = await this.js.consumers.get(this.streams.events.name, this.consumer);
        // The server holds at most max_ack_pending (2 rounds) unacknowledged: one round in flight, one buffered.
        // Abort when the consumer disappears (deleted by hand, lost server state): the loop below
        // gets it again as soon as it exists, instead of the client waiting out its pull expiry.
        const messages = await consumer.consume({ max_messages: this.batchSize * this.concurrency, abort_on_missing_resource: true });
        this.messages = messages;
        if (this.stopping) void messages.close();
        for await (const msg of messages) {
          this.queue.push({ msg, at: performance.now() });
          this.stats.buffered = this.queue.length;
          this.lastPending = msg.info.pending;
          this.pump();
        }
      } catch (e) {
        if (!this.stopping) this.log.warn({ err: e }, 'consuming events failed; retrying');
      }
      this.messages = undefined;
      if (!this.stopping) await this.sleep(RESUBSCRIBE_MS);
    }
    this.readerDone = true;
    this.pump();
  }

  private shouldLinger(): boolean {
    return this.batchSize > 1 && this.queue.length < this.batchSize && !this.stopping && !this.readerDone && this.lastPending > 0 && !this.lingerExpired;
  }

  /** Starts requests while there is room: up to `concurrency` at once, up to `batchSize` events each. */
  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      if (this.shouldLinger()) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = undefined;
          this.lingerExpired = true;
          this.pump();
        }, this.lingerMs);
        return;
      }
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
      this.lingerExpired = false;
      const now = performance.now();
      const batch = this.queue.splice(0, this.batchSize).map(({ msg, at }) => {
        // Waited in the buffer behind a slow round: restart its ack wait before its own request.
        if (now - at >= WORKING_AFTER_MS) msg.working();
        return msg;
      });
      this.stats.buffered = this.queue.length;
      this.active++;
      void this.process(batch)
        .catch((e) => this.log.error({ err: e }, 'unexpected error while delivering'))
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
    if (this.drained && this.readerDone && this.queue.length === 0 && this.active === 0) this.drained();
  }

  // ---- one request -------------------------------------------------------------------------

  private record(r: Omit<DeliveryRecord, 'integration'>): void {
    this.metrics.deliveries.labels(this.integration, r.outcome).inc();
    const key = r.outcome === 'dead_lettered' ? 'deadLettered' : r.outcome;
    this.stats[key]++;
    try {
      this.options.onDelivery?.({ integration: this.integration, ...r });
    } catch (e) {
      this.log.warn({ err: e }, 'onDelivery callback failed');
    }
  }

  private async ack(msg: JsMsg): Promise<void> {
    if (!this.stopping) return msg.ack();
    // While stopping, wait for the server to confirm so stop() resolves with nothing unacknowledged.
    try {
      await msg.ackAck({ timeout: 5_000 });
    } catch (e) {
      this.log.warn({ err: e, streamSeq: msg.seq }, 'ack not confirmed while stopping; the event may be redelivered');
    }
  }

  private describe(msg: JsMsg): { source: string | undefined; type: string | undefined } {
    const header = msg.headers?.get('Sy-Source');
    const parsed = parseDeliverySubject(this.streams.subjectPrefix, msg.subject);
    return { source: header || (parsed ? `${parsed.namespace}/${parsed.source}` : undefined), type: parsed?.type };
  }

  private async process(batch: JsMsg[]): Promise<void> {
    const settled = new Set<JsMsg>();
    try {
      const items: Item[] = [];
      for (const msg of batch) {
        const { source, type: subjectType } = this.describe(msg);
        let event: SegmentEvent;
        try {
          const parsed: unknown = msg.json();
          if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
          event = parsed as SegmentEvent;
        } catch (e) {
          settled.add(msg);
          await this.deadLetter(msg, { reason: 'invalid_event', error: `unreadable event: ${(e as Error).message}`, source, event: msg.string() });
          continue;
        }
        const type = typeof event.type === 'string' ? event.type : subjectType;
        const messageId = typeof event.messageId === 'string' ? event.messageId : undefined;
        const base = { messageId, source, type, streamSeq: msg.seq, attempt: msg.info.deliveryCount };
        const consentMissing = msg.headers?.get(CONSENT_MISSING_HEADER) === 'deny' ? 'deny' : 'allow';
        const skip = type === undefined ? 'event_type' : this.route.skip(typeof event.type === 'string' ? event : { ...event, type }, consentMissing);
        if (skip) {
          settled.add(msg);
          await this.ack(msg);
          this.log.debug({ messageId, source, reason: skip }, 'skipped');
          this.metrics.notDelivered.labels(this.integration, skip).inc();
          this.record({ ...base, outcome: 'skipped', reason: skip });
          continue;
        }
        const mapped = this.route.mapping.apply(event);
        if (!mapped.ok) {
          settled.add(msg);
          if (mapped.failed) {
            const f = mapped.failed;
            await this.deadLetter(msg, { reason: 'mapping_failed', error: `${f.field}: ${f.message} (rule ${f.rule})`, source, event }, base);
            continue;
          }
          await this.ack(msg);
          this.log.info({ messageId, source, type, reason: mapped.dropped }, 'dropped by the mapping');
          this.metrics.notDelivered.labels(this.integration, mapped.dropped).inc();
          this.record({ ...base, outcome: 'dropped', reason: mapped.dropped });
          continue;
        }
        const violations = this.route.validateOutput?.(mapped.payload);
        if (violations) {
          settled.add(msg);
          await this.deadLetter(msg, { reason: 'invalid_output', error: describeViolations(this.route.mapping, event, violations), source, event }, { ...base, name: mapped.name });
          continue;
        }
        items.push({ msg, event, messageId, source, type, name: mapped.name, payload: mapped.payload });
      }
      if (items.length === 0) return;
      await this.deliver(items, settled);
    } catch (e) {
      // A bug or a failure to talk to NATS: hand the rest back for a later attempt.
      for (const msg of batch) if (!settled.has(msg)) msg.nak(this.scheduleMs[0] ?? DEAD_LETTER_RETRY_MS);
      throw e;
    }
  }

  /**
   * Waits until the gate lets a send of `items` start (rate limit, throttle pause, open circuit),
   * restarting their ack wait while they wait. False when the forwarder stops meanwhile.
   */
  private async waitForGate(items: readonly Item[]): Promise<{ ok: true } | { ok: false; waitMs: number }> {
    let alive = performance.now();
    for (;;) {
      const waitMs = await this.gate.waitMs(items.length);
      if (waitMs === 0) return { ok: true };
      if (this.stopping) return { ok: false, waitMs };
      await this.sleep(Math.min(waitMs, KEEP_ALIVE_MS));
      if (performance.now() - alive >= KEEP_ALIVE_MS) {
        for (const item of items) item.msg.working();
        alive = performance.now();
      }
    }
  }

  /**
   * Sends mapped items through the gate and settles each by its own outcome. Items the vendor
   * throttled, or that failed while the circuit is open, are kept here and sent again after the
   * pause or with the next probe (their ack wait kept alive, no retry spent) for up to
   * {@link MAX_HOLD_MS}; after that they follow the retry schedule.
   */
  private async deliver(items: Item[], settled: Set<JsMsg>): Promise<void> {
    let pending = items;
    const heldSince = performance.now();
    for (;;) {
      const gate = await this.waitForGate(pending);
      if (!gate.ok) {
        // Stopping while the destination may not be called: hand the events back for later.
        for (const item of pending) {
          settled.add(item.msg);
          item.msg.nak(Math.max(MIN_RETRY_DELAY_MS, Math.min(gate.waitMs, MAX_RETRY_AFTER_MS)));
        }
        return;
      }
      this.stats.inFlight++;
      let result: SendResult | undefined;
      try {
        result = await this.gate.send(() => this.destination.send(pending.map((i) => i.payload)));
      } finally {
        this.stats.inFlight--;
      }
      if (!result) continue; // the circuit opened meanwhile: nothing was sent
      this.metrics.attemptDuration.labels(this.integration).observe(result.durationMs / 1000);
      const sent = result;
      const outcomeOf = (i: number): ItemResult => sent.items?.[i] ?? sent;
      // Throttled, or failing with the circuit now open: keep the retryable items here until the
      // pause ends or a probe succeeds, instead of spending their retries on a vendor that cannot take them.
      const hold = (sent.throttled || (breakerCountsFailure(sent) && this.gate.circuit !== 'closed')) && !this.stopping && performance.now() - heldSince < MAX_HOLD_MS;
      if (hold) {
        const again: Item[] = [];
        await Promise.all(
          pending.map((item, i) => {
            if (outcomeOf(i).outcome === 'retryable') {
              again.push(item);
              return undefined;
            }
            return this.settle(item, outcomeOf(i), sent, settled);
          }),
        );
        if (again.length > 0 && sent.throttled) {
          this.metrics.throttled.labels(this.integration).inc(again.length);
          this.log.warn({ events: again.length, messageIds: heldIds(again), status: sent.status, retryAfterMs: sent.retryAfterMs, error: sent.error }, 'throttled by the destination; holding events until the pause ends');
        } else if (again.length > 0) {
          this.log.warn({ events: again.length, messageIds: heldIds(again), status: sent.status, error: sent.error }, 'destination failing and circuit open; holding events for the next probe');
        }
        pending = again;
        if (pending.length === 0) return;
        continue;
      }
      await Promise.all(pending.map((item, i) => this.settle(item, outcomeOf(i), sent, settled)));
      return;
    }
  }

  private async settle(item: Item, own: ItemResult, result: SendResult, settled: Set<JsMsg>): Promise<void> {
    const { msg, messageId, source, type, name } = item;
    settled.add(msg);
    const attempt = msg.info.deliveryCount;
    const durationMs = Math.round(result.durationMs);
    const base = { messageId, source, type, name, streamSeq: msg.seq, attempt, durationMs, ...(result.status !== undefined ? { status: result.status } : {}) };
    if (own.outcome === 'success') {
      await this.ack(msg);
      this.log.info({ messageId, source, name, status: result.status, attempt, durationMs }, 'delivered');
      this.record({ ...base, outcome: 'delivered' });
      return;
    }
    const letter = { source, event: item.event, ...(result.status !== undefined ? { status: result.status } : {}), ...(own.error ? { error: own.error } : {}) };
    if (own.refusal === 'stale_event') {
      await this.deadLetter(msg, { reason: 'stale_event', ...letter }, base);
      return;
    }
    if (own.outcome === 'permanent') {
      await this.deadLetter(msg, { reason: 'permanent_failure', ...letter }, base);
      return;
    }
    if (attempt > this.scheduleMs.length) {
      await this.deadLetter(msg, { reason: 'retries_exhausted', ...letter }, base);
      return;
    }
    const delay = retryDelayMs(this.scheduleMs, attempt, result.retryAfterMs);
    msg.nak(delay);
    this.metrics.retries.labels(this.integration).inc();
    this.log.warn({ messageId, source, name, status: result.status, attempt, durationMs, retryInMs: delay, error: own.error }, 'delivery failed; will retry');
    this.record({ ...base, outcome: 'retried', retryInMs: delay, ...(own.error ? { error: own.error } : {}) });
  }

  /**
   * Stores a dead letter for `msg` then terminates it (`msg.term(reason)`); when the dead letter
   * cannot be stored the event is nak'ed for a later try instead (on its last delivery, JetStream
   * then reports it with a max-deliveries advisory, which dead-letters it as max_deliver_exceeded).
   */
  private async deadLetter(
    msg: JsMsg,
    what: { reason: DeadLetterReason; status?: number; error?: string; source: string | undefined; event: unknown },
    base: Omit<DeliveryRecord, 'integration' | 'outcome'> = { streamSeq: msg.seq, attempt: msg.info.deliveryCount },
  ): Promise<void> {
    const letter: DeadLetter = {
      integration: { namespace: this.ns, name: this.name },
      reason: what.reason,
      ...(what.status !== undefined ? { status: what.status } : {}),
      ...(what.error ? { error: what.error } : {}),
      attempts: msg.info.deliveryCount,
      failedAt: new Date(this.clock.now()).toISOString(),
      streamSeq: msg.seq,
      subject: msg.subject,
      ...(what.source ? { source: what.source } : {}),
      event: what.event,
    };
    const consent = msg.headers?.get(CONSENT_MISSING_HEADER);
    try {
      await this.deadLetters.publish(letter, consent ? { [CONSENT_MISSING_HEADER]: consent } : {});
    } catch (e) {
      this.log.error({ err: e, streamSeq: msg.seq, reason: what.reason }, 'cannot store the dead letter; will try again');
      msg.nak(DEAD_LETTER_RETRY_MS);
      return;
    }
    msg.term(what.reason);
    this.metrics.deadLetters.labels(this.integration, what.reason).inc();
    this.log.error({ messageId: base.messageId, source: what.source, status: what.status, attempt: letter.attempts, reason: what.reason, error: what.error }, 'dead-lettered');
    this.record({ ...base, outcome: 'dead_lettered', reason: what.reason, ...(what.error ? { error: what.error } : {}) });
  }

  // ---- max-deliveries advisories -----------------------------------------------------------

  private async advisoryLoop(): Promise<void> {
    while (!this.stopping && !this.nc.isClosed()) {
      try {
        const consumer = await this.js.consumers.get(this.streams.advisories.name, this.consumer);
        const messages = await consumer.consume({ max_messages: 16, abort_on_missing_resource: true });
        this.advisories = messages;
        if (this.stopping) void messages.close();
        for await (const msg of messages) await this.handleAdvisory(msg);
      } catch (e) {
        if (!this.stopping) this.log.warn({ err: e }, 'consuming max-deliveries advisories failed; retrying');
      }
      this.advisories = undefined;
      if (!this.stopping) await this.sleep(RESUBSCRIBE_MS);
    }
  }

  /**
   * Dead-letters the event a JetStream max-deliveries advisory
   * (`io.nats.jetstream.advisory.v1.max_deliver`: `{stream, consumer, stream_seq, deliveries}`,
   * https://docs.nats.io/running-a-nats-service/nats_admin/monitoring/monitoring_jetstream#advisories)
   * reports, reading it back from the events stream, then acks the advisory.
   */
  private async handleAdvisory(msg: JsMsg): Promise<void> {
    let advisory: { stream?: string; consumer?: string; stream_seq?: number; deliveries?: number };
    try {
      advisory = msg.json();
    } catch {
      this.log.warn({ seq: msg.seq }, 'unreadable advisory ignored');
      msg.ack();
      return;
    }
    const seq = advisory.stream_seq;
    if (advisory.stream !== this.streams.events.name || advisory.consumer !== this.consumer || typeof seq !== 'number') {
      msg.ack();
      return;
    }
    try {
      const stored = await this.jsm.streams.getMessage(this.streams.events.name, { seq });
      let event: unknown = null;
      let source: string | undefined;
      if (stored) {
        const text = new TextDecoder().decode(stored.data);
        try {
          event = JSON.parse(text);
        } catch {
          event = text;
        }
        source = stored.header.get('Sy-Source') || undefined;
      }
      const record = event && typeof event === 'object' ? (event as SegmentEvent) : undefined;
      const letter: DeadLetter = {
        integration: { namespace: this.ns, name: this.name },
        reason: 'max_deliver_exceeded',
        error: stored ? `JetStream gave up after ${advisory.deliveries ?? '?'} deliveries without an answer (ack wait exceeded)` : 'JetStream gave up on the event, and it is no longer in the events stream',
        attempts: advisory.deliveries ?? 0,
        failedAt: new Date(this.clock.now()).toISOString(),
        streamSeq: seq,
        subject: stored?.subject ?? '',
        ...(source ? { source } : {}),
        event,
      };
      const consent = stored?.header.get(CONSENT_MISSING_HEADER);
      await this.deadLetters.publish(letter, consent ? { [CONSENT_MISSING_HEADER]: consent } : {});
      msg.ack();
      this.metrics.deadLetters.labels(this.integration, 'max_deliver_exceeded').inc();
      const messageId = typeof record?.messageId === 'string' ? record.messageId : undefined;
      this.log.error({ messageId, source, attempt: letter.attempts, reason: letter.reason, streamSeq: seq }, 'dead-lettered');
      this.record({
        outcome: 'dead_lettered',
        reason: letter.reason,
        error: letter.error!,
        streamSeq: seq,
        attempt: letter.attempts,
        ...(messageId ? { messageId } : {}),
        ...(source ? { source } : {}),
        ...(typeof record?.type === 'string' ? { type: record.type } : {}),
      });
    } catch (e) {
      this.log.error({ err: e, streamSeq: seq }, 'cannot dead-letter an event JetStream gave up on; will try again');
      msg.nak(DEAD_LETTER_RETRY_MS);
    }
  }

  // ---- lag and stop ------------------------------------------------------------------------

  private async refreshPending(): Promise<void> {
    try {
      const info = await this.jsm.consumers.info(this.streams.events.name, this.consumer);
      const pending = consumerBacklog(info);
      this.stats.pending = pending;
      this.metrics.pending.labels(this.integration).set(pending);
    } catch (e) {
      if (!this.stopping) this.log.debug({ err: e }, 'cannot read consumer info');
    }
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      clearInterval(this.lagTimer);
      for (const wake of [...this.wakers]) wake();
      // Stop pulling; the iterators still hand over what JetStream already sent, and end.
      await Promise.all([this.messages?.close(), this.advisories?.close()].map((p) => p?.catch(() => undefined)));
      await Promise.all(this.loops);
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        this.pump();
      });
      await this.nc.flush().catch(() => undefined);
      await this.destination.close().catch(() => undefined);
      this.log.info({ ...this.stats }, 'forwarder stopped');
    })();
    return this.stopped;
  }
}

/**
 * Starts delivering one Integration's events: consumes its durable consumer on the events stream
 * (created by {@link ensureIntegrationConsumer}), maps each event with the Mapping, sends up to
 * `delivery.batchSize` events per request with up to `delivery.concurrency` requests in flight, and
 * settles each event:
 * - track events whose name is not in `events.names` (or types outside `events.types`): ack, `skipped`;
 * - dropped by the Mapping: ack, `dropped`;
 * - destination success: ack (only then), `delivered`;
 * - retryable failure: `nak(delay)` with delay `retrySchedule[attempt-1]` or a longer Retry-After,
 *   `retried`; on the last attempt (delivery count > retrySchedule.length) dead letter `retries_exhausted`;
 * - permanent failure: dead letter `permanent_failure`;
 * dead letters are stored in the dead-letter stream (awaiting JetStream's ack) before `term`.
 * A second consumer on the advisories stream dead-letters events JetStream gave up on
 * (`max_deliver_exceeded`). Paused Integrations (`spec.paused`) consume nothing.
 * Each forwarder has its own consumers, request slots and connection pool: a slow destination
 * never slows another forwarder.
 * @throws SwitchyardError INVALID_RESOURCE (Integration invalid, destination settings unusable, Mapping
 * for another destination type), INVALID_MAPPING, or MISSING_REFERENCE when the consumers do not exist.
 */
export async function startForwarder(options: ForwarderOptions): Promise<Forwarder> {
  const integration = normalizeIntegration(options.config.integration);
  const label = `${integration.metadata.namespace}/${integration.metadata.name}`;
  const route = compileIntegrationRoute(integration, options.config.mapping);
  const jsm = await jetstreamManager(options.nc);
  const name = consumerName(integration.metadata.namespace!, integration.metadata.name);
  for (const stream of [options.streams.events.name, options.streams.advisories.name]) {
    try {
      await jsm.consumers.info(stream, name);
    } catch (e) {
      if (e instanceof JetStreamApiError && (e.code === 10014 || e.code === 10059)) {
        throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `Integration ${label}: no consumer ${name} on stream ${stream}; create it with ensureIntegrationConsumer`, { cause: e });
      }
      throw e;
    }
  }
  const destination = createDestination({
    integration,
    credentials: options.config.credentials ?? {},
    timeoutMs: parseDuration(integration.spec.delivery.timeout),
    clock: options.clock ?? systemClock,
  });
  const forwarder = new ForwarderImpl(options.nc, jsm, options.streams, integration, route, destination, options);
  forwarder.start(integration.spec.paused);
  return forwarder;
}

/**
 * Names what a payload got wrong for a dead letter: the first violations (field, rule, message)
 * and the Mapping rule that wrote each field (found by applying the Mapping again with explain, on
 * this failure path only).
 */
export function describeViolations(mapping: CompiledMapping, event: SegmentEvent, violations: readonly OutputViolation[]): string {
  const explained = mapping.apply(event, { explain: true }).explain?.fields ?? [];
  const ruleOf = (path: string): string | undefined => {
    let best: { rule: string; length: number } | undefined;
    for (const f of explained) {
      if (f.outcome !== 'written' && f.outcome !== 'default') continue;
      if ((path === f.to || path.startsWith(`${f.to}.`) || path.startsWith(`${f.to}[`)) && (!best || f.to.length >= best.length)) best = { rule: f.rule, length: f.to.length };
    }
    return best?.rule;
  };
  // For a field that was not written: a rule that could have (at or below it) but gave nothing.
  const missedBy = (path: string): string | undefined => {
    const f = explained.find((e) => (e.outcome === 'left out' || e.outcome === 'skipped') && (e.to === path || e.to.startsWith(`${path}.`) || e.to.startsWith(`${path}[`)));
    return f ? `rule ${f.rule} gave no value: ${f.reason ?? f.outcome}` : undefined;
  };
  const shown = violations.slice(0, 5).map((v) => {
    const rule = ruleOf(v.path);
    const why = rule ? `written by rule ${rule}` : (missedBy(v.path) ?? 'no rule writes it');
    return `${v.path || '(payload)'} ${v.message} (${v.rule}; ${why})`;
  });
  const more = violations.length > shown.length ? `; and ${violations.length - shown.length} more` : '';
  return `output does not satisfy the destination schema: ${shown.join('; ')}${more}`;
}
