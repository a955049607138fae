import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { jetstreamManager } from '@nats-io/jetstream';
import { parse } from 'yaml';
import { formatResourceProblems, validateDocument, type Integration, type Mapping } from '../api/index.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { ensureIntegrationConsumer, startForwarder } from '../forward/index.js';
import { createLogger } from '../logger.js';
import { createRegistry } from '../metrics.js';
import { connectNats } from '../nats/connection.js';
import { loadProcessSettings, onShutdown, readSecretDir } from './common.js';

/**
 * Reads a forwarder config file `{integration, mapping}` (YAML or JSON; what the operator renders
 * into a ConfigMap), validating both resources.
 * @throws SwitchyardError INVALID_RESOURCE naming every problem.
 */
export async function readForwarderConfig(file: string): Promise<{ integration: Integration; mapping: Mapping }> {
  const raw = parse(await readFile(file, 'utf8')) as { integration?: unknown; mapping?: unknown } | null;
  const integration = validateDocument(raw?.integration, `${file}#integration`);
  const mapping = validateDocument(raw?.mapping, `${file}#mapping`);
  const problems = [...integration.problems, ...mapping.problems];
  if (problems.length || integration.resource?.kind !== 'Integration' || mapping.resource?.kind !== 'Mapping') {
    throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `invalid forwarder config ${file}:\n${formatResourceProblems(problems) || 'expected {integration: Integration, mapping: Mapping}'}`, { details: problems });
  }
  return { integration: integration.resource as Integration, mapping: mapping.resource as Mapping };
}

/**
 * `switchyard forward --config <file>`: one Integration's transform and delivery as a process (one
 * Deployment per Integration in the cluster). Serves /healthz, /readyz and /metrics on
 * `--metrics-port`. SIGTERM drains in-flight deliveries, then exits.
 */
export function registerForward(program: Command): void {
  program
    .command('forward')
    .description('run one Integration\'s transform and delivery (cluster mode)')
    .requiredOption('--config <file>', 'forwarder config {integration, mapping} (YAML or JSON)')
    .option('--credentials-dir <dir>', 'mounted credentials Secret: one file per key')
    .option('--settings <file>', 'settings file {nats, streams} (YAML or JSON)')
    .option('--create-consumer', 'create or update the JetStream consumer (the operator does it in a cluster)', false)
    .option('--metrics-port <port>', 'port of /healthz, /readyz and /metrics (0: none)', '9090')
    .action(async (opts: { config: string; credentialsDir?: string; settings?: string; createConsumer: boolean; metricsPort: string }) => {
      const logger = createLogger();
      const settings = await loadProcessSettings(opts.settings);
      const { integration, mapping } = await readForwarderConfig(opts.config);
      const credentials = opts.credentialsDir ? await readSecretDir(opts.credentialsDir) : {};
      const nc = await connectNats(settings.nats);
      if (opts.createConsumer) await ensureIntegrationConsumer(await jetstreamManager(nc), settings.streams, integration);
      const registry = createRegistry();
      const forwarder = await startForwarder({ nc, streams: settings.streams, config: { integration, mapping, credentials }, logger, registry });
      const http = createServer((req, res) => {
        if (req.url === '/healthz') res.writeHead(200).end('ok');
        else if (req.url === '/readyz') res.writeHead(nc.isClosed() ? 503 : 200).end(nc.isClosed() ? 'nats closed' : 'ok');
        else if (req.url === '/metrics') {
          registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
        } else res.writeHead(404).end();
      });
      if (Number(opts.metricsPort) > 0) http.listen(Number(opts.metricsPort));
      logger.info({ integration: `${integration.metadata.namespace}/${integration.metadata.name}` }, 'forwarder started');
      await onShutdown(async () => {
        await forwarder.stop();
        http.close();
        await nc.drain();
      });
    });
}
