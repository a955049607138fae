import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { Clock, Logger } from '@switchyard/runtime';

/** The object an Event is about. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

/**
 * Posts core/v1 Events (what `kubectl describe` and `kubectl events` show) for notable transitions.
 * Posting is best effort: a failure is logged, never fails a reconcile.
 */
export class EventRecorder {
  constructor(
    private readonly core: CoreV1Api,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly component = 'switchyard-operator',
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
      reportingInstance: this.component,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.core.createNamespacedEvent({ namespace, body });
    } catch (err) {
      this.logger.warn({ err, reason, object: `${namespace}/${subject.metadata.name}` }, 'could not record an Event');
    }
  }
}
