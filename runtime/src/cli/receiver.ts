import type { Command } from 'commander';
import { startReceiver } from '../local/receiver.js';
import { onShutdown } from './common.js';

/** `switchyard receiver --port N`: a loopback webhook receiver printing every request, to try Integrations locally. */
export function registerReceiver(program: Command, out: (s: string) => void): void {
  program
    .command('receiver')
    .description('run a local webhook receiver that answers 200 and prints every request')
    .option('-p, --port <port>', 'port', '8788')
    .option('--host <host>', 'address', '127.0.0.1')
    .action(async (opts: { port: string; host: string }) => {
      const r = await startReceiver({
        port: Number(opts.port),
        host: opts.host,
        onRequest: (req) => out(`${new Date(req.receivedAt).toISOString()} ${req.method} ${req.url} ${JSON.stringify(req.body)}`),
      });
      out(`receiver on ${r.url}`);
      await onShutdown(() => r.close());
    });
}
