import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { capProblems, formatResourceProblems, formatSkipped, formatUnread, loadResources } from '../api/index.js';
import { consumerBacklog, ensureIntegrationConsumer, startForwarder, type DeliveryRecord, type Forwarder, type ForwarderConfig } from '../forward/index.js';
import { startIngestion } from '../ingestion/index.js';
import { connectOrStartNats } from '../local/nats.js';
import { startDemoSite } from '../local/demo-site.js';
import { formatReceived, startReceiver } from '../local/receiver.js';
import { resolveLocal } from '../local/resolve.js';
import { createRegistry } from '../metrics.js';
import { ensureStreams } from '../nats/streams.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
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

/**
 * Throws when a TCP port is taken on `host`, so `dev` fails before starting anything.
 * @throws SwitchyardError PORT_IN_USE naming the port and the option that sets it.
 */
export async function assertPortsFree(host: string, ports: number[]): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new SwitchyardError(
            ErrorCodes.PORT_IN_USE,
            `port ${port} on ${host} is ${e.code === 'EADDRINUSE' ? 'in use (another switchyard dev?)' : `not usable (${e.code ?? e.message})`}; choose another with --port, --receiver or --site`,
          ),
        ),
      );
      probe.listen(port, host, () => probe.close(() => resolve()));
    });
  }
}

/**
 * The forwarder config `dev` runs: one process delivers the Integration, so it counts as one
 * replica and takes the whole `delivery.rateLimit`, not 1/`forwarder.replicas` of it.
 */
export function singleProcess(config: ForwarderConfig): ForwarderConfig {
  const { integration } = config;
  return { ...config, integration: { ...integration, spec: { ...integration.spec, forwarder: { ...integration.spec.forwarder, replicas: 1 } } } };
}

/** Store folder of the nats-server `dev` starts: kept between runs, so nothing accepted is lost. */
export const DEFAULT_DEV_STORE = path.join(os.homedir(), '.cache', 'switchyard', 'dev-nats');

interface DevOptions {
  filename: string[];
  recursive: boolean;
  port: string;
  host: string;
  natsUrl?: string;
  settings?: string;
  receiver?: string;
  site?: string;
  natsStore: string;
}

/**
 * `switchyard dev -f <files…>`: runs ingestion and every Integration's forwarder in one process
 * from YAML, the way the cluster would run them; other Kubernetes objects among the files are skipped. NATS from `--nats-url`/`NATS_URL` (default
 * nats://127.0.0.1:4222); when none answers or it is too old, a local nats-server is started
 * (built with Go first when none is installed), storing in `--nats-store`.
 */
export function registerDev(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command('dev')
    .description('run ingestion and every Integration from YAML files in one process (local mode); starts a nats-server when no usable NATS answers')
    .requiredOption('-f, --filename <paths...>', 'files or folders with Source, Integration, Mapping and Secret YAML')
    .option('-p, --port <port>', 'ingestion port', '8787')
    .option('-R, --recursive', 'also read the subfolders of the folders given (like kubectl apply -R)', false)
    .option('--host <host>', 'ingestion address', '127.0.0.1')
    .option('--nats-url <url>', 'NATS server URL(s), comma-separated (default: NATS_URL or nats://127.0.0.1:4222)')
    .option('--settings <file>', 'settings file {nats, streams} (YAML or JSON)')
    .option('--receiver <port>', 'also run a webhook receiver on 127.0.0.1:<port> that prints every request it gets')
    .option('--site <port>', "also serve a demo shop page on 127.0.0.1:<port> carrying the first Source's tag (add http://127.0.0.1:<port> to its allowedOrigins)")
    .option('--nats-store <dir>', 'store folder of the nats-server dev starts when no usable NATS answers; kept between runs', DEFAULT_DEV_STORE)
    .action(async (opts: DevOptions) => {
      // The human-readable lines below tell what happens; JSON logs only for warnings unless asked.
      const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn', base: { app: 'switchyard' } }, pino.destination(2));
      const { resources, problems, invalid, skipped, unread } = await loadResources(opts.filename, { recursive: opts.recursive });
      const note = formatUnread(unread);
      if (note) out(note);
      const resolved = resolveLocal(resources, { invalid });
      problems.push(...resolved.problems);
      if (problems.length > 0) {
        err(formatResourceProblems(capProblems(problems)));
        err(`${problems.length} problem(s): not starting`);
        process.exitCode = 1;
        return;
      }
      const { plan } = resolved;
      const settings = await loadProcessSettings(opts.settings, opts.natsUrl);
      // A taken port fails now, before anything is started.
      await assertPortsFree(opts.host, [Number(opts.port), ...[opts.receiver, opts.site].filter((p) => p !== undefined).map(Number)]);
      const { nc, local } = await connectOrStartNats(settings.nats, (line) => out(`nats: ${line}`), { storeDir: opts.natsStore });
      // Whatever started is stopped again, in reverse order, on Ctrl-C or when starting fails.
      const stops: (() => Promise<unknown>)[] = [async () => local?.stop(), () => nc.drain()];
      const stopAll = async () => {
        for (const stop of stops.reverse()) await stop();
      };
      const jsm = await jetstreamManager(nc);
      const forwarders: { name: string; consumer: string; forwarder: Forwarder }[] = [];
      let ingestionUrl: string;
      let siteUrl: string | undefined;
      try {
        const registry = createRegistry();
        await ensureStreams(jsm, settings.streams);
        if (opts.receiver) {
          const receiver = await startReceiver({ port: Number(opts.receiver), onRequest: (r) => out(formatReceived(r)) });
          stops.push(() => receiver.close());
        }
        for (const config of plan.forwarders) {
          const { namespace, name } = config.integration.metadata;
          if (config.integration.spec.paused) {
            out(`integration ${namespace}/${name}: paused, events wait in the stream`);
            continue;
          }
          const { info } = await ensureIntegrationConsumer(jsm, settings.streams, config.integration);
          // The dev store outlives runs: say when earlier runs left events for this Integration.
          const earlier = consumerBacklog(info);
          if (earlier > 0) out(`integration ${namespace}/${name}: ${earlier} event(s) stored by earlier runs wait for delivery`);
          const forwarder = await startForwarder({ nc, streams: settings.streams, config: singleProcess(config), logger, registry, onDelivery: (d) => out(formatDelivery(d)) });
          forwarders.push({ name: `${namespace}/${name}`, consumer: info.name, forwarder });
        }
        stops.push(() => Promise.all(forwarders.map((f) => f.forwarder.stop())));
        const ingestion = await startIngestion({ nc, streams: settings.streams, sources: plan.sources, logger, registry, port: Number(opts.port), host: opts.host });
        stops.push(() => ingestion.close());
        ingestionUrl = ingestion.url;
        const first = plan.sources[0];
        if (opts.site && first) {
          const site = await startDemoSite({ port: Number(opts.site), ingestionUrl, writeKey: first.writeKey, source: `${first.namespace}/${first.name}` });
          stops.push(() => site.close());
          siteUrl = site.url;
        }
      } catch (e) {
        await stopAll();
        throw e;
      }

      out(`switchyard dev: ingestion on ${ingestionUrl} (NATS ${nc.getServer()}${local ? `, started locally, store ${local.storeDir}` : ''})`);
      for (const s of plan.sources) {
        const tag = s.tag?.enabled === false ? 'tag off' : `tag ${ingestionUrl}/tag/${encodeURIComponent(s.writeKey)}.js`;
        out(`  source ${s.namespace}/${s.name}: write key ${s.writeKey}, ${tag}`);
      }
      for (const f of plan.forwarders) {
        const d = f.integration.spec.destination;
        out(`  integration ${f.integration.metadata.namespace}/${f.integration.metadata.name} → ${d.type} ${d.webhook?.url ?? ''} (mapping ${f.mapping.metadata.name})`);
      }
      if (skipped.length > 0) out(`  ${formatSkipped(skipped)}`);
      if (opts.receiver) out(`  receiver on http://127.0.0.1:${opts.receiver}`);
      if (siteUrl) out(`  demo shop on ${siteUrl}/ (open it in a browser: its events show here)`);
      const example = plan.sources[0];
      if (example) {
        out(`try:\n  curl -u '${example.writeKey}:' -H 'content-type: application/json' ${ingestionUrl}/v1/track \\\n    -d '{"event":"Order Completed","userId":"u1","properties":{"order_id":"o1","revenue":25,"currency":"USD"}}'`);
      }
      out('Ctrl-C stops (in-flight deliveries finish first; undelivered events stay stored for the next run).');

      await onShutdown(async () => {
        // Stop taking events and delivering, then say what is still stored.
        const [stopIngestion, stopForwarders] = [stops.pop()!, stops.pop()!];
        await stopIngestion();
        await stopForwarders();
        for (const f of forwarders) {
          const info = await jsm.consumers.info(settings.streams.events.name, f.consumer).catch(() => undefined);
          const waiting = info ? consumerBacklog(info) : 0;
          if (waiting > 0) out(`integration ${f.name}: ${waiting} event(s) not yet delivered stay stored${local?.storeDir ? ` in ${local.storeDir}` : ''}; they are delivered on the next run`);
          else out(`integration ${f.name}: nothing left to deliver`);
          const lost = f.forwarder.stats.deadLettered;
          if (lost > 0) out(`integration ${f.name}: ${lost} event(s) dead-lettered in this run; see switchyard deadletters list --integration ${f.name}`);
        }
        await stopAll();
      });
    });
}
