import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The operator's Prometheus metrics. */
export interface OperatorMetrics {
  /** `switchyard_operator_reconciles_total{kind, result}`; result is success, error or requeue. */
  reconciles: Counter<'kind' | 'result'>;
  /** `switchyard_operator_reconcile_duration_seconds{kind}`. */
  duration: Histogram<'kind'>;
  /** `switchyard_operator_queue_depth`: keys waiting for a worker. */
  queueDepth: Gauge;
  /** `switchyard_operator_leader`: 1 while this replica holds the Lease. */
  leader: Gauge;
  /** `switchyard_operator_status_writes_total{kind}`: status subresource writes. */
  statusWrites: Counter<'kind'>;
}

/**
 * Registers the operator metrics on `registry`; `depth` is read at scrape time.
 */
export function operatorMetrics(registry: Registry, depth: () => number): OperatorMetrics {
  return {
    reconciles: new Counter({ name: 'switchyard_operator_reconciles_total', help: 'Reconciles by resource kind and result (success, error, requeue).', labelNames: ['kind', 'result'], registers: [registry] }),
    duration: new Histogram({
      name: 'switchyard_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took, by resource kind.',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'switchyard_operator_queue_depth',
      help: 'Resources waiting for a reconcile.',
      registers: [registry],
      collect() {
        this.set(depth());
      },
    }),
    leader: new Gauge({ name: 'switchyard_operator_leader', help: '1 while this replica is the leader and acts, else 0.', registers: [registry] }),
    statusWrites: new Counter({ name: 'switchyard_operator_status_writes_total', help: 'Status writes by resource kind.', labelNames: ['kind'], registers: [registry] }),
  };
}
