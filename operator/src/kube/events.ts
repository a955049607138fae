import { PatchStrategy, setHeaderOptions, type CoreV1Api, type CoreV1Event } from '@kubernetes/client-node';
import type { Clock, Logger } from '@switchyard/runtime';

/** The object an Event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

/** Repeats of one Event within this many ms raise its count instead of posting a new one. */
export const AGGREGATE_MS = 10 * 60_000;

/**
 * Posts core/v1 Events (what `kubectl describe` and `kubectl events` show) for notable transitions.
 * The same Event (object, type, reason, message) again within {@link AGGREGATE_MS} raises the
 * count of the one posted before. Posting is best effort: a failure is logged, never fails a
 * reconcile.
 */
export class EventRecorder {
  constructor(
    private readonly core: CoreV1Api,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly component = 'switchyard-operator',
    /** This replica, e.g. its pod name. */
    private readonly instance = process.env.POD_NAME ?? component,
  ) {}

  /** Records `reason` (CamelCase) with `message` on `subject`; `type` Normal or Warning. */
  async record(subject: EventSubject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const namespace = subject.metadata.namespace ?? 'default';
    const now = new Date(this.clock.now());
    const body: CoreV1Event = {
      metadata: { generateName: `${subject.metadata.name}.`, namespace },
      involvedObject: {
        apiVersion: subject.apiVersion,
        kind: subject.kind,
        name: subject.metadata.name,
        namespace,
        ...(subject.metadata.uid ? { uid: subject.metadata.uid } : {}),
        ...(subject.metadata.resourceVersion ? { resourceVersion: subject.metadata.resourceVersion } : {}),
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.component },
      reportingComponent: `switchyard.io/${this.component}`,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const key = `${namespace}/${subject.kind}/${subject.metadata.name}/${subject.metadata.uid}/${type}/${reason}/${body.message}`;
    try {
      const seen = this.recent.get(key);
      if (seen && now.getTime() - seen.at < AGGREGATE_MS) {
        // The same Event again: count it on the existing object, as client-go's recorder does.
        seen.count += 1;
        seen.at = now.getTime();
        try {
          await this.core.patchNamespacedEvent({ name: seen.name, namespace, body: { count: seen.count, lastTimestamp: now.toISOString() } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
          return;
        } catch {
          // Expired or deleted: post a new one.
        }
      }
      const created = await this.core.createNamespacedEvent({ namespace, body });
      this.remember(key, { name: created.metadata!.name!, count: 1, at: now.getTime() });
    } catch (err) {
      this.logger.warn({ err, reason, object: `${namespace}/${subject.metadata.name}` }, 'could not record an Event');
    }
  }

  private readonly recent = new Map<string, { name: string; count: number; at: number }>();

  private remember(key: string, value: { name: string; count: number; at: number }): void {
    this.recent.set(key, value);
    if (this.recent.size > 4096) {
      for (const [k, v] of this.recent) if (value.at - v.at >= AGGREGATE_MS || this.recent.size > 4096) this.recent.delete(k);
    }
  }
}
