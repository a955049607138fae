import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jest } from '@jest/globals';
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { RUNTIME_VERSION } from '../../../runtime/src/destinations/types.js';
import { randomBytes } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../../runtime/src/nats/connection.js';
import { startNatsServer, type RunningNatsServer } from '../../../runtime/src/local/nats-server.js';
import { natsSettings } from '../../../runtime/src/settings.js';
import { isolatedStreamSettings } from '../../../runtime/src/test-support/nats.js';
import { startTestReceiver, type TestReceiver } from '../../../runtime/src/test-support/http-receiver.js';
import type { Operator } from '../controller.js';
import { startFakeNode, type FakeNode } from '../test-support/fake-node.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor } from '../test-support/kube.js';
import { condition, createResource, getResource, startTestOperator, testOperatorSettings } from '../test-support/operator.js';

// The whole product in a cluster: the operator's Deployments run for real on a fake node (the
// containers' commands as local processes), events go in through the ingestion pod and come out
// of the forwarder pod at a loopback receiver.
jest.setTimeout(120_000);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const IMAGE = `ghcr.io/switchyard/runtime:${RUNTIME_VERSION}`;
// A NATS of its own that requires a token: forwarder pods only connect with the credentials the
// operator hands them through the runtime Secret.
const token = randomBytes(12).toString('hex');
const streams = isolatedStreamSettings();
let natsServer: RunningNatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let ns: string;
let node: FakeNode | undefined;
let operator: Operator | undefined;
let receiver: TestReceiver;

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, 'runtime/dist/cli/bin.js'))) throw new Error('runtime/dist is missing: run `npm run build` (npm ci does it) before this test');
  kc = testKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  ns = await createTestNamespace(kc, 'e2e');
  receiver = await startTestReceiver();
  natsServer = await startNatsServer({ args: ['--auth', token] });
  nc = await connectNats(natsSettings({ servers: [natsServer.url], token }, {}));
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(kc, ns);
  await node?.stop();
  await receiver?.close();
  await nc?.close();
  await natsServer?.stop();
});

/** The ingestion Deployment as a platform team (or the Helm chart) declares it. */
function ingestionDeployment(): V1Deployment {
  const labels = { 'app.kubernetes.io/name': 'switchyard', 'app.kubernetes.io/component': 'ingestion' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'switchyard-ingestion', namespace: ns, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          containers: [
            {
              name: 'ingestion',
              image: IMAGE,
              command: ['node', '/app/runtime/bin/switchyard.js'],
              args: ['ingest', '--sources', '/etc/switchyard/sources/sources.yaml', '--settings', '/etc/switchyard/settings/settings.yaml', '--port', '8080'],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 1 },
              volumeMounts: [
                { name: 'sources', mountPath: '/etc/switchyard/sources', readOnly: true },
                { name: 'settings', mountPath: '/etc/switchyard/settings', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'sources', secret: { secretName: 'switchyard-sources' } },
            { name: 'settings', configMap: { name: 'switchyard-settings' } },
          ],
        },
      },
    },
  };
}

async function podOf(component: string): Promise<string | undefined> {
  const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/component=${component}` });
  return pods.items.find((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))?.metadata?.name;
}

async function send(writeKey: string, event: Record<string, unknown>): Promise<Response> {
  const pod = await waitFor(() => podOf('ingestion'), { what: 'a ready ingestion pod' });
  const port = node!.localPort(ns, pod, 'http')!;
  return fetch(`http://127.0.0.1:${port}/v1/track`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` },
    body: JSON.stringify(event),
  });
}

test('events posted to the ingestion pod reach the receiver through the forwarder pod the operator runs', async () => {
  node = await startFakeNode({ kubeConfig: kc, namespaces: [ns], images: { [IMAGE]: { root: repoRoot, prefix: '/app' } } });
  operator = await startTestOperator(kc, testOperatorSettings(ns, { servers: [natsServer.url] }, streams, { forwarder: { image: IMAGE }, nats: { servers: [natsServer.url], token } }));

  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'write-keys' }, stringData: { web: 'wk-e2e-web-1', app: 'wk-e2e-app-1' } } });
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'hook-creds' }, stringData: { Authorization: 'Bearer first' } } });
  await core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: 'switchyard-settings' }, data: { 'settings.yaml': JSON.stringify({ nats: { servers: [natsServer.url], token }, streams }) } },
  });
  await createResource(kc, ns, { kind: 'Source', metadata: { name: 'web' }, spec: { writeKey: { secretKeyRef: { name: 'write-keys', key: 'web' } } } });
  await createResource(kc, ns, { kind: 'Mapping', metadata: { name: 'orders' }, spec: { default: { fields: [{ to: 'event', from: '$name' }, { to: 'order', from: 'properties.order_id' }] } } });
  await createResource(kc, ns, {
    kind: 'Integration',
    metadata: { name: 'shop-hook' },
    spec: {
      sourceRefs: [{ name: 'web' }, { name: 'app' }],
      mappingRef: { name: 'orders' },
      destination: { type: 'webhook', webhook: { url: `${receiver.url}/hook` } },
      credentialsSecretRef: { name: 'hook-creds' },
      delivery: { timeout: '2s', retrySchedule: ['200ms', '500ms'] },
    },
  });
  await waitFor(() => core.readNamespacedSecret({ name: 'switchyard-sources', namespace: ns }), { what: 'the sources Secret' });
  await apps.createNamespacedDeployment({ namespace: ns, body: ingestionDeployment() });

  // The forwarder Deployment becomes available for real: its pod runs and answers /readyz.
  const ready = await waitFor(
    async () => {
      const i = await getResource(kc, 'integrations', ns, 'shop-hook');
      return condition(i, 'Ready')?.status === 'True' ? i : undefined;
    },
    { what: 'Integration Ready (forwarder pod available)', timeoutMs: 60_000 },
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}\nfake node problems: ${node!.problems().join('\n')}\nprocesses: ${JSON.stringify(node!.processes())}`);
  });
  expect(condition(ready, 'DeploymentAvailable')).toMatchObject({ status: 'True', reason: 'Available' });

  const accepted = await send('wk-e2e-web-1', { event: 'Order Completed', userId: 'u1', properties: { order_id: 'o-1' } });
  expect(accepted.status).toBe(200);
  await receiver.waitFor((rs) => rs.some((r) => r.body?.order === 'o-1'), 30_000);
  const first = receiver.requests.find((r) => r.body?.order === 'o-1')!;
  expect(first.url).toBe('/hook');
  expect(first.body.event).toBe('Order Completed');
  expect(first.headers.authorization).toBe('Bearer first');

  // A new Source reaches the running ingestion through its mounted Secret, without a restart.
  const restartsBefore = node.processes().filter((p) => p.container === 'ingestion').map((p) => p.restartCount);
  expect((await send('wk-e2e-app-1', { event: 'Order Completed', userId: 'u2', properties: { order_id: 'o-2' } })).status).toBe(401);
  await createResource(kc, ns, { kind: 'Source', metadata: { name: 'app' }, spec: { writeKey: { secretKeyRef: { name: 'write-keys', key: 'app' } } } });
  await waitFor(async () => (await send('wk-e2e-app-1', { event: 'Order Completed', userId: 'u2', properties: { order_id: 'o-2' } })).status === 200, {
    what: 'the new write key accepted',
    timeoutMs: 20_000,
    intervalMs: 500,
  });
  await receiver.waitFor((rs) => rs.some((r) => r.body?.order === 'o-2'), 30_000);
  expect(node.processes().filter((p) => p.container === 'ingestion').map((p) => p.restartCount)).toEqual(restartsBefore);

  // A credentials change rolls the forwarder; later events carry the new header.
  const oldPod = await podOf('forwarder');
  await core.replaceNamespacedSecret({ name: 'hook-creds', namespace: ns, body: { metadata: { name: 'hook-creds' }, stringData: { Authorization: 'Bearer second' } } });
  // The rollout starts the new pod first; until the old one is gone, either may take an event.
  await waitFor(async () => {
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/component=forwarder' });
    const names = pods.items.map((p) => p.metadata!.name);
    return names.length === 1 && names[0] !== oldPod && (await podOf('forwarder')) === names[0];
  }, { what: 'the old forwarder pod replaced', timeoutMs: 60_000 });
  expect((await send('wk-e2e-web-1', { event: 'Order Completed', userId: 'u3', properties: { order_id: 'o-3' } })).status).toBe(200);
  await receiver.waitFor((rs) => rs.some((r) => r.body?.order === 'o-3'), 30_000);
  expect(receiver.requests.find((r) => r.body?.order === 'o-3')!.headers.authorization).toBe('Bearer second');

  // The consumer deleted by hand: the operator re-creates it where it stood and the running
  // forwarder picks it up again, so an event sent meanwhile is delivered.
  await jsm.consumers.delete(streams.events.name, `${ns}__shop-hook`);
  expect((await send('wk-e2e-web-1', { event: 'Order Completed', userId: 'u4', properties: { order_id: 'o-4' } })).status).toBe(200);
  await receiver.waitFor((rs) => rs.some((r) => r.body?.order === 'o-4'), 20_000);
});
