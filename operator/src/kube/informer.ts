import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from '@switchyard/runtime';

/** What an informer reports for each object change. */
export type InformerEvent = 'add' | 'update' | 'delete';

/** Settings of a {@link ResilientInformer}. */
export interface ResilientInformerOptions<T extends KubernetesObject> {
  /** Name in logs, e.g. `integrations`. */
  name: string;
  kubeConfig: KubeConfig;
  /** Watch path, e.g. `/apis/switchyard.io/v1alpha1/integrations` or `/api/v1/namespaces/x/secrets`. */
  path: string;
  /** Lists the same collection (client-node calls it before each watch without a resourceVersion). */
  list: ListPromise<T>;
  labelSelector?: string;
  /** Called for every change, after the cache holds it. */
  onEvent: (event: InformerEvent, object: T) => void;
  logger: Logger;
  /** First restart delay after an error, in ms (doubles up to maxDelayMs). Default 500. */
  baseDelayMs?: number;
  /** Longest restart delay in ms. Default 30 000. */
  maxDelayMs?: number;
}

/**
 * A client-node informer (list + watch + cache) that comes back after errors. client-node's
 * informer stops for good when a list or watch fails (API server restart, expired credentials,
 * network), so each error schedules a restart with exponential backoff; a restart resumes the
 * watch from the last resourceVersion, or lists again (reporting what changed meanwhile) when the
 * server no longer has it (410 Gone).
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer: Informer<T> & ObjectCache<T>;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private lastError: unknown;
  private synced = false;

  constructor(private readonly options: ResilientInformerOptions<T>) {
    this.informer = makeInformer(options.kubeConfig, options.path, options.list, options.labelSelector);
    this.informer.on('add', (o) => this.event('add', o));
    this.informer.on('update', (o) => this.event('update', o));
    this.informer.on('delete', (o) => this.event('delete', o));
    this.informer.on('error', (err) => this.failed(err));
  }

  /** True once a list succeeded (the cache is complete). */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** Starts watching; resolves once the first list filled the cache (retrying until it does, or until stop()). */
  async start(): Promise<void> {
    this.stopped = false;
    for (;;) {
      this.lastError = undefined;
      try {
        await this.informer.start();
      } catch (e) {
        this.lastError = e;
      }
      if (this.stopped) return;
      if (this.lastError === undefined) {
        this.synced = true;
        this.failures = 0;
        return;
      }
      clearTimeout(this.timer);
      this.timer = undefined;
      const delay = this.delay();
      // Logged every time: a resource that cannot be listed (CRD missing, RBAC) must be visible.
      this.options.logger.warn({ informer: this.options.name, err: errorText(this.lastError), retryInMs: delay }, 'list failed; retrying');
      await new Promise((r) => setTimeout(r, delay));
      if (this.stopped) return;
    }
  }

  /** Stops watching. The cache keeps its last content. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer.stop();
  }

  /** An object from the cache. */
  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  /** Objects from the cache, optionally of one namespace. */
  list(namespace?: string): ReadonlyArray<T> {
    return this.informer.list(namespace);
  }

  private event(kind: InformerEvent, object: T): void {
    this.failures = 0;
    this.options.onEvent(kind, object);
  }

  private delay(): number {
    const base = this.options.baseDelayMs ?? 500;
    const delay = Math.min(this.options.maxDelayMs ?? 30_000, base * 2 ** Math.min(this.failures, 20));
    this.failures++;
    return delay;
  }

  private failed(err: unknown): void {
    this.lastError = err ?? new Error('watch failed');
    if (this.stopped || !this.synced || this.timer) return;
    const delay = this.delay();
    this.options.logger.warn({ informer: this.options.name, err, retryInMs: delay }, 'watch failed; restarting');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.informer.start().catch((e: unknown) => this.failed(e));
    }, delay);
    this.timer.unref();
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  return code !== undefined ? `HTTP ${String(code)}` : String(err);
}
