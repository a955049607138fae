import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { startFakeNode, type FakeNode } from './fake-node.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor, type WaitForOptions } from './kube.js';

// A tiny HTTP server: answers /ready, and anything else with the mounted greeting file (read on
// every request), a Secret-sourced env var, a file of its "image" and its pod name.
const SERVER = `
const http = require('http');
const fs = require('fs');
const [file, port] = process.argv.slice(1);
http.createServer((req, res) => {
  if (req.url === '/ready') return res.end('ok');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({
    greeting: fs.readFileSync(file, 'utf8'),
    token: process.env.TOKEN,
    banner: fs.readFileSync(process.env.BANNER, 'utf8'),
    pod: process.env.POD_NAME,
  }));
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;

const IMAGE = 'registry.example/hello';
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let ns: string;
let node: FakeNode;
let imageRoot: string;

beforeAll(async () => {
  kc = testKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  ns = await createTestNamespace(kc, 'fake-node');
  imageRoot = await mkdtemp(path.join(os.tmpdir(), 'switchyard-image-'));
  await writeFile(path.join(imageRoot, 'banner.txt'), 'from the image');
  node = await startFakeNode({ kubeConfig: kc, namespaces: [ns], images: { [IMAGE]: { root: imageRoot, prefix: '/app' } } });
});

afterAll(async () => {
  await node?.stop();
  if (ns) await deleteTestNamespace(kc, ns);
  if (imageRoot) await rm(imageRoot, { recursive: true, force: true });
});

/** waitFor, whose error also tells what the fake node ran, met and logged. */
async function until<T>(fn: () => T | Promise<T>, options: WaitForOptions) {
  try {
    return await waitFor(fn, options);
  } catch (err) {
    const logs = node.processes().map((p) => `--- ${p.namespace}/${p.pod}/${p.container} (${p.state}, restarts ${p.restartCount}):\n${node.logs(p.namespace, p.pod, p.container)}`);
    throw new Error([(err as Error).message, 'processes:', JSON.stringify(node.processes(), null, 1), 'problems:', ...node.problems(), ...logs].join('\n'));
  }
}

const podsOf = async (app: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;

async function get(port: number): Promise<{ greeting: string; token: string; banner: string; pod: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return (await res.json()) as { greeting: string; token: string; banner: string; pod: string };
}

describe('a Deployment on the fake node', () => {
  let pod = '';
  let port = 0;

  it('becomes Available, running the container as a local process with its volume, env and port', async () => {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'hello' }, data: { 'greeting.txt': 'hello v1' } } });
    await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'hello' }, stringData: { token: 's3cret' } } });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: 'hello' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'hello' } },
          template: {
            metadata: { labels: { app: 'hello' } },
            spec: {
              containers: [
                {
                  name: 'server',
                  image: `${IMAGE}:1.0`,
                  command: ['node', '-e', SERVER],
                  args: ['/etc/hello/greeting.txt', '8080'],
                  env: [
                    { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'hello', key: 'token' } } },
                    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                    { name: 'BANNER', value: '/app/banner.txt' },
                  ],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
                  volumeMounts: [{ name: 'greeting', mountPath: '/etc/hello' }],
                },
              ],
              volumes: [{ name: 'greeting', configMap: { name: 'hello' } }],
            },
          },
        },
      },
    });

    await until(async () => (await apps.readNamespacedDeployment({ name: 'hello', namespace: ns })).status?.availableReplicas === 1, {
      what: 'deployment hello to have 1 available replica',
    });
    const [running] = await podsOf('hello');
    pod = running!.metadata!.name!;
    expect(running!.spec?.nodeName).toBe(node.nodeName);
    expect(running!.status?.phase).toBe('Running');
    expect(running!.status?.podIP).toBe('127.0.0.1');
    expect(running!.status?.containerStatuses?.[0]).toMatchObject({ name: 'server', ready: true, started: true, restartCount: 0 });

    port = node.localPort(ns, pod, 'http')!;
    expect(port).not.toBe(8080);
    expect(node.localPort(ns, pod, 8080)).toBe(port);
    expect(await get(port)).toEqual({ greeting: 'hello v1', token: 's3cret', banner: 'from the image', pod });
  });

  it('rewrites the mounted file when the ConfigMap changes', async () => {
    await core.replaceNamespacedConfigMap({ name: 'hello', namespace: ns, body: { metadata: { name: 'hello' }, data: { 'greeting.txt': 'hello v2' } } });
    await until(async () => (await get(port)).greeting === 'hello v2', { what: 'the server to read the new greeting' });
  });

  it('stops the process and removes the pod when the Deployment is deleted', async () => {
    const [proc] = node.processes().filter((p) => p.pod === pod);
    expect(proc?.pid).toBeGreaterThan(0);
    await apps.deleteNamespacedDeployment({ name: 'hello', namespace: ns });
    await until(async () => (await podsOf('hello')).length === 0, { what: 'the pods of deployment hello to be gone' });
    expect(node.processes().filter((p) => p.pod === pod)).toEqual([]);
    expect(() => process.kill(proc!.pid!, 0)).toThrow(/ESRCH/);
  });
});

it('restarts a crashing container with back-off and reports it like the kubelet', async () => {
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'crasher', labels: { app: 'crasher' } },
      spec: { containers: [{ name: 'main', image: 'node', command: ['node', '-e', 'console.log("up"); process.exit(3)'] }] },
    },
  });
  const status = await until(
    async () => {
      const s = (await core.readNamespacedPod({ name: 'crasher', namespace: ns })).status?.containerStatuses?.[0];
      return s && s.restartCount >= 1 && s.state?.waiting?.reason === 'CrashLoopBackOff' ? s : undefined;
    },
    { what: 'pod crasher to be backing off after a restart' },
  );
  expect(status.lastState?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
  expect(status.ready).toBe(false);
  expect(node.logs(ns, 'crasher', 'main')).toMatch(/^up\nup\n/);
  await core.deleteNamespacedPod({ name: 'crasher', namespace: ns });
  await until(async () => (await podsOf('crasher')).length === 0, { what: 'pod crasher to be gone' });
});

it('gives a container with the service-account token mounted a KUBECONFIG that authenticates as its ServiceAccount', async () => {
  // @kubernetes/client-node as an in-cluster program uses it: loadFromDefault, then who am I.
  const whoami = [
    "import { AuthenticationV1Api, KubeConfig } from '@kubernetes/client-node';",
    'const kc = new KubeConfig();',
    'kc.loadFromDefault();',
    "const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });",
    'console.log(`user=${review.status.userInfo.username} namespace=${kc.getContextObject(kc.getCurrentContext()).namespace}`);',
  ].join('\n');
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name: 'whoami', labels: { app: 'whoami' } },
      spec: {
        restartPolicy: 'Never',
        // The `default` ServiceAccount; the API server's admission adds the token volume and its mount.
        containers: [{ name: 'main', image: 'node', workingDir: repoRoot, command: ['node', '--input-type=module', '-e', whoami] }],
      },
    },
  });
  const pod = await until(
    async () => {
      const p = await core.readNamespacedPod({ name: 'whoami', namespace: ns });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    },
    { what: 'pod whoami finished' },
  );
  expect(pod.spec?.containers[0]?.volumeMounts?.map((m) => m.mountPath)).toContain('/var/run/secrets/kubernetes.io/serviceaccount');
  expect({ phase: pod.status?.phase, log: node.logs(ns, 'whoami', 'main').trim() }).toEqual({ phase: 'Succeeded', log: `user=system:serviceaccount:${ns}:default namespace=${ns}` });
  await core.deleteNamespacedPod({ name: 'whoami', namespace: ns });
  await until(async () => (await podsOf('whoami')).length === 0, { what: 'pod whoami to be gone' });
});
