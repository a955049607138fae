import { Counter, Histogram, type Registry } from 'prom-client';

/** Why events were refused, the `reason` label of `switchyard_ingest_events_rejected_total`. */
export type RejectReason =
  /** The call failed the Segment schema of its type. */
  | 'invalid'
  /** The call was larger than the Source's maxEventBytes. */
  | 'event_too_large'
  /** The request was larger than the Source's maxBatchBytes, or held more events than its rate budget. */
  | 'batch_too_large'
  /** Over the Source's events-per-second budget (429). */
  | 'rate_limited'
  /** JetStream did not acknowledge the request's events (503). */
  | 'unavailable';

/** The metrics of the ingestion API. */
export interface IngestionMetrics {
  received: Counter<'source'>;
  accepted: Counter<'source'>;
  rejected: Counter<'source' | 'reason'>;
  publishDuration: Histogram;
  requests: Counter<'route' | 'status'>;
}

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  // Several apps may share one registry (tests, reloads): a metric is registered once.
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Registers (or reuses) the ingestion metrics on `registry`. */
export function ingestionMetrics(registry: Registry): IngestionMetrics {
  const registers = [registry];
  return {
    received: getOrCreate(registry, 'switchyard_ingest_events_received_total', () =>
      new Counter({ name: 'switchyard_ingest_events_received_total', help: 'Events received in authenticated requests, by Source (namespace/name).', labelNames: ['source'], registers }),
    ),
    accepted: getOrCreate(registry, 'switchyard_ingest_events_accepted_total', () =>
      new Counter({ name: 'switchyard_ingest_events_accepted_total', help: 'Events stored in JetStream and answered as accepted (duplicates included), by Source.', labelNames: ['source'], registers }),
    ),
    rejected: getOrCreate(registry, 'switchyard_ingest_events_rejected_total', () =>
      new Counter({ name: 'switchyard_ingest_events_rejected_total', help: 'Events answered as not accepted, by Source and reason.', labelNames: ['source', 'reason'], registers }),
    ),
    publishDuration: getOrCreate(registry, 'switchyard_ingest_publish_duration_seconds', () =>
      new Histogram({
        name: 'switchyard_ingest_publish_duration_seconds',
        help: 'Time from publishing a request\'s events to JetStream until every acknowledgement arrived, in seconds.',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers,
      }),
    ),
    requests: getOrCreate(registry, 'switchyard_ingest_requests_total', () =>
      new Counter({ name: 'switchyard_ingest_requests_total', help: 'HTTP requests by route and status code.', labelNames: ['route', 'status'], registers }),
    ),
  };
}
