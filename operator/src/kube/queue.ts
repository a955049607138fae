/** What a reconcile asks of the queue when it succeeds: come back after this many ms (optional). */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** Settings of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** Delay before the first retry of a failing key, in ms; doubles per consecutive failure. */
  baseDelayMs: number;
  /** Longest retry delay in ms. */
  maxDelayMs: number;
  /**
   * Longest a reconcile may take, in ms: then it counts as failed and the key is retried with
   * backoff, so one hung API call cannot stall a worker (or a shutdown) for good. Default: none.
   */
  timeoutMs?: number;
  /** Called after each handled key, for metrics. */
  onResult?: (key: string, outcome: 'success' | 'error' | 'requeue', durationMs: number) => void;
}

/**
 * A keyed work queue in the manner of client-go's workqueue: a key waits at most once however
 * often it is added, is never handled by two workers at once (an add during its reconcile queues
 * it once more afterwards), failing keys come back with per-key exponential backoff, and delayed
 * adds keep the earliest due time.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<() => void> = [];
  private shuttingDown = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly options: WorkQueueOptions) {}

  /** Keys waiting (not counting delayed or in-progress ones). */
  get depth(): number {
    return this.queue.length;
  }

  /** Queues `key` now (a no-op when it already waits). */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Queues `key` after `delayMs`; an earlier pending due time wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Queues `key` after its backoff delay: baseDelay × 2^failures, capped at maxDelay. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(n, 30));
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the backoff of `key` (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Consecutive failures of `key`. */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Starts `workers` loops that take keys and run `handler`: success forgets the key's backoff
   * (and re-queues it after `requeueAfterMs` when asked), a thrown error re-queues it with backoff.
   * `onError` sees each error.
   */
  start(workers: number, handler: (key: string) => Promise<ReconcileResult | void>, onError: (key: string, error: unknown) => void): void {
    for (let i = 0; i < workers; i++) this.workers.push(this.loop(handler, onError));
  }

  private async loop(handler: (key: string) => Promise<ReconcileResult | void>, onError: (key: string, error: unknown) => void): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      const started = Date.now();
      try {
        const result = await this.withTimeout(key, handler(key));
        this.forget(key);
        if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
        this.options.onResult?.(key, result?.requeueAfterMs !== undefined ? 'requeue' : 'success', Date.now() - started);
      } catch (error) {
        onError(key, error);
        this.addRateLimited(key);
        this.options.onResult?.(key, 'error', Date.now() - started);
      } finally {
        this.done(key);
      }
    }
  }

  private withTimeout<T>(key: string, work: Promise<T>): Promise<T> {
    const ms = this.options.timeoutMs;
    if (!ms) return work;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`reconcile of ${key} took longer than ${ms} ms`)), ms);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  private async next(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.shuttingDown) return undefined;
    const key = this.queue.shift()!;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.push(key);
      this.waiters.shift()?.();
    }
  }

  /** Stops taking keys, drops delayed ones and waits for reconciles in progress to finish. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const wake of this.waiters.splice(0)) wake();
    await Promise.all(this.workers);
    this.workers = [];
  }
}
