import { execFile, type ChildProcess } from 'node:child_process';
import { generateKeyPair, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../../runtime/src/local/nats-server.js';
import { OutputTail, spawnTied, stopChild } from './child.js';
import { kubeRequest, statusCode } from './kube.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The binaries a control plane runs, as built by scripts/test-binaries.sh. */
export type ControlPlaneBinary = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

/**
 * The controllers kube-controller-manager runs: enough for Deployments (and their ReplicaSets and
 * Pods), owner-reference garbage collection, namespace deletion, the `default` ServiceAccount and
 * the `kube-root-ca.crt` ConfigMap of every namespace, and Services' EndpointSlices. No scheduler
 * and no kubelet: a fake node (fake-node.ts) binds and runs pods.
 */
export const CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'garbage-collector-controller',
  'namespace-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'endpointslice-controller',
] as const;

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Paths of the binaries; each missing one comes from `scripts/test-binaries.sh --path`. */
  binaries?: Partial<Record<ControlPlaneBinary, string>>;
  /** Folder of CRD YAML files to install (default: the repository's `crds/`); `false` installs none. */
  crdDir?: string | false;
  /** Give up starting after this many milliseconds (default 60000). */
  startTimeoutMs?: number;
  /** Controllers for kube-controller-manager (default {@link CONTROLLERS}); `[]` starts no controller manager. */
  controllers?: readonly string[];
}

/** A running etcd + kube-apiserver + kube-controller-manager in a temporary folder. */
export interface ControlPlane {
  /** The API server URL, `https://127.0.0.1:<port>`. */
  server: string;
  /** A kubeconfig file for an admin (group system:masters, token auth, the serving CA). */
  kubeconfigPath: string;
  /** A fresh KubeConfig loaded from {@link kubeconfigPath}. */
  kubeConfig(): KubeConfig;
  /** The temporary folder holding etcd's data, keys, certificates and the kubeconfig. */
  dir: string;
  /** The bearer token of the admin user (the kubeconfig's). */
  token: string;
  /** The last lines each binary wrote to stderr, for diagnosing a failing test. */
  logTail(binary: ControlPlaneBinary): string;
  /** Stops every process (SIGTERM, SIGKILL after 5 s) and removes {@link dir}. */
  stop(): Promise<void>;
}

interface Running {
  name: ControlPlaneBinary;
  child: ChildProcess;
  tail: OutputTail;
}

/**
 * Starts a Kubernetes control plane on loopback, envtest-style: etcd (temporary data, no fsync),
 * kube-apiserver (RBAC on, static-token admin, service-account keys generated here, serving
 * certificate self-signed in the temp folder, ready per /readyz), the CRDs (each Established and
 * served), then kube-controller-manager with `options.controllers`, waiting until the `default`
 * ServiceAccount exists (pods can be created). Takes about 3.5 s on two cores.
 * @throws Error when a binary exits or is not ready in time, with the last lines of its stderr, or
 * when the API server refuses a CRD (naming its file); whatever was started is stopped and the
 * folder removed.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-kube-'));
  const running: Running[] = [];
  const stopAll = async () => {
    // Reverse start order: an API server with clients still connected waits for them (up to a
    // minute), and it needs etcd while stopping.
    for (const r of [...running].reverse()) await stopChild(r.child, 5_000);
    await rm(dir, { recursive: true, force: true });
  };
  const start = (name: ControlPlaneBinary, binary: string, args: string[]): Running => {
    // GOGC 50: the API server keeps ~30 MB less, at no startup time measurable here.
    const child = spawnTied(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GOGC: process.env.GOGC ?? '50' } });
    const tail = new OutputTail();
    child.stdout!.on('data', (d: Buffer) => tail.push(d));
    child.stderr!.on('data', (d: Buffer) => tail.push(d));
    const r = { name, child, tail };
    running.push(r);
    return r;
  };
  try {
    const binaries = await resolveBinaries(options.binaries ?? {});
    const token = randomBytes(24).toString('hex');

    const [etcdPort, peerPort, apiPort] = await distinctFreePorts(3);
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcd = start('etcd', binaries.etcd, [
      '--name=default',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      // A throwaway store: durability buys nothing and fsync dominates its latency.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);

    // Service-account token signing keys and the static token file, while etcd starts.
    const saPub = path.join(dir, 'sa.pub');
    const saKey = path.join(dir, 'sa.key');
    const tokenFile = path.join(dir, 'tokens.csv');
    const certDir = path.join(dir, 'pki');
    const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    await mkdir(certDir);
    await Promise.all([
      writeFile(saPub, publicKey, { mode: 0o600 }),
      writeFile(saKey, privateKey, { mode: 0o600 }),
      writeFile(tokenFile, `${token},admin,admin,"system:masters"\n`, { mode: 0o600 }),
    ]);
    await waitUntil(deadline, etcd, 'etcd /health', () => httpOk(`${etcdUrl}/health`));

    const server = `https://127.0.0.1:${apiPort}`;
    const apiserver = start('kube-apiserver', binaries['kube-apiserver'], [
      '--advertise-address=127.0.0.1',
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${certDir}`,
      `--etcd-servers=${etcdUrl}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      // Less work for a single-user throwaway server: no request fairness queues, no profiling
      // endpoints, no periodic endpoint reconciling of the `kubernetes` Service.
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--endpoint-reconciler-type=none',
      '--event-ttl=10m',
      '--v=0',
    ]);
    await waitUntil(deadline, apiserver, 'kube-apiserver /readyz', () => httpOk(`${server}/readyz`, token));

    // The self-signed serving certificate file holds the certificate then its CA.
    const servingChain = await readFile(path.join(certDir, 'apiserver.crt'), 'utf8');
    const certs = servingChain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
    const caPem = certs[certs.length - 1];
    if (!caPem) throw new Error(`no certificate in ${path.join(certDir, 'apiserver.crt')}`);
    const caFile = path.join(certDir, 'ca.crt');
    await writeFile(caFile, caPem);
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, caPem, token), { mode: 0o600 });
    const kubeConfig = () => {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    };
    const kc = kubeConfig();

    // The CRDs go first: the garbage collector and namespace controller discover resource types
    // when they start and only every 30 s after, and owner references to a type they do not know
    // yet would wait for that.
    const crdDir = options.crdDir === undefined ? path.join(repoRoot, 'crds') : options.crdDir;
    if (crdDir) await installCrds(kc, crdDir, deadline, apiserver);

    const controllers = options.controllers ?? CONTROLLERS;
    if (controllers.length > 0) {
      const kcm = start('kube-controller-manager', binaries['kube-controller-manager'], [
        `--kubeconfig=${kubeconfigPath}`,
        `--controllers=${controllers.join(',')}`,
        '--leader-elect=false',
        '--secure-port=0',
        `--service-account-private-key-file=${saKey}`,
        `--root-ca-file=${caFile}`,
        '--kube-api-qps=200',
        '--kube-api-burst=400',
        '--v=0',
      ]);
      // Pods need their namespace's `default` ServiceAccount: its appearance says the controllers run.
      if (controllers.includes('serviceaccount-controller')) {
        await waitUntil(deadline, kcm, 'the default ServiceAccount (kube-controller-manager running)', () =>
          kubeRequest(kc, 'GET', '/api/v1/namespaces/default/serviceaccounts/default').then(
            () => true,
            () => false,
          ),
        );
      }
    }

    return {
      server,
      kubeconfigPath,
      kubeConfig,
      dir,
      token,
      logTail: (name) => running.find((r) => r.name === name)?.tail.text() ?? '',
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** `n` different free ports (freePort twice in a row may hand out the same one). */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Resolves each binary path (given, else scripts/test-binaries.sh --path, one at a time: the two kube binaries share a build folder). */
async function resolveBinaries(given: Partial<Record<ControlPlaneBinary, string>>): Promise<Record<ControlPlaneBinary, string>> {
  const out = {} as Record<ControlPlaneBinary, string>;
  for (const name of ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const) {
    out[name] = given[name] ?? (await testBinary(name));
  }
  return out;
}

/** Path of a pinned test binary, building it on first use (scripts/test-binaries.sh). */
export async function testBinary(name: ControlPlaneBinary): Promise<string> {
  const { stdout } = await promisify(execFile)(path.join(repoRoot, 'scripts/test-binaries.sh'), ['--path', name], { maxBuffer: 4 << 20 });
  return stdout.trim().split('\n').pop()!;
}

/** Applies every CRD of `dir` (create, or replace when present) and waits until each is Established and listed. */
async function installCrds(kc: KubeConfig, dir: string, deadline: number, apiserver: Running): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  const crds: Crd[] = [];
  for (const f of files) {
    // Plain YAML → JSON: client-node's loadAllYaml builds typed models whose JSON drops `default`.
    for (const doc of parseAllDocuments(await readFile(path.join(dir, f), 'utf8')).map((d) => d.toJSON())) {
      if (doc && doc.kind === 'CustomResourceDefinition') crds.push({ ...doc, file: f });
    }
  }
  const base = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  await Promise.all(
    crds.map(async ({ file, ...crd }) => {
      try {
        try {
          await kubeRequest(kc, 'POST', base, crd);
        } catch (err) {
          if (statusCode(err) !== 409) throw err;
          const current = await kubeRequest<{ metadata: { resourceVersion: string } }>(kc, 'GET', `${base}/${crd.metadata.name}`);
          await kubeRequest(kc, 'PUT', `${base}/${crd.metadata.name}`, { ...crd, metadata: { ...crd.metadata, resourceVersion: current.metadata.resourceVersion } });
        }
      } catch (err) {
        throw new Error(`the API server refused CRD ${crd.metadata.name} of ${path.join(dir, file)}: ${err instanceof Error ? err.message : String(err)}`);
      }
      await waitUntil(deadline, apiserver, `CRD ${crd.metadata.name} Established`, async () => {
        const got = await kubeRequest<{ status?: { conditions?: { type: string; status: string }[] } }>(kc, 'GET', `${base}/${crd.metadata.name}`);
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
      });
      // A new resource's watch cache answers 429 "storage is (re)initializing" for a moment: wait
      // it out here, so no informer meets it. (Creates within 2 s of Established still sleep 2 s
      // in the API server, on purpose: kubernetes/kubernetes#99199.)
      const version = crd.spec.versions.find((v) => v.storage)?.name ?? crd.spec.versions[0]?.name;
      await waitUntil(deadline, apiserver, `${crd.metadata.name} served`, () =>
        kubeRequest(kc, 'GET', `/apis/${crd.spec.group}/${version}/${crd.spec.names.plural}`).then(
          () => true,
          () => false,
        ),
      );
    }),
  );
}

/** The parts of a CustomResourceDefinition read here, and the file it came from. */
interface Crd {
  file: string;
  metadata: { name: string; resourceVersion?: string };
  spec: { group: string; names: { plural: string }; versions: { name: string; storage?: boolean }[] };
}

/**
 * Polls `check` every 50 ms until it resolves true.
 * @throws Error when `proc` exits first or the deadline passes, with its stderr's last lines.
 */
async function waitUntil(deadline: number, proc: Running, what: string, check: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${what}:\n${proc.tail.text()}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${proc.name} stderr:\n${proc.tail.text()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True when GET `url` answers 200 (TLS unverified: used before the CA is known). */
function httpOk(url: string, token?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, rejectUnauthorized: false, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** A kubeconfig with one cluster (`server`, trusting `caPem`), one token user and a context joining them. */
function kubeconfigYaml(server: string, caPem: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '  - name: switchyard-test',
    '    cluster:',
    `      server: ${server}`,
    `      certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    '  - name: admin',
    '    user:',
    `      token: ${token}`,
    'contexts:',
    '  - name: switchyard-test',
    '    context:',
    '      cluster: switchyard-test',
    '      user: admin',
    '      namespace: default',
    'current-context: switchyard-test',
    '',
  ].join('\n');
}
