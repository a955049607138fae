import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import type { Clock, Logger } from '@switchyard/runtime';
import type { Integration, Mapping, Source } from '@switchyard/runtime/api';
import type { KubeClients } from '../kube/client.js';
import type { EventRecorder } from '../kube/events.js';
import type { OperatorMetrics } from '../metrics.js';
import type { NatsHandle } from '../nats.js';
import type { OperatorSettings } from '../settings.js';

/** Read access to an informer cache. */
export interface Cache<T> {
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): ReadonlyArray<T>;
}

/** Kubernetes object metadata as the API server returns it (more than the resource types declare). */
export interface LiveMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  finalizers?: string[];
}

/** A Switchyard resource as read from the API server. */
export type Live<T extends { metadata: unknown }> = Omit<T, 'metadata'> & { metadata: T['metadata'] & LiveMeta };

/** What every reconciler works with. */
export interface ReconcileContext {
  clients: KubeClients;
  settings: Readonly<OperatorSettings>;
  nats: NatsHandle;
  recorder: EventRecorder;
  metrics: OperatorMetrics;
  clock: Clock;
  logger: Logger;
  statusMemo: StatusMemo;
  cache: {
    integrations: Cache<Live<Integration>>;
    mappings: Cache<Live<Mapping>>;
    sources: Cache<Live<Source>>;
    secrets: Cache<V1Secret>;
    deployments: Cache<V1Deployment>;
    configMaps: Cache<V1ConfigMap>;
  };
}

/** Decoded data of a Secret (base64 `data` plus any `stringData`). */
export function secretData(secret: V1Secret): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
  return out;
}

/** Deep equality of JSON-like values (key order ignored; Dates compared as ISO strings). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    return v;
  });
}

/**
 * The last status each resource was given by this operator, keyed by `Kind/namespace/name`. A
 * reconcile may run before the informer shows that write (e.g. queued again by the Deployment it
 * just applied); comparing against the stale cached status would write again, move
 * lastTransitionTime and post the same Events twice. So while the cache still shows the object
 * the write was based on, the remembered status counts.
 */
export class StatusMemo {
  private readonly written = new Map<string, { basedOn: string | undefined; status: Record<string, unknown> }>();

  /** The freshest known status of `key`, given the object the cache holds. */
  current(key: string, live: { metadata: { resourceVersion?: string }; status?: unknown }): Record<string, unknown> {
    const memo = this.written.get(key);
    if (memo && memo.basedOn === live.metadata.resourceVersion) return memo.status;
    this.written.delete(key);
    return (live.status ?? {}) as Record<string, unknown>;
  }

  /** Records that `status` was written over the object at `basedOn` (its resourceVersion then). */
  remember(key: string, basedOn: string | undefined, status: Record<string, unknown>): void {
    this.written.set(key, { basedOn, status });
  }

  /** Forgets `key` (the object is gone). */
  forget(key: string): void {
    this.written.delete(key);
  }
}
