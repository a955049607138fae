import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { kubeRequest } from './kube.js';

/** The minimal shape every listed object has. */
export interface ObjectWithMeta {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; uid?: string };
}

/** What changed: `ADDED`, `MODIFIED` or `DELETED` (a relist reports vanished objects as DELETED). */
export type ReflectorEvent = 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * Lists then watches one collection path (e.g. `/api/v1/namespaces/x/pods`), keeping a cache of
 * the objects in their raw JSON shape, and calls `onEvent` for every change. A watch that ends is
 * resumed from the last resourceVersion; one that fails (or expires, 410) is replaced by a fresh
 * list after 200 ms, so a restarted or slow API server only delays events.
 */
export class Reflector<T extends ObjectWithMeta> {
  private readonly objects = new Map<string, T>();
  private resourceVersion = '';
  private stopped = false;
  private abort: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly watch: Watch;

  constructor(
    private readonly kc: KubeConfig,
    /** Collection path, without query. */
    private readonly path: string,
    private readonly onEvent: (type: ReflectorEvent, obj: T) => void,
    /** Called with each error that made it relist (for diagnostics), never thrown. */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.watch = new Watch(kc);
  }

  /** Lists (the returned promise resolves once the first list is cached and reported) then watches. */
  async start(): Promise<void> {
    await this.list();
    void this.startWatch();
  }

  /** Stops watching; no more events are reported. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
  }

  /** The cached object `namespace/name` (or `name` for cluster objects). */
  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  /** Every cached object. */
  items(): T[] {
    return [...this.objects.values()];
  }

  private async list(): Promise<void> {
    const list = await kubeRequest<{ metadata: { resourceVersion: string }; items: T[] }>(this.kc, 'GET', this.path);
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKey(item);
      seen.add(key);
      const old = this.objects.get(key);
      this.objects.set(key, item);
      if (!old) this.onEvent('ADDED', item);
      else if (old.metadata?.resourceVersion !== item.metadata?.resourceVersion) this.onEvent('MODIFIED', item);
    }
    for (const [key, old] of this.objects) {
      if (!seen.has(key)) {
        this.objects.delete(key);
        this.onEvent('DELETED', old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
  }

  private async startWatch(): Promise<void> {
    if (this.stopped) return;
    let expired = false;
    try {
      this.abort = await this.watch.watch(
        this.path,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
        (type: string, obj: T & { code?: number }) => {
          if (this.stopped) return;
          if (type === 'ERROR') {
            expired = true;
            return;
          }
          if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
          if (type === 'BOOKMARK') return;
          const key = objectKey(obj);
          if (type === 'DELETED') this.objects.delete(key);
          else this.objects.set(key, obj);
          this.onEvent(type as ReflectorEvent, obj);
        },
        (err: unknown) => {
          if (this.stopped) return;
          if (err || expired) this.relistSoon(err ?? new Error(`watch of ${this.path} expired`));
          else void this.startWatch();
        },
      );
    } catch (err) {
      this.relistSoon(err);
    }
  }

  private relistSoon(err: unknown): void {
    if (this.stopped) return;
    this.onError(err);
    this.retryTimer = setTimeout(() => {
      this.list().then(
        () => this.startWatch(),
        (e) => this.relistSoon(e),
      );
    }, 200);
  }
}

/** `namespace/name`, or `name` for cluster-scoped objects. */
export function objectKey(obj: ObjectWithMeta): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name}` : `${obj.metadata?.name}`;
}
