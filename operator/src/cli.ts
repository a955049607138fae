import { createServer } from 'node:http';
import { Command } from 'commander';
import { KubeConfig } from '@kubernetes/client-node';
import { createLogger, createRegistry, RUNTIME_VERSION } from '@switchyard/runtime';
import { startOperator, type Operator } from './controller.js';
import { loadOperatorSettings } from './settings.js';

/**
 * `switchyard-operator [--settings file] [--kubeconfig file] [--metrics-port port]`: runs the
 * operator until SIGTERM or SIGINT. Kubernetes credentials come from `--kubeconfig`, else
 * KUBECONFIG, else the in-cluster service account. Serves /healthz, /readyz (200 once leading with
 * filled caches, or standing by) and /metrics on `--metrics-port`, else the settings' metricsPort
 * (a flag, so a pod spec states the port its probes and Service use).
 * @throws Error when `--metrics-port` is not an integer 0–65535 (0: no endpoints).
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('switchyard-operator')
    .description('reconciles Switchyard Sources, Integrations and Mappings')
    .version(RUNTIME_VERSION)
    .option('--settings <file>', 'operator settings (YAML or JSON); default: every default')
    .option('--kubeconfig <file>', 'kubeconfig; default: KUBECONFIG, else in-cluster')
    .option('--metrics-port <port>', 'port of /metrics, /healthz and /readyz (0: none); default: the settings\' metricsPort (8080)')
    .parse(argv);
  const opts = program.opts<{ settings?: string; kubeconfig?: string; metricsPort?: string }>();
  const logger = createLogger({ base: { app: 'switchyard-operator' } });
  const loaded = await loadOperatorSettings(opts.settings);
  let settings = loaded;
  if (opts.metricsPort !== undefined) {
    const port = /^\d+$/.test(opts.metricsPort) ? Number(opts.metricsPort) : NaN;
    if (!(port >= 0 && port <= 65535)) throw new Error(`--metrics-port must be an integer from 0 to 65535, got ${JSON.stringify(opts.metricsPort)}`);
    settings = Object.freeze({ ...loaded, metricsPort: port });
  }
  const kubeConfig = new KubeConfig();
  try {
    if (opts.kubeconfig) kubeConfig.loadFromFile(opts.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (e) {
    throw new Error(`cannot load Kubernetes credentials (${opts.kubeconfig ?? process.env.KUBECONFIG ?? 'in-cluster'}): ${(e as Error).message}`);
  }
  const registry = createRegistry();
  let operator: Operator | undefined;
  const http = createServer((req, res) => {
    if (req.url === '/healthz') res.writeHead(200).end('ok');
    else if (req.url === '/readyz') {
      // A replica holding the Lease but not acting yet (caches not filled: CRDs missing, RBAC) is not ready.
      const stuck = !operator || (operator.holdsLease() && !operator.isLeader());
      res.writeHead(stuck ? 503 : 200).end(stuck ? 'starting, or leading while filling caches' : operator!.isLeader() ? 'leading' : 'standing by');
    } else if (req.url === '/metrics') {
      registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text), () => res.writeHead(500).end());
    } else res.writeHead(404).end();
  });
  // Listen first: a taken port fails before the operator campaigns for the Lease.
  if (settings.metricsPort > 0) {
    await new Promise<void>((resolve, reject) => {
      http.once('error', (e) => reject(new Error(`cannot listen on metricsPort ${settings.metricsPort}: ${e.message}`)));
      http.listen(settings.metricsPort, resolve);
    });
  }
  operator = await startOperator({ kubeConfig, settings, logger, registry });
  const running = operator;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    running
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

