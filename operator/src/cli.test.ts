import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jest } from '@jest/globals';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { freePort } from '../../runtime/src/local/nats-server.js';
import { useNatsFixture } from '../../runtime/src/test-support/nats.js';
import { useTempDirs } from '../../runtime/src/test-support/temp.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor } from './test-support/kube.js';
import { condition, createResource, getResource } from './test-support/operator.js';

jest.setTimeout(60_000);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const nats = useNatsFixture();
const tempDir = useTempDirs('switchyard-operator-cli-');
let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, 'cli');
});
afterAll(() => deleteTestNamespace(kc, ns));

test('switchyard-operator runs from its settings file, serves its endpoints and releases the Lease on SIGTERM', async () => {
  const dir = await tempDir();
  const port = await freePort();
  const settings = path.join(dir, 'operator.yaml');
  await writeFile(
    settings,
    JSON.stringify({ namespaces: [ns], leaderElection: { namespace: ns }, ingestion: { namespace: ns }, metricsPort: port, nats: { servers: nats.fx.nats.servers }, streams: nats.fx.streams }),
  );
  const child = spawn(process.execPath, [path.join(repoRoot, 'operator/bin/switchyard-operator.js'), '--settings', settings], {
    env: { ...process.env, LOG_LEVEL: 'warn', POD_NAME: 'cli-test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  try {
    // A standby is ready too; this one is alone, so it soon leads.
    await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return res.status === 200 && (await res.text()) === 'leading';
    }, { what: '/readyz 200 leading' }).catch((e: Error) => {
      throw new Error(`${e.message}\noutput: ${output}`);
    });
    await createResource(kc, ns, { kind: 'Mapping', metadata: { name: 'm' }, spec: { default: { fields: [{ to: 'e', from: '$name' }] } } });
    await waitFor(async () => condition(await getResource(kc, 'mappings', ns, 'm'), 'Ready')?.status === 'True', { what: 'the Mapping reconciled by the process' });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/switchyard_operator_reconciles_total\{kind="Mapping",result="success"\} [1-9]/);
    expect(metrics).toContain('process_cpu_seconds_total');
  } finally {
    child.kill('SIGTERM');
  }
  const [code] = await once(child, 'exit');
  expect({ code, output }).toMatchObject({ code: 0 });
  const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'switchyard-operator', namespace: ns });
  expect(lease.spec?.holderIdentity).toBe('');
});

test('a taken metrics port (--metrics-port wins over the settings file) fails at once, before campaigning for the Lease', async () => {
  const dir = await tempDir();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '0.0.0.0', r));
  const port = (blocker.address() as { port: number }).port;
  const settings = path.join(dir, 'operator.yaml');
  await writeFile(settings, JSON.stringify({ namespaces: [ns], leaderElection: { namespace: ns, leaseName: 'taken-port' }, metricsPort: await freePort(), nats: { servers: nats.fx.nats.servers } }));
  try {
    const child = spawn(process.execPath, [path.join(repoRoot, 'operator/bin/switchyard-operator.js'), '--settings', settings, '--metrics-port', String(port)], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const [code] = await once(child, 'exit');
    expect({ code, stderr: stderr.trim() }).toEqual({ code: 1, stderr: expect.stringContaining(`cannot listen on metricsPort ${port}`) });
    const leases = await kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: ns });
    expect(leases.items.map((l) => l.metadata?.name)).not.toContain('taken-port');
  } finally {
    blocker.close();
  }
});

test('--metrics-port refuses what is not a port', async () => {
  const child = spawn(process.execPath, [path.join(repoRoot, 'operator/bin/switchyard-operator.js'), '--metrics-port', '80a'], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const [code] = await once(child, 'exit');
  expect({ code, stderr: stderr.trim() }).toEqual({ code: 1, stderr: expect.stringContaining('--metrics-port must be an integer from 0 to 65535, got "80a"') });
});
