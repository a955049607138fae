// The whole product installed by `helm install` and running for real: a control plane of this
// file's own with the controller manager (Deployments get pods, ServiceAccounts get tokens) and a
// fake node running the chart's pods as local processes, both images mapped onto this repository
// (built by `npm run build`). The operator runs in its pod as the chart's ServiceAccount, the
// ingestion mounts the sources Secret the operator writes, an event posted to the ingestion pod
// reaches a loopback receiver through the forwarder pod; `helm upgrade` rolls both workloads by
// their settings checksum and `helm uninstall` removes them, leaving CRDs and resources.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jest } from '@jest/globals';
import { AppsV1Api, CoreV1Api, CoordinationV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { parse } from 'yaml';
import { connectNats } from '../../runtime/src/nats/connection.js';
import { isolatedStreamSettings, testNatsSettings } from '../../runtime/src/test-support/nats.js';
import { startTestReceiver, type TestReceiver } from '../../runtime/src/test-support/http-receiver.js';
import { startControlPlane, type ControlPlane } from '../../operator/src/test-support/control-plane.js';
import { startFakeNode, type FakeNode } from '../../operator/src/test-support/fake-node.js';
import { waitFor, type WaitForOptions } from '../../operator/src/test-support/kube.js';
import { condition, getResource } from '../../operator/src/test-support/operator.js';
import { chartCopy, CHART_DIR, helm } from './helm.js';
import { ensureNamespaces, kubectlOk, yamlStream } from './kube.js';

jest.setTimeout(120_000);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RELEASE = 'switchyard';
const NAMESPACE = 'switchyard-system';
/** Where the Sources, Mapping and Integration live. */
const SHOP = 'shop';
const WRITE_KEY = 'wk-e2e-helm-web';
const streams = isolatedStreamSettings();

let plane: ControlPlane;
let admin: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let node: FakeNode;
let receiver: TestReceiver;
let chart: string;
let scratch: string;
/** The chart's appVersion: the tag of both images. */
let appVersion: string;

beforeAll(async () => {
  for (const built of ['runtime/dist/cli/bin.js', 'operator/dist/cli.js']) {
    if (!existsSync(path.join(repoRoot, built))) throw new Error(`${built} is missing: run \`npm run build\` (npm ci does it) before this test`);
  }
  appVersion = (parse(await readFile(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;
  [plane, receiver, chart, scratch] = await Promise.all([
    // The chart installs the CRDs itself.
    startControlPlane({ crdDir: false }),
    startTestReceiver(),
    chartCopy(),
    mkdtemp(path.join(os.tmpdir(), 'switchyard-e2e-values-')),
  ]);
  admin = plane.kubeConfig();
  core = admin.makeApiClient(CoreV1Api);
  apps = admin.makeApiClient(AppsV1Api);
  const image = { root: repoRoot, prefix: '/app' };
  node = await startFakeNode({
    kubeConfig: admin,
    images: { [`ghcr.io/switchyard/runtime:${appVersion}`]: image, [`ghcr.io/switchyard/operator:${appVersion}`]: image },
  });
});

afterAll(async () => {
  await node?.stop();
  await receiver?.close();
  await plane?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  // The streams (and the consumer left by the Integration, which outlives the uninstall) go.
  const nc = await connectNats(testNatsSettings());
  const jsm = await jetstreamManager(nc);
  for (const name of [streams.events.name, streams.deadLetter.name, streams.advisories.name]) await jsm.streams.delete(name).catch(() => undefined);
  await nc.close();
});

/** waitFor, whose error also tells what the fake node ran, met and logged. */
async function until<T>(fn: () => T | Promise<T>, options: WaitForOptions) {
  try {
    return await waitFor(fn, { timeoutMs: 30_000, ...options });
  } catch (err) {
    const logs = node.processes().map((p) => `--- ${p.namespace}/${p.pod}/${p.container} (${p.state}, restarts ${p.restartCount}):\n${node.logs(p.namespace, p.pod, p.container).slice(-3000)}`);
    throw new Error([(err as Error).message, 'problems:', ...node.problems(), ...logs].join('\n'));
  }
}

/** helm against this file's control plane; throws with helm's stderr on a non-zero exit. */
async function helmOk(args: string[]): Promise<string> {
  const result = await helm([...args, '--kubeconfig', plane.kubeconfigPath]);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

let valuesFiles = 0;

/** `values` written to a file of the scratch folder, for `-f`. */
async function valuesFile(values: Record<string, unknown>): Promise<string> {
  const file = path.join(scratch, `values-${valuesFiles++}.json`);
  await writeFile(file, JSON.stringify(values));
  return file;
}

/** The release's values: the suite's NATS and this file's streams. */
function releaseValues(eventsMaxAge = '7d'): Record<string, unknown> {
  return {
    natsConnection: { servers: [process.env.NATS_URL] },
    streams: {
      subjectPrefix: streams.subjectPrefix,
      events: { name: streams.events.name, storage: streams.events.storage, maxAge: eventsMaxAge },
      deadLetter: { name: streams.deadLetter.name },
      advisories: { name: streams.advisories.name },
    },
    // One is enough to prove the wiring, and lighter on a shared machine.
    ingestion: { replicas: 1 },
  };
}

const isReady = (p: V1Pod) => !p.metadata?.deletionTimestamp && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** The pods of a component (`app.kubernetes.io/component`) in `namespace`, terminating ones included. */
async function podsOf(namespace: string, component: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/component=${component}` })).items;
}

/** The one pod of a component once it is Ready and alone (a rollout done), else undefined. */
async function soleReadyPod(namespace: string, component: string): Promise<V1Pod | undefined> {
  const pods = await podsOf(namespace, component);
  return pods.length === 1 && isReady(pods[0]!) ? pods[0] : undefined;
}

/** What the operator pod's /readyz answers on the local port the fake node gave its metrics port. */
async function operatorReadyz(operatorPod: string): Promise<string> {
  const port = node.localPort(NAMESPACE, operatorPod, 'metrics');
  if (port === undefined) throw new Error(`operator pod ${operatorPod} has no local metrics port`);
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return `${res.status} ${await res.text()}`;
}

/** The holder of the operator's Lease (in the release namespace). */
async function leaseHolder(): Promise<string> {
  const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'switchyard-operator', namespace: NAMESPACE });
  return lease.spec?.holderIdentity ?? '';
}

/** POSTs a track event with the Source's write key to the ingestion pod's local port; resolves to the HTTP status. */
async function track(ingestionPod: string, orderId: string): Promise<number> {
  const port = node.localPort(NAMESPACE, ingestionPod, 'http');
  if (port === undefined) throw new Error(`ingestion pod ${ingestionPod} has no local port`);
  const res = await fetch(`http://127.0.0.1:${port}/v1/track`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` },
    body: JSON.stringify({ event: 'Order Completed', userId: 'u1', properties: { order_id: orderId, revenue: 25 } }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The checksum/config annotation of a Deployment's pod template. */
async function configChecksum(name: string): Promise<string | undefined> {
  return (await apps.readNamespacedDeployment({ name, namespace: NAMESPACE })).spec?.template.metadata?.annotations?.['checksum/config'];
}

test('helm install: the operator leads in its pod, the ingestion pod serves the Sources, an event reaches the receiver through the forwarder pod', async () => {
  const out = await helmOk(['install', RELEASE, chart, '--namespace', NAMESPACE, '--create-namespace', '-f', await valuesFile(releaseValues())]);
  expect(out).toContain('STATUS: deployed');

  const operatorPod = await until(() => soleReadyPod(NAMESPACE, 'operator'), { what: 'the operator pod Ready' });
  expect(operatorPod.spec?.serviceAccountName).toBe('switchyard-operator');
  // Ready also means standing by: this one must lead, as the only replica, under its pod name.
  await until(async () => (await operatorReadyz(operatorPod.metadata!.name!)) === '200 leading', { what: 'the operator /readyz answering leading' });
  expect(await leaseHolder()).toMatch(new RegExp(`^${operatorPod.metadata!.name}_`));

  const sources = await until(() => core.readNamespacedSecret({ name: 'switchyard-sources', namespace: NAMESPACE }), { what: 'the sources Secret written by the operator' });
  expect(Object.keys(sources.data ?? {})).toEqual(['sources.yaml']);
  const ingestion = await until(() => soleReadyPod(NAMESPACE, 'ingestion'), { what: 'the ingestion pod Ready' });
  expect(ingestion.spec?.containers[0]?.image).toBe(`ghcr.io/switchyard/runtime:${appVersion}`);
  const ingestionPod = ingestion.metadata!.name!;

  await ensureNamespaces(plane.kubeconfigPath, [SHOP]);
  const resources = [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'write-keys', namespace: SHOP }, stringData: { web: WRITE_KEY } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hook-creds', namespace: SHOP }, stringData: { Authorization: 'Bearer from-helm' } },
    { apiVersion: 'switchyard.io/v1alpha1', kind: 'Source', metadata: { name: 'web', namespace: SHOP }, spec: { writeKey: { secretKeyRef: { name: 'write-keys', key: 'web' } } } },
    {
      apiVersion: 'switchyard.io/v1alpha1',
      kind: 'Mapping',
      metadata: { name: 'orders', namespace: SHOP },
      spec: { default: { fields: [{ to: 'event', from: '$name' }, { to: 'order', from: 'properties.order_id' }, { to: 'value', from: 'properties.revenue' }] } },
    },
    {
      apiVersion: 'switchyard.io/v1alpha1',
      kind: 'Integration',
      metadata: { name: 'shop-hook', namespace: SHOP },
      spec: {
        sourceRefs: [{ name: 'web' }],
        mappingRef: { name: 'orders' },
        destination: { type: 'webhook', webhook: { url: `${receiver.url}/hook` } },
        credentialsSecretRef: { name: 'hook-creds' },
        delivery: { timeout: '2s', retrySchedule: ['200ms', '500ms'] },
      },
    },
  ];
  await kubectlOk(plane.kubeconfigPath, ['apply', '--server-side', '--field-manager=switchyard-test', '-f', '-'], yamlStream(resources));

  const forwarder = await until(() => soleReadyPod(SHOP, 'forwarder'), { what: 'the forwarder pod Ready' });
  // The operator runs the forwarders with the chart's runtime image, as the ingestion.
  expect(forwarder.spec?.containers[0]?.image).toBe(`ghcr.io/switchyard/runtime:${appVersion}`);
  const integration = await until(
    async () => {
      const i = await getResource(admin, 'integrations', SHOP, 'shop-hook');
      return condition(i, 'Ready')?.status === 'True' ? i : undefined;
    },
    { what: 'Integration shop-hook Ready' },
  );
  expect(condition(integration, 'DeploymentAvailable')?.reason).toBe('Available');

  // The new write key reaches the running ingestion through the Secret it mounts (401 until then).
  await until(async () => (await track(ingestionPod, 'o-1')) === 200, { what: 'the ingestion accepting the Source write key', intervalMs: 300 });
  await receiver.waitFor((rs) => rs.some((r) => r.body?.order === 'o-1'), 30_000);
  const delivered = receiver.requests.find((r) => r.body?.order === 'o-1')!;
  expect(delivered.url).toBe('/hook');
  expect(delivered.headers.authorization).toBe('Bearer from-helm');
  expect(delivered.body).toMatchObject({ event: 'Order Completed', order: 'o-1', value: 25 });
});

test('helm upgrade with changed settings rolls the operator and the ingestion (checksum annotation), and through the operator the forwarder; the new pods use them', async () => {
  const before = {
    operator: (await soleReadyPod(NAMESPACE, 'operator'))?.metadata?.name,
    ingestion: (await soleReadyPod(NAMESPACE, 'ingestion'))?.metadata?.name,
    forwarder: (await soleReadyPod(SHOP, 'forwarder'))?.metadata?.name,
  };
  expect(before.operator && before.ingestion && before.forwarder).toBeTruthy();
  const checksums = { operator: await configChecksum('switchyard-operator'), ingestion: await configChecksum('switchyard-ingestion') };

  // Both pods' settings change (the streams' maxAge is in both files).
  await helmOk(['upgrade', RELEASE, chart, '--namespace', NAMESPACE, '-f', await valuesFile(releaseValues('6d'))]);
  expect(await configChecksum('switchyard-operator')).not.toBe(checksums.operator);
  expect(await configChecksum('switchyard-ingestion')).not.toBe(checksums.ingestion);

  const operatorPod = await until(async () => {
    const pod = await soleReadyPod(NAMESPACE, 'operator');
    return pod && pod.metadata?.name !== before.operator ? pod : undefined;
  }, { what: 'the operator pod replaced', timeoutMs: 45_000 });
  await until(async () => (await operatorReadyz(operatorPod.metadata!.name!)) === '200 leading', { what: 'the new operator pod leading' });
  expect(await leaseHolder()).toMatch(new RegExp(`^${operatorPod.metadata!.name}_`));
  const ingestionPod = await until(async () => {
    const pod = await soleReadyPod(NAMESPACE, 'ingestion');
    return pod && pod.metadata?.name !== before.ingestion ? pod : undefined;
  }, { what: 'the ingestion pod replaced', timeoutMs: 45_000 });
  // The forwarders' runtime Secret carries the operator's stream settings: the new operator rolls them.
  await until(async () => {
    const pod = await soleReadyPod(SHOP, 'forwarder');
    return pod && pod.metadata?.name !== before.forwarder;
  }, { what: 'the forwarder pod replaced', timeoutMs: 45_000 });

  // The new pods applied the new stream settings to the stream at their start.
  const nc = await connectNats(testNatsSettings());
  try {
    const info = await (await jetstreamManager(nc)).streams.info(streams.events.name);
    expect(info.config.max_age).toBe(6 * 24 * 3600 * 1e9);
  } finally {
    await nc.close();
  }
  expect(await track(ingestionPod.metadata!.name!, 'o-2')).toBe(200);
  await receiver.waitFor((rs) => rs.some((r) => r.body?.order === 'o-2'), 30_000);
});

test('helm uninstall removes the operator and the ingestion, and keeps the CRDs, the resources and the forwarder', async () => {
  const forwarder = (await soleReadyPod(SHOP, 'forwarder'))?.metadata?.name;
  expect(forwarder).toBeTruthy();
  await helmOk(['uninstall', RELEASE, '--namespace', NAMESPACE]);

  const deployments = (await apps.listNamespacedDeployment({ namespace: NAMESPACE })).items.map((d) => d.metadata?.name);
  expect(deployments).toEqual([]);
  await until(async () => (await core.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0, { what: 'the release pods gone' });
  expect(node.processes().filter((p) => p.namespace === NAMESPACE)).toEqual([]);

  expect(await getResource(admin, 'integrations', SHOP, 'shop-hook')).toBeDefined();
  const crds = JSON.parse(await kubectlOk(plane.kubeconfigPath, ['get', 'crd', '-o', 'json'])) as { items: Array<{ metadata: { name: string } }> };
  expect(crds.items.map((c) => c.metadata.name).sort()).toEqual(['integrations.switchyard.io', 'mappings.switchyard.io', 'sources.switchyard.io']);
  expect((await soleReadyPod(SHOP, 'forwarder'))?.metadata?.name).toBe(forwarder);
});
