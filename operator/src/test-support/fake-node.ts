import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig, V1Container, V1EnvVar, V1Pod, V1Probe, V1Volume } from '@kubernetes/client-node';
import { freePort } from '../../../runtime/src/local/nats-server.js';
import { spawnTied, stopChild } from './child.js';
import { kubeRequest, statusCode } from './kube.js';
import {
  configMapBytes,
  expandVars,
  podField,
  rewritePath,
  rewritePort,
  secretBytes,
  selectItems,
  syncFiles,
  type KeyedObject,
  type PathRule,
} from './pod-files.js';
import { objectKey, Reflector } from './reflector.js';

/**
 * How an image's filesystem maps onto a local folder: in the command, args, env values and
 * workingDir of a container running this image, a value starting with `prefix` (e.g. `/app`)
 * is rewritten to start with `root` (e.g. the repository root) instead.
 */
export interface ImageMapping {
  /** Local folder standing for the image's `prefix`. */
  root: string;
  /** Absolute path inside the image, e.g. `/app`. */
  prefix: string;
  /** The image's ENTRYPOINT, used when a container sets no `command` (paths under `prefix` are rewritten too). */
  entrypoint?: string[];
}

/** Options of {@link startFakeNode}. */
export interface FakeNodeOptions {
  /** Credentials for the API server (an admin's: the node binds pods and writes their status). */
  kubeConfig: KubeConfig;
  /** Name of the Node object (default `switchyard-test-node`). */
  nodeName?: string;
  /**
   * Only pods of these namespaces are bound and run (default: every namespace). Test files running
   * in parallel against one control plane each pass their own namespace, so their nodes never
   * touch each other's pods.
   */
  namespaces?: string[];
  /** Image (exactly, or its name without `:tag`/`@digest`) → local folder mapping. */
  images?: Record<string, ImageMapping>;
  /** Extra environment of every process, under the pod's own env (the pod's wins), like an image's ENV. */
  env?: Record<string, string>;
  /** Folder for per-container log files (stdout and stderr, appended across restarts); default: in a temporary folder removed by stop(). */
  logDir?: string;
  /** Cap on a pod's termination grace period, in ms (default 3000). */
  maxGracePeriodMs?: number;
  /** Cap on a readiness probe's initialDelaySeconds, in ms (default 1000); liveness probes keep theirs up to 10 s. */
  maxProbeDelayMs?: number;
  /** Cap on a readiness probe's periodSeconds, in ms (default 200); liveness probes keep theirs up to 10 s. */
  maxProbePeriodMs?: number;
  /** Restart back-off of exited containers, in ms: first delay, doubled up to max (default 200 and 5000). */
  restartBackoffMs?: { initial: number; max: number };
}

/** One container the fake node runs (or ran), for debugging and for finding its ports. */
export interface FakeNodeProcess {
  namespace: string;
  pod: string;
  container: string;
  /** Whether it is an init container. */
  init: boolean;
  /** Pid while running, else undefined. */
  pid: number | undefined;
  /** `running`, `waiting` (not started, or backing off) or `terminated`. */
  state: 'running' | 'waiting' | 'terminated';
  restartCount: number;
  ready: boolean;
  /** Its declared ports and the local ones they became. */
  ports: { name?: string; containerPort: number; localPort: number }[];
  /** Its log file (stdout and stderr). */
  logFile: string;
}

/** A running fake node; see {@link startFakeNode}. */
export interface FakeNode {
  nodeName: string;
  /** Every container of every pod the node runs. */
  processes(): FakeNodeProcess[];
  /**
   * The local port standing for a pod's declared container port (`port` a number, or a port
   * name), or undefined when the pod is not running here or declares no such port.
   */
  localPort(namespace: string, pod: string, port: number | string): number | undefined;
  /** The local folder of a pod's volume, or undefined. */
  volumePath(namespace: string, pod: string, volume: string): string | undefined;
  /** What a container wrote to stdout and stderr so far ('' when nothing or unknown). */
  logs(namespace: string, pod: string, container: string): string;
  /** Problems the node met talking to the API server or running pods, latest last (at most 100). */
  problems(): string[];
  /** Kills every process it started, stops watching and removes its temporary folder. The Node object stays. */
  stop(): Promise<void>;
}

const LOCALHOST = '127.0.0.1';
/** Where the service-account admission mounts the API token, CA and namespace; in-cluster clients read it there. */
const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Starts a fake node: like kwok it plays the kubelet (and the scheduler's binding) against a real
 * API server, but it really runs each container as a local process. It registers a Ready Node,
 * binds unscheduled pods to it, materializes configMap, secret, projected, downwardAPI, emptyDir
 * and hostPath volumes in a per-pod folder (kept up to date when the objects change), rewrites
 * mount paths, image paths and declared ports in command, args and env, starts the processes,
 * probes them, restarts them with back-off and reports pod status like the kubelet; a deleted pod's
 * processes get SIGTERM, then SIGKILL after the (capped) grace period, and the pod is then removed.
 * Pods share the host network: each declared containerPort gets a free local port.
 *
 * Each process gets PATH and HOME of this process, `options.env`, HOSTNAME, KUBERNETES_SERVICE_HOST
 * and _PORT (the API server), then the container's envFrom and env ($(VAR) expanded). A container
 * mounting a volume at /var/run/secrets/kubernetes.io/serviceaccount (the projected service-account
 * token, ca.crt and namespace) also gets KUBECONFIG (unless it sets one): a kubeconfig in the pod
 * folder naming that API server, the volume's CA and token files and the pod's namespace, since a
 * local process cannot see the fixed path in-cluster clients read; clients that try KUBECONFIG
 * before the in-cluster files (client-go, @kubernetes/client-node's loadFromDefault) thus
 * authenticate as the pod's ServiceAccount. Init containers
 * run in order first; restartPolicy is honoured. Not supported (the container then waits with the
 * reason in its status): resourceFieldRef, volume types other than those above. Startup probes are
 * ignored and gRPC probes always fail.
 * @throws Error when the API server refuses the Node or the first lists.
 */
export async function startFakeNode(options: FakeNodeOptions): Promise<FakeNode> {
  const node = new FakeNodeImpl(options);
  await node.start();
  return node;
}

interface Settings {
  maxGraceMs: number;
  maxProbeDelayMs: number;
  maxProbePeriodMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

class FakeNodeImpl implements FakeNode {
  readonly nodeName: string;
  readonly kc: KubeConfig;
  readonly settings: Settings;
  root = '';
  logDir = '';
  private readonly reflectors: Reflector<any>[] = [];
  private podReflectors = new Map<string, Reflector<V1Pod>>();
  readonly runtimes = new Map<string, PodRuntime>();
  private readonly queue = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readySince: string | undefined;
  readonly portsInUse = new Set<number>();
  private readonly problemLog: string[] = [];
  stopped = false;

  constructor(readonly options: FakeNodeOptions) {
    this.nodeName = options.nodeName ?? 'switchyard-test-node';
    this.kc = options.kubeConfig;
    this.settings = {
      maxGraceMs: options.maxGracePeriodMs ?? 3000,
      maxProbeDelayMs: options.maxProbeDelayMs ?? 1000,
      maxProbePeriodMs: options.maxProbePeriodMs ?? 200,
      backoffInitialMs: options.restartBackoffMs?.initial ?? 200,
      backoffMaxMs: options.restartBackoffMs?.max ?? 5000,
    };
  }

  async start(): Promise<void> {
    this.root = await mkdtemp(path.join(os.tmpdir(), 'switchyard-fake-node-'));
    this.logDir = this.options.logDir ?? path.join(this.root, 'logs');
    await mkdir(this.logDir, { recursive: true });
    await this.registerNode();
    this.heartbeat = setInterval(() => void this.registerNode().catch((e) => this.problem(`node heartbeat: ${errText(e)}`)), 10_000);
    this.heartbeat.unref();

    const scopes = this.options.namespaces ?? [undefined];
    const collection = (ns: string | undefined, plural: string) => (ns ? `/api/v1/namespaces/${ns}/${plural}` : `/api/v1/${plural}`);
    for (const ns of scopes) {
      // ConfigMaps and Secrets only say when mounted files must be rewritten; pods are read on sync.
      for (const plural of ['configmaps', 'secrets'] as const) {
        this.reflectors.push(
          new Reflector<KeyedObject>(
            this.kc,
            collection(ns, plural),
            (_type, obj) => this.objectChanged(plural === 'configmaps' ? 'configmap' : 'secret', obj),
            (e) => this.problem(`watch ${plural}: ${errText(e)}`),
          ),
        );
      }
      const pods = new Reflector<V1Pod>(
        this.kc,
        collection(ns, 'pods'),
        (_type, pod) => this.enqueue(objectKey(pod)),
        (e) => this.problem(`watch pods: ${errText(e)}`),
      );
      this.podReflectors.set(ns ?? '', pods);
      this.reflectors.push(pods);
    }
    try {
      await Promise.all(this.reflectors.map((r) => r.start()));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private pod(key: string): V1Pod | undefined {
    const ns = key.split('/')[0]!;
    return (this.podReflectors.get(ns) ?? this.podReflectors.get(''))?.get(key);
  }

  /** Creates the Node when missing and (re)writes its Ready status. */
  private async registerNode(): Promise<void> {
    try {
      await kubeRequest(this.kc, 'POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: this.nodeName,
          labels: { 'kubernetes.io/hostname': this.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': os.arch() === 'arm64' ? 'arm64' : 'amd64', type: 'switchyard-fake-node' },
        },
        spec: {},
      });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
    const now = timestamp();
    this.readySince ??= now;
    const resources = { cpu: '32', memory: '64Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    const condition = (type: string, status: string, reason: string) => ({ type, status, reason, message: 'fake node', lastHeartbeatTime: now, lastTransitionTime: this.readySince });
    await kubeRequest(
      this.kc,
      'PATCH',
      `/api/v1/nodes/${this.nodeName}/status`,
      {
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [
            condition('Ready', 'True', 'KubeletReady'),
            condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
            condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
            condition('PIDPressure', 'False', 'KubeletHasSufficientPID'),
          ],
          addresses: [
            { type: 'InternalIP', address: LOCALHOST },
            { type: 'Hostname', address: this.nodeName },
          ],
          daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
          nodeInfo: {
            machineID: 'fake',
            systemUUID: 'fake',
            bootID: 'fake',
            kernelVersion: os.release(),
            osImage: 'switchyard fake node',
            containerRuntimeVersion: 'fake://0',
            kubeletVersion: 'fake',
            kubeProxyVersion: '',
            operatingSystem: 'linux',
            architecture: os.arch() === 'arm64' ? 'arm64' : 'amd64',
          },
        },
      },
      'application/merge-patch+json',
    );
  }

  /** Runs `sync(key)` now, or once more after the running one (never two at once per pod). */
  enqueue(key: string): void {
    if (this.stopped) return;
    const pending = this.queue.get(key);
    if (pending) {
      pending.again = true;
      return;
    }
    const entry = { again: true, done: Promise.resolve() };
    this.queue.set(key, entry);
    entry.done = (async () => {
      while (entry.again && !this.stopped) {
        entry.again = false;
        try {
          await this.sync(key);
        } catch (err) {
          this.problem(`sync ${key}: ${errText(err)}`);
          this.retry(key, 500);
        }
      }
      this.queue.delete(key);
    })();
  }

  /** Enqueues `key` again after `ms` (one timer per pod). */
  retry(key: string, ms: number): void {
    if (this.stopped || this.retryTimers.has(key)) return;
    const t = setTimeout(() => {
      this.retryTimers.delete(key);
      this.enqueue(key);
    }, ms);
    t.unref();
    this.retryTimers.set(key, t);
  }

  private async sync(key: string): Promise<void> {
    const pod = this.pod(key);
    let rt = this.runtimes.get(key);
    if (rt && (!pod || rt.uid !== pod.metadata?.uid)) {
      // Gone, or replaced by a new pod of the same name: its processes go.
      this.runtimes.delete(key);
      await rt.terminate(0);
      rt = undefined;
    }
    if (!pod) return;
    const nodeName = pod.spec?.nodeName;
    if (!nodeName) {
      if (!pod.metadata?.deletionTimestamp) await this.bind(pod);
      return;
    }
    if (nodeName !== this.nodeName) return;
    if (pod.metadata?.deletionTimestamp) {
      const requested = (pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
      if (rt) {
        await rt.terminate(Math.min(requested, this.settings.maxGraceMs));
        this.runtimes.delete(key);
      }
      await this.deletePod(pod);
      return;
    }
    if (!rt) {
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') return;
      rt = new PodRuntime(this, pod);
      this.runtimes.set(key, rt);
    }
    rt.pod = pod;
    await rt.ensureStarted();
  }

  /** What the scheduler would do: assign the pod to this node (pods/binding). */
  private async bind(pod: V1Pod): Promise<void> {
    const { name, namespace } = pod.metadata!;
    try {
      await kubeRequest(this.kc, 'POST', `/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name, namespace },
        target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName },
      });
    } catch (err) {
      // 409: bound meanwhile; 404: deleted meanwhile. Either way the watch brings the news.
      if (statusCode(err) !== 409 && statusCode(err) !== 404) throw err;
    }
  }

  /** What the kubelet does once a deleted pod's containers are gone: remove it for good. */
  private async deletePod(pod: V1Pod): Promise<void> {
    const { name, namespace, uid } = pod.metadata!;
    try {
      await kubeRequest(this.kc, 'DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid },
      });
    } catch (err) {
      if (statusCode(err) !== 404 && statusCode(err) !== 409) throw err;
    }
  }

  /** A ConfigMap or Secret changed: rewrite the volumes made from it, retry pods that missed it. */
  private objectChanged(kind: 'configmap' | 'secret', obj: KeyedObject): void {
    const ns = obj.metadata?.namespace;
    const name = obj.metadata?.name ?? '';
    for (const rt of this.runtimes.values()) {
      if (rt.namespace !== ns) continue;
      if (rt.waitingForObjects) this.enqueue(rt.key);
      else {
        rt.refreshVolumesOf(kind, name);
        for (const c of [...rt.initContainers, ...rt.containers]) c.retryConfigNow();
      }
    }
  }

  /** A free local port no other pod of this node holds (freePort may hand out one twice). */
  async allocatePort(): Promise<number> {
    for (;;) {
      const port = await freePort();
      if (!this.portsInUse.has(port)) {
        this.portsInUse.add(port);
        return port;
      }
    }
  }

  problem(text: string): void {
    this.problemLog.push(`${new Date().toISOString()} ${text}`);
    if (this.problemLog.length > 100) this.problemLog.shift();
  }

  processes(): FakeNodeProcess[] {
    return [...this.runtimes.values()].flatMap((rt) => rt.processes());
  }

  localPort(namespace: string, pod: string, port: number | string): number | undefined {
    return this.runtimes.get(`${namespace}/${pod}`)?.localPort(port);
  }

  volumePath(namespace: string, pod: string, volume: string): string | undefined {
    return this.runtimes.get(`${namespace}/${pod}`)?.volumes.get(volume)?.dir;
  }

  logs(namespace: string, pod: string, container: string): string {
    try {
      return readFileSync(this.logFile(namespace, pod, container), 'utf8');
    } catch {
      return '';
    }
  }

  logFile(namespace: string, pod: string, container: string): string {
    return path.join(this.logDir, `${namespace}_${pod}_${container}.log`);
  }

  problems(): string[] {
    return [...this.problemLog];
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeat);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    for (const r of this.reflectors) r.stop();
    // A sync in flight may still be adding a pod: let it finish, then stop everything.
    await Promise.all([...this.queue.values()].map((e) => e.done));
    await Promise.all([...this.runtimes.values()].map((rt) => rt.terminate(Math.min(this.settings.maxGraceMs, 1000))));
    this.runtimes.clear();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

/** Where a pod's volume lives locally and which files it holds (for removing stale ones). */
interface VolumeState {
  dir: string;
  files: Set<string>;
  /** ConfigMaps and Secrets it is made of, as `configmap/name` / `secret/name`. */
  sources: Set<string>;
  token?: string;
}

/** The part of a pod status this node writes, in the API's JSON shape. */
type Json = Record<string, unknown>;

/** One pod on the fake node: its folder, ports, volumes and containers. */
class PodRuntime {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly dir: string;
  readonly volumes = new Map<string, VolumeState>();
  /** Declared containerPort → local port (pod-wide: containers of a pod share the network). */
  readonly portMap = new Map<number, number>();
  readonly namedPorts = new Map<string, number>();
  readonly containers: ContainerRuntime[];
  readonly initContainers: ContainerRuntime[];
  setupDone = false;
  /** ConfigMaps and Secrets (`kind/name`) that changed while setup ran. */
  private readonly changedDuringSetup = new Set<string>();
  setupError: string | undefined;
  waitingForObjects = false;
  initialized = false;
  failed = false;
  terminating = false;
  private startedRun = false;
  private readonly startTime = timestamp();
  private readonly conditionTimes = new Map<string, { status: string; time: string }>();
  private statusInFlight = false;
  private statusDirty = false;
  private volumeChain: Promise<void> = Promise.resolve();

  constructor(
    readonly node: FakeNodeImpl,
    public pod: V1Pod,
  ) {
    this.namespace = pod.metadata!.namespace!;
    this.name = pod.metadata!.name!;
    this.key = `${this.namespace}/${this.name}`;
    this.uid = pod.metadata!.uid!;
    this.dir = path.join(node.root, 'pods', `${this.namespace}_${this.name}_${this.uid.slice(0, 8)}`);
    this.initContainers = (pod.spec?.initContainers ?? []).map((c) => new ContainerRuntime(this, c, true));
    this.containers = (pod.spec?.containers ?? []).map((c) => new ContainerRuntime(this, c, false));
  }

  get restartPolicy(): string {
    return this.pod.spec?.restartPolicy ?? 'Always';
  }

  /** Sets the pod up (folder, ports, volumes) and starts its containers, once; retries setup later when it fails. */
  async ensureStarted(): Promise<void> {
    if (this.startedRun || this.terminating || this.node.stopped) return;
    if (!this.setupDone) {
      try {
        this.changedDuringSetup.clear();
        await this.setup();
        this.setupDone = true;
        this.setupError = undefined;
        this.waitingForObjects = false;
        // An object that changed while the volumes were written may have been read before its change.
        for (const ref of this.changedDuringSetup) {
          const [kind, name] = ref.split('/') as ['configmap' | 'secret', string];
          this.refreshVolumesOf(kind, name);
        }
        this.changedDuringSetup.clear();
      } catch (err) {
        this.setupError = errText(err);
        this.waitingForObjects = true;
        this.node.problem(`${this.key}: setup: ${this.setupError}`);
        this.reportStatus();
        this.node.retry(this.key, 1000);
        return;
      }
    }
    this.startedRun = true;
    this.reportStatus();
    void this.run();
  }

  private async setup(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    if (this.portMap.size === 0) {
      for (const c of [...(this.pod.spec?.initContainers ?? []), ...(this.pod.spec?.containers ?? [])]) {
        for (const p of c.ports ?? []) {
          if (!this.portMap.has(p.containerPort)) this.portMap.set(p.containerPort, await this.node.allocatePort());
          if (p.name) this.namedPorts.set(p.name, p.containerPort);
        }
      }
    }
    for (const v of this.pod.spec?.volumes ?? []) await this.materialize(v);
  }

  /** Runs the init containers in order, then starts the regular ones. */
  private async run(): Promise<void> {
    for (const init of this.initContainers) {
      const outcome = await init.run();
      if (outcome !== 'completed') {
        if (outcome === 'failed') this.failed = true;
        this.reportStatus();
        return;
      }
    }
    this.initialized = true;
    this.reportStatus();
    await Promise.all(this.containers.map((c) => c.run()));
    this.reportStatus();
  }

  /** Stops every container (SIGTERM, SIGKILL after `graceMs`) and removes the pod folder. */
  async terminate(graceMs: number): Promise<void> {
    this.terminating = true;
    await Promise.all([...this.initContainers, ...this.containers].map((c) => c.stop(graceMs)));
    await this.volumeChain.catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
    for (const port of this.portMap.values()) this.node.portsInUse.delete(port);
  }

  /** Writes one volume's files (or makes its folder) from the current API objects. */
  private async materialize(v: V1Volume): Promise<void> {
    const dir = path.join(this.dir, 'volumes', v.name);
    const previous = this.volumes.get(v.name);
    const state: VolumeState = previous ?? { dir, files: new Set(), sources: new Set() };
    const files: { path: string; bytes: Buffer; mode?: number }[] = [];
    let defaultMode = 0o644;
    if (v.emptyDir) {
      await mkdir(dir, { recursive: true });
      this.volumes.set(v.name, state);
      return;
    }
    if (v.hostPath) {
      state.dir = v.hostPath.path;
      if (v.hostPath.type === 'DirectoryOrCreate') await mkdir(state.dir, { recursive: true });
      this.volumes.set(v.name, state);
      return;
    }
    if (v.configMap) {
      defaultMode = v.configMap.defaultMode ?? defaultMode;
      files.push(...(await this.objectFiles('configmap', v.configMap.name, v.configMap.items, v.configMap.optional ?? false, state)));
    } else if (v.secret) {
      defaultMode = v.secret.defaultMode ?? defaultMode;
      files.push(...(await this.objectFiles('secret', v.secret.secretName ?? '', v.secret.items, v.secret.optional ?? false, state)));
    } else if (v.downwardAPI) {
      defaultMode = v.downwardAPI.defaultMode ?? defaultMode;
      files.push(...this.downwardFiles(v.downwardAPI.items ?? []));
    } else if (v.projected) {
      defaultMode = v.projected.defaultMode ?? defaultMode;
      for (const src of v.projected.sources ?? []) {
        if (src.configMap) files.push(...(await this.objectFiles('configmap', src.configMap.name, src.configMap.items, src.configMap.optional ?? false, state)));
        else if (src.secret) files.push(...(await this.objectFiles('secret', src.secret.name, src.secret.items, src.secret.optional ?? false, state)));
        else if (src.downwardAPI) files.push(...this.downwardFiles(src.downwardAPI.items ?? []));
        else if (src.serviceAccountToken) {
          state.token ??= await this.requestToken(src.serviceAccountToken.audience, src.serviceAccountToken.expirationSeconds);
          files.push({ path: src.serviceAccountToken.path, bytes: Buffer.from(state.token) });
        } else throw new Error(`volume ${v.name}: projected source ${Object.keys(src).join(',')} is not supported by the fake node`);
      }
    } else {
      const kind = Object.keys(v).filter((k) => k !== 'name');
      throw new Error(`volume ${v.name}: type ${kind.join(',')} is not supported by the fake node`);
    }
    await mkdir(dir, { recursive: true });
    state.files = await syncFiles(dir, files, defaultMode, state.files);
    this.volumes.set(v.name, state);
  }

  /** The files of a configMap or secret volume source (all keys, or `items`), from the current object. */
  private async objectFiles(kind: 'configmap' | 'secret', name: string | undefined, items: { key: string; path: string; mode?: number }[] | undefined, optional: boolean, state: VolumeState) {
    state.sources.add(`${kind}/${name}`);
    const obj = await getObject(this.node.kc, this.namespace, kind === 'configmap' ? 'configmaps' : 'secrets', name ?? '');
    if (!obj) {
      if (optional) return [];
      throw new Error(`${kind} ${this.namespace}/${name} not found`);
    }
    return selectItems(kind === 'configmap' ? configMapBytes(obj) : secretBytes(obj), items, `${kind} ${this.namespace}/${name}`, optional);
  }

  private downwardFiles(items: { path: string; fieldRef?: { fieldPath: string }; mode?: number }[]) {
    return items.map((item) => {
      if (!item.fieldRef) throw new Error(`downwardAPI item ${item.path}: only fieldRef is supported by the fake node`);
      return { path: item.path, bytes: Buffer.from(podField(this.pod, item.fieldRef, this.node.nodeName)), ...(item.mode !== undefined ? { mode: item.mode } : {}) };
    });
  }

  /** A bound service-account token (TokenRequest API), as the kubelet projects one. */
  private async requestToken(audience: string | undefined, expirationSeconds: number | undefined): Promise<string> {
    const sa = this.pod.spec?.serviceAccountName ?? 'default';
    const res = await kubeRequest<{ status: { token: string } }>(this.node.kc, 'POST', `/api/v1/namespaces/${this.namespace}/serviceaccounts/${sa}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        ...(audience ? { audiences: [audience] } : {}),
        expirationSeconds: Math.max(expirationSeconds ?? 3607, 600),
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.name, uid: this.uid },
      },
    });
    return res.status.token;
  }

  /** Rewrites, one at a time, the volumes made from `kind/name` (the kubelet's periodic volume sync). */
  refreshVolumesOf(kind: 'configmap' | 'secret', name: string): void {
    if (!this.setupDone) this.changedDuringSetup.add(`${kind}/${name}`);
    if (!this.setupDone || this.terminating) return;
    const ref = `${kind}/${name}`;
    const specs = (this.pod.spec?.volumes ?? []).filter((v) => this.volumes.get(v.name)?.sources.has(ref));
    if (specs.length === 0) return;
    this.volumeChain = this.volumeChain.then(async () => {
      for (const v of specs) {
        if (this.terminating) return;
        await this.materialize(v).catch((e) => this.node.problem(`${this.key}: refreshing volume ${v.name}: ${errText(e)}`));
      }
    });
  }

  /**
   * For a container mounting a volume at {@link SERVICE_ACCOUNT_DIR}: writes a kubeconfig next to
   * the pod's volumes for the API server `server` with that volume's `ca.crt` and `token` files and
   * the pod's namespace, and resolves to its path; else resolves to undefined.
   */
  async serviceAccountKubeconfig(c: V1Container, server: string): Promise<string | undefined> {
    const mount = (c.volumeMounts ?? []).find((m) => trimSlash(m.mountPath) === SERVICE_ACCOUNT_DIR && !m.subPath);
    const volume = mount && this.volumes.get(mount.name);
    if (!mount || !volume) return undefined;
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'in-cluster', cluster: { server, 'certificate-authority': path.join(volume.dir, 'ca.crt') } }],
      users: [{ name: 'service-account', user: { 'token-file': path.join(volume.dir, 'token') } }],
      contexts: [{ name: 'in-cluster', context: { cluster: 'in-cluster', user: 'service-account', namespace: this.namespace } }],
      'current-context': 'in-cluster',
    };
    const file = path.join(this.dir, `${mount.name}.kubeconfig`);
    // JSON is YAML: every kubeconfig reader takes it.
    await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    return file;
  }

  /** Path rules for a container: its volume mounts (longest first), then its image's prefix. */
  pathRules(c: V1Container): PathRule[] {
    const rules: PathRule[] = [];
    for (const m of c.volumeMounts ?? []) {
      const vol = this.volumes.get(m.name);
      if (!vol) continue;
      rules.push({ from: trimSlash(m.mountPath), to: m.subPath ? path.join(vol.dir, m.subPath) : vol.dir });
    }
    rules.sort((a, b) => b.from.length - a.from.length);
    const image = this.imageMapping(c);
    if (image) rules.push({ from: trimSlash(image.prefix), to: trimSlash(image.root) });
    return rules;
  }

  /** The mapping of the container's image: by the exact reference, else by its name without tag or digest. */
  imageMapping(c: V1Container): ImageMapping | undefined {
    const images = this.node.options.images ?? {};
    const image = c.image ?? '';
    return images[image] ?? images[imageName(image)];
  }

  /** The local port of a declared port (number, numeric string or port name). */
  localPort(port: number | string): number | undefined {
    const declared = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : this.namedPorts.get(port);
    return declared === undefined ? undefined : this.portMap.get(declared);
  }

  /** Its containers, as {@link FakeNode.processes} lists them. */
  processes(): FakeNodeProcess[] {
    return [...this.initContainers, ...this.containers].map((c) => ({
      namespace: this.namespace,
      pod: this.name,
      container: c.spec.name,
      init: c.init,
      pid: c.child?.pid,
      state: c.state,
      restartCount: c.restartCount,
      ready: c.ready,
      ports: (c.spec.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, localPort: this.portMap.get(p.containerPort)! })),
      logFile: this.node.logFile(this.namespace, this.name, c.spec.name),
    }));
  }

  /** Writes the status soon; calls made while a write is in flight are folded into one more write. */
  reportStatus(): void {
    this.statusDirty = true;
    if (this.statusInFlight) return;
    this.statusInFlight = true;
    void (async () => {
      while (this.statusDirty && !this.node.stopped && !this.terminating) {
        this.statusDirty = false;
        try {
          await kubeRequest(this.node.kc, 'PATCH', `/api/v1/namespaces/${this.namespace}/pods/${this.name}/status`, { status: this.status() }, 'application/merge-patch+json');
        } catch (err) {
          if (statusCode(err) === 404) break;
          this.node.problem(`${this.key}: status: ${errText(err)}`);
          this.statusDirty = true;
          await sleep(200);
        }
      }
      this.statusInFlight = false;
    })();
  }

  private condition(type: string, ok: boolean, reason?: string): Json {
    const status = ok ? 'True' : 'False';
    let seen = this.conditionTimes.get(type);
    if (!seen || seen.status !== status) {
      seen = { status, time: timestamp() };
      this.conditionTimes.set(type, seen);
    }
    return { type, status, lastTransitionTime: seen.time, lastProbeTime: null, ...(reason && !ok ? { reason } : {}) };
  }

  private phase(): string {
    if (this.failed) return 'Failed';
    if (!this.setupDone || !this.initialized) return 'Pending';
    const states = this.containers.map((c) => c.state);
    if (this.restartPolicy !== 'Always' && this.containers.every((c) => c.finished)) {
      return this.containers.every((c) => c.lastExitCode === 0) ? 'Succeeded' : 'Failed';
    }
    return this.containers.some((c) => c.everStarted) || states.includes('running') ? 'Running' : 'Pending';
  }

  /** The pod status as the kubelet would report it now. */
  status(): Json {
    const ready = this.initialized && this.containers.every((c) => c.ready);
    return {
      phase: this.phase(),
      hostIP: LOCALHOST,
      hostIPs: [{ ip: LOCALHOST }],
      podIP: LOCALHOST,
      podIPs: [{ ip: LOCALHOST }],
      startTime: this.startTime,
      conditions: [
        this.condition('PodReadyToStartContainers', this.setupDone),
        this.condition('Initialized', this.initialized, 'ContainersNotInitialized'),
        this.condition('Ready', ready, 'ContainersNotReady'),
        this.condition('ContainersReady', ready, 'ContainersNotReady'),
        this.condition('PodScheduled', true),
      ],
      ...(this.initContainers.length ? { initContainerStatuses: this.initContainers.map((c) => c.status()) } : {}),
      containerStatuses: this.containers.map((c) => c.status()),
    };
  }
}

/** What a container process is started with. */
interface ProcessSpec {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

/** One container of a pod: its process, restarts, probes and status. */
class ContainerRuntime {
  child: ChildProcess | undefined;
  state: 'running' | 'waiting' | 'terminated' = 'waiting';
  waiting: { reason: string; message?: string } = { reason: 'ContainerCreating' };
  startedAt = '';
  lastTerminated: Json | undefined;
  lastExitCode: number | undefined;
  restartCount = 0;
  ready = false;
  everStarted = false;
  finished = false;
  private stopping = false;
  private wake: (() => void) | undefined;
  private runDone: Promise<unknown> = Promise.resolve();
  private processSpec: ProcessSpec | undefined;

  constructor(
    readonly pod: PodRuntime,
    readonly spec: V1Container,
    readonly init: boolean,
  ) {}

  /**
   * Runs the container until it is done: `completed` (exit 0 and no restart due), `failed`
   * (exit ≠ 0 and no restart due) or `stopped` (pod terminating). With restartPolicy Always a
   * regular container is restarted after every exit, with back-off.
   */
  run(): Promise<'completed' | 'failed' | 'stopped'> {
    const done = this.loop();
    this.runDone = done;
    return done;
  }

  private async loop(): Promise<'completed' | 'failed' | 'stopped'> {
    const settings = this.pod.node.settings;
    let backoff = settings.backoffInitialMs;
    // Init containers of an Always pod are retried on failure only, as the kubelet does.
    const policy = this.init && this.pod.restartPolicy === 'Always' ? 'OnFailure' : this.pod.restartPolicy;
    for (;;) {
      if (this.stopping) return 'stopped';
      try {
        this.processSpec = await this.resolveProcess();
      } catch (err) {
        this.setWaiting('CreateContainerConfigError', errText(err));
        await this.pause(1000);
        continue;
      }
      // Stopped while the env was being read: nothing may start any more.
      if (this.stopping) return 'stopped';
      const started = Date.now();
      const exit = await this.startProcess(this.processSpec);
      if (this.stopping) return 'stopped';
      const ok = exit.code === 0;
      const restart = policy === 'Always' || (policy === 'OnFailure' && !ok);
      if (!restart) {
        this.finished = true;
        this.pod.reportStatus();
        return ok ? 'completed' : 'failed';
      }
      // A container that ran a while starts over from the first delay, as with the kubelet.
      if (Date.now() - started > 10_000) backoff = settings.backoffInitialMs;
      this.setWaiting('CrashLoopBackOff', `back-off ${backoff}ms restarting failed container ${this.spec.name}`);
      await this.pause(backoff);
      backoff = Math.min(backoff * 2, settings.backoffMaxMs);
      if (this.stopping) return 'stopped';
      this.restartCount++;
    }
  }

  private setWaiting(reason: string, message?: string): void {
    this.state = 'waiting';
    this.ready = false;
    this.waiting = { reason, ...(message ? { message } : {}) };
    this.pod.reportStatus();
  }

  /** Waits `ms`, or less when stop() wakes it. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Starts the process, probes it while it runs and resolves when it has exited. */
  private startProcess(spec: ProcessSpec): Promise<{ code: number }> {
    const logFile = this.pod.node.logFile(this.pod.namespace, this.pod.name, this.spec.name);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      // Its own process group, so a shell's children are signalled along with it.
      child = spawnTied(spec.command, spec.args, { cwd: spec.cwd, env: spec.env, stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.state = 'running';
    this.everStarted = true;
    this.startedAt = timestamp();
    const probes = new Probes(this, child);
    this.ready = !this.init && !this.spec.readinessProbe;
    this.pod.reportStatus();
    probes.start();
    return new Promise((resolve) => {
      let settled = false;
      const finish = (code: number, signal: string | null, message?: string) => {
        if (settled) return;
        settled = true;
        probes.stop();
        this.child = undefined;
        this.ready = this.init && code === 0;
        this.lastExitCode = code;
        this.lastTerminated = {
          exitCode: code,
          ...(signal ? { signal: signalNumber(signal) } : {}),
          reason: code === 0 ? 'Completed' : 'Error',
          ...(message ? { message } : {}),
          startedAt: this.startedAt,
          finishedAt: timestamp(),
          containerID: `fake://${child.pid ?? 0}`,
        };
        this.state = 'terminated';
        this.pod.reportStatus();
        resolve({ code });
      };
      child.once('error', (err) => finish(128, null, err.message));
      child.once('exit', (code, signal) => finish(code ?? 128 + signalNumber(signal ?? 'SIGKILL'), signal));
    });
  }

  /** Ends the pause after a failed env lookup (CreateContainerConfigError) now: an object it may need changed. */
  retryConfigNow(): void {
    if (this.state === 'waiting' && this.waiting.reason === 'CreateContainerConfigError') this.wake?.();
  }

  /** Kills the running process for a restart (failed liveness probe). */
  async kill(): Promise<void> {
    if (this.child) await stopChild(this.child, this.graceMs(), { group: true });
  }

  private graceMs(): number {
    return Math.min((this.pod.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000, this.pod.node.settings.maxGraceMs);
  }

  /** Stops for good: no restart; SIGTERM to its process group, SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (this.child) await stopChild(this.child, graceMs, { group: true });
    await this.runDone.catch(() => undefined);
  }

  /** Command, args, env and working folder with $(VAR) expanded and paths and ports rewritten. */
  async resolveProcess(): Promise<ProcessSpec> {
    const c = this.spec;
    const pod = this.pod;
    const rules = pod.pathRules(c);
    const rewrite = (s: string) => rewritePort(rewritePath(s, rules), pod.portMap);
    const server = new URL(pod.node.kc.getCurrentCluster()?.server ?? 'https://127.0.0.1:443');
    // The environment the kubelet gives before the pod's own: service discovery of the API server.
    const base: Record<string, string> = {
      HOSTNAME: pod.pod.spec?.hostname ?? pod.name,
      KUBERNETES_SERVICE_HOST: server.hostname,
      KUBERNETES_SERVICE_PORT: server.port || '443',
      KUBERNETES_SERVICE_PORT_HTTPS: server.port || '443',
    };
    const kubeconfig = await pod.serviceAccountKubeconfig(c, server.origin);
    if (kubeconfig) base.KUBECONFIG = kubeconfig;
    // Values as the pod declares them ($(VAR) sees these), then rewritten for the local machine.
    const declared: Record<string, string> = { ...base };
    for (const from of c.envFrom ?? []) {
      const prefix = from.prefix ?? '';
      if (from.configMapRef) {
        const cm = await getObject(pod.node.kc, pod.namespace, 'configmaps', from.configMapRef.name ?? '');
        if (!cm) {
          if (from.configMapRef.optional) continue;
          throw new Error(`configmap ${pod.namespace}/${from.configMapRef.name} not found`);
        }
        for (const [k, v] of Object.entries(cm.data ?? {})) declared[prefix + k] = v;
      } else if (from.secretRef) {
        const secret = await getObject(pod.node.kc, pod.namespace, 'secrets', from.secretRef.name ?? '');
        if (!secret) {
          if (from.secretRef.optional) continue;
          throw new Error(`secret ${pod.namespace}/${from.secretRef.name} not found`);
        }
        for (const [k, v] of secretBytes(secret)) declared[prefix + k] = v.toString('utf8');
      }
    }
    for (const e of c.env ?? []) {
      const value = await this.envValue(e, (name) => declared[name]);
      if (value !== undefined) declared[e.name] = value;
    }
    const lookup = (name: string) => declared[name];
    const env: Record<string, string> = {
      ...(process.env.PATH ? { PATH: process.env.PATH } : {}),
      ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
      ...pod.node.options.env,
    };
    for (const [k, v] of Object.entries(declared)) env[k] = k in base ? v : rewrite(v);
    const image = pod.imageMapping(c);
    const argv = [...(c.command ?? image?.entrypoint ?? []), ...(c.args ?? [])].map((s) => rewrite(expandVars(s, lookup)));
    if (argv.length === 0) throw new Error(`container ${c.name} has no command, and no entrypoint is mapped for image ${c.image}`);
    const cwd = c.workingDir ? rewritePath(c.workingDir, rules) : (image?.root ?? pod.dir);
    return { command: argv[0]!, args: argv.slice(1), env, cwd };
  }

  private async envValue(e: V1EnvVar, lookup: (name: string) => string | undefined): Promise<string | undefined> {
    if (!e.valueFrom) return expandVars(e.value ?? '', lookup);
    const pod = this.pod;
    const from = e.valueFrom;
    if (from.fieldRef) return podField(pod.pod, from.fieldRef, pod.node.nodeName);
    if (from.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const cm = await getObject(pod.node.kc, pod.namespace, 'configmaps', ref.name ?? '');
      const value = cm ? configMapBytes(cm).get(ref.key)?.toString('utf8') : undefined;
      if (value === undefined && !ref.optional) throw new Error(`env ${e.name}: key ${ref.key} of configmap ${pod.namespace}/${ref.name} not found`);
      return value;
    }
    if (from.secretKeyRef) {
      const ref = from.secretKeyRef;
      const secret = await getObject(pod.node.kc, pod.namespace, 'secrets', ref.name ?? '');
      const value = secret ? secretBytes(secret).get(ref.key)?.toString('utf8') : undefined;
      if (value === undefined && !ref.optional) throw new Error(`env ${e.name}: key ${ref.key} of secret ${pod.namespace}/${ref.name} not found`);
      return value;
    }
    throw new Error(`env ${e.name}: valueFrom ${Object.keys(from).join(',')} is not supported by the fake node`);
  }

  /** Runs an exec probe's command like the container's (same env, paths rewritten); true on exit 0. */
  execProbe(command: string[], timeoutMs: number): Promise<boolean> {
    const spec = this.processSpec;
    if (!spec || command.length === 0) return Promise.resolve(false);
    const rules = this.pod.pathRules(this.spec);
    const argv = command.map((s) => rewritePort(rewritePath(s, rules), this.pod.portMap));
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: spec.cwd, env: spec.env, stdio: 'ignore', timeout: timeoutMs });
      child.once('error', () => resolve(false));
      child.once('exit', (code) => resolve(code === 0));
    });
  }

  status(): Json {
    const containerID = this.child?.pid ? `fake://${this.child.pid}` : undefined;
    const state =
      this.state === 'running'
        ? { running: { startedAt: this.startedAt } }
        : this.state === 'terminated' && this.lastTerminated
          ? { terminated: this.lastTerminated }
          : { waiting: !this.pod.setupDone && this.pod.setupError ? { reason: 'ContainerCreating', message: this.pod.setupError } : this.waiting };
    const lastState = this.state !== 'terminated' && this.lastTerminated ? { terminated: this.lastTerminated } : {};
    return {
      name: this.spec.name,
      image: this.spec.image ?? '',
      imageID: `fake://${this.spec.image ?? ''}`,
      ...(containerID ? { containerID } : this.lastTerminated ? { containerID: this.lastTerminated.containerID } : {}),
      ready: this.ready,
      started: this.state === 'running',
      restartCount: this.restartCount,
      state,
      lastState,
    };
  }
}

/** Longest initial delay and period of a liveness probe here, in ms. */
const LIVENESS_CAP_MS = 10_000;

/** The readiness and liveness probes of one run of a container. */
class Probes {
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly c: ContainerRuntime,
    private readonly child: ChildProcess,
  ) {}

  start(): void {
    const { readinessProbe, livenessProbe } = this.c.spec;
    if (readinessProbe && !this.c.init) {
      this.loop(readinessProbe, (ok) => {
        if (this.c.ready !== ok) {
          this.c.ready = ok;
          this.c.pod.reportStatus();
        }
      });
    }
    if (livenessProbe && !this.c.init) {
      // Liveness keeps its real timings (capped at 10 s each): shortened, it would kill a process
      // that is still starting, which the kubelet would not.
      this.loop(livenessProbe, (ok) => {
        if (!ok && this.c.child === this.child) void this.c.kill();
      }, LIVENESS_CAP_MS);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  /** Probes after the (capped) initial delay then every (capped) period; `onResult` gets each threshold crossing. */
  private loop(probe: V1Probe, onResult: (ok: boolean) => void, capMs?: number): void {
    const s = this.c.pod.node.settings;
    const delay = Math.min((probe.initialDelaySeconds ?? 0) * 1000, capMs ?? s.maxProbeDelayMs);
    const period = Math.min((probe.periodSeconds ?? 10) * 1000, capMs ?? s.maxProbePeriodMs);
    const timeoutMs = Math.min((probe.timeoutSeconds ?? 1) * 1000, 5000);
    const failureThreshold = probe.failureThreshold ?? 3;
    const successThreshold = probe.successThreshold ?? 1;
    let successes = 0;
    let failures = 0;
    const tick = async () => {
      if (this.stopped) return;
      const ok = await this.once(probe, timeoutMs).catch(() => false);
      if (this.stopped) return;
      if (ok) {
        failures = 0;
        if (++successes >= successThreshold) onResult(true);
      } else {
        successes = 0;
        if (++failures >= failureThreshold) onResult(false);
      }
      this.schedule(tick, period);
    };
    this.schedule(tick, delay);
  }

  private schedule(fn: () => Promise<void>, ms: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn();
    }, ms);
    this.timers.add(t);
  }

  private once(probe: V1Probe, timeoutMs: number): Promise<boolean> {
    const pod = this.c.pod;
    if (probe.httpGet) {
      const g = probe.httpGet;
      const port = pod.localPort(g.port) ?? (typeof g.port === 'number' ? g.port : undefined);
      if (port === undefined) return Promise.resolve(false);
      const mod = g.scheme === 'HTTPS' ? https : http;
      return new Promise((resolve) => {
        const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
        const req = mod.get({ host: g.host || LOCALHOST, port, path: g.path ?? '/', headers, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
      });
    }
    if (probe.tcpSocket) {
      const t = probe.tcpSocket;
      const port = pod.localPort(t.port) ?? (typeof t.port === 'number' ? t.port : undefined);
      if (port === undefined) return Promise.resolve(false);
      return new Promise((resolve) => {
        const sock = net.connect({ host: t.host || LOCALHOST, port, timeout: timeoutMs }, () => {
          sock.destroy();
          resolve(true);
        });
        sock.on('timeout', () => sock.destroy());
        sock.on('error', () => resolve(false));
        sock.on('close', () => resolve(false));
      });
    }
    if (probe.exec) return this.c.execProbe(probe.exec.command ?? [], timeoutMs);
    // gRPC probes are not run: counted as failing, so the pod never turns Ready unnoticed.
    return Promise.resolve(false);
  }
}

/** GET a ConfigMap or Secret; undefined when it does not exist. */
async function getObject(kc: KubeConfig, namespace: string, plural: 'configmaps' | 'secrets', name: string): Promise<KeyedObject | undefined> {
  try {
    return await kubeRequest<KeyedObject>(kc, 'GET', `/api/v1/namespaces/${namespace}/${plural}/${name}`);
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

/** The image reference without its tag or digest: `reg:5000/app:1.0` → `reg:5000/app`. */
function imageName(image: string): string {
  const at = image.indexOf('@');
  const noDigest = at === -1 ? image : image.slice(0, at);
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** RFC 3339 in whole seconds, as Kubernetes writes timestamps. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function signalNumber(signal: string): number {
  return os.constants.signals[signal as keyof typeof os.constants.signals] ?? 9;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
