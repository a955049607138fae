// The real ingestion API on real NATS JetStream for the browser tests: Sources with tag settings,
// restartable on the same port, and a reader of the events stream.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { parseSettings, startIngestion, type IngestionSource } from '@switchyard/runtime';
import { TagSpec } from '@switchyard/runtime/api';
import { natsFixture, streamMessages, type NatsFixture } from '../../../runtime/src/test-support/nats.js';
import { OTHER_SITE_DOMAIN, SITE_DOMAIN } from './browser.js';

/** A stored event's JSON. */
export type Json = Record<string, any>;

/** Host name the ingestion is reached at from test pages (first-party: same registrable domain as the sites). */
export const INGESTION_HOST = `data.${SITE_DOMAIN}`;

/** Namespace of every test Source. */
export const TEST_NAMESPACE = 'shop';

type DeepPartial<T> = T extends readonly (infer U)[] ? readonly U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/** A Source's `spec.tag` as a test writes it: any field may be left out (the schema's defaults fill it). */
export type SourceTag = DeepPartial<TagSpec>;

/**
 * Tag transport timings short enough for tests: events leave 50 ms after the call, retries start
 * at 100 ms and stay under 400 ms, a tab's queue lease lasts 600 ms.
 */
export const FAST_TRANSPORT = {
  flushInterval: '50ms',
  retryMinDelay: '100ms',
  retryMaxDelay: '400ms',
  lease: '600ms',
} as const;

/** {@link FAST_TRANSPORT} as the tag's own `TagConfig.transport` (milliseconds), for `analytics.load(key, options)`. */
export const FAST_TAG_TRANSPORT = {
  flushIntervalMs: 50,
  retryMinDelayMs: 100,
  retryMaxDelayMs: 400,
  leaseMs: 600,
} as const;

let sourceCounter = 0;

/**
 * A Source for the test sites: a unique name and write key (so each test reads only its own
 * events), every test site origin allowed (`http://{www,blog,shop}.shop.test:<sitePort>` and
 * `http://pay.checkout.test:<sitePort>`), and the given tag settings (transport timings defaulting
 * to {@link FAST_TRANSPORT}, the rest to the schema's defaults, as the operator applies them).
 * @param sitePort the site server's port (origins carry it).
 * @throws SwitchyardError INVALID_SETTINGS when `tag` does not fit the `spec.tag` schema.
 */
export function testSource(sitePort: number, options: { name?: string; tag?: SourceTag; consent?: IngestionSource['consent'] } = {}): IngestionSource {
  const name = options.name ?? `web-${++sourceCounter}`;
  const tag = parseSettings<TagSpec>(TagSpec, { ...options.tag, transport: { ...FAST_TRANSPORT, ...options.tag?.transport } }, 'spec.tag');
  return {
    namespace: TEST_NAMESPACE,
    name,
    writeKey: `wk_${name.replaceAll('-', '_')}_0123456789`,
    allowedOrigins: [...['www', 'blog', 'shop'].map((h) => `http://${h}.${SITE_DOMAIN}:${sitePort}`), `http://pay.${OTHER_SITE_DOMAIN}:${sitePort}`],
    ...(options.consent ? { consent: options.consent } : {}),
    limits: { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 },
    tag,
  };
}

/** An event as stored in the events stream. */
export interface StoredEvent {
  /** Stream sequence. */
  seq: number;
  subject: string;
  /** `namespace/name` of the Source (the `Sy-Source` header). */
  source: string;
  /** `Nats-Msg-Id` (`namespace/name/messageId`): the duplicate-window key. */
  msgId: string;
  event: Json;
}

/** Reads the events stream incrementally (by sequence) and waits for events to arrive. */
export class EventStreamReader {
  private readonly seen: StoredEvent[] = [];
  private nextSeq = 0;

  constructor(private readonly fx: NatsFixture) {}

  /** Every stored event so far, in stream order. */
  async all(): Promise<StoredEvent[]> {
    for (const m of await streamMessages(this.fx.jsm, this.fx.streams.events.name, this.nextSeq)) {
      this.seen.push({ seq: m.seq, subject: m.subject, source: m.header.get('Sy-Source'), msgId: m.header.get('Nats-Msg-Id'), event: m.json<Json>() });
      this.nextSeq = m.seq + 1;
    }
    return [...this.seen];
  }

  /** The events of one Source, in stream order. */
  async of(source: IngestionSource): Promise<Json[]> {
    const id = `${source.namespace}/${source.name}`;
    return (await this.all()).filter((s) => s.source === id).map((s) => s.event);
  }

  /**
   * Polls (every 50 ms) until the Source has at least `count` events and returns them all, in
   * stream order.
   * @param options.timeoutMs give up after this long (default 10 s): a failure, not a timing assertion.
   * @throws Error listing what did arrive when the deadline passes.
   */
  async waitFor(source: IngestionSource, count: number, options: { timeoutMs?: number } = {}): Promise<Json[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      const events = await this.of(source);
      if (events.length >= count) return events;
      if (Date.now() > deadline) {
        const summary = events.map((e) => `${e.type} ${e.event ?? e.name ?? ''} ${e.messageId}`).join('\n  ');
        throw new Error(`expected ${count} events of ${source.name}, got ${events.length}:\n  ${summary}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A request the ingestion received, as {@link TestIngestion.requests} lists it. */
export interface IngestionRequest {
  method: string;
  /** Path and query. */
  url: string;
  /** `Content-Length` (0 when absent): the body size the client sent. */
  bodyBytes: number;
  origin: string | undefined;
  /** Arrival, ms since the epoch. */
  at: number;
}

/** What {@link startTestIngestion} resolves to. */
export interface TestIngestion {
  nats: NatsFixture;
  events: EventStreamReader;
  /** The port, the same across restarts. */
  readonly port: number;
  /** `http://data.shop.test:<port>`: the ingestion as test pages reach it. */
  readonly origin: string;
  /** `http://127.0.0.1:<port>`: the ingestion as Node reaches it (only Chromium resolves `*.shop.test`). */
  readonly localOrigin: string;
  /** URL of the tag for a write key: `/tag/<writeKey>.js` (`ingestion`, default) or the Segment CDN alias (`segment-path`). */
  tagUrl(writeKey: string, from?: 'ingestion' | 'segment-path'): string;
  /**
   * Every request the ingestion received, oldest first, seen on Node's `http.server.request.start`
   * diagnostics channel (so also the keepalive requests of pages that are gone, which the browser's
   * DevTools protocol does not report).
   */
  readonly requests: IngestionRequest[];
  /** Adds Sources (live) to those served, also after restarts. */
  addSources(...sources: IngestionSource[]): void;
  /** Whether it is listening. */
  readonly running: boolean;
  /** Closes the HTTP server (the browser then gets connection errors). */
  stop(): Promise<void>;
  /** Listens again on the same port (retrying briefly while the port is still held). */
  restart(): Promise<void>;
  /** Stops it and deletes the streams. */
  cleanup(): Promise<void>;
}

/**
 * Starts NATS streams of its own (natsFixture) and the ingestion on a free port, all interfaces
 * (Chromium reaches it as `data.shop.test`, mapped to loopback).
 */
export async function startTestIngestion(): Promise<TestIngestion> {
  const nats = await natsFixture();
  const sources: IngestionSource[] = [];
  const options = () => ({ nc: nats.nc, streams: nats.streams, sources: [...sources] });
  let running: Awaited<ReturnType<typeof startIngestion>> | undefined = await startIngestion({ ...options(), port: 0 });
  const port = running.port;
  const origin = `http://${INGESTION_HOST}:${port}`;
  const requests: IngestionRequest[] = [];
  const onRequest = (message: unknown) => {
    const request = (message as { request: IncomingMessage }).request;
    if (request.socket.localPort !== port) return;
    const length = Number(request.headers['content-length'] ?? 0);
    requests.push({ method: request.method ?? '', url: request.url ?? '', bodyBytes: Number.isFinite(length) ? length : 0, origin: request.headers.origin, at: Date.now() });
  };
  subscribe('http.server.request.start', onRequest);
  const fixture: TestIngestion = {
    nats,
    events: new EventStreamReader(nats),
    port,
    origin,
    localOrigin: `http://127.0.0.1:${port}`,
    requests,
    tagUrl: (writeKey, from = 'ingestion') =>
      from === 'ingestion' ? `${origin}/tag/${encodeURIComponent(writeKey)}.js` : `${origin}/analytics.js/v1/${encodeURIComponent(writeKey)}/analytics.min.js`,
    addSources(...added) {
      sources.push(...added);
      running?.setSources([...sources]);
    },
    get running() {
      return running !== undefined;
    },
    async stop() {
      const was = running;
      running = undefined;
      await was?.close();
    },
    async restart() {
      if (running) return;
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          running = await startIngestion({ ...options(), port });
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    async cleanup() {
      unsubscribe('http.server.request.start', onRequest);
      await fixture.stop();
      await nats.cleanup();
    },
  };
  return fixture;
}
