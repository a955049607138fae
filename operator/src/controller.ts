import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import type { KubeConfig, KubernetesObject, V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { createLogger, createRegistry, integrationConsumerInfo, parseDuration, systemClock, type Clock, type Logger } from '@switchyard/runtime';
import { GROUP, VERSION, type Integration, type Mapping, type Source } from '@switchyard/runtime/api';
import type { Registry } from 'prom-client';
import { Labels, MANAGED_BY } from './conditions.js';
import { kubeClients, PLURALS, type KubeClients } from './kube/client.js';
import { EventRecorder } from './kube/events.js';
import { ResilientInformer, type InformerEvent } from './kube/informer.js';
import { LeaderElector } from './kube/leader.js';
import { WorkQueue } from './kube/queue.js';
import { operatorMetrics, type OperatorMetrics } from './metrics.js';
import { NatsHandle } from './nats.js';
import { StatusMemo, type Live, type ReconcileContext } from './reconcile/context.js';
import { integrationChanged, reconcileIntegration, refreshBacklog } from './reconcile/integration.js';
import { reconcileMapping } from './reconcile/mapping.js';
import { reconcileSources, SOURCES_QUEUE_KEY } from './reconcile/source.js';
import type { OperatorSettings } from './settings.js';

/** Longest time one reconcile may take before it counts as failed (and is retried), in ms. */
export const RECONCILE_TIMEOUT_MS = 60_000;

/** Options of {@link startOperator}. */
export interface OperatorOptions {
  kubeConfig: KubeConfig;
  settings: Readonly<OperatorSettings>;
  /** Default: a pino logger on stdout. */
  logger?: Logger;
  /** Metrics registry. Default: a new one with Node's default metrics. */
  registry?: Registry;
  /** Default: the system clock. */
  clock?: Clock;
  /** Leader-election identity. Default: POD_NAME or the host name, plus a random suffix. */
  identity?: string;
}

/** A running operator. */
export interface Operator {
  readonly registry: Registry;
  readonly metrics: OperatorMetrics;
  /** True while this replica acts: it leads and its caches are filled (always leads without leader election). */
  isLeader(): boolean;
  /** True while this replica holds the Lease, acting or still filling its caches. */
  holdsLease(): boolean;
  /** Resolves the first time this replica acts. */
  ready(): Promise<void>;
  /** Stops acting, releases the Lease and closes connections. Resolves when reconciles in progress are done. */
  stop(): Promise<void>;
}

type Key = { kind: 'Integration' | 'Mapping'; namespace: string; name: string } | { kind: 'Sources' };

function parseKey(key: string): Key {
  if (key === SOURCES_QUEUE_KEY) return { kind: 'Sources' };
  const [kind, namespace, name] = key.split('/') as ['Integration' | 'Mapping', string, string];
  return { kind, namespace, name };
}

const keyOf = (kind: 'Integration' | 'Mapping', o: { metadata: { name: string; namespace?: string } }) => `${kind}/${o.metadata.namespace}/${o.metadata.name}`;

/**
 * Starts the operator. With leader election (the default) it campaigns for the Lease and acts only
 * while holding it: informers for Integrations, Mappings, Sources, Secrets and the Deployments and
 * ConfigMaps it owns feed a keyed work queue; `workers` reconcile at once, never two for one key;
 * failures retry with per-key backoff; everything is queued again every `resyncPeriod`, and the
 * Integrations' backlogs are refreshed every `backlogInterval` (through the same queue, so one
 * resource never has two writers). Losing the Lease stops all of it at once, even a start still
 * filling its caches.
 */
export async function startOperator(options: OperatorOptions): Promise<Operator> {
  const { kubeConfig, settings } = options;
  const logger = options.logger ?? createLogger();
  const clock = options.clock ?? systemClock;
  const registry = options.registry ?? createRegistry();
  const clients = kubeClients(kubeConfig);
  let current: Session | undefined;
  let acting = false;
  let readyResolve!: () => void;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  const metrics = operatorMetrics(registry, () => current?.queue.depth ?? 0);
  const nats = new NatsHandle(settings.nats, settings.streams, logger);

  const lead = () => {
    if (current) return;
    const session = new Session({ clients, settings, logger, clock, metrics, nats });
    current = session;
    session.start().then(
      (started) => {
        if (!started || current !== session) return;
        acting = true;
        metrics.leader.set(1);
        readyResolve();
      },
      (err: unknown) => logger.error({ err }, 'could not start acting'),
    );
  };
  const follow = async () => {
    const session = current;
    current = undefined;
    acting = false;
    metrics.leader.set(0);
    await session?.stop();
  };

  let elector: LeaderElector | undefined;
  const election = settings.leaderElection;
  if (election.enabled) {
    const identity = options.identity ?? `${process.env.POD_NAME ?? os.hostname()}_${randomBytes(4).toString('hex')}`;
    elector = new LeaderElector({
      kubeConfig,
      namespace: election.namespace ?? process.env.POD_NAMESPACE ?? settings.ingestion.namespace,
      leaseName: election.leaseName,
      identity,
      leaseDurationMs: parseDuration(election.leaseDuration),
      renewDeadlineMs: parseDuration(election.renewDeadline),
      retryPeriodMs: parseDuration(election.retryPeriod),
      clock,
      logger,
      onStartedLeading: lead,
      onStoppedLeading: follow,
    });
    elector.start();
  } else {
    lead();
  }

  return {
    registry,
    metrics,
    isLeader: () => acting,
    holdsLease: () => (elector ? elector.isLeader : true),
    ready: () => readyPromise,
    async stop() {
      // Stop acting first (this also ends a start still filling caches), then give up the Lease.
      await follow();
      if (elector) await elector.stop();
      await nats.close();
    },
  };
}

interface SessionDeps {
  clients: KubeClients;
  settings: Readonly<OperatorSettings>;
  logger: Logger;
  clock: Clock;
  metrics: OperatorMetrics;
  nats: NatsHandle;
}

/** One informer per namespace in scope (or one cluster-wide), merged behind one cache. */
class InformerSet<T extends object> {
  readonly all: ResilientInformer<KubernetesObject>[];

  constructor(
    deps: SessionDeps,
    name: string,
    pathOf: (ns?: string) => string,
    list: (ns?: string) => Promise<unknown>,
    onEvent: (e: InformerEvent, o: T) => void,
    labelSelector?: string,
  ) {
    const scopes = deps.settings.namespaces.length ? deps.settings.namespaces : [undefined];
    // Custom resources arrive as plain JSON (string timestamps), hence the loose object type here.
    this.all = scopes.map(
      (ns) =>
        new ResilientInformer<KubernetesObject>({
          name: ns ? `${name}/${ns}` : name,
          kubeConfig: deps.clients.kubeConfig,
          path: pathOf(ns),
          list: () => list(ns) as never,
          ...(labelSelector ? { labelSelector } : {}),
          onEvent: onEvent as (e: InformerEvent, o: KubernetesObject) => void,
          logger: deps.logger,
        }),
    );
  }

  get(name: string, namespace?: string): T | undefined {
    return this.all.map((i) => i.get(name, namespace)).find(Boolean) as T | undefined;
  }

  list(namespace?: string): T[] {
    return this.all.flatMap((i) => i.list(namespace)) as unknown as T[];
  }
}

/** SHA-256 of a Secret's data: enough to tell a change, without keeping the values. */
const dataHash = (s: V1Secret) => createHash('sha256').update(JSON.stringify(Object.entries(s.data ?? {}).sort())).digest('hex');

/**
 * Remembers a version per object key; tells whether an event brings a new one. Adds and deletes
 * always do; an update only when the version changed (status writes of ours do not).
 */
function changeTracker(): (event: InformerEvent, key: string, version: string) => boolean {
  const versions = new Map<string, string>();
  return (event, key, version) => {
    const changed = event !== 'update' || versions.get(key) !== version;
    if (event === 'delete') versions.delete(key);
    else versions.set(key, version);
    return changed;
  };
}

/** What one term as leader runs: informers, queue, workers and timers. */
class Session {
  readonly queue: WorkQueue;
  private readonly informerSets: InformerSet<object>[];
  private readonly ctx: ReconcileContext;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Integration keys that need a full reconcile; a key queued without it only refreshes its backlog. */
  private readonly fullReconcile = new Set<string>();
  private readonly sourceHolders = new Set<string>();
  private stopped = false;
  private starting: Promise<boolean> | undefined;

  constructor(private readonly deps: SessionDeps) {
    const { clients, settings, logger, clock, metrics, nats } = deps;
    this.queue = new WorkQueue({
      baseDelayMs: parseDuration(settings.retry.baseDelay),
      maxDelayMs: parseDuration(settings.retry.maxDelay),
      timeoutMs: RECONCILE_TIMEOUT_MS,
      onResult: (key, outcome, ms) => {
        const kind = parseKey(key).kind;
        metrics.reconciles.inc({ kind, result: outcome });
        metrics.duration.observe({ kind }, ms / 1000);
      },
    });
    const queue = this.queue;
    const reconcile = (key: string) => {
      if (key.startsWith('Integration/')) this.fullReconcile.add(key);
      queue.add(key);
    };
    const customPath = (plural: string) => (ns?: string) => (ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}` : `/apis/${GROUP}/${VERSION}/${plural}`);
    const customList = (plural: string) => (ns?: string) =>
      ns ? clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural }) : clients.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural });
    const managed = `${Labels.managedBy}=${MANAGED_BY}`;
    const enqueueOwner = (_e: InformerEvent, o: { metadata?: KubernetesObject['metadata'] }) => {
      const owner = o.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Integration');
      if (owner) reconcile(`Integration/${o.metadata!.namespace}/${owner.name}`);
    };
    // What an update must change to need a reconcile (status writes of ours do not).
    const identity = (o: { metadata: { generation?: number; uid?: string } }) => `${o.metadata.uid}/${o.metadata.generation}`;

    const seen = new Map<string, Live<Integration>>();
    const integrations = new InformerSet<Live<Integration>>(deps, 'integrations', customPath(PLURALS.Integration), customList(PLURALS.Integration), (e, o) => {
      const key = keyOf('Integration', o);
      const before = seen.get(key);
      if (e === 'delete') seen.delete(key);
      else seen.set(key, o);
      if (e === 'update' && !integrationChanged(before, o)) return;
      reconcile(key);
      // Mapping status counts its users: the old and the new Mapping.
      queue.add(`Mapping/${o.metadata.namespace}/${o.spec.mappingRef.name}`);
      if (before && before.spec.mappingRef.name !== o.spec.mappingRef.name) queue.add(`Mapping/${o.metadata.namespace}/${before.spec.mappingRef.name}`);
    });
    const mappingChanged = changeTracker();
    const mappings = new InformerSet<Live<Mapping>>(deps, 'mappings', customPath(PLURALS.Mapping), customList(PLURALS.Mapping), (e, o) => {
      const key = keyOf('Mapping', o);
      if (!mappingChanged(e, key, identity(o))) return;
      queue.add(key);
      for (const i of integrations.list(o.metadata.namespace)) if (i.spec.mappingRef.name === o.metadata.name) reconcile(keyOf('Integration', i));
    });
    const sourceChanged = changeTracker();
    const sources = new InformerSet<Live<Source>>(deps, 'sources', customPath(PLURALS.Source), customList(PLURALS.Source), (e, o) => {
      if (sourceChanged(e, `${o.metadata.namespace}/${o.metadata.name}`, identity(o))) queue.add(SOURCES_QUEUE_KEY);
    });
    const secretChanged = changeTracker();
    const secrets = new InformerSet<V1Secret>(
      deps,
      'secrets',
      (ns) => (ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets'),
      (ns) => (ns ? clients.core.listNamespacedSecret({ namespace: ns }) : clients.core.listSecretForAllNamespaces()),
      (e, o) => {
        const ns = o.metadata!.namespace!;
        const name = o.metadata!.name!;
        if (!secretChanged(e, `${ns}/${name}`, `${o.metadata!.uid}/${dataHash(o)}`)) return;
        // Our own output, edited or deleted by hand: write it again (a no-op when it is as desired).
        if (ns === settings.ingestion.namespace && name === settings.ingestion.sourcesSecret) return queue.add(SOURCES_QUEUE_KEY);
        enqueueOwner(e, o);
        for (const i of integrations.list(ns)) if (i.spec.credentialsSecretRef?.name === name) reconcile(keyOf('Integration', i));
        if (sources.list(ns).some((s) => s.spec.writeKey.secretKeyRef?.name === name)) queue.add(SOURCES_QUEUE_KEY);
      },
    );
    const deployments = new InformerSet<V1Deployment>(
      deps,
      'deployments',
      (ns) => (ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments'),
      (ns) => (ns ? clients.apps.listNamespacedDeployment({ namespace: ns, labelSelector: managed }) : clients.apps.listDeploymentForAllNamespaces({ labelSelector: managed })),
      enqueueOwner,
      managed,
    );
    const configMaps = new InformerSet<V1ConfigMap>(
      deps,
      'configmaps',
      (ns) => (ns ? `/api/v1/namespaces/${ns}/configmaps` : '/api/v1/configmaps'),
      (ns) => (ns ? clients.core.listNamespacedConfigMap({ namespace: ns, labelSelector: managed }) : clients.core.listConfigMapForAllNamespaces({ labelSelector: managed })),
      enqueueOwner,
      managed,
    );
    this.informerSets = [secrets, mappings, sources, deployments, configMaps, integrations] as InformerSet<object>[];
    this.ctx = {
      clients,
      settings,
      nats,
      recorder: new EventRecorder(clients.core, clock, logger),
      metrics,
      clock,
      logger,
      statusMemo: new StatusMemo(),
      cache: { integrations, mappings, sources, secrets, deployments, configMaps },
    };
  }

  /** Fills the caches, then starts workers and timers; false when stopped meanwhile. */
  start(): Promise<boolean> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<boolean> {
    const { settings, logger } = this.deps;
    const informers = this.informerSets.flatMap((s) => s.all);
    // Caches first, so the first reconciles see every object.
    await Promise.all(informers.map((i) => i.start()));
    if (this.stopped) return false;
    this.queue.add(SOURCES_QUEUE_KEY);
    for (const i of this.ctx.cache.integrations.list()) this.fullReconcile.add(keyOf('Integration', i));
    this.queue.start(settings.workers, (key) => this.handle(key), (key, err) =>
      logger.warn({ key, err: err instanceof Error ? { message: err.message, code: (err as { code?: unknown }).code } : err, failures: this.queue.failuresOf(key) }, 'reconcile failed; retrying with backoff'),
    );
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(parseDuration(settings.resyncPeriod), () => {
      for (const i of this.ctx.cache.integrations.list()) {
        this.fullReconcile.add(keyOf('Integration', i));
        this.queue.add(keyOf('Integration', i));
      }
      for (const m of this.ctx.cache.mappings.list()) this.queue.add(keyOf('Mapping', m));
      this.queue.add(SOURCES_QUEUE_KEY);
    });
    // A backlog refresh is a light pass of the Integration's own key: never beside its reconcile.
    every(parseDuration(settings.backlogInterval), () => {
      for (const i of this.ctx.cache.integrations.list()) if (i.status && !i.metadata.deletionTimestamp) this.queue.add(keyOf('Integration', i));
    });
    for (const i of this.ctx.cache.integrations.list()) this.queue.add(keyOf('Integration', i));
    logger.info({ namespaces: settings.namespaces.length ? settings.namespaces : 'all' }, 'operator acting');
    return true;
  }

  private async handle(key: string): Promise<void> {
    const k = parseKey(key);
    if (k.kind === 'Sources') return void (await reconcileSources(this.ctx, this.sourceHolders));
    if (k.kind === 'Mapping') return void (await reconcileMapping(this.ctx, k.namespace, k.name));
    const full = this.fullReconcile.delete(key);
    const integration = this.ctx.cache.integrations.get(k.name, k.namespace);
    if (!full && integration?.status && !integration.metadata.deletionTimestamp) {
      const info = await integrationConsumerInfo(await this.ctx.nats.jsm(), this.deps.settings.streams, integration as Integration);
      const { missing } = await refreshBacklog(this.ctx, integration, info);
      if (!missing) return;
      this.deps.logger.warn({ integration: key }, 'JetStream consumer missing; reconciling');
    }
    try {
      await reconcileIntegration(this.ctx, k.namespace, k.name);
    } catch (e) {
      this.fullReconcile.add(key); // the retry must be a full reconcile again
      throw e;
    }
  }

  /** Stops informers (ending a start in progress), timers and workers; waits for reconciles in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.informerSets.flatMap((s) => s.all).map((i) => i.stop()));
    await this.starting?.catch(() => undefined);
    await this.queue.shutdown();
  }
}
