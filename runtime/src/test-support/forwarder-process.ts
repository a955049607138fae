// Test-only entry: runs one forwarder in its own process, for tests that kill it.
//   node --import tsx runtime/src/test-support/forwarder-process.ts <config.json>
// config.json: {natsUrl, streams: StreamSettings, config: ForwarderConfig, lagIntervalMs?}.
// Prints `ready` on stdout once consuming; SIGTERM stops gracefully and exits 0.
import { readFile } from 'node:fs/promises';
import { ensureIntegrationConsumer, startForwarder, type ForwarderConfig } from '../forward/index.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { pino } from 'pino';
import { connectNats } from '../nats/connection.js';
import { natsSettings, streamSettings } from '../settings.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: forwarder-process.ts <config.json>\n');
  process.exit(2);
}
const raw = JSON.parse(await readFile(file, 'utf8')) as { natsUrl: string; streams: unknown; config: ForwarderConfig; lagIntervalMs?: number };
const nc = await connectNats(natsSettings({ servers: [raw.natsUrl] }));
const streams = streamSettings(raw.streams);
await ensureIntegrationConsumer(await jetstreamManager(nc), streams, raw.config.integration);
const forwarder = await startForwarder({
  nc,
  streams,
  config: raw.config,
  logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2)),
  ...(raw.lagIntervalMs ? { lagIntervalMs: raw.lagIntervalMs } : {}),
});
process.once('SIGTERM', () => {
  void forwarder
    .stop()
    .then(() => nc.drain())
    .then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`stop failed: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
});
process.stdout.write('ready\n');
