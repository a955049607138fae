import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, compareVersions } from '../nats/connection.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
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

async function binaryVersion(binary: string, args = ['--version']): Promise<string | undefined> {
  try {
    const { stdout } = await run(binary, args, { timeout: 5000 });
    return /v?(\d+\.\d+\.\d+)/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Finds a nats-server binary that is new enough: the pinned build in the test-binary cache first,
 * then `nats-server` on PATH. With `build`, when neither is there and Go is installed, builds the
 * pinned one (scripts/test-binaries.sh, a minute or two, once).
 * @returns its path, or undefined when there is none.
 */
export async function findNatsServerBinary(options: { minVersion?: string; build?: boolean; notice?: (line: string) => void } = {}): Promise<string | undefined> {
  const minVersion = options.minVersion ?? MIN_NATS_SERVER_VERSION;
  const script = path.join(repoRoot, 'scripts/test-binaries.sh');
  const candidates: string[] = [];
  try {
    const { stdout } = await run(script, ['--cached', 'nats-server'], { timeout: 5000 });
    if (stdout.trim()) candidates.push(stdout.trim());
  } catch {
    // not built (or not a clone): try PATH
  }
  candidates.push('nats-server');
  for (const c of candidates) {
    const v = await binaryVersion(c);
    if (v && compareVersions(v, minVersion) >= 0) return c;
    if (v) options.notice?.(`skipping ${c} ${v}: older than ${minVersion}`);
  }
  if (!options.build || !existsSync(script) || !(await binaryVersion('go', ['version']))) return undefined;
  options.notice?.('building the pinned nats-server with Go (first run only; a minute or two)…');
  try {
    const { stdout } = await run(script, ['--path', 'nats-server'], { timeout: 15 * 60_000, maxBuffer: 16 << 20 });
    return stdout.trim().split('\n').pop();
  } catch (e) {
    options.notice?.(`building nats-server failed: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

/** File in a dev store holding the URL of the nats-server running on it, while one runs. */
export const RUNNING_URL_FILE = 'running-url';

/** Connects to the nats-server a running `dev` started on `storeDir` (its {@link RUNNING_URL_FILE}), or undefined. */
async function attachToRunning(settings: NatsSettings, storeDir: string): Promise<{ nc: NatsConnection; settings: NatsSettings } | undefined> {
  let url: string;
  try {
    url = (await readFile(path.join(storeDir, RUNNING_URL_FILE), 'utf8')).trim();
  } catch {
    return undefined;
  }
  try {
    const attached = natsSettings({ ...settings, servers: [url] });
    return { nc: await connectNats(attached, { timeout: 2000 }), settings: attached };
  } catch {
    return undefined;
  }
}

/**
 * Connects to the configured NATS; when none answers or it is too old, starts a supported
 * nats-server with JetStream on a free port, storing in `storeDir` (kept, so events not yet
 * delivered wait for the next run; locked while in use) or, without one or when another run holds
 * it, in a temporary folder removed on stop. With `attach`, a nats-server another run (a `dev`)
 * started on `storeDir` is used first. `notice` gets one human-readable line per decision.
 * @throws SwitchyardError NATS_UNAVAILABLE with {@link HOW_TO_GET_NATS} when neither works.
 */
export async function connectOrStartNats(
  settings: NatsSettings,
  notice: (line: string) => void,
  options: { storeDir?: string; attach?: boolean } = {},
): Promise<{ nc: NatsConnection; settings: NatsSettings; local?: RunningNatsServer }> {
  try {
    return { nc: await connectNats(settings, { timeout: 3000 }), settings };
  } catch (e) {
    if (!(e instanceof SwitchyardError)) throw e;
    const attached = options.attach && options.storeDir ? await attachToRunning(settings, options.storeDir) : undefined;
    if (attached) {
      notice(`${e.message}; using the nats-server of the running dev (${attached.settings.servers[0]})`);
      return attached;
    }
    notice(`${e.message}; starting a local nats-server`);
  }
  const binary = await findNatsServerBinary({ minVersion: settings.minServerVersion, build: true, notice });
  if (!binary) throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, `no usable NATS.\n${HOW_TO_GET_NATS}`);
  let local: RunningNatsServer | undefined;
  if (options.storeDir) {
    await mkdir(options.storeDir, { recursive: true });
    try {
      // nats-server does not lock its store: two servers on one folder would corrupt it.
      const release = await lockfile.lock(options.storeDir, { stale: 10_000, update: 2_000 });
      try {
        const server = await startNatsServer({ binary, storeDir: options.storeDir });
        // Other commands (`deadletters`) find this run's server through the store.
        const urlFile = path.join(options.storeDir, RUNNING_URL_FILE);
        await writeFile(urlFile, `${server.url}\n`);
        local = { ...server, stop: async () => (await rm(urlFile, { force: true }), await server.stop(), await release()) };
      } catch (e) {
        await release();
        throw e;
      }
    } catch (e) {
      notice(
        `store ${options.storeDir} not usable (${(e as Error).message.split('\n')[0]}; another dev run?): using a temporary store, so events not delivered when this run stops are lost; pass --nats-store to keep them`,
      );
    }
  }
  local ??= await startNatsServer({ binary });
  try {
    const localSettings = natsSettings({ ...settings, servers: [local.url] });
    return { nc: await connectNats(localSettings), settings: localSettings, local };
  } catch (e) {
    await local.stop();
    throw e;
  }
}
