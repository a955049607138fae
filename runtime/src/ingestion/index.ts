import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIngestionApp, type IngestionOptions } from './app.js';
import type { IngestionSource } from './sources.js';

export { createIngestionApp, basicAuthWriteKey, MAX_REPORTED_PROBLEMS, type IngestionOptions, type IngestionFailureBody } from './app.js';
export type { IngestionSource, RateDecision } from './sources.js';
export { SourceRateLimiter, SourceTable } from './sources.js';
export { enrichEvent, applyBatchDefaults, GENERATED_MESSAGE_ID_PREFIX, type SegmentEvent, type RequestFacts } from './enrich.js';
export { EVENT_SCHEMAS, BatchEnvelope, validateEvent, validateBatchEnvelope, type EventProblem } from './schema.js';
export { CONSENT_MISSING_HEADER, SOURCE_HEADER } from './nats.js';
export { resolveTag, renderTagScript, TagAssets, TagBundleMissingError, type ResolvedTag, type TagAsset } from './tag.js';
export { identityCookie, identityCookieDomain, anonymousIdFromCookie, anonymousIdProblem, MAX_ANONYMOUS_ID_LENGTH } from './identity.js';
export type { RejectReason } from './metrics.js';

/** A listening ingestion API, as {@link startIngestion} returns it. */
export interface RunningIngestion {
  /** Base URL, e.g. `http://127.0.0.1:8080` (0.0.0.0 and :: are shown as 127.0.0.1 and [::1]). */
  url: string;
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Replaces the Sources live; see {@link createIngestionApp}. */
  setSources(sources: IngestionSource[]): void;
  /** Stops accepting connections, waits for requests in flight (at most 10 s), stops publishing. The NATS connection stays open. */
  close(): Promise<void>;
}

/** Longest wait for requests in flight on close, in milliseconds. */
const CLOSE_GRACE_MS = 10_000;

/**
 * Starts the ingestion API on an HTTP server: {@link createIngestionApp} plus `listen`.
 * @param options.port TCP port; 0 (default) picks a free one.
 * @param options.host Interface to bind; default `0.0.0.0`.
 * @throws the `listen` error (e.g. EADDRINUSE).
 */
export async function startIngestion(options: IngestionOptions & { port?: number; host?: string }): Promise<RunningIngestion> {
  const ingestion = createIngestionApp(options);
  const server: Server = createServer(ingestion.app);
  // Bodies are at most a few MB: a client this slow is stuck or hostile.
  server.requestTimeout = 60_000;
  const host = options.host ?? '0.0.0.0';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    ingestion.close();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    setSources: (sources) => ingestion.setSources(sources),
    async close() {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      ingestion.close();
    },
  };
}
