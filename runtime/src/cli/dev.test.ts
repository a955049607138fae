import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../local/nats-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');

/** Collects a child's stdout and resolves when a line matches. */
function lines(child: ChildProcess) {
  let buffer = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (const w of [...waiters]) {
      const line = buffer.split('\n').find((l) => w.re.test(l));
      if (line) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    wait: (re: RegExp, timeoutMs = 20000) =>
      new Promise<string>((resolve, reject) => {
        const line = buffer.split('\n').find((l) => re.test(l));
        if (line) return resolve(line);
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} in:\n${buffer}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      }),
    text: () => buffer,
  };
}

describe('switchyard dev', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('runs the example resources end to end: events posted to ingestion reach the webhook, mapped, and each delivery is shown', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-dev-'));
    await cp(path.join(repoRoot, 'examples'), dir, { recursive: true });
    const [port, receiverPort, deadNatsPort] = [await freePort(), await freePort(), await freePort()];
    const integration = path.join(dir, 'integration.yaml');
    await writeFile(integration, (await readFile(integration, 'utf8')).replaceAll('127.0.0.1:8788', `127.0.0.1:${receiverPort}`));

    // Nothing listens on deadNatsPort: dev must start a supported nats-server of its own.
    child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'bin.ts'), 'dev', '-f', dir, '--port', String(port), '--receiver', String(receiverPort), '--nats-url', `nats://127.0.0.1:${deadNatsPort}`],
      { cwd: repoRoot, env: { ...process.env, LOG_LEVEL: 'warn', NATS_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const out = lines(child);
    await out.wait(/switchyard dev: ingestion on http:\/\/127\.0\.0\.1:\d+ \(NATS .*started locally\)/, 30000).catch((e) => {
      throw new Error(`${(e as Error).message}\nstderr:\n${stderr}`);
    });

    const res = await request(`http://127.0.0.1:${port}/v1/track`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('wk_local_example_web:').toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        event: 'Order Completed',
        userId: 'u1',
        messageId: 'dev-test-1',
        properties: { order_id: 'o1', revenue: 25, currency: 'EUR', products: [{ product_id: 'p1', name: 'Uno', price: 3, quantity: 2 }] },
      }),
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ success: true });

    const received = await out.wait(/^receiver ← POST \/webhook /);
    const payload = JSON.parse(received.replace(/^receiver ← POST \/webhook /, ''));
    expect(payload).toMatchObject({
      event: 'purchase',
      type: 'track',
      messageId: 'dev-test-1',
      userId: 'u1',
      order: { id: 'o1', value: 25, currency: 'EUR', items: [{ id: 'p1', name: 'Uno', price: 3, quantity: 2 }] },
    });
    expect(payload.timestamp).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
    await out.wait(/^delivery  default\/example-webhook delivered .*messageId=dev-test-1  status=200/);

    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60000);

  it('refuses invalid resources before starting anything', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-dev-'));
    await cp(path.join(repoRoot, 'examples'), dir, { recursive: true });
    await writeFile(path.join(dir, 'mapping.yaml'), '');
    child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bin.ts'), 'dev', '-f', dir], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr).toContain('/spec/mappingRef/name: Mapping default/webhook-ecommerce not found (reference)');
  }, 30000);
  it('exits with a message saying how to get NATS when none is usable and no supported nats-server is installed', async () => {
    const emptyCache = await mkdtemp(path.join(os.tmpdir(), 'sy-nobin-'));
    const deadPort = await freePort();
    child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bin.ts'), 'dev', '-f', path.join(repoRoot, 'examples'), '--nats-url', `nats://127.0.0.1:${deadPort}`], {
      cwd: repoRoot,
      // No pinned build in the cache, and a PATH whose only nats-server (if any) is Debian's too-old one.
      env: { ...process.env, SWITCHYARD_BIN_CACHE: emptyCache, PATH: '/usr/sbin:/usr/bin:/bin', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr).toContain('error SY_NATS_UNAVAILABLE: no usable NATS.');
    expect(stderr).toContain('scripts/test-binaries.sh nats-server');
  }, 30000);
});
