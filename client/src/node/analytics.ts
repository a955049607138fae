import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { isRetryableStatus, retryAfterMs, retryDelay } from '../core/backoff.js';
import { batchCount, ENVELOPE_BYTES } from '../core/batch.js';
import { buildEvent, type CallType, type Library, type SegmentEvent } from '../core/event.js';
import { AnalyticsError, AnalyticsErrorCodes, type EventProblem } from './errors.js';
import { resolveSettings, type AnalyticsSettings, type ResolvedSettings } from './settings.js';

/** Version of this package, read once from client/package.json (same depth from src/ and dist/). */
export const CLIENT_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** `context.library` of every event this SDK builds. */
export const LIBRARY: Library = { name: '@switchyard/client', version: CLIENT_VERSION };

/** Prefix of the messageIds this SDK makes up (`node-<uuid v4>`). */
export const MESSAGE_ID_PREFIX = 'node-';

/** Default `timeout` of {@link Analytics.closeAndFlush}: 20 s, below Kubernetes' default 30 s termination grace period. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 20_000;

/** Largest answer body read, in bytes (the ingestion's answers are a few KB at most). */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** A user or group id: a non-empty string, or a number (the ingestion turns it into a string). */
export type Id = string | number;

/** Who a call is about: `userId`, `anonymousId` or both (Segment Spec, Identities). */
export type Identity = { userId: Id; anonymousId?: Id | undefined } | { userId?: Id | undefined; anonymousId: Id };

/** Fields every call takes (Segment Spec, Common Fields). */
export interface CommonParams {
  /** Extra context; `context.library` is always this SDK's. */
  context?: Record<string, unknown> | undefined;
  /** When the call happened: a Date, or an ISO 8601 string sent as given. Default: the clock's time at the call. */
  timestamp?: Date | string | undefined;
  /** Destinations to turn on or off, and their options. */
  integrations?: Record<string, unknown> | undefined;
  /** De-duplication key. Default `node-<uuid v4>`. */
  messageId?: string | undefined;
}

/** `track`: an action the user performed. `event` is required; `properties` default `{}`. */
export type TrackParams = CommonParams & Identity & { event: string; properties?: Record<string, unknown> | undefined };
/** `page` and `screen`: a page or app screen viewed. A page's `category` is copied into its `properties`, as analytics-node does. */
export type PageParams = CommonParams & Identity & { name?: string | undefined; category?: string | undefined; properties?: Record<string, unknown> | undefined };
/** `identify`: who the user is. `traits` default `{}`. */
export type IdentifyParams = CommonParams & Identity & { traits?: Record<string, unknown> | undefined };
/** `group`: the user belongs to a group. `groupId` is required; `traits` default `{}`. */
export type GroupParams = CommonParams & Identity & { groupId: Id; traits?: Record<string, unknown> | undefined };
/** `alias`: `previousId` and `userId` are the same user. Both are required. */
export type AliasParams = CommonParams & { userId: Id; previousId: Id };

/** What a call's callback gets besides the error: the event as built (`ctx.event`, as in analytics-node). */
export interface CallOutcome {
  event: SegmentEvent;
}

/**
 * Called once per call: with no error when the ingestion stored the event (2xx and not named as
 * refused), else with the {@link AnalyticsError} that ended it. Never called twice.
 */
export type Callback = (error: AnalyticsError | undefined, outcome: CallOutcome) => void;

/** What {@link Analytics.flush} and {@link Analytics.closeAndFlush} resolve to. */
export interface FlushResult {
  /** Events held when the flush began that were not delivered (each was also reported as an error). */
  undelivered: SegmentEvent[];
}

/** Payload of the `http_request` event: one attempt, as sent. */
export interface HttpRequestInfo {
  url: string;
  method: 'POST';
  headers: Record<string, string>;
  body: string;
  /** 1 for the first attempt of a request, 2 for its first retry… */
  attempt: number;
}

/** Payload of the `http_response` event: one answer (network errors and timeouts have none). */
export interface HttpResponseInfo {
  url: string;
  status: number;
  headers: Record<string, string>;
  /** The answer body as text (at most 1 MiB). */
  body: string;
  attempt: number;
}

/** Payload of the `retry` event: an attempt failed and the request will be sent again. */
export interface RetryInfo {
  /** The attempt that failed. */
  attempt: number;
  /** Wait before the next attempt, in ms: the server's `Retry-After` if given, else the backoff. Both capped at `retryMaxDelayMs`. */
  delayMs: number;
  /** Status of the failed attempt; absent for network errors and timeouts. */
  status?: number;
  /** What failed. */
  error: Error;
  events: SegmentEvent[];
}

/** Payload of the `deliver` event: events of one request the ingestion stored. */
export interface DeliveryInfo {
  events: SegmentEvent[];
  status: number;
  attempt: number;
}

/** Events {@link Analytics} emits, and their arguments. */
export interface AnalyticsEvents {
  /** A call refused, or events not delivered. Without an `error` listener it becomes a process warning, so it never crashes the process. */
  error: [AnalyticsError];
  http_request: [HttpRequestInfo];
  http_response: [HttpResponseInfo];
  retry: [RetryInfo];
  deliver: [DeliveryInfo];
}

/** An event accepted by a call, from the queue until it is delivered or fails. */
interface Held {
  /** Order of acceptance, from 1. */
  seq: number;
  event: SegmentEvent;
  /** The event as sent (serialised once, at the call: later changes to the caller's objects do not leak in). */
  json: string;
  /** UTF-8 bytes of `json`. */
  bytes: number;
  callback: Callback | undefined;
  settled: boolean;
}

/** A pending `flush()`: resolved once every event up to `through` is settled. */
interface FlushWaiter {
  through: number;
  undelivered: SegmentEvent[];
  resolve(result: FlushResult): void;
}

/** The result of one HTTP attempt. */
type Exchange = { status: number; headers: Record<string, string>; body: string } | { error: Error };

const CALL_FIELDS: Record<CallType, readonly string[]> = {
  track: ['event', 'properties'],
  page: ['name', 'category', 'properties'],
  screen: ['name', 'category', 'properties'],
  identify: ['traits'],
  group: ['groupId', 'traits'],
  alias: ['previousId'],
};
const COMMON_FIELDS = ['userId', 'anonymousId', 'context', 'timestamp', 'integrations', 'messageId'] as const;

const isId = (v: unknown): boolean => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v));

/** The Spec's required fields of a call: the first one missing, as a message, or undefined. */
function missingField(type: CallType, call: Record<string, unknown>): string | undefined {
  if (type === 'alias') {
    if (!isId(call.userId)) return 'alias needs a userId';
    if (!isId(call.previousId)) return 'alias needs a previousId';
    return undefined;
  }
  if (!isId(call.userId) && !isId(call.anonymousId)) return `${type} needs a userId or an anonymousId`;
  if (type === 'track' && (typeof call.event !== 'string' || call.event === '')) return 'track needs an event name';
  if (type === 'group' && !isId(call.groupId)) return 'group needs a groupId';
  if (call.messageId !== undefined && (typeof call.messageId !== 'string' || call.messageId === '')) return 'messageId must be a non-empty string';
  return undefined;
}

/** The `errors` of an ingestion answer body, when it has any. */
function answerProblems(body: string): { problems: EventProblem[]; rejected: number | undefined } {
  try {
    const parsed = JSON.parse(body) as { errors?: unknown; rejected?: unknown };
    const problems = Array.isArray(parsed.errors) ? parsed.errors.filter((e): e is EventProblem => typeof e === 'object' && e !== null) : [];
    return { problems, rejected: typeof parsed.rejected === 'number' ? parsed.rejected : undefined };
  } catch {
    return { problems: [], rejected: undefined };
  }
}

/** Reads at most {@link MAX_ANSWER_BYTES} of a body as UTF-8, then discards the rest. */
async function readAnswer(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= MAX_ANSWER_BYTES) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

/**
 * Server-side client of the Switchyard ingestion API, call-compatible with `@segment/analytics-node`
 * 3.x: `track`/`page`/`screen`/`identify`/`group`/`alias` queue an event; batches go to
 * `POST <host><path>` as `{"batch":[…],"sentAt":"<ISO>"}` with `Authorization: Basic
 * base64(writeKey:)`.
 *
 * - A request is sent when `flushAt` events are queued, when the queued events fill
 *   `maxBatchBytes`, `flushInterval` ms after the oldest queued event, or on `flush()`.
 * - At most `maxInFlight` requests are in flight (default 1: events reach the ingestion in call
 *   order, a slow or failing ingestion holds the queue back, bounded by `maxQueueSize`, rather than
 *   receiving parallel retries); one kept-alive connection per request in flight.
 * - Network errors, timeouts, 408, 429 and 5xx are retried up to `maxRetries` times with
 *   exponential backoff and jitter, or after the server's `Retry-After`; the resent body keeps
 *   every event's messageId and timestamp (`sentAt` is the time of each attempt), so the ingestion
 *   stores each event once. Other answers are final.
 * - Every call ends in exactly one callback and, on failure, one `error` event (see
 *   {@link AnalyticsErrorCodes}): nothing is dropped without a report.
 */
export class Analytics extends EventEmitter<AnalyticsEvents> {
  private readonly settings: ResolvedSettings;
  private readonly agent: Agent | undefined;
  private readonly headers: Record<string, string>;
  /** Aborted when `closeAndFlush` runs out of time: ends the request in flight and retry waits. */
  private readonly abandon = new AbortController();
  private readonly queue: Held[] = [];
  private queuedBytes = 0;
  /** Batches sent and not settled yet (at most `maxInFlight`). */
  private readonly inFlight = new Set<Held[]>();
  private inFlightEvents = 0;
  private lastSeq = 0;
  /** Events up to this seq are sent without waiting for flushAt / flushInterval. */
  private flushThrough = 0;
  private timer: NodeJS.Timeout | undefined;
  private waiters: FlushWaiter[] = [];
  private closed = false;
  private closing: Promise<FlushResult> | undefined;

  /**
   * @throws AnalyticsError `SY_CLIENT_INVALID_SETTINGS` naming the setting at fault (see
   * {@link resolveSettings}).
   */
  constructor(settings: AnalyticsSettings) {
    super();
    this.settings = resolveSettings(settings);
    this.headers = {
      authorization: `Basic ${Buffer.from(`${this.settings.writeKey}:`).toString('base64')}`,
      'content-type': 'application/json',
      'user-agent': `switchyard-node/${CLIENT_VERSION}`,
    };
    if (!this.settings.disable) {
      const timeout = this.settings.httpRequestTimeout;
      this.agent = new Agent({ connections: this.settings.maxInFlight, headersTimeout: timeout, bodyTimeout: timeout, connect: { timeout } });
    }
  }

  /** Version of this SDK (as in `context.library.version`). */
  get VERSION(): string {
    return CLIENT_VERSION;
  }

  /** Records an action the user performed (https://segment.com/docs/connections/spec/track/). */
  track(params: TrackParams, callback?: Callback): void {
    this.call('track', params, callback);
  }

  /** Records a page view (https://segment.com/docs/connections/spec/page/). */
  page(params: PageParams, callback?: Callback): void {
    this.call('page', params, callback);
  }

  /** Records an app screen view (https://segment.com/docs/connections/spec/screen/). */
  screen(params: PageParams, callback?: Callback): void {
    this.call('screen', params, callback);
  }

  /** Ties a user to their traits (https://segment.com/docs/connections/spec/identify/). */
  identify(params: IdentifyParams, callback?: Callback): void {
    this.call('identify', params, callback);
  }

  /** Ties a user to a group (https://segment.com/docs/connections/spec/group/). */
  group(params: GroupParams, callback?: Callback): void {
    this.call('group', params, callback);
  }

  /** Merges two identities of one user (https://segment.com/docs/connections/spec/alias/). */
  alias(params: AliasParams, callback?: Callback): void {
    this.call('alias', params, callback);
  }

  /**
   * Sends every event queued now, without waiting for `flushAt` or `flushInterval`, and resolves
   * when all of them are settled (delivered, or failed after their retries). Never rejects.
   */
  flush(): Promise<FlushResult> {
    const through = this.lastSeq;
    if (this.settledThrough() >= through) return Promise.resolve({ undelivered: [] });
    this.flushThrough = Math.max(this.flushThrough, through);
    const done = new Promise<FlushResult>((resolve) => this.waiters.push({ through, undelivered: [], resolve }));
    this.pump();
    return done;
  }

  /**
   * Stops taking calls (later calls fail with `SY_CLIENT_CLOSED`), sends everything queued, waits
   * for the request in flight and its retries, then closes the connection. After `timeout` ms
   * (default {@link DEFAULT_CLOSE_TIMEOUT_MS}) it abandons what is left: those events fail with
   * `SY_CLIENT_CLOSE_TIMEOUT`. Resolves, never rejects, with the events not delivered; calling it
   * again returns the same promise.
   */
  closeAndFlush({ timeout = DEFAULT_CLOSE_TIMEOUT_MS }: { timeout?: number } = {}): Promise<FlushResult> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      const flushed = this.flush();
      let timer: NodeJS.Timeout | undefined;
      const outOfTime = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeout);
      });
      const first = await Promise.race([flushed, outOfTime]);
      clearTimeout(timer);
      this.clearTimer();
      if (first === 'timeout') {
        this.abandon.abort(new Error(`closeAndFlush timed out after ${timeout} ms`));
        const left = [...[...this.inFlight].flat(), ...this.queue];
        this.inFlight.clear();
        this.inFlightEvents = 0;
        this.queue.length = 0;
        this.queuedBytes = 0;
        this.fail(left, (events) => new AnalyticsError(AnalyticsErrorCodes.CLOSE_TIMEOUT, `${events.length} events not delivered within the closeAndFlush timeout of ${timeout} ms`, { events, cause: this.abandon.signal.reason }));
        this.resolveWaiters();
        await this.agent?.destroy();
      } else {
        await this.agent?.close();
      }
      return flushed;
    })();
    return this.closing;
  }

  /** Checks, builds and queues one call; failures at the call are reported on the next tick. */
  private call(type: CallType, params: object, callback: Callback | undefined): void {
    const given = (params ?? {}) as Record<string, unknown>;
    const call: Record<string, unknown> = {};
    for (const field of [...COMMON_FIELDS, ...CALL_FIELDS[type]]) if (given[field] !== undefined) call[field] = given[field];
    // As analytics-node and analytics.js do, so Mappings see the same shape from every client.
    if (type === 'track' || type === 'page' || type === 'screen') call.properties ??= {};
    if (type === 'page' && typeof call.category === 'string') call.properties = { ...(call.properties as object), category: call.category };
    if (type === 'identify' || type === 'group') call.traits ??= {};
    const event = buildEvent(type, call, { now: this.settings.clock.now(), library: LIBRARY, messageIdPrefix: MESSAGE_ID_PREFIX });
    const refuse = (code: (typeof AnalyticsErrorCodes)[keyof typeof AnalyticsErrorCodes], message: string, cause?: unknown) => {
      const error = new AnalyticsError(code, message, { events: [event], cause });
      process.nextTick(() => {
        this.invoke(callback, error, event);
        this.report(error);
      });
    };
    if (this.closed) return refuse(AnalyticsErrorCodes.CLOSED, `${type} called after closeAndFlush(): event ${event.messageId} not sent`);
    const missing = missingField(type, call);
    if (missing) return refuse(AnalyticsErrorCodes.INVALID_EVENT, `${missing}: event ${event.messageId} not sent`);
    // An invalid Date cannot be written as a date at all; a date string is the ingestion's to judge (a 207 names it).
    if (call.timestamp instanceof Date && Number.isNaN(call.timestamp.getTime())) return refuse(AnalyticsErrorCodes.INVALID_EVENT, `${type} timestamp is an invalid Date: event ${event.messageId} not sent`);
    let json: string;
    try {
      json = JSON.stringify(event);
    } catch (cause) {
      return refuse(AnalyticsErrorCodes.INVALID_EVENT, `${type} event ${event.messageId} cannot be serialised as JSON: ${(cause as Error).message}`, cause);
    }
    const bytes = Buffer.byteLength(json);
    if (bytes > this.settings.maxEventBytes) {
      return refuse(AnalyticsErrorCodes.EVENT_TOO_LARGE, `${type} event ${event.messageId} is ${bytes} bytes as JSON, more than maxEventBytes (${this.settings.maxEventBytes}): not sent`);
    }
    if (this.settings.disable) {
      process.nextTick(() => this.invoke(callback, undefined, event));
      return;
    }
    const held = this.queue.length + this.inFlightEvents;
    if (held >= this.settings.maxQueueSize) {
      return refuse(AnalyticsErrorCodes.QUEUE_FULL, `${held} events are waiting to be sent (maxQueueSize ${this.settings.maxQueueSize}): ${type} event ${event.messageId} not queued`);
    }
    this.queue.push({ seq: ++this.lastSeq, event, json, bytes, callback, settled: false });
    this.queuedBytes += bytes;
    this.pump();
  }

  /** Starts the next request when one is due and none is in flight; arms the interval timer while none is due. */
  private pump(): void {
    const first = this.queue[0];
    if (!first) {
      this.clearTimer();
      this.resolveWaiters();
      return;
    }
    const { flushAt, maxBatchBytes } = this.settings;
    const overfull = this.queuedBytes + this.queue.length - 1 + ENVELOPE_BYTES > maxBatchBytes;
    if (first.seq > this.flushThrough && this.queue.length < flushAt && !overfull) {
      // Armed while a request is in flight too: the interval counts from the oldest queued event.
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.flushThrough = Math.max(this.flushThrough, this.lastSeq);
        this.pump();
      }, this.settings.flushInterval).unref();
      return;
    }
    if (this.inFlight.size >= this.settings.maxInFlight) return;
    const count = batchCount(
      this.queue.slice(0, flushAt).map((h) => h.bytes),
      { maxEvents: flushAt, maxBytes: maxBatchBytes },
    );
    const batch = this.queue.splice(0, count);
    for (const h of batch) this.queuedBytes -= h.bytes;
    if (this.queue.length === 0) this.clearTimer();
    this.inFlight.add(batch);
    this.inFlightEvents += batch.length;
    void this.send(batch).finally(() => {
      if (this.inFlight.delete(batch)) this.inFlightEvents -= batch.length;
      this.resolveWaiters();
      this.pump();
    });
    // Room for another request: start it if one is due.
    this.pump();
  }

  /** Sends one batch until it is settled: delivered, refused, retries exhausted or abandoned. Never rejects. */
  private async send(batch: Held[]): Promise<void> {
    const events = batch.map((h) => h.event);
    const payload = batch.map((h) => h.json).join(',');
    for (let attempt = 1; ; attempt++) {
      if (this.abandon.signal.aborted) return;
      const body = `{"batch":[${payload}],"sentAt":${JSON.stringify(this.settings.clock.now().toISOString())}}`;
      const answer = await this.exchange(body, attempt);
      // Abandoned by closeAndFlush: its events are already reported.
      if (this.abandon.signal.aborted) return;
      let status: number | undefined;
      let error: Error;
      if ('status' in answer) {
        status = answer.status;
        if (status >= 200 && status < 300) return this.delivered(batch, answer, attempt);
        if (!isRetryableStatus(status)) return this.refused(batch, answer);
        error = new Error(`HTTP ${status}: ${answer.body.slice(0, 500)}`);
      } else {
        error = answer.error;
      }
      if (attempt > this.settings.maxRetries) {
        this.fail(batch, (failed) => new AnalyticsError(AnalyticsErrorCodes.RETRIES_EXHAUSTED, `${failed.length} events not delivered after ${attempt} attempts: ${error.message}`, { events: failed, status, cause: error }));
        return;
      }
      const { retryMinDelayMs, retryMaxDelayMs } = this.settings;
      const asked = 'headers' in answer ? retryAfterMs(answer.headers['retry-after'], this.settings.clock.now().getTime()) : undefined;
      const delayMs = Math.min(retryMaxDelayMs, asked ?? retryDelay(attempt, { retryMinDelayMs, retryMaxDelayMs }, this.settings.random));
      this.safeEmit('retry', { attempt, delayMs, ...(status === undefined ? {} : { status }), error, events });
      try {
        // The timer keeps the process alive: a retry in progress is work left to do.
        await sleep(delayMs, undefined, { signal: this.abandon.signal });
      } catch {
        return;
      }
    }
  }

  /** One HTTP attempt; network errors and timeouts are returned, not thrown. */
  private async exchange(body: string, attempt: number): Promise<Exchange> {
    const url = this.settings.url;
    this.safeEmit('http_request', { url, method: 'POST', headers: { ...this.headers }, body, attempt });
    const timeout = AbortSignal.timeout(this.settings.httpRequestTimeout);
    try {
      const res = await request(url, { method: 'POST', headers: this.headers, body, dispatcher: this.agent, signal: AbortSignal.any([timeout, this.abandon.signal]) });
      const text = await readAnswer(res.body);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      this.safeEmit('http_response', { url, status: res.statusCode, headers, body: text, attempt });
      return { status: res.statusCode, headers, body: text };
    } catch (e) {
      if (timeout.aborted) return { error: new Error(`no answer from ${url} within httpRequestTimeout (${this.settings.httpRequestTimeout} ms)`, { cause: e }) };
      const err = e as Error & { code?: string };
      return { error: new Error(`network error sending to ${url}: ${err.code && !err.message.includes(err.code) ? `${err.code}: ` : ''}${err.message}`, { cause: e }) };
    }
  }

  /**
   * A 2xx answer: events it names as refused (`errors[].index`, a 207) fail one by one; the others
   * are delivered. When the answer counts more refusals than it names (it lists 100 problems at
   * most), the events after the last one named cannot be told apart: they are queued again at the
   * front, and the ingestion stores the accepted ones once (same messageId) and names the refused.
   */
  private delivered(batch: Held[], answer: { status: number; body: string }, attempt: number): void {
    const { problems, rejected } = answerProblems(answer.body);
    const named = this.byIndex(problems, batch.length);
    let unclear: Held[] = [];
    if (rejected !== undefined && rejected > named.size && named.size > 0) {
      const last = Math.max(...named.keys());
      unclear = batch.slice(last + 1);
    }
    this.rejectNamed(batch, named, answer.status);
    const delivered = batch.slice(0, batch.length - unclear.length).filter((h, i) => !named.has(i));
    if (rejected !== undefined && rejected > named.size && named.size === 0) {
      this.report(new AnalyticsError(AnalyticsErrorCodes.EVENT_REJECTED, `the ingestion refused ${rejected} events of a request without naming them`, { status: answer.status }));
    }
    for (const h of delivered) this.settle(h, undefined);
    if (delivered.length > 0) this.safeEmit('deliver', { events: delivered.map((h) => h.event), status: answer.status, attempt });
    if (unclear.length > 0) {
      this.queue.unshift(...unclear);
      for (const h of unclear) this.queuedBytes += h.bytes;
      this.flushThrough = Math.max(this.flushThrough, unclear[unclear.length - 1]!.seq);
    }
  }

  /** A final non-2xx answer: events it names fail with their problems, the rest with the request's status. */
  private refused(batch: Held[], answer: { status: number; body: string }): void {
    const { problems } = answerProblems(answer.body);
    const named = this.byIndex(problems, batch.length);
    this.rejectNamed(batch, named, answer.status);
    const rest = batch.filter((_, i) => !named.has(i));
    const summary = problems.find((p) => p.index === undefined)?.message ?? answer.body.slice(0, 500);
    this.fail(rest, (events) => new AnalyticsError(AnalyticsErrorCodes.REQUEST_REFUSED, `the ingestion refused a request of ${events.length} events with HTTP ${answer.status}: ${summary}`, { events, status: answer.status, problems: problems.filter((p) => p.index === undefined) }));
  }

  /** Problems grouped by a valid batch index. */
  private byIndex(problems: EventProblem[], size: number): Map<number, EventProblem[]> {
    const named = new Map<number, EventProblem[]>();
    for (const p of problems) {
      if (typeof p.index !== 'number' || !Number.isInteger(p.index) || p.index < 0 || p.index >= size) continue;
      named.set(p.index, [...(named.get(p.index) ?? []), p]);
    }
    return named;
  }

  /** Fails each named event with its own {@link AnalyticsErrorCodes.EVENT_REJECTED} error. */
  private rejectNamed(batch: Held[], named: Map<number, EventProblem[]>, status: number): void {
    for (const [index, problems] of named) {
      const held = batch[index]!;
      const reasons = problems.map((p) => p.message ?? p.rule ?? 'refused').join('; ');
      this.fail([held], (events) => new AnalyticsError(AnalyticsErrorCodes.EVENT_REJECTED, `the ingestion refused ${held.event.type} event ${held.event.messageId}: ${reasons}`, { events, status, problems }));
    }
  }

  /** Settles the unsettled of `held` with one error (built for their events) and reports it once. */
  private fail(held: Held[], error: (events: SegmentEvent[]) => AnalyticsError): void {
    const open = held.filter((h) => !h.settled);
    if (open.length === 0) return;
    const err = error(open.map((h) => h.event));
    for (const h of open) this.settle(h, err);
    this.report(err);
  }

  private settle(held: Held, error: AnalyticsError | undefined): void {
    if (held.settled) return;
    held.settled = true;
    if (error) for (const w of this.waiters) if (held.seq <= w.through) w.undelivered.push(held.event);
    this.invoke(held.callback, error, held.event);
  }

  /** Every event up to this seq is settled. */
  private settledThrough(): number {
    let oldest = this.queue[0]?.seq ?? Infinity;
    for (const batch of this.inFlight) oldest = Math.min(oldest, batch.find((h) => !h.settled)?.seq ?? Infinity);
    return oldest === Infinity ? this.lastSeq : oldest - 1;
  }

  private resolveWaiters(): void {
    const through = this.settledThrough();
    const done = this.waiters.filter((w) => w.through <= through);
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.through > through);
    for (const w of done) w.resolve({ undelivered: w.undelivered });
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs a user callback; its exception is rethrown on the next tick, so the SDK's state stays sound. */
  private invoke(callback: Callback | undefined, error: AnalyticsError | undefined, event: SegmentEvent): void {
    if (!callback) return;
    try {
      callback(error, { event });
    } catch (e) {
      process.nextTick(() => {
        throw e;
      });
    }
  }

  /** Emits `error`, or a process warning when nobody listens (an unheard `error` would crash the process). */
  private report(error: AnalyticsError): void {
    if (this.listenerCount('error') > 0) this.safeEmit('error', error);
    else process.emitWarning(error.message, { type: error.name, code: error.code });
  }

  /** Emits; a listener's exception is rethrown on the next tick, so the SDK's state stays sound. */
  private safeEmit<K extends keyof AnalyticsEvents>(name: K, ...args: AnalyticsEvents[K]): void {
    try {
      (this.emit as (name: K, ...args: AnalyticsEvents[K]) => boolean)(name, ...args);
    } catch (e) {
      process.nextTick(() => {
        throw e;
      });
    }
  }
}
