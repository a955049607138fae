import type { EventType } from '../api/index.js';

/**
 * Encodes a Kubernetes name as one NATS subject token. Names are DNS-1123 subdomains, so they may
 * hold dots (which would split the token) but never `_`: `.` → `_` is lossless.
 */
export function encodeToken(name: string): string {
  return name.replaceAll('.', '_');
}

/** Inverse of {@link encodeToken}. */
export function decodeToken(token: string): string {
  return token.replaceAll('_', '.');
}

/**
 * Subject an accepted event is published on: `<prefix>.events.<namespace>.<source>.<type>`, so a
 * consumer filters by namespace, source and type without decoding the payload.
 */
export function eventSubject(prefix: string, namespace: string, source: string, type: EventType): string {
  return `${prefix}.events.${encodeToken(namespace)}.${encodeToken(source)}.${type}`;
}

/** Wildcard subject of every event stream subject. */
export function allEventsSubject(prefix: string): string {
  return `${prefix}.events.>`;
}

/** Consumer filter for one source, and optionally one type. */
export function sourceFilter(prefix: string, namespace: string, source: string, type?: EventType): string {
  return `${prefix}.events.${encodeToken(namespace)}.${encodeToken(source)}.${type ?? '*'}`;
}

/** Parses an event subject back into its parts, or undefined when it is not one. */
export function parseEventSubject(prefix: string, subject: string): { namespace: string; source: string; type: string } | undefined {
  const head = `${prefix}.events.`;
  if (!subject.startsWith(head)) return undefined;
  const parts = subject.slice(head.length).split('.');
  if (parts.length !== 3) return undefined;
  return { namespace: decodeToken(parts[0]!), source: decodeToken(parts[1]!), type: parts[2]! };
}

/**
 * Durable consumer name of an Integration: `<namespace>__<name>`, dots as `_`. Namespaces are DNS
 * labels (no dots) and names never hold `..`, so `__` cannot occur inside either part.
 */
export function consumerName(namespace: string, integration: string): string {
  return `${encodeToken(namespace)}__${encodeToken(integration)}`;
}

/** Subject of an Integration's dead letters: `<prefix>.deadletter.<namespace>.<integration>`. */
export function deadLetterSubject(prefix: string, namespace: string, integration: string): string {
  return `${prefix}.deadletter.${encodeToken(namespace)}.${encodeToken(integration)}`;
}

/** Wildcard subject of every dead letter. */
export function allDeadLettersSubject(prefix: string): string {
  return `${prefix}.deadletter.>`;
}

/**
 * Subject of JetStream's max-deliveries advisory for one consumer
 * (https://docs.nats.io/running-a-nats-service/nats_admin/monitoring/monitoring_jetstream#advisories).
 */
export function maxDeliveriesAdvisorySubject(stream: string, consumer: string): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`;
}

/**
 * `Nats-Msg-Id` of an event: source identity + messageId, so one source can never shadow another's
 * events in the duplicate window.
 */
export function messageDedupId(namespace: string, source: string, messageId: string): string {
  return `${namespace}/${source}/${messageId}`;
}
