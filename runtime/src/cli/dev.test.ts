import { spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../local/nats-server.js';
import { startTestReceiver } from '../test-support/http-receiver.js';
import { useTempDirs } from '../test-support/temp.js';
import { testIntegration, testMapping } from '../test-support/forwarder-fixtures.js';
import { launchChromium } from '../../../client/src/test-support/browser.js';
import { singleProcess } from './dev.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');

interface DevRun {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `re`. */
  wait(re: RegExp, timeoutMs?: number): Promise<string>;
  stderr(): string;
  exit(): Promise<number | null>;
}

const running: ChildProcess[] = [];
const tempDir = useTempDirs('sy-dev-');

/** Runs `switchyard dev` (TypeScript sources through tsx) and follows its output. */
function dev(args: string[], env: NodeJS.ProcessEnv = {}): DevRun {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bin.ts'), 'dev', ...args], {
    cwd: repoRoot,
    env: { ...process.env, NATS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const find = (re: RegExp) => out.split('\n').find((l) => re.test(l));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const line = find(w.re);
      if (line) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    wait: (re, timeoutMs = 30_000) =>
      new Promise<string>((resolve, reject) => {
        const line = find(re);
        if (line) return resolve(line);
        const timer = setTimeout(() => reject(new Error(`no line matching ${re} in:\n${out}\nstderr:\n${err}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      }),
    stderr: () => err,
    exit: () => exited,
  };
}

/** A copy of examples/ whose Integration delivers to 127.0.0.1:`port` (and whose Source allows the demo shop on `sitePort`). */
async function examplesFor(port: number, sitePort?: number): Promise<string> {
  const dir = await tempDir();
  await cp(path.join(repoRoot, 'examples'), dir, { recursive: true });
  const integration = path.join(dir, '4-integration.yaml');
  await writeFile(integration, (await readFile(integration, 'utf8')).replaceAll('127.0.0.1:8788', `127.0.0.1:${port}`));
  if (sitePort !== undefined) {
    const source = path.join(dir, '2-source.yaml');
    await writeFile(source, (await readFile(source, 'utf8')).replaceAll('http://127.0.0.1:8789', `http://127.0.0.1:${sitePort}`));
  }
  return dir;
}

const track = (port: number, messageId: string) =>
  request(`http://127.0.0.1:${port}/v1/track`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('wk_local_example_web:').toString('base64')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      event: 'Order Completed',
      userId: 'u1',
      messageId,
      properties: { order_id: 'o1', revenue: 25, currency: 'EUR', products: [{ product_id: 'p1', name: 'Uno', price: 3, quantity: 2 }] },
    }),
  });

describe('switchyard dev', () => {
  afterEach(() => {
    for (const c of running.splice(0)) if (c.exitCode === null) c.kill('SIGTERM');
  });

  it('runs the example resources end to end: events posted to ingestion reach the webhook, mapped, and each delivery is shown', async () => {
    const [port, receiverPort, deadNatsPort] = [await freePort(), await freePort(), await freePort()];
    const store = await tempDir();
    const examples = await examplesFor(receiverPort);
    // Nothing listens on deadNatsPort: dev must start a supported nats-server of its own. The
    // cluster manifests given too are not Switchyard's: skipped, not refused.
    const run = dev(['-f', examples, path.join(examples, 'cluster/ingestion.yaml'), '--port', String(port), '--receiver', String(receiverPort), '--nats-url', `nats://127.0.0.1:${deadNatsPort}`, '--nats-store', store]);
    await run.wait(new RegExp(`switchyard dev: ingestion on http://127\\.0\\.0\\.1:${port} \\(NATS .*started locally, store ${store}\\)`));
    await run.wait(/^  2 other resource\(s\) skipped \(apps\/v1 Deployment, v1 Service\)$/);

    const res = await track(port, 'dev-test-1');
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ success: true });

    const received = await run.wait(/^receiver ← POST \/webhook /);
    const [, headers, body] = /^receiver ← POST \/webhook headers=(\{.*\}) body=(.*)$/.exec(received)!;
    expect(JSON.parse(headers!)).toMatchObject({ authorization: 'Bearer local-example-token', 'x-switchyard-example': 'true' });
    const payload = JSON.parse(body!);
    expect(payload).toMatchObject({
      event: 'purchase',
      type: 'track',
      messageId: 'dev-test-1',
      userId: 'u1',
      context: { ip: '127.0.0.1' },
      order: { id: 'o1', value: 25, currency: 'EUR', items: [{ id: 'p1', name: 'Uno', price: 3, quantity: 2 }] },
    });
    expect(payload.timestamp).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
    await run.wait(/^delivery  default\/example-webhook delivered .*messageId=dev-test-1  status=200/);

    run.child.kill('SIGTERM');
    expect(await run.exit()).toBe(0);
  }, 60_000);

  it('serves a demo shop carrying the tag with --site: a click in a real browser reaches the webhook, mapped', async () => {
    const [port, receiverPort, sitePort, deadNatsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const examples = await examplesFor(receiverPort, sitePort);
    const run = dev(['-f', examples, '--port', String(port), '--receiver', String(receiverPort), '--site', String(sitePort), '--nats-url', `nats://127.0.0.1:${deadNatsPort}`, '--nats-store', await tempDir()]);
    await run.wait(new RegExp(`^  source default/web: write key wk_local_example_web, tag http://127\\.0\\.0\\.1:${port}/tag/wk_local_example_web\\.js$`));
    await run.wait(new RegExp(`^  demo shop on http://127\\.0\\.0\\.1:${sitePort}/ `));
    // Browsers ask for a favicon: answered empty, so the page's console shows no error.
    expect((await request(`http://127.0.0.1:${sitePort}/favicon.ico`)).statusCode).toBe(204);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${sitePort}/`);
      await page.evaluate('new Promise((resolve) => analytics.ready(resolve))');
      await page.click('#order');
      const received = await run.wait(/^receiver ← POST \/webhook .*"order":\{"id":"demo-1"/);
      const payload = JSON.parse(/ body=(.*)$/.exec(received)![1]!);
      expect(payload).toMatchObject({ event: 'purchase', type: 'track', order: { id: 'demo-1', value: 25, currency: 'USD' } });
      expect(payload.messageId).toMatch(/^sy-/);
      // Back "from an ad": the Sync Injector's ids and the campaign reach the webhook.
      await page.click('text=Come back as if from an ad');
      await page.waitForURL(/fbclid=IwAR-demo/);
      await page.evaluate('new Promise((resolve) => analytics.ready(resolve))');
      await page.click('#order');
      const again = await run.wait(/^receiver ← POST \/webhook .*"gclid":"Cj0KCQ-demo"/);
      const context = JSON.parse(/ body=(.*)$/.exec(again)![1]!).context;
      expect(context).toMatchObject({ campaign: { source: 'newsletter', name: 'demo' }, consent: { categoryPreferences: {} } });
      expect(context.providers.facebookTag.fbc).toMatch(/^fb\.1\.\d+\.IwAR-demo$/);
    } finally {
      await browser.close();
    }
    run.child.kill('SIGTERM');
    expect(await run.exit()).toBe(0);
  }, 60_000);

  it('keeps accepted but undelivered events in its store and delivers them on the next run', async () => {
    const [port, receiverPort, deadNatsPort] = [await freePort(), await freePort(), await freePort()];
    const store = await tempDir();
    const examples = await examplesFor(receiverPort);
    const args = ['-f', examples, '--port', String(port), '--nats-url', `nats://127.0.0.1:${deadNatsPort}`, '--nats-store', store];

    // First run: the destination is down, so the event is accepted and stays undelivered.
    const first = dev(args);
    await first.wait(/^switchyard dev: ingestion on/);
    expect((await track(port, 'kept-1')).statusCode).toBe(200);
    await first.wait(/^delivery  default\/example-webhook retried .*messageId=kept-1/);
    first.child.kill('SIGTERM');
    await first.wait(new RegExp(`^integration default/example-webhook: 1 event\\(s\\) not yet delivered stay stored in ${store}`));
    expect(await first.exit()).toBe(0);

    // Second run, destination up: it says events wait from earlier runs, and the stored event arrives.
    const second = dev([...args, '--receiver', String(receiverPort)]);
    await second.wait(/^integration default\/example-webhook: 1 event\(s\) stored by earlier runs wait for delivery$/);
    const received = await second.wait(/^receiver ← POST \/webhook /);
    expect(received).toContain('"messageId":"kept-1"');
    second.child.kill('SIGTERM');
    expect(await second.exit()).toBe(0);
  }, 90_000);

  it('says on stop how many events it dead-lettered, and where to look', async () => {
    const refusing = await startTestReceiver({ respond: () => ({ status: 400, body: '{"error":"no"}' }) });
    try {
      const [port, deadNatsPort] = [await freePort(), await freePort()];
      const examples = await examplesFor(refusing.port);
      const run = dev(['-f', examples, '--port', String(port), '--nats-url', `nats://127.0.0.1:${deadNatsPort}`, '--nats-store', await tempDir()]);
      await run.wait(/^switchyard dev: ingestion on/);
      expect((await track(port, 'refused-1')).statusCode).toBe(200);
      await run.wait(/^delivery  default\/example-webhook dead_lettered .*messageId=refused-1/);
      run.child.kill('SIGTERM');
      await run.wait(/^integration default\/example-webhook: nothing left to deliver$/);
      await run.wait(/^integration default\/example-webhook: 1 event\(s\) dead-lettered in this run; see switchyard deadletters list --integration default\/example-webhook$/);
      expect(await run.exit()).toBe(0);
    } finally {
      await refusing.close();
    }
  }, 60_000);

  it('fails with one line when a port is taken, before starting anything', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const port = (taken.address() as { port: number }).port;
    const store = await tempDir();
    const args = ['-f', path.join(repoRoot, 'examples'), '--nats-url', `nats://127.0.0.1:${await freePort()}`, '--nats-store', store];
    const run = dev([...args, '--port', String(port)]);
    expect(await run.exit()).toBe(1);
    taken.close();
    expect(run.stderr().trim()).toBe(`error SY_PORT_IN_USE: port ${port} on 127.0.0.1 is in use (another switchyard dev?); choose another with --port, --receiver or --site`);
    // Nothing held the store: the next run gets it.
    const next = dev([...args, '--port', String(await freePort())]);
    await next.wait(new RegExp(`started locally, store ${store}\\)`));
    next.child.kill('SIGTERM');
    expect(await next.exit()).toBe(0);
  }, 60_000);

  it('refuses invalid resources before starting anything', async () => {
    const dir = await examplesFor(8788);
    await writeFile(path.join(dir, '3-mapping.yaml'), '');
    const run = dev(['-f', dir]);
    expect(await run.exit()).toBe(1);
    expect(run.stderr()).toContain('/spec/mappingRef/name: Mapping default/webhook-ecommerce not found (reference)');
  }, 30_000);

  it('exits with a message saying how to get NATS when none is usable and no supported nats-server can be had', async () => {
    const emptyCache = await tempDir();
    // No pinned build in the cache, no Go to build one, and a PATH whose only nats-server (if any) is Debian's too-old one.
    const run = dev(['-f', path.join(repoRoot, 'examples'), '--nats-url', `nats://127.0.0.1:${await freePort()}`], {
      SWITCHYARD_BIN_CACHE: emptyCache,
      PATH: '/usr/sbin:/usr/bin:/bin',
    });
    expect(await run.exit()).toBe(1);
    expect(run.stderr()).toContain('error SY_NATS_UNAVAILABLE: no usable NATS.');
    expect(run.stderr()).toContain('scripts/test-binaries.sh nats-server');
  }, 30_000);
});

describe('singleProcess', () => {
  it('runs an Integration of several replicas as one, so dev takes its whole rate limit', () => {
    const integration = testIntegration('rl', { url: 'http://127.0.0.1:9', sources: ['web'], delivery: { rateLimit: { eventsPerSecond: 2 } } });
    integration.spec.forwarder.replicas = 3;
    const config = { integration, mapping: testMapping(), credentials: {} };
    expect(singleProcess(config).integration.spec.forwarder.replicas).toBe(1);
    expect(singleProcess(config).integration.spec.delivery.rateLimit).toEqual({ eventsPerSecond: 2 });
    expect(integration.spec.forwarder.replicas).toBe(3);
  });
});
