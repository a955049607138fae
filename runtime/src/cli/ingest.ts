import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import { createServer } from 'node:http';
import type { Command } from 'commander';
import { Type, type Static } from '@sinclair/typebox';
import { parse } from 'yaml';
import { NAME_PATTERN } from '../api/common.js';
import { SourceSpec, TagSpec } from '../api/source.js';
import { parseSettings } from '../api/validate.js';
import { startIngestion, type IngestionSource } from '../ingestion/index.js';
import { createLogger } from '../logger.js';
import { createRegistry } from '../metrics.js';
import { connectNats } from '../nats/connection.js';
import { ensureStreams } from '../nats/streams.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { loadProcessSettings, onShutdown } from './common.js';

/** The sources file the ingestion reads (rendered by the operator into a Secret): resolved write keys. */
export const SourcesFile = Type.Object(
  {
    sources: Type.Array(
      Type.Object(
        {
          namespace: Type.String({ pattern: NAME_PATTERN }),
          name: Type.String({ pattern: NAME_PATTERN }),
          writeKey: Type.String({ minLength: 1 }),
          allowedOrigins: SourceSpec.properties.allowedOrigins,
          limits: SourceSpec.properties.limits,
          consent: Type.Optional(SourceSpec.properties.consent),
          tag: Type.Optional(TagSpec),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
  },
  { additionalProperties: false },
);
export type SourcesFile = Static<typeof SourcesFile>;

/**
 * Reads and validates a sources file.
 * @throws SwitchyardError INVALID_SETTINGS naming the failing field.
 */
export async function readSourcesFile(file: string): Promise<IngestionSource[]> {
  const parsed = parseSettings<SourcesFile>(SourcesFile, parse(await readFile(file, 'utf8')) ?? {}, `sources file ${file}`);
  return structuredClone(parsed.sources) as IngestionSource[];
}

/**
 * `switchyard ingest --sources <file>`: the ingestion API as a process (one Deployment in the
 * cluster). The sources file is re-read when it changes, without a restart. `/metrics` is served on
 * the API port, or with `--metrics-port` on that port only.
 */
export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('run the ingestion API (cluster mode)')
    .requiredOption('--sources <file>', 'sources file {sources: [{namespace, name, writeKey, allowedOrigins, limits, consent, tag}]}, reloaded on change')
    .option('--settings <file>', 'settings file {nats, streams} (YAML or JSON)')
    .option('-p, --port <port>', 'port', '8080')
    .option('--host <host>', 'address', '0.0.0.0')
    .option('--trust-proxy <value>', 'express "trust proxy": hop count, or comma-separated addresses/CIDRs whose X-Forwarded-For is believed')
    .option('--metrics-port <port>', 'serve /metrics on this port instead of the API port (so a public API never publishes them)')
    .action(async (opts: { sources: string; settings?: string; port: string; host: string; trustProxy?: string; metricsPort?: string }) => {
      const logger = createLogger();
      const metricsPort = opts.metricsPort === undefined ? undefined : /^\d+$/.test(opts.metricsPort) ? Number(opts.metricsPort) : NaN;
      if (metricsPort !== undefined && !(metricsPort >= 1 && metricsPort <= 65535)) throw new Error(`--metrics-port must be an integer from 1 to 65535, got ${JSON.stringify(opts.metricsPort)}`);
      const settings = await loadProcessSettings(opts.settings);
      const nc = await connectNats(settings.nats);
      await ensureStreams(await jetstreamManager(nc), settings.streams);
      const trustProxy = opts.trustProxy === undefined ? false : /^\d+$/.test(opts.trustProxy) ? Number(opts.trustProxy) : opts.trustProxy.split(',');
      const registry = createRegistry();
      const ingestion = await startIngestion({
        nc,
        streams: settings.streams,
        sources: await readSourcesFile(opts.sources),
        trustProxy,
        logger,
        registry,
        serveMetrics: metricsPort === undefined,
        port: Number(opts.port),
        host: opts.host,
      });
      logger.info({ url: ingestion.url }, 'ingestion listening');
      const metricsServer =
        metricsPort === undefined
          ? undefined
          : createServer((req, res) => {
              if (req.method === 'GET' && req.url === '/metrics') registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text), () => res.writeHead(500).end());
              else res.writeHead(404).end();
            });
      if (metricsServer) {
        await new Promise<void>((resolve, reject) => {
          metricsServer.once('error', (e) => reject(new Error(`cannot listen on --metrics-port ${metricsPort}: ${e.message}`)));
          metricsServer.listen(metricsPort, opts.host, resolve);
        });
      }
      // Polling survives the kubelet's atomic symlink swap of mounted Secrets, which fs.watch misses.
      watchFile(opts.sources, { interval: 2000 }, () => {
        readSourcesFile(opts.sources)
          .then((sources) => {
            ingestion.setSources(sources);
            logger.info({ sources: sources.length }, 'sources reloaded');
          })
          .catch((e: unknown) => logger.error({ err: e }, 'sources file refused; keeping the previous sources'));
      });
      await onShutdown(async () => {
        unwatchFile(opts.sources);
        metricsServer?.close();
        await ingestion.close();
        await nc.drain();
      });
    });
}
