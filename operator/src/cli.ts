import { createServer } from 'node:http';
import { Command } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger, RUNTIME_VERSION } from '@switchyard/runtime';
import { startOperator } from './controller.js';
import { loadOperatorSettings } from './settings.js';

/**
 * `switchyard-operator [--settings file] [--kubeconfig file]`: runs the operator until SIGTERM or
 * SIGINT. Kubernetes credentials come from `--kubeconfig`, else KUBECONFIG, else the in-cluster
 * service account. Serves /healthz, /readyz (200 once leading with filled caches, or standing by)
 * and /metrics on the settings' metricsPort.
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('switchyard-operator')
    .description('reconciles Switchyard Sources, Integrations and Mappings')
    .version(RUNTIME_VERSION)
    .option('--settings <file>', 'operator settings (YAML or JSON); default: every default')
    .option('--kubeconfig <file>', 'kubeconfig; default: KUBECONFIG, else in-cluster')
    .parse(argv);
  const opts = program.opts<{ settings?: string; kubeconfig?: string }>();
  const logger = createLogger({ base: { app: 'switchyard-operator' } });
  const settings = await loadOperatorSettings(opts.settings);
  const kubeConfig = new KubeConfig();
  try {
    if (opts.kubeconfig) kubeConfig.loadFromFile(opts.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (e) {
    throw new Error(`cannot load Kubernetes credentials (${opts.kubeconfig ?? process.env.KUBECONFIG ?? 'in-cluster'}): ${(e as Error).message}`);
  }
  const operator = await startOperator({ kubeConfig, settings, logger });
  let synced = false;
  void operator.ready().then(() => (synced = true));
  const http = createServer((req, res) => {
    if (req.url === '/healthz') res.writeHead(200).end('ok');
    else if (req.url === '/readyz') {
      const ok = synced || !operator.isLeader();
      res.writeHead(ok ? 200 : 503).end(ok ? (operator.isLeader() ? 'leading' : 'standing by') : 'filling caches');
    } else if (req.url === '/metrics') {
      operator.registry.metrics().then((text) => res.writeHead(200, { 'content-type': operator.registry.contentType }).end(text), () => res.writeHead(500).end());
    } else res.writeHead(404).end();
  });
  if (settings.metricsPort > 0) http.listen(settings.metricsPort);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    operator
      .stop()
      .then(() => http.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'stop failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

