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
 * reconcile may run before the informer shows that write (e.g. queued again by the finalizer or
 * the Deployment it just wrote); comparing against the stale cached status would write again,
 * move lastTransitionTime and post the same Events twice. Only the operator writes these
 * statuses, so the remembered one counts until the cache shows the object as of that write or
 * later (resourceVersions of one resource grow; they are compared as numbers when both are).
 */
export class StatusMemo {
  private readonly written = new Map<string, { resourceVersion: string | undefined; status: Record<string, unknown> }>();

  /** The freshest known status of `key`, given the object the cache holds. */
  current(key: string, live: { metadata: { resourceVersion?: string }; status?: unknown }): Record<string, unknown> {
    const memo = this.written.get(key);
    const cached = (live.status ?? {}) as Record<string, unknown>;
    if (!memo) return cached;
    const seen = live.metadata.resourceVersion;
    const caughtUp = seen === memo.resourceVersion || (isInteger(seen) && isInteger(memo.resourceVersion) && BigInt(seen!) >= BigInt(memo.resourceVersion!));
    if (caughtUp || memo.resourceVersion === undefined) {
      this.written.delete(key);
      return cached;
    }
    return memo.status;
  }

  /** Records that `status` was written, giving the object `resourceVersion`. */
  remember(key: string, resourceVersion: string | undefined, status: Record<string, unknown>): void {
    this.written.set(key, { resourceVersion, status });
  }

  /** Forgets `key` (the object is gone). */
  forget(key: string): void {
    this.written.delete(key);
  }
}

const isInteger = (v: string | undefined): boolean => v !== undefined && /^[0-9]+$/.test(v);
