import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Clock, Logger } from '@switchyard/runtime';
import { isConflict, isNotFound } from './errors.js';

/** Settings of a {@link LeaderElector}; durations in ms. */
export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  leaseName: string;
  /** Unique per replica, e.g. the pod name plus a random suffix. */
  identity: string;
  /** A lease not renewed for this long may be taken over. */
  leaseDurationMs: number;
  /** The leader steps down when it could not renew for this long (< leaseDurationMs). */
  renewDeadlineMs: number;
  /** Interval between acquisition attempts and renewals. */
  retryPeriodMs: number;
  /** Source of the time the Lease rules measure (its renew and expiry times). */
  clock: Clock;
  logger: Logger;
  /** Called on becoming leader; not awaited by renewals; callbacks run one after another. */
  onStartedLeading: () => void | Promise<void>;
  /** Called on losing or giving up the lead, after the previous callback finished. */
  onStoppedLeading: () => void | Promise<void>;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules
 * (k8s.io/client-go/tools/leaderelection): a candidate takes the Lease only when its holder has
 * not renewed it for `leaseDuration`, measured on the candidate's own clock from when it last saw
 * the Lease change (so clock skew between replicas does not matter); updates carry the
 * resourceVersion, so two candidates never both win; the leader steps down when it cannot renew
 * within `renewDeadline`, before anyone else may take over; a graceful stop releases the Lease
 * so a standby takes over at once. The callbacks run one after another, never holding up renewals.
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private observed: { resourceVersion: string; at: number } | undefined;
  private leading = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private tick: Promise<void> = Promise.resolve();

  constructor(private readonly options: LeaderElectorOptions) {
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  /** True while this replica holds the Lease. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts campaigning; callbacks run on each transition. */
  start(): void {
    this.running = true;
    this.schedule(0);
  }

  /** Stops campaigning; a leader steps down (onStoppedLeading) and releases the Lease. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.tick;
    if (this.leading) {
      await this.stepDown();
      await this.release().catch((err: unknown) => this.options.logger.warn({ err }, 'could not release the leader Lease'));
    }
    await this.callbacks;
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tick = this.attempt().finally(() => this.schedule(this.options.retryPeriodMs));
    }, delay);
    this.timer.unref();
  }

  private async attempt(): Promise<void> {
    const now = this.options.clock.now();
    let ok = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A request that hangs (API server unreachable) must not keep a leader acting past its
      // deadline: give up on it in time to step down.
      const budget = this.leading ? Math.max(1, this.options.renewDeadlineMs - (now - this.lastRenew)) : this.options.renewDeadlineMs;
      const timeout = new Promise<boolean>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Lease request took longer than ${budget} ms`)), budget);
      });
      ok = await Promise.race([this.tryAcquireOrRenew(now), timeout]);
    } catch (err) {
      this.options.logger.warn({ err, lease: this.options.leaseName }, 'leader Lease request failed');
    } finally {
      clearTimeout(timer);
    }
    if (!this.running) {
      // Acquired while stopping: give it back so a standby need not wait for it to expire.
      if (ok && !this.leading) await this.release().catch(() => undefined);
      return;
    }
    if (ok) {
      this.lastRenew = now;
      if (!this.leading) {
        this.leading = true;
        this.options.logger.info({ identity: this.options.identity, lease: this.options.leaseName }, 'became leader');
        // Not awaited: renewals must go on while the leader starts (its caches may take long).
        this.notify(this.options.onStartedLeading);
      }
    } else if (this.leading && this.options.clock.now() - this.lastRenew >= this.options.renewDeadlineMs) {
      this.options.logger.error({ identity: this.options.identity }, 'could not renew the leader Lease in time; stepping down');
      this.stepDown();
    } else if (this.leading && this.observedHolderIsOther) {
      this.stepDown();
    }
  }

  private observedHolderIsOther = false;

  /** Runs a callback after the previous one finished, never blocking the renew loop. */
  private notify(callback: () => void | Promise<void>): Promise<void> {
    this.callbacks = this.callbacks.then(callback).catch((err: unknown) => this.options.logger.error({ err }, 'leader election callback failed'));
    return this.callbacks;
  }

  private callbacks: Promise<void> = Promise.resolve();

  private stepDown(): Promise<void> {
    if (!this.leading) return this.callbacks;
    this.leading = false;
    return this.notify(this.options.onStoppedLeading);
  }

  private async tryAcquireOrRenew(now: number): Promise<boolean> {
    const { namespace, leaseName: name, identity } = this.options;
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      const body: V1Lease = {
        metadata: { name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: new V1MicroTime(now), renewTime: new V1MicroTime(now), leaseTransitions: 0 },
      };
      try {
        const created = await this.api.createNamespacedLease({ namespace, body });
        this.observe(created, now);
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    this.observe(lease, now);
    const holder = lease.spec?.holderIdentity ?? '';
    this.observedHolderIsOther = holder !== '' && holder !== identity;
    const heldByOther = this.observedHolderIsOther && now < this.observed!.at + (lease.spec?.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther) return false;
    const spec = { ...lease.spec };
    if (holder !== identity) {
      spec.acquireTime = new V1MicroTime(now);
      spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    spec.holderIdentity = identity;
    spec.leaseDurationSeconds = durationSeconds;
    spec.renewTime = new V1MicroTime(now);
    try {
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec } });
      this.observe(updated, now);
      this.observedHolderIsOther = false;
      return true;
    } catch (err) {
      if (isConflict(err)) return false; // someone else wrote it first
      throw err;
    }
  }

  private observe(lease: V1Lease, now: number): void {
    const rv = lease.metadata?.resourceVersion ?? '';
    if (this.observed?.resourceVersion !== rv) this.observed = { resourceVersion: rv, at: now };
  }

  private async release(): Promise<void> {
    const { namespace, leaseName: name, identity } = this.options;
    const lease = await this.api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== identity) return;
    await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } } });
  }
}
