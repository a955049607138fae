import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Per-event outcomes counted by `switchyard_deliveries_total`. */
export const DELIVERY_OUTCOMES = ['delivered', 'retried', 'dead_lettered', 'skipped', 'dropped'] as const;
/** One of {@link DELIVERY_OUTCOMES}: the `outcome` label value. */
export type DeliveryOutcomeLabel = (typeof DELIVERY_OUTCOMES)[number];

/** The forwarder's Prometheus metrics; every forwarder of a process shares one set per registry. */
export interface ForwarderMetrics {
  /** `switchyard_deliveries_total{integration,outcome}`: events by outcome (one per event and attempt). */
  deliveries: Counter<'integration' | 'outcome'>;
  /** `switchyard_delivery_attempt_duration_seconds{integration}`: wall time of each destination request. */
  attemptDuration: Histogram<'integration'>;
  /** `switchyard_retries_total{integration}`: events handed back to JetStream for a later attempt. */
  retries: Counter<'integration'>;
  /** `switchyard_dead_letters_total{integration,reason}`: events stored in the dead-letter stream. */
  deadLetters: Counter<'integration' | 'reason'>;
  /** `switchyard_consumer_pending{integration}`: consumer num_pending + num_ack_pending, refreshed periodically. */
  pending: Gauge<'integration'>;
  /** `switchyard_events_not_delivered_total{integration,reason}`: events skipped or dropped on purpose, by reason (event_type, event_name, event_filter, consent_denied, filtered, no_matching_rule). */
  notDelivered: Counter<'integration' | 'reason'>;
  /** `switchyard_throttled_total{integration}`: events the destination throttled, held and sent again after the pause. */
  throttled: Counter<'integration'>;
  /** `switchyard_circuit_open{integration}`: 1 while the circuit breaker is open or half-open (probing), else 0. */
  circuitOpen: Gauge<'integration'>;
}

const byRegistry = new WeakMap<Registry, ForwarderMetrics>();

function getOrCreate<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** The forwarder metrics registered on `registry` (registered on first use). */
export function forwarderMetrics(registry: Registry): ForwarderMetrics {
  let m = byRegistry.get(registry);
  if (m) return m;
  const registers = [registry];
  m = {
    deliveries: getOrCreate(
      registry,
      'switchyard_deliveries_total',
      () => new Counter({ name: 'switchyard_deliveries_total', help: 'Events handled by the forwarder, by outcome (delivered, retried, dead_lettered, skipped, dropped).', labelNames: ['integration', 'outcome'], registers }),
    ),
    attemptDuration: getOrCreate(
      registry,
      'switchyard_delivery_attempt_duration_seconds',
      () =>
        new Histogram({
          name: 'switchyard_delivery_attempt_duration_seconds',
          help: 'Wall time of each destination request, in seconds.',
          labelNames: ['integration'],
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers,
        }),
    ),
    retries: getOrCreate(registry, 'switchyard_retries_total', () => new Counter({ name: 'switchyard_retries_total', help: 'Events scheduled for another delivery attempt.', labelNames: ['integration'], registers })),
    deadLetters: getOrCreate(
      registry,
      'switchyard_dead_letters_total',
      () => new Counter({ name: 'switchyard_dead_letters_total', help: 'Events stored in the dead-letter stream, by reason.', labelNames: ['integration', 'reason'], registers }),
    ),
    pending: getOrCreate(
      registry,
      'switchyard_consumer_pending',
      () => new Gauge({ name: 'switchyard_consumer_pending', help: 'Events waiting for delivery: consumer num_pending + num_ack_pending.', labelNames: ['integration'], registers }),
    ),
    notDelivered: getOrCreate(
      registry,
      'switchyard_events_not_delivered_total',
      () =>
        new Counter({
          name: 'switchyard_events_not_delivered_total',
          help: 'Events skipped by the Integration or dropped by the Mapping on purpose, by reason.',
          labelNames: ['integration', 'reason'],
          registers,
        }),
    ),
    throttled: getOrCreate(
      registry,
      'switchyard_throttled_total',
      () => new Counter({ name: 'switchyard_throttled_total', help: 'Events the destination throttled, held and sent again after the pause.', labelNames: ['integration'], registers }),
    ),
    circuitOpen: getOrCreate(
      registry,
      'switchyard_circuit_open',
      () => new Gauge({ name: 'switchyard_circuit_open', help: "1 while the Integration's circuit breaker is open or probing, else 0.", labelNames: ['integration'], registers }),
    ),
  };
  byRegistry.set(registry, m);
  return m;
}
