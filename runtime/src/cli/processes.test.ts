// `switchyard ingest` and `switchyard forward` as the processes a cluster runs: config files in,
// events through, sources reloaded without a restart, SIGTERM drains and exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../local/nats-server.js';
import { eventually, startTestReceiver, type TestReceiver } from '../test-support/http-receiver.js';
import { natsFixture } from '../test-support/nats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');

function run(args: string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bin.ts'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  (child as ChildProcess & { stderrText: () => string }).stderrText = () => stderr;
  return child;
}

async function ready(url: string, child: ChildProcess) {
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${(child as any).stderrText()}`);
      try {
        return (await request(url)).statusCode === 200;
      } catch {
        return false;
      }
    },
    20_000,
    url,
  );
}

const exitCode = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('ingest and forward processes', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let receiver: TestReceiver;
  const children: ChildProcess[] = [];
  const cleanupDirs: string[] = [];

  beforeAll(async () => {
    fx = await natsFixture();
    receiver = await startTestReceiver();
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await receiver.close();
    await fx.cleanup();
    await Promise.all(cleanupDirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('deliver events end to end from config files, reload sources live and drain on SIGTERM', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sy-proc-'));
    cleanupDirs.push(dir);
    const settings = path.join(dir, 'settings.yaml');
    await writeFile(settings, JSON.stringify({ nats: { servers: [process.env.NATS_URL] }, streams: fx.streams }));
    const sources = path.join(dir, 'sources.json');
    const source = (writeKey: string) => ({ sources: [{ namespace: 'shop', name: 'web.eu', writeKey, allowedOrigins: [], limits: {} }] });
    await writeFile(sources, JSON.stringify(source('wk_first_key_01')));
    const config = path.join(dir, 'forwarder.yaml');
    await writeFile(
      config,
      JSON.stringify({
        integration: {
          apiVersion: 'switchyard.io/v1alpha1',
          kind: 'Integration',
          metadata: { name: 'hook', namespace: 'shop' },
          spec: { sourceRefs: [{ name: 'web.eu' }], mappingRef: { name: 'm' }, destination: { type: 'webhook', webhook: { url: `${receiver.url}/in` } } },
        },
        mapping: {
          apiVersion: 'switchyard.io/v1alpha1',
          kind: 'Mapping',
          metadata: { name: 'm', namespace: 'shop' },
          spec: { default: { fields: [{ to: 'name', from: '$name' }, { to: 'id', from: 'messageId' }, { to: 'auth', value: 'none' }] } },
        },
      }),
    );
    const credentials = await mkdtemp(path.join(os.tmpdir(), 'sy-cred-'));
    cleanupDirs.push(credentials);
    await writeFile(path.join(credentials, 'authorization'), 'Bearer from-secret\n');

    const [ingestPort, metricsPort, ingestMetricsPort] = [await freePort(), await freePort(), await freePort()];
    const forward = run(['forward', '--config', config, '--settings', settings, '--credentials-dir', credentials, '--create-consumer', '--metrics-port', String(metricsPort)]);
    children.push(forward);
    await ready(`http://127.0.0.1:${metricsPort}/readyz`, forward);
    const ingest = run(['ingest', '--sources', sources, '--settings', settings, '--port', String(ingestPort), '--host', '127.0.0.1', '--metrics-port', String(ingestMetricsPort)]);
    children.push(ingest);
    await ready(`http://127.0.0.1:${ingestPort}/readyz`, ingest);

    const send = (writeKey: string, messageId: string) =>
      request(`http://127.0.0.1:${ingestPort}/v1/t`, { method: 'POST', body: JSON.stringify({ writeKey, event: 'Signed Up', userId: 'u1', messageId }) });
    expect((await send('wk_first_key_01', 'p-1')).statusCode).toBe(200);
    await eventually(() => receiver.requests.length === 1, 10_000, 'first delivery');
    expect(receiver.requests[0]).toMatchObject({ url: '/in', body: { name: 'Signed Up', id: 'p-1', auth: 'none' }, headers: { authorization: 'Bearer from-secret' } });

    // Rotate the write key: the ingestion picks the file up without a restart.
    await writeFile(sources, JSON.stringify(source('wk_second_key_02')));
    // Probe with an event that is never stored (no ids: 400 while the key is known, 401 once it is not).
    const probe = () => request(`http://127.0.0.1:${ingestPort}/v1/t`, { method: 'POST', body: JSON.stringify({ writeKey: 'wk_first_key_01', event: 'x' }) });
    await eventually(async () => (await probe()).statusCode === 401, 15_000, 'old key refused');
    expect((await send('wk_second_key_02', 'p-2')).statusCode).toBe(200);
    await eventually(() => receiver.requests.length === 2, 10_000, 'second delivery');
    expect(receiver.requests[1]!.body).toMatchObject({ id: 'p-2' });

    const metrics = await (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body.text();
    expect(metrics).toMatch(/switchyard_deliveries_total\{integration="shop\/hook",outcome="delivered"\} 2/);
    // With --metrics-port the ingestion's metrics are there, and no longer on its public API port.
    const ingestMetrics = await (await request(`http://127.0.0.1:${ingestMetricsPort}/metrics`)).body.text();
    expect(ingestMetrics).toMatch(/switchyard_ingest_events_accepted_total\{source="shop\/web.eu"\} 2/);
    expect((await request(`http://127.0.0.1:${ingestPort}/metrics`)).statusCode).toBe(404);

    forward.kill('SIGTERM');
    ingest.kill('SIGTERM');
    expect(await exitCode(forward)).toBe(0);
    expect(await exitCode(ingest)).toBe(0);
  }, 60_000);
});
