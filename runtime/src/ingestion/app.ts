import type { IncomingMessage } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventType } from '../api/integration.js';
import { systemClock, type Clock } from '../clock.js';
import { silentLogger, type Logger } from '../logger.js';
import { Registry } from '../metrics.js';
import { BatchPublisher, type OutgoingMessage } from '../nats/publisher.js';
import { eventSubject, messageDedupId } from '../nats/subjects.js';
import type { StreamSettings } from '../settings.js';
import { applyBatchDefaults, enrichEvent, type RequestFacts, type SegmentEvent } from './enrich.js';
import { ingestionMetrics, type IngestionMetrics, type RejectReason } from './metrics.js';
import { CONSENT_MISSING_HEADER, SOURCE_HEADER } from './nats.js';
import { isEventType, validateBatchEnvelope, validateEvent, type EventProblem } from './schema.js';
import { SourceTable, originAllowed, type ActiveSource, type IngestionSource } from './sources.js';
import { anonymousIdFromCookie, anonymousIdProblem, chooseAnonymousId, identityCookie } from './identity.js';
import { TagAssets, TagBundleMissingError, ifNoneMatchHits, type TagEncoding } from './tag.js';

/** Options of {@link createIngestionApp}. */
export interface IngestionOptions {
  /** Connection events are published on; the caller owns it (connects and closes it). */
  nc: NatsConnection;
  /** Stream settings: subject prefix and the events stream name (`Nats-Expected-Stream`). */
  streams: StreamSettings;
  /** The Sources served at start; replace them later with `setSources`. */
  sources: IngestionSource[];
  /**
   * Express `trust proxy` (https://expressjs.com/en/guide/behind-proxies.html): which proxies'
   * `X-Forwarded-For` is believed for `context.ip`. Default false: the socket's peer address.
   */
  trustProxy?: boolean | number | string | string[];
  /** Time source of `receivedAt` and the clock-skew correction. Default: the system clock. */
  clock?: Clock;
  /** Logger; default silent. */
  logger?: Logger;
  /** Registry the metrics are registered on; default a fresh one. */
  registry?: Registry;
  /**
   * Serve `GET /metrics` on the API's own port. Default true; false when the metrics have a port of
   * their own (`switchyard ingest --metrics-port`), so a public API never publishes them.
   */
  serveMetrics?: boolean;
  /**
   * Milliseconds to wait for JetStream's acknowledgements of one publish attempt (two attempts are
   * made). Default 3000, so a request is answered within ~6 s, below the 10 s HTTP timeout of
   * Segment's server SDKs.
   */
  publishAckTimeoutMs?: number;
  /**
   * File of the browser tag bundle served (wrapped with each Source's configuration) at
   * `GET /tag/<writeKey>.js`. Default: `@switchyard/client/tag` (client/dist/tag/switchyard.min.js,
   * made by `npm run build`); read on first use.
   */
  tagScript?: string;
}

/** Response body of every ingestion request except a fully accepted one (`{"success":true}`). */
export interface IngestionFailureBody {
  success: false;
  /** Events stored (only when the request was read and its events checked). */
  accepted?: number;
  /** Events refused. */
  rejected?: number;
  /** What was wrong, at most {@link MAX_REPORTED_PROBLEMS} entries. */
  errors: EventProblem[];
}

/** Most problems listed in one response; `accepted`/`rejected` still count every event. */
export const MAX_REPORTED_PROBLEMS = 100;

/** Seconds a client is told to wait after a 503 (JetStream did not store the events). */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/** Largest `POST /v1/identity` body in bytes (it holds a write key and an id). */
const IDENTITY_BODY_LIMIT = 4096;

/** Routes serving the browser tag: ours, and Segment's CDN path so a snippet only changes host. */
const TAG_ROUTES = ['/tag/:writeKey.js', '/analytics.js/v1/:writeKey/analytics.min.js'];

/** Browsers and CDNs may keep the tag this long (seconds): a changed Source reaches pages within it. */
const TAG_MAX_AGE_SECONDS = 300;

/** Tracking API routes (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/) and the call type each takes. */
const CALL_ROUTES: Record<string, EventType | 'batch'> = {
  '/v1/batch': 'batch',
  '/v1/import': 'batch',
  '/v1/track': 'track',
  '/v1/t': 'track',
  '/v1/page': 'page',
  '/v1/p': 'page',
  '/v1/screen': 'screen',
  '/v1/s': 'screen',
  '/v1/identify': 'identify',
  '/v1/i': 'identify',
  '/v1/group': 'group',
  '/v1/g': 'group',
  '/v1/alias': 'alias',
  '/v1/a': 'alias',
};

/**
 * The write key of an `Authorization: Basic` header: the user name, password ignored (Segment
 * sends `<writeKey>:`; a key encoded without the colon is accepted too, as Segment does).
 * @returns undefined when there is no Basic header or its user name is empty.
 */
export function basicAuthWriteKey(header: string | undefined): string | undefined {
  const match = header ? /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon === -1 ? decoded : decoded.slice(0, colon);
  return user || undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Body-parser errors (http-errors) as the ingestion API reports them. */
function bodyError(err: unknown, limit: number): { status: number; problem: EventProblem } {
  const e = err as { type?: string; status?: number; message?: string };
  switch (e.type) {
    case 'entity.too.large':
      return { status: 413, problem: { field: '/', rule: 'maxBatchBytes', message: `request body is larger than ${limit} bytes (after decompression)` } };
    case 'entity.parse.failed':
      return { status: 400, problem: { field: '/', rule: 'json', message: `request body is not a JSON object: ${e.message ?? 'parse error'}` } };
    case 'encoding.unsupported':
      return { status: 415, problem: { field: '/', rule: 'contentEncoding', message: `${e.message ?? 'unsupported content encoding'}; send identity, gzip or deflate` } };
    case 'charset.unsupported':
      return { status: 415, problem: { field: '/', rule: 'charset', message: `${e.message ?? 'unsupported charset'}; send UTF-8` } };
    default:
      return { status: e.status && e.status >= 400 && e.status < 500 ? e.status : 400, problem: { field: '/', rule: 'body', message: `request body could not be read: ${e.message ?? 'error'}` } };
  }
}

/** Runs a connect-style middleware and resolves with the error it passed on, if any. */
function runMiddleware(handler: RequestHandler, req: Request, res: Response): Promise<unknown> {
  return new Promise((resolve) => {
    void handler(req, res, (err?: unknown) => resolve(err));
  });
}

/** Tracks whether the NATS connection is usable, from its status events. */
function connectionState(nc: NatsConnection): { ready(): boolean; stop(): void } {
  let connected = !nc.isClosed();
  const statuses = nc.status();
  void (async () => {
    for await (const s of statuses) {
      if (s.type === 'disconnect') connected = false;
      else if (s.type === 'reconnect') connected = true;
    }
  })().catch(() => undefined);
  return {
    ready: () => connected && !nc.isClosed() && !nc.isDraining(),
    // The iterator ends itself when the connection closes; stop() detaches it earlier.
    stop: () => (statuses as unknown as { stop?: () => void }).stop?.(),
  };
}

/**
 * Builds the ingestion API: an Express app serving the Segment HTTP Tracking API plus health,
 * readiness and metrics endpoints. Nothing listens yet; mount `app` or use {@link startIngestion}.
 *
 * Routes (`POST`, also `OPTIONS` for CORS preflight): `/v1/batch` (alias `/v1/import`),
 * `/v1/track|page|screen|identify|group|alias` and `/v1/t|p|s|i|g|a`; `/v1/identity` (the tag's
 * server-set anonymousId cookie, see README "Identity cookie"). `GET /tag/<writeKey>.js` and
 * `GET /analytics.js/v1/<writeKey>/analytics.min.js` (the browser tag with the Source's
 * configuration, see README "Browser tag"). `GET /healthz` (200 while the process serves),
 * `GET /readyz` (200 while NATS is connected, else 503), `GET /metrics` (Prometheus text).
 *
 * Responses of the tracking routes (every body is JSON):
 * - `200 {"success":true}`: every event stored in JetStream (duplicates of stored messageIds count
 *   as stored). Segment SDKs expect exactly this.
 * - `207 {"success":false,"accepted":n,"rejected":m,"errors":[{"index":i,"field":"/event","rule":"required","message":"…"}]}`:
 *   the accepted events are stored, the listed ones refused (schema or maxEventBytes). Resending the
 *   request cannot fix them; clients treat 2xx as delivered.
 * - `400` with the same body when no event was accepted; `400 {"success":false,"errors":[{"field":"/","rule":"json",…}]}`
 *   when the body is not JSON, or the batch envelope is wrong (`/batch` missing…).
 * - `401` unknown or missing write key; `403` a browser `Origin` the Source does not allow;
 *   `413` body over maxBatchBytes after decompression, or more events than the rate budget holds;
 *   `415` unsupported Content-Encoding or charset; `429` over the Source's rate (with `Retry-After`
 *   seconds; nothing stored); `503` JetStream did not acknowledge (with `Retry-After`; nothing is
 *   reported accepted, events already stored are de-duplicated when the request is resent).
 *
 * @returns `app`; `setSources` replaces the Sources (write keys, origins, limits) for the next
 * requests, throwing SwitchyardError WRITE_KEY_CONFLICT (and keeping the old ones) when two share a
 * key, or INVALID_SETTINGS when a Source's `tag` breaks its schema; `close` stops publishing and readiness tracking (the NATS connection stays open).
 */
export function createIngestionApp(options: IngestionOptions): { app: express.Express; setSources(sources: IngestionSource[]): void; close(): void } {
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? silentLogger).child({ component: 'ingestion' });
  const registry = options.registry ?? new Registry();
  const metrics: IngestionMetrics = ingestionMetrics(registry);
  const { streams } = options;
  const publisher = new BatchPublisher(options.nc, {
    stream: streams.events.name,
    ackTimeoutMs: options.publishAckTimeoutMs ?? 3000,
    attempts: 2,
  });
  const connection = connectionState(options.nc);
  let table = SourceTable.build(options.sources);

  // One JSON parser per body limit (limits come from Sources and change with them).
  const bodyBytes = new WeakMap<IncomingMessage, number>();
  const parsers = new Map<number, RequestHandler>();
  const parserFor = (limit: number): RequestHandler => {
    let parser = parsers.get(limit);
    if (!parser) {
      parser = express.json({
        limit,
        // Counted after decompression by body-parser: an inflating body stops at `limit` bytes.
        inflate: true,
        // Browsers send text/plain to skip the CORS preflight; Segment parses any type as JSON.
        type: () => true,
        verify: (req, _res, buf) => void bodyBytes.set(req, buf.length),
      });
      parsers.set(limit, parser);
    }
    return parser;
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', options.trustProxy ?? false);

  // Credentials allowed: the tag's identity call sends cookies, and its keepalive and beacon requests may.
  const corsHeaders = (res: Response, origin: string) => {
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
  };
  /**
   * CORS headers of an answer: for an allowed origin, and for the 403 of a refused one, so a
   * browser client sees a final refusal (a fixed error body, nothing stored, no cookie set) instead
   * of a network error it would retry.
   */
  const answerCors = (res: Response, status: number, origin: string | undefined, allowed: () => boolean) => {
    if (origin !== undefined && (status === 403 || allowed())) corsHeaders(res, origin);
  };

  // Preflight: the Source is unknown (no credentials in a preflight), so an origin any Source lists passes.
  const preflight = (route: string) => (req: Request, res: Response) => {
    const origin = req.get('origin');
    res.setHeader('Vary', 'Origin, Access-Control-Request-Headers');
    let status = 204;
    if (origin !== undefined) {
      if (table.anyAllows(origin)) {
        corsHeaders(res, origin);
        res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', req.get('access-control-request-headers') ?? 'Authorization, Content-Type, Content-Encoding');
        res.setHeader('Access-Control-Max-Age', '600');
      } else status = 403;
    }
    metrics.requests.inc({ route, status });
    res.status(status).end();
  };

  for (const [route, kind] of Object.entries(CALL_ROUTES)) {
    app.options(route, preflight(route));
    app.post(route, (req, res) => track(req, res, route, kind));
  }

  /** One tracking request, from authentication to the JetStream acknowledgement. */
  async function track(req: Request, res: Response, route: string, kind: EventType | 'batch'): Promise<void> {
    const started = performance.now();
    const sources = table; // one snapshot per request, whatever setSources does meanwhile
    const origin = req.get('origin');
    let source: ActiveSource | undefined;
    let received = 0;
    let acceptedCount = 0;

    const reject = (reason: RejectReason, events: number) => {
      if (source && events > 0) metrics.rejected.inc({ source: source.id, reason }, events);
    };
    const reply = (status: number, body: object, headers: Record<string, string> = {}) => {
      res.setHeader('Vary', 'Origin');
      // Allowed: by the Source once known, else by any.
      answerCors(res, status, origin, () => (source ? originAllowed(source, origin!) : sources.anyAllows(origin!)));
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.status(status).json(body);
      metrics.requests.inc({ route, status });
      const summary = { route, status, source: source?.id, received, accepted: acceptedCount, ms: Math.round(performance.now() - started) };
      if (status >= 500) log.warn(summary, 'ingestion request failed');
      else if (status >= 400) log.info(summary, 'ingestion request refused');
      else log.debug(summary, 'ingestion request');
    };
    const fail = (status: number, problem: EventProblem, headers?: Record<string, string>) =>
      reply(status, { success: false, errors: [problem] } satisfies IngestionFailureBody, headers);
    const denyOrigin = () => fail(403, { field: '/', rule: 'origin', message: `origin ${origin} is not allowed for this Source` });

    // 1. The write key from Basic auth, when sent: the Source (and its body limit) is known before reading.
    const basicKey = basicAuthWriteKey(req.get('authorization'));
    if (basicKey !== undefined) {
      source = sources.lookup(basicKey);
      if (!source) return fail(401, { field: '/writeKey', rule: 'writeKey', message: 'unknown write key' });
      if (origin !== undefined && !originAllowed(source, origin)) return denyOrigin();
    } else if (sources.all.length === 0) {
      return fail(401, { field: '/writeKey', rule: 'writeKey', message: 'unknown write key' });
    }

    // 2. The body, inflated and counted against the Source's limit (or the largest of all Sources).
    const limit = source ? source.spec.limits.maxBatchBytes : sources.maxBatchBytes;
    const parseError = await runMiddleware(parserFor(limit), req, res);
    if (parseError) {
      const { status, problem } = bodyError(parseError, limit);
      return fail(status, problem);
    }
    const body: unknown = req.body;

    // 3. The write key from the body, then that Source's own size limit and origins.
    if (!source) {
      const key = isObject(body) && typeof body.writeKey === 'string' ? body.writeKey : undefined;
      if (key === undefined) return fail(401, { field: '/writeKey', rule: 'writeKey', message: 'missing write key: send it as the HTTP Basic user name or as writeKey in the body' });
      source = sources.lookup(key);
      if (!source) return fail(401, { field: '/writeKey', rule: 'writeKey', message: 'unknown write key' });
      const size = bodyBytes.get(req) ?? 0;
      if (size > source.spec.limits.maxBatchBytes) {
        return fail(413, { field: '/', rule: 'maxBatchBytes', message: `request body is larger than ${source.spec.limits.maxBatchBytes} bytes (after decompression)` });
      }
      if (origin !== undefined && !originAllowed(source, origin)) return denyOrigin();
    }
    const src = source;

    // 4. The calls: a batch envelope, or the body itself.
    let calls: unknown[];
    let batch: RequestFacts['batch'];
    if (kind === 'batch') {
      const problems = validateBatchEnvelope(body);
      if (problems.length > 0 || !isObject(body)) {
        return reply(400, { success: false, errors: problems.length ? problems : [{ field: '/', rule: 'type', message: 'request body must be a JSON object' }] });
      }
      calls = body.batch as unknown[];
      batch = { sentAt: body.sentAt, context: body.context, integrations: body.integrations };
    } else {
      calls = [body];
    }
    received = calls.length;
    metrics.received.inc({ source: src.id }, received);

    // 5. The Source's rate budget, in events: a refused request stores nothing.
    const decision = await src.limiter.take(received);
    if (!decision.ok) {
      if ('tooMany' in decision) {
        reject('batch_too_large', received);
        return fail(413, { field: '/batch', rule: 'rateLimit', message: `${received} events in one request exceed this Source's rate budget of ${decision.capacity}; send smaller batches` });
      }
      reject('rate_limited', received);
      return fail(429, { field: '/', rule: 'rateLimit', message: `over the Source's rate of ${src.spec.limits.eventsPerSecond} events per second; retry after ${decision.retryAfterSeconds} s` }, { 'Retry-After': String(decision.retryAfterSeconds) });
    }

    // 6. Each call: size, type, schema; the valid ones are enriched.
    const facts: RequestFacts = { receivedAt: clock.now(), ip: req.ip, batch };
    const problems: EventProblem[] = [];
    const accepted: SegmentEvent[] = [];
    let rejectedCount = 0;
    const refuse = (index: number, reason: RejectReason, eventProblems: Omit<EventProblem, 'index'>[], messageId: unknown) => {
      rejectedCount++;
      reject(reason, 1);
      for (const p of eventProblems) problems.push({ index, ...p });
      log.debug({ source: src.id, messageId, index, problems: eventProblems }, 'event rejected');
    };
    for (let index = 0; index < calls.length; index++) {
      const call = calls[index];
      if (!isObject(call)) {
        refuse(index, 'invalid', [{ field: '/', rule: 'type', message: 'a call must be a JSON object' }], undefined);
        continue;
      }
      const size = Buffer.byteLength(JSON.stringify(call));
      if (size > src.spec.limits.maxEventBytes) {
        refuse(index, 'event_too_large', [{ field: '/', rule: 'maxEventBytes', message: `call is ${size} bytes, more than ${src.spec.limits.maxEventBytes}` }], call.messageId);
        continue;
      }
      let type: EventType;
      if (kind !== 'batch') type = kind;
      else if (isEventType(call.type)) type = call.type;
      else {
        const missing = call.type === undefined;
        refuse(index, 'invalid', [{ field: '/type', rule: missing ? 'required' : 'enum', message: missing ? '/type is required' : '/type must be one of track, page, screen, identify, group, alias' }], call.messageId);
        continue;
      }
      call.type = type;
      applyBatchDefaults(call, batch);
      const eventProblems = validateEvent(type, call);
      if (eventProblems.length > 0) {
        refuse(index, 'invalid', eventProblems, call.messageId);
        continue;
      }
      accepted.push(enrichEvent(call, type, facts));
    }

    // 7. Store the accepted calls; answer only after JetStream acknowledged every one.
    if (accepted.length > 0) {
      const { namespace, name } = src.spec;
      const sourceHeader: Record<string, string> = { [SOURCE_HEADER]: `${namespace}/${name}` };
      if (src.spec.consent?.missing === 'deny') sourceHeader[CONSENT_MISSING_HEADER] = 'deny';
      const messages: OutgoingMessage[] = accepted.map((e) => ({
        subject: eventSubject(streams.subjectPrefix, namespace, name, e.type),
        data: Buffer.from(JSON.stringify(e)),
        msgId: messageDedupId(namespace, name, e.messageId),
        headers: sourceHeader,
      }));
      const stopTimer = metrics.publishDuration.startTimer();
      const outcomes = await publisher.publish(messages);
      stopTimer();
      const failure = outcomes.find((o) => !o.ok);
      if (failure && !failure.ok) {
        reject('unavailable', accepted.length);
        log.warn({ source: src.id, events: accepted.length, error: failure.error }, 'events not acknowledged by JetStream');
        return fail(
          503,
          { field: '/', rule: 'unavailable', message: `events could not be stored (${failure.error}); nothing was accepted, retry later` },
          { 'Retry-After': String(UNAVAILABLE_RETRY_AFTER_SECONDS) },
        );
      }
    }
    acceptedCount = accepted.length;
    if (acceptedCount > 0) metrics.accepted.inc({ source: src.id }, acceptedCount);

    if (rejectedCount === 0) return reply(200, { success: true });
    const failureBody: IngestionFailureBody = { success: false, accepted: acceptedCount, rejected: rejectedCount, errors: problems.slice(0, MAX_REPORTED_PROBLEMS) };
    return reply(acceptedCount > 0 ? 207 : 400, failureBody);
  }

  // The browser tag, one script per Source: the bundle wrapped with the Source's configuration.
  const tagAssets = new TagAssets(options.tagScript);
  const serveTag = (route: string) => async (req: Request, res: Response) => {
    const javascriptError = (status: number, comment: string) => {
      res.setHeader('Content-Type', 'application/javascript; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.status(status).send(`/* Switchyard: ${comment.replaceAll('*/', '* /')} */\n`);
      metrics.requests.inc({ route, status });
    };
    const source = table.lookup(String(req.params.writeKey));
    if (!source || !source.tag.spec.enabled) return javascriptError(404, 'no tag for this write key (unknown key, or the Source sets spec.tag.enabled: false)');
    let asset;
    try {
      asset = await tagAssets.asset(source.tag.config);
    } catch (e) {
      if (!(e instanceof TagBundleMissingError)) throw e;
      log.error({ err: e }, 'browser tag not served');
      return javascriptError(503, e.message);
    }
    const encoding: TagEncoding = req.acceptsEncodings('br') ? 'br' : req.acceptsEncodings('gzip') ? 'gzip' : 'identity';
    const etag = asset.etags[encoding];
    res.setHeader('Cache-Control', `public, max-age=${TAG_MAX_AGE_SECONDS}`);
    res.setHeader('ETag', etag);
    res.setHeader('Vary', 'Accept-Encoding');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    // Lets pages load it with `crossorigin` (error details, subresource integrity); it holds nothing private.
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    if (ifNoneMatchHits(req.get('if-none-match'), etag)) {
      metrics.requests.inc({ route, status: 304 });
      return void res.status(304).end();
    }
    res.setHeader('Content-Type', 'application/javascript; charset=utf-8');
    if (encoding !== 'identity') res.setHeader('Content-Encoding', encoding);
    const body = asset.bodies[encoding];
    res.setHeader('Content-Length', String(body.length));
    res.status(200).end(body);
    metrics.requests.inc({ route, status: 200 });
  };
  for (const route of TAG_ROUTES) app.get(route, serveTag(route));

  // The server-set identity cookie (spec.tag.serverCookie).
  const identityParser = express.json({ limit: IDENTITY_BODY_LIMIT, inflate: true, type: () => true });
  app.options('/v1/identity', preflight('/v1/identity'));
  app.post('/v1/identity', (req, res) => identity(req, res));

  /**
   * `POST /v1/identity`: answers `{"anonymousId": id}` with the cookie holding it. The id the
   * browser's cookie already holds wins, else the body's `anonymousId`, else a new one.
   */
  async function identity(req: Request, res: Response): Promise<void> {
    const route = '/v1/identity';
    const sources = table;
    const origin = req.get('origin');
    let source: ActiveSource | undefined;
    const reply = (status: number, body: object) => {
      res.setHeader('Vary', 'Origin');
      res.setHeader('Cache-Control', 'no-store');
      answerCors(res, status, origin, () => (source ? originAllowed(source, origin!) : sources.anyAllows(origin!)));
      res.status(status).json(body);
      metrics.requests.inc({ route, status });
      if (status >= 400) log.info({ route, status, source: source?.id }, 'identity request refused');
    };
    const fail = (status: number, problem: EventProblem) => reply(status, { success: false, errors: [problem] } satisfies IngestionFailureBody);
    const unknownKey = () => fail(401, { field: '/writeKey', rule: 'writeKey', message: 'unknown write key' });

    const basicKey = basicAuthWriteKey(req.get('authorization'));
    if (basicKey !== undefined) {
      source = sources.lookup(basicKey);
      if (!source) return unknownKey();
    }
    const parseError = await runMiddleware(identityParser, req, res);
    if (parseError) {
      const { status, problem } = bodyError(parseError, IDENTITY_BODY_LIMIT);
      return fail(status, problem);
    }
    const body: Record<string, unknown> = isObject(req.body) ? req.body : {};
    if (!source) {
      if (typeof body.writeKey !== 'string') return fail(401, { field: '/writeKey', rule: 'writeKey', message: 'missing write key: send it as the HTTP Basic user name or as writeKey in the body' });
      source = sources.lookup(body.writeKey);
      if (!source) return unknownKey();
    }
    if (origin !== undefined && !originAllowed(source, origin)) return fail(403, { field: '/', rule: 'origin', message: `origin ${origin} is not allowed for this Source` });
    const tag = source.tag.spec;
    if (!tag.serverCookie.enabled) return fail(404, { field: '/', rule: 'serverCookie', message: 'this Source does not set the identity cookie (spec.tag.serverCookie.enabled is false)' });
    let bodyId: string | undefined;
    if (body.anonymousId !== undefined && body.anonymousId !== null) {
      const problem = anonymousIdProblem(body.anonymousId);
      if (problem) return fail(400, { field: '/anonymousId', rule: 'anonymousId', message: `/anonymousId ${problem}` });
      bodyId = body.anonymousId as string;
    }
    const id = chooseAnonymousId(anonymousIdFromCookie(req.get('cookie'), tag.cookie.anonymousIdName), bodyId, body.replace === true);
    res.setHeader('Set-Cookie', identityCookie(id, tag, { hostname: req.hostname, secure: req.secure }));
    reply(200, { anonymousId: id });
  }

  /** Logs the syncs of each Source's tag that are not served, and keeps only the tag scripts in use. */
  const tagsChanged = () => {
    for (const s of table.all) if (s.tag.problems.length > 0) log.warn({ source: s.id, problems: s.tag.problems }, 'tag syncs with problems are not served (spec.tag.syncs)');
    tagAssets.retain(table.all.map((s) => s.tag.config));
  };
  tagsChanged();

  app.get('/healthz', (_req, res) => {
    metrics.requests.inc({ route: '/healthz', status: 200 });
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = connection.ready();
    const status = ready ? 200 : 503;
    metrics.requests.inc({ route: '/readyz', status });
    res.status(status).json(ready ? { status: 'ready' } : { status: 'not ready', reason: 'NATS is not connected' });
  });
  if (options.serveMetrics !== false) {
    app.get('/metrics', async (_req, res) => {
      metrics.requests.inc({ route: '/metrics', status: 200 });
      res.setHeader('Content-Type', registry.contentType);
      res.send(await registry.metrics());
    });
  }

  app.use((req: Request, res: Response) => {
    metrics.requests.inc({ route: 'unmatched', status: 404 });
    res.status(404).json({ success: false, errors: [{ field: '/', rule: 'route', message: `no route ${req.method} ${req.path}` }] });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    log.error({ err, path: req.path }, 'ingestion request crashed');
    metrics.requests.inc({ route: typeof req.route?.path === 'string' ? req.route.path : 'unmatched', status: 500 });
    if (!res.headersSent) res.status(500).json({ success: false, errors: [{ field: '/', rule: 'internal', message: 'internal error' }] });
  });

  return {
    app,
    setSources(sources: IngestionSource[]) {
      table = SourceTable.build(sources, table);
      // Drop parsers of body limits no Source uses any more.
      const inUse = new Set([table.maxBatchBytes, ...table.all.map((s) => s.spec.limits.maxBatchBytes)]);
      for (const limit of parsers.keys()) if (!inUse.has(limit)) parsers.delete(limit);
      tagsChanged();
      log.info({ sources: table.all.map((s) => s.id) }, 'ingestion sources replaced');
    },
    close() {
      publisher.close();
      connection.stop();
    },
  };
}
