import { randomBytes } from 'node:crypto';
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
import { jsonEqual, type Live, type ReconcileContext } from './reconcile/context.js';
import { integrationChanged, reconcileIntegration, refreshBacklog } from './reconcile/integration.js';
import { reconcileMapping } from './reconcile/mapping.js';
import { reconcileSources, SOURCES_KEY } from './reconcile/source.js';
import type { OperatorSettings } from './settings.js';

/** Options of {@link startOperator}. */
export interface OperatorOptions {
  kubeConfig: KubeConfig;
  settings: Readonly<OperatorSettings>;
  logger?: Logger;
  /** Metrics registry. Default: a new one with Node's default metrics. */
  registry?: Registry;
  clock?: Clock;
  /** Leader-election identity. Default: POD_NAME or the host name, plus a random suffix. */
  identity?: string;
}

/** A running operator. */
export interface Operator {
  readonly registry: Registry;
  readonly metrics: OperatorMetrics;
  /** True while this replica leads (always true without leader election). */
  isLeader(): boolean;
  /** Resolves once this replica leads and its caches are filled. */
  ready(): Promise<void>;
  /** Stops acting, releases the Lease and closes connections. Resolves when reconciles in progress are done. */
  stop(): Promise<void>;
}

type Key = { kind: 'Integration' | 'Mapping'; namespace: string; name: string } | { kind: 'Sources' };

function parseKey(key: string): Key {
  if (key === SOURCES_KEY) return { kind: 'Sources' };
  const [kind, namespace, name] = key.split('/') as ['Integration' | 'Mapping', string, string];
  return { kind, namespace, name };
}

const keyOf = (kind: 'Integration' | 'Mapping', o: { metadata: { name: string; namespace?: string } }) => `${kind}/${o.metadata.namespace}/${o.metadata.name}`;

/**
 * Starts the operator. With leader election (the default) it campaigns for the Lease and acts only
 * while holding it: informers for Integrations, Mappings, Sources, Secrets and the Deployments and
 * ConfigMaps it owns feed a keyed work queue; `workers` reconcile at once, never two for one key;
 * failures retry with per-key backoff; everything is queued again every `resyncPeriod`, and the
 * Integrations' backlogs are refreshed every `backlogInterval`. Losing the Lease stops all of it.
 */
export async function startOperator(options: OperatorOptions): Promise<Operator> {
  const { kubeConfig, settings } = options;
  const logger = options.logger ?? createLogger();
  const clock = options.clock ?? systemClock;
  const registry = options.registry ?? createRegistry();
  const clients = kubeClients(kubeConfig);
  let session: Session | undefined;
  let readyResolve!: () => void;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  const metrics = operatorMetrics(registry, () => session?.queue.depth ?? 0);
  const nats = new NatsHandle(settings.nats, settings.streams, logger);
  let transition: Promise<void> = Promise.resolve();

  const lead = () => {
    transition = transition.then(async () => {
      session = await startSession({ clients, settings, logger, clock, metrics, nats });
      metrics.leader.set(1);
      readyResolve();
    });
    return transition;
  };
  const follow = () => {
    transition = transition.then(async () => {
      metrics.leader.set(0);
      const s = session;
      session = undefined;
      await s?.stop();
    });
    return transition;
  };

  let elector: LeaderElector | undefined;
  const le = settings.leaderElection;
  if (le.enabled) {
    const identity = options.identity ?? `${process.env.POD_NAME ?? os.hostname()}_${randomBytes(4).toString('hex')}`;
    elector = new LeaderElector({
      kubeConfig,
      namespace: le.namespace ?? process.env.POD_NAMESPACE ?? settings.ingestion.namespace,
      leaseName: le.leaseName,
      identity,
      leaseDurationMs: parseDuration(le.leaseDuration),
      renewDeadlineMs: parseDuration(le.renewDeadline),
      retryPeriodMs: parseDuration(le.retryPeriod),
      clock,
      logger,
      onStartedLeading: lead,
      onStoppedLeading: follow,
    });
    elector.start();
  } else {
    await lead();
  }

  return {
    registry,
    metrics,
    isLeader: () => session !== undefined,
    ready: () => readyPromise,
    async stop() {
      if (elector) await elector.stop();
      await follow();
      await nats.close();
    },
  };
}

interface Session {
  queue: WorkQueue;
  stop(): Promise<void>;
}

/** What one term as leader runs: informers, queue, workers and timers. */
async function startSession(deps: { clients: KubeClients; settings: Readonly<OperatorSettings>; logger: Logger; clock: Clock; metrics: OperatorMetrics; nats: NatsHandle }): Promise<Session> {
  const { clients, settings, logger, clock, metrics, nats } = deps;
  const queue = new WorkQueue({
    baseDelayMs: parseDuration(settings.retry.baseDelay),
    maxDelayMs: parseDuration(settings.retry.maxDelay),
    onResult: (key, outcome, ms) => {
      const kind = parseKey(key).kind;
      metrics.reconciles.inc({ kind, result: outcome });
      metrics.duration.observe({ kind }, ms / 1000);
    },
  });
  const seen = new Map<string, Live<Integration>>();
  const scopes = settings.namespaces.length ? settings.namespaces : [undefined];

  /** One informer per namespace in scope (or one cluster-wide), merged behind one cache. */
  // Custom resources arrive as plain JSON (string timestamps), hence the loose object type here.
  function informers<T extends object>(name: string, pathOf: (ns?: string) => string, list: (ns?: string) => Promise<unknown>, onEvent: (e: InformerEvent, o: T) => void, labelSelector?: string, scopeList: Array<string | undefined> = scopes) {
    const all = scopeList.map(
      (ns) =>
        new ResilientInformer<KubernetesObject>({
          name: ns ? `${name}/${ns}` : name,
          kubeConfig: clients.kubeConfig,
          path: pathOf(ns),
          list: () => list(ns) as never,
          ...(labelSelector ? { labelSelector } : {}),
          onEvent: onEvent as (e: InformerEvent, o: KubernetesObject) => void,
          logger,
        }),
    );
    return {
      all,
      get: (n: string, ns?: string) => all.map((i) => i.get(n, ns)).find(Boolean) as T | undefined,
      list: (ns?: string) => all.flatMap((i) => i.list(ns)) as unknown as T[],
    };
  }

  const customPath = (plural: string) => (ns?: string) => (ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}` : `/apis/${GROUP}/${VERSION}/${plural}`);
  const customList = (plural: string) => (ns?: string) =>
    (ns ? clients.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural }) : clients.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as Promise<never>;
  const managed = `${Labels.managedBy}=${MANAGED_BY}`;

  const enqueueOwner = (_e: InformerEvent, o: { metadata?: KubernetesObject['metadata'] }) => {
    const owner = o.metadata?.ownerReferences?.find((r) => r.controller && r.kind === 'Integration');
    if (owner) queue.add(`Integration/${o.metadata!.namespace}/${owner.name}`);
  };

  const integrations = informers<Live<Integration>>('integrations', customPath(PLURALS.Integration), customList(PLURALS.Integration), (e, o) => {
    const key = keyOf('Integration', o);
    const before = seen.get(key);
    if (e === 'delete') seen.delete(key);
    else seen.set(key, o);
    if (e === 'update' && !integrationChanged(before, o)) return; // a status write of ours
    queue.add(key);
    // Mapping status counts its users: the old and the new Mapping.
    queue.add(`Mapping/${o.metadata.namespace}/${o.spec.mappingRef.name}`);
    if (before && before.spec.mappingRef.name !== o.spec.mappingRef.name) queue.add(`Mapping/${o.metadata.namespace}/${before.spec.mappingRef.name}`);
  });
  const mappingGenerations = new Map<string, number | undefined>();
  const mappings = informers<Live<Mapping>>('mappings', customPath(PLURALS.Mapping), customList(PLURALS.Mapping), (e, o) => {
    const key = keyOf('Mapping', o);
    const changed = e !== 'update' || mappingGenerations.get(key) !== o.metadata.generation;
    if (e === 'delete') mappingGenerations.delete(key);
    else mappingGenerations.set(key, o.metadata.generation);
    if (!changed) return;
    queue.add(key);
    for (const i of integrations.list(o.metadata.namespace)) if (i.spec.mappingRef.name === o.metadata.name) queue.add(keyOf('Integration', i));
  });
  const sourceGenerations = new Map<string, number | undefined>();
  const sources = informers<Live<Source>>('sources', customPath(PLURALS.Source), customList(PLURALS.Source), (e, o) => {
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    const changed = e !== 'update' || sourceGenerations.get(key) !== o.metadata.generation;
    if (e === 'delete') sourceGenerations.delete(key);
    else sourceGenerations.set(key, o.metadata.generation);
    if (changed) queue.add(SOURCES_KEY);
  });
  const secretVersions = new Map<string, unknown>();
  const secrets = informers<V1Secret>(
    'secrets',
    (ns) => (ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets'),
    (ns) => (ns ? clients.core.listNamespacedSecret({ namespace: ns }) : clients.core.listSecretForAllNamespaces()),
    (e, o) => {
      const ns = o.metadata!.namespace!;
      const name = o.metadata!.name!;
      if (ns === settings.ingestion.namespace && name === settings.ingestion.sourcesSecret) return; // our own output
      const key = `${ns}/${name}`;
      const changed = e !== 'update' || !jsonEqual(secretVersions.get(key), o.data ?? {});
      if (e === 'delete') secretVersions.delete(key);
      else secretVersions.set(key, o.data ?? {});
      if (!changed) return;
      for (const i of integrations.list(ns)) if (i.spec.credentialsSecretRef?.name === name) queue.add(keyOf('Integration', i));
      if (sources.list(ns).some((s) => s.spec.writeKey.secretKeyRef?.name === name)) queue.add(SOURCES_KEY);
    },
  );
  const deployments = informers<V1Deployment>(
    'deployments',
    (ns) => (ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments'),
    (ns) => (ns ? clients.apps.listNamespacedDeployment({ namespace: ns, labelSelector: managed }) : clients.apps.listDeploymentForAllNamespaces({ labelSelector: managed })),
    enqueueOwner,
    managed,
  );
  const configMaps = informers<V1ConfigMap>(
    'configmaps',
    (ns) => (ns ? `/api/v1/namespaces/${ns}/configmaps` : '/api/v1/configmaps'),
    (ns) => (ns ? clients.core.listNamespacedConfigMap({ namespace: ns, labelSelector: managed }) : clients.core.listConfigMapForAllNamespaces({ labelSelector: managed })),
    enqueueOwner,
    managed,
  );

  const ctx: ReconcileContext = {
    clients,
    settings,
    nats,
    recorder: new EventRecorder(clients.core, clock, logger),
    metrics,
    clock,
    logger,
    cache: { integrations, mappings, sources, secrets, deployments, configMaps },
  };

  // Caches first, so the first reconciles see every object.
  const every: ResilientInformer<KubernetesObject>[] = [secrets, mappings, sources, deployments, configMaps, integrations].flatMap((i) => i.all);
  await Promise.all(every.map((i) => i.start()));
  queue.add(SOURCES_KEY);

  const sourceHolders = new Set<string>();
  queue.start(
    settings.workers,
    async (key) => {
      const k = parseKey(key);
      if (k.kind === 'Sources') return reconcileSources(ctx, sourceHolders);
      if (k.kind === 'Mapping') return reconcileMapping(ctx, k.namespace, k.name);
      return reconcileIntegration(ctx, k.namespace, k.name);
    },
    (key, err) => logger.warn({ key, err: err instanceof Error ? { message: err.message, code: (err as { code?: unknown }).code } : err, failures: queue.failuresOf(key) + 1 }, 'reconcile failed; retrying with backoff'),
  );

  const resyncAll = () => {
    for (const i of integrations.list()) queue.add(keyOf('Integration', i));
    for (const m of mappings.list()) queue.add(keyOf('Mapping', m));
    queue.add(SOURCES_KEY);
  };
  const resync = setInterval(resyncAll, parseDuration(settings.resyncPeriod));
  resync.unref();

  let refreshing = false;
  const refresh = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const jsm = await nats.jsm();
      for (const integration of integrations.list()) {
        if (integration.metadata.deletionTimestamp || !integration.status) continue;
        try {
          const info = await integrationConsumerInfo(jsm, settings.streams, integration as Integration);
          const { missing } = await refreshBacklog(ctx, integration, info);
          if (missing) queue.add(keyOf('Integration', integration)); // deleted by hand: re-create
        } catch (err) {
          logger.warn({ err: (err as Error).message, integration: keyOf('Integration', integration) }, 'backlog refresh failed');
        }
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'backlog refresh failed');
    } finally {
      refreshing = false;
    }
  };
  const backlogTimer = setInterval(() => void refresh(), parseDuration(settings.backlogInterval));
  backlogTimer.unref();
  logger.info({ namespaces: settings.namespaces.length ? settings.namespaces : 'all' }, 'operator acting');

  return {
    queue,
    async stop() {
      clearInterval(resync);
      clearInterval(backlogTimer);
      await Promise.all(every.map((i) => i.stop()));
      await queue.shutdown();
    },
  };
}
