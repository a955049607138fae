import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, compareVersions } from '../nats/connection.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { Logger } from '../logger.js';
import { natsSettings, MIN_NATS_SERVER_VERSION, type NatsSettings } from '../settings.js';
import { startNatsServer, type RunningNatsServer } from './nats-server.js';

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** How to get a supported nats-server, printed when none can be found. */
export const HOW_TO_GET_NATS = [
  `Switchyard needs nats-server ${MIN_NATS_SERVER_VERSION} or newer with JetStream. Either:`,
  '  - point NATS_URL at one (e.g. NATS_URL=nats://127.0.0.1:4222), or',
  '  - put a nats-server binary on PATH (https://github.com/nats-io/nats-server/releases), or',
  '  - build the pinned one with Go: scripts/test-binaries.sh nats-server',
].join('\n');

async function binaryVersion(binary: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, ['--version'], { timeout: 5000 });
    return /v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Finds a nats-server binary that is new enough: the pinned build in the test-binary cache first,
 * then `nats-server` on PATH. Never builds anything.
 * @returns its path, or undefined when there is none.
 */
export async function findNatsServerBinary(minVersion = MIN_NATS_SERVER_VERSION): Promise<string | undefined> {
  const candidates: string[] = [];
  try {
    const { stdout } = await run(path.join(repoRoot, 'scripts/test-binaries.sh'), ['--cached', 'nats-server'], { timeout: 5000 });
    if (stdout.trim()) candidates.push(stdout.trim());
  } catch {
    // not built (or not a clone): try PATH
  }
  candidates.push('nats-server');
  for (const c of candidates) {
    const v = await binaryVersion(c);
    if (v && compareVersions(v, minVersion) >= 0) return c;
  }
  return undefined;
}

/**
 * Connects to the configured NATS; when none answers or it is too old, starts a supported
 * nats-server with JetStream in a temporary folder on a free port.
 * @throws SwitchyardError NATS_UNAVAILABLE with {@link HOW_TO_GET_NATS} when neither works.
 */
export async function connectOrStartNats(settings: NatsSettings, logger: Logger): Promise<{ nc: NatsConnection; settings: NatsSettings; local?: RunningNatsServer }> {
  try {
    return { nc: await connectNats(settings, { timeout: 3000 }), settings };
  } catch (e) {
    if (!(e instanceof SwitchyardError)) throw e;
    logger.warn({ reason: e.message }, 'configured NATS is not usable; starting a local nats-server');
  }
  const binary = await findNatsServerBinary(settings.minServerVersion);
  if (!binary) throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, `no usable NATS.\n${HOW_TO_GET_NATS}`);
  const local = await startNatsServer({ binary });
  logger.info({ url: local.url, binary, storeDir: local.storeDir }, 'started local nats-server with JetStream');
  const localSettings = natsSettings({ ...settings, servers: [local.url] });
  return { nc: await connectNats(localSettings), settings: localSettings, local };
}
