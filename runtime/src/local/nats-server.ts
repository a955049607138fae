import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** Repository root (runtime/src/local or runtime/dist/local → three levels up). */
const SETPRIV = '/usr/bin/setpriv';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Path of the pinned nats-server build, building it on first use (scripts/test-binaries.sh). */
export async function natsServerBinary(): Promise<string> {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, 'scripts/test-binaries.sh'), ['--path', 'nats-server'], {
    maxBuffer: 1 << 20,
  });
  return stdout.trim().split('\n').pop()!;
}

/** A running nats-server with JetStream in a temporary store. */
export interface RunningNatsServer {
  url: string;
  port: number;
  storeDir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a nats-server with JetStream on `port` (a free one by default) and a temporary store,
 * plus any extra command-line `args` (e.g. `--user`), resolving once it accepts clients.
 * @throws Error when it exits or is not ready within 15 s.
 */
export async function startNatsServer(options: { port?: number; storeDir?: string; binary?: string; args?: string[] } = {}): Promise<RunningNatsServer> {
  const binary = options.binary ?? (await natsServerBinary());
  const port = options.port ?? (await freePort());
  const storeDir = options.storeDir ?? (await mkdtemp(path.join(os.tmpdir(), 'switchyard-nats-')));
  const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(options.args ?? [])];
  // setpriv (util-linux) makes the kernel stop the server when its parent dies, even by SIGKILL,
  // so a killed dev process or test run leaves no server behind; it execs, keeping the pid.
  const child = existsSync(SETPRIV) ? spawn(SETPRIV, ['--pdeathsig', 'TERM', binary, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (log.length < 100_000) log += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server not ready in 15s:\n${log}`));
    }, 15_000);
    const check = () => {
      if (/Server is ready/.test(log)) {
        clearTimeout(timer);
        resolve();
      } else if (child.exitCode !== null) {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${child.exitCode}:\n${log}`));
      } else setTimeout(check, 50);
    };
    check();
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (!options.storeDir) await rm(storeDir, { recursive: true, force: true });
    },
  };
}
