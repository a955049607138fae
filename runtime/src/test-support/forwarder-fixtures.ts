import { randomBytes } from 'node:crypto';
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { EventType, Integration, IntegrationSpec, Mapping, MappingSpec } from '../api/index.js';
import type { DeadLetter } from '../forward/index.js';
import { eventSubject, messageDedupId } from '../nats/subjects.js';
import type { StreamSettings } from '../settings.js';
import { streamMessages } from './nats.js';

/** A short unique DNS-label-safe suffix, so tests sharing streams never share sources or consumers. */
export const uid = (): string => randomBytes(3).toString('hex');

/** An Integration of namespace `default` delivering `sources` to `url`, with test-friendly delivery settings. */
export function testIntegration(
  name: string,
  options: {
    url: string;
    sources: string[];
    delivery?: Partial<IntegrationSpec['delivery']>;
    events?: Partial<IntegrationSpec['events']>;
    consent?: string[];
    payloadSchema?: object;
    headers?: Record<string, string>;
    method?: 'POST' | 'PUT' | 'PATCH';
    signature?: { secretKey: string; header: string };
    paused?: boolean;
  },
): Integration {
  return {
    apiVersion: 'switchyard.io/v1alpha1',
    kind: 'Integration',
    metadata: { name, namespace: 'default' },
    spec: {
      sourceRefs: options.sources.map((s) => ({ name: s })),
      mappingRef: { name: 'test' },
      destination: { type: 'webhook', webhook: { url: options.url, method: options.method ?? 'POST', headers: options.headers ?? {}, ...(options.payloadSchema ? { payloadSchema: options.payloadSchema } : {}), ...(options.signature ? { signature: options.signature } : {}) } },
      consent: { categories: options.consent ?? [] },
      events: { types: ['track', 'page', 'screen', 'identify', 'group', 'alias'], ...options.events },
      delivery: { batchSize: 1, concurrency: 4, timeout: '2s', retrySchedule: ['200ms', '200ms'], circuitBreaker: { failures: 0, halfOpenAfter: '30s' }, ...options.delivery },
      forwarder: { replicas: 1 },
      paused: options.paused ?? false,
    },
  };
}

/** The Mapping used by forwarder tests: every event → `{event: $name, messageId, type, props}`. */
export function testMapping(spec: MappingSpec = { default: { fields: [{ to: 'event', from: '$name' }, { to: 'messageId', from: 'messageId' }, { to: 'type', from: '$type' }, { to: 'props', from: 'properties' }] } }): Mapping {
  return { apiVersion: 'switchyard.io/v1alpha1', kind: 'Mapping', metadata: { name: 'test', namespace: 'default' }, spec };
}

/** A Segment track event. */
export function trackEvent(messageId: string, event = 'Order Completed', properties: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'track', event, messageId, userId: 'u1', properties, timestamp: '2026-01-01T00:00:00.000Z', receivedAt: '2026-01-01T00:00:00.000Z' };
}

/** Publishes events the way ingestion does: subject per source and type, `Sy-Source` header, dedup id. Resolves with their stream sequences. */
export async function publishEvents(nc: NatsConnection, streams: StreamSettings, source: string, events: Record<string, unknown>[], namespace = 'default', extraHeaders: Record<string, string> = {}): Promise<number[]> {
  const js = jetstream(nc);
  const seqs: number[] = [];
  for (const e of events) {
    const h = headers();
    h.set('Sy-Source', `${namespace}/${source}`);
    for (const [k, v] of Object.entries(extraHeaders)) h.set(k, v);
    const ack = await js.publish(eventSubject(streams.subjectPrefix, namespace, source, e.type as EventType), JSON.stringify(e), {
      headers: h,
      msgID: messageDedupId(namespace, source, String(e.messageId)),
    });
    seqs.push(ack.seq);
  }
  return seqs;
}

/** Every dead letter stored so far, oldest first, with its headers. */
export async function readDeadLetters(jsm: JetStreamManager, streams: StreamSettings): Promise<{ subject: string; msgId: string | undefined; reason: string | undefined; letter: DeadLetter }[]> {
  return (await streamMessages(jsm, streams.deadLetter.name)).map((m) => ({
    subject: m.subject,
    msgId: m.header.get('Nats-Msg-Id') || undefined,
    reason: m.header.get('Sy-Reason') || undefined,
    letter: m.json<DeadLetter>(),
  }));
}
