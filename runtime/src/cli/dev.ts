import type { Command } from 'commander';
import { jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { formatResourceProblems, loadResources } from '../api/index.js';
import { ensureIntegrationConsumer, startForwarder, type DeliveryRecord, type Forwarder } from '../forward/index.js';
import { startIngestion } from '../ingestion/index.js';
import { connectOrStartNats } from '../local/nats.js';
import { startReceiver } from '../local/receiver.js';
import { resolveLocal } from '../local/resolve.js';
import { createRegistry } from '../metrics.js';
import { ensureStreams } from '../nats/streams.js';
import { loadProcessSettings, onShutdown } from './common.js';

/** One line per delivery attempt, for the person running `dev`. */
export function formatDelivery(d: DeliveryRecord): string {
  const parts = [`delivery  ${d.integration} ${d.outcome.padEnd(13)} ${d.type ?? '?'}${d.name ? ` → ${d.name}` : ''}`, `messageId=${d.messageId ?? '-'}`];
  if (d.status !== undefined) parts.push(`status=${d.status}`);
  if (d.durationMs !== undefined) parts.push(`${d.durationMs}ms`);
  parts.push(`attempt ${d.attempt}`);
  if (d.retryInMs !== undefined) parts.push(`retry in ${d.retryInMs}ms`);
  if (d.reason) parts.push(`reason=${d.reason}`);
  if (d.error) parts.push(`error=${JSON.stringify(d.error)}`);
  return parts.join('  ');
}

interface DevOptions {
  filename: string[];
  port: string;
  host: string;
  natsUrl?: string;
  settings?: string;
  receiver?: string;
}

/**
 * `switchyard dev -f <files…>`: runs ingestion and every Integration's forwarder in one process
 * from YAML, the way the cluster would run them. NATS from `--nats-url`/`NATS_URL` (default
 * nats://127.0.0.1:4222); when none answers or it is too old, a local nats-server is started.
 */
export function registerDev(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command('dev')
    .description('run ingestion and every Integration from YAML files in one process (local mode)')
    .requiredOption('-f, --filename <paths...>', 'files or folders with Source, Integration, Mapping and Secret YAML')
    .option('-p, --port <port>', 'ingestion port', '8787')
    .option('--host <host>', 'ingestion address', '127.0.0.1')
    .option('--nats-url <url>', 'NATS server URL(s), comma-separated (default: NATS_URL or nats://127.0.0.1:4222)')
    .option('--settings <file>', 'settings file {nats, streams} (YAML or JSON)')
    .option('--receiver <port>', 'also run a webhook receiver on 127.0.0.1:<port> that prints every request it gets')
    .action(async (opts: DevOptions) => {
      const logger = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { app: 'switchyard' } }, pino.destination(2));
      const { resources, problems } = await loadResources(opts.filename);
      const resolved = resolveLocal(resources);
      problems.push(...resolved.problems);
      if (problems.length > 0) {
        err(formatResourceProblems(problems));
        process.exitCode = 1;
        return;
      }
      const { plan } = resolved;
      const settings = await loadProcessSettings(opts.settings, opts.natsUrl);
      const { nc, local } = await connectOrStartNats(settings.nats, logger);
      const registry = createRegistry();
      const jsm = await jetstreamManager(nc);
      await ensureStreams(jsm, settings.streams);

      const receiver = opts.receiver
        ? await startReceiver({
            port: Number(opts.receiver),
            onRequest: (r) => out(`receiver ← ${r.method} ${r.url} ${JSON.stringify(r.body)}`),
          })
        : undefined;
      const forwarders: Forwarder[] = [];
      for (const config of plan.forwarders) {
        const name = `${config.integration.metadata.namespace}/${config.integration.metadata.name}`;
        if (config.integration.spec.paused) {
          out(`integration ${name}: paused, events wait in the stream`);
          continue;
        }
        await ensureIntegrationConsumer(jsm, settings.streams, config.integration);
        forwarders.push(
          await startForwarder({
            nc,
            streams: settings.streams,
            config,
            logger,
            registry,
            onDelivery: (d) => out(formatDelivery(d)),
          }),
        );
      }
      const ingestion = await startIngestion({ nc, streams: settings.streams, sources: plan.sources, logger, registry, port: Number(opts.port), host: opts.host });

      out(`switchyard dev: ingestion on ${ingestion.url} (NATS ${nc.getServer()}${local ? ', started locally' : ''})`);
      for (const s of plan.sources) out(`  source ${s.namespace}/${s.name}: write key ${s.writeKey}`);
      for (const f of plan.forwarders) {
        const d = f.integration.spec.destination;
        out(`  integration ${f.integration.metadata.namespace}/${f.integration.metadata.name} → ${d.type} ${d.webhook?.url ?? ''} (mapping ${f.mapping.metadata.name})`);
      }
      if (receiver) out(`  receiver on ${receiver.url}`);
      const example = plan.sources[0];
      if (example) {
        out(`try:\n  curl -u '${example.writeKey}:' -H 'content-type: application/json' ${ingestion.url}/v1/track \\\n    -d '{"event":"Order Completed","userId":"u1","properties":{"order_id":"o1","revenue":25,"currency":"USD"}}'`);
      }
      out('Ctrl-C stops (in-flight deliveries finish first).');

      await onShutdown(async () => {
        await ingestion.close();
        await Promise.all(forwarders.map((f) => f.stop()));
        await receiver?.close();
        await nc.drain();
        await local?.stop();
      });
    });
}
