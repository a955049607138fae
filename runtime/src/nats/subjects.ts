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
 * Subject of a dead letter replayed to one Integration:
 * `<prefix>.replay.<namespace>.<integration>.<source>.<type>` (names encoded like
 * {@link eventSubject}). It is stored in the events stream, but only that Integration's consumer
 * takes it ({@link integrationReplayFilter}): the other Integrations of the Source already had it.
 */
export function replaySubject(prefix: string, namespace: string, integration: string, source: string, type: EventType): string {
  return `${prefix}.replay.${encodeToken(namespace)}.${encodeToken(integration)}.${encodeToken(source)}.${type}`;
}

/** Consumer filter of every replay to one Integration: `<prefix>.replay.<namespace>.<integration>.>`. */
export function integrationReplayFilter(prefix: string, namespace: string, integration: string): string {
  return `${prefix}.replay.${encodeToken(namespace)}.${encodeToken(integration)}.>`;
}

/** Wildcard subject of every replay (the events stream takes it beside {@link allEventsSubject}). */
export function allReplaysSubject(prefix: string): string {
  return `${prefix}.replay.>`;
}

/** What a subject of the events stream says about the event it carries (see {@link parseDeliverySubject}). */
export interface DeliverySubject {
  namespace: string;
  /** Name of the Source (without namespace). */
  source: string;
  /** Event type token (track, page…), as written; not checked against the known types. */
  type: string;
  /** True for a replayed dead letter ({@link replaySubject}), false for an ingested event ({@link eventSubject}). */
  replay: boolean;
  /** For a replay: the name of the Integration it is replayed to. */
  integration?: string;
}

/**
 * Parses a subject of the events stream, an ingested event's (`<prefix>.events.<ns>.<source>.<type>`)
 * or a replay's (`<prefix>.replay.<ns>.<integration>.<source>.<type>`), decoding the names; undefined
 * for any other subject or a wrong token count.
 */
export function parseDeliverySubject(prefix: string, subject: string): DeliverySubject | undefined {
  const event = parseEventSubject(prefix, subject);
  if (event) return { ...event, replay: false };
  const head = `${prefix}.replay.`;
  if (!subject.startsWith(head)) return undefined;
  const parts = subject.slice(head.length).split('.');
  if (parts.length !== 4 || parts.some((p) => p === '')) return undefined;
  return { namespace: decodeToken(parts[0]!), integration: decodeToken(parts[1]!), source: decodeToken(parts[2]!), type: parts[3]!, replay: true };
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
 * `Nats-Msg-Id` of a replayed dead letter: `replay:<namespace>/<integration>/<dead-letter seq>`.
 * Never an ingestion id ({@link messageDedupId}), so a replay inside the events stream's duplicate
 * window is stored; the same letter replayed twice inside the window is stored once.
 */
export function replayDedupId(namespace: string, integration: string, deadLetterSeq: number): string {
  return `replay:${namespace}/${integration}/${deadLetterSeq}`;
}

/**
 * `Nats-Msg-Id` of an event: source identity + messageId, so one source can never shadow another's
 * events in the duplicate window.
 */
export function messageDedupId(namespace: string, source: string, messageId: string): string {
  return `${namespace}/${source}/${messageId}`;
}
