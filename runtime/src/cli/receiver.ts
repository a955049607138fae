import type { Command } from 'commander';
import { formatReceived, startReceiver } from '../local/receiver.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { onShutdown } from './common.js';

/**
 * `switchyard receiver --port N [--status 200]`: a loopback webhook receiver printing every request (method, path,
 * the headers that matter, body), to try Integrations locally or against a local cluster.
 */
export function registerReceiver(program: Command, out: (s: string) => void): void {
  program
    .command('receiver')
    .description('run a local webhook receiver that answers 200 and prints every request: method, path, headers that matter, body')
    .option('-p, --port <port>', 'port', '8788')
    .option('--host <host>', 'address', '127.0.0.1')
    .option('--status <code>', 'HTTP status of every answer, e.g. 400 (permanent failure) or 503 (retried) to try dead letters and retries', '200')
    .action(async (opts: { port: string; host: string; status: string }) => {
      const status = Number(opts.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) throw new SwitchyardError(ErrorCodes.INVALID_SETTINGS, `--status ${opts.status}: an HTTP status from 200 to 599`);
      const r = await startReceiver({
        port: Number(opts.port),
        host: opts.host,
        status,
        // The same lines as `dev --receiver`, headers included, so credentials can be checked.
        onRequest: (req) => out(formatReceived(req)),
      });
      out(`receiver on ${r.url}`);
      await onShutdown(() => r.close());
    });
}
