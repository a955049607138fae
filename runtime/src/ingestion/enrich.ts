import { createHash, randomUUID } from 'node:crypto';
import type { EventType } from '../api/integration.js';

/** A Segment call as stored in the events stream. Unknown top-level fields are kept. */
export interface SegmentEvent extends Record<string, unknown> {
  type: EventType;
  messageId: string;
  /** When Switchyard received the call (ISO-8601, UTC). */
  receivedAt: string;
  /** When the call happened, corrected for the client's clock skew (ISO-8601, UTC). */
  timestamp: string;
  userId?: string;
  anonymousId?: string;
  context?: Record<string, unknown>;
}

/** What the request adds to each of its calls. */
export interface RequestFacts {
  /** Receive time, milliseconds since the epoch (from the injected clock). */
  receivedAt: number;
  /** Client address of the request (already resolved through trusted proxies). */
  ip?: string | undefined;
  /** Batch-level `sentAt`, `context`, `integrations` (Segment HTTP API batch envelope). */
  batch?: { sentAt?: unknown; context?: unknown; integrations?: unknown } | undefined;
}

/** Prefix of the messageIds Switchyard makes up for calls that carry none. */
export const GENERATED_MESSAGE_ID_PREFIX = 'sy-';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Copies the batch-level `sentAt`, `context` and `integrations` into a call before it is validated:
 * the call's own values win, object fields are merged one level deep (Segment HTTP API: the batch
 * `context` and `integrations` apply to every call of the batch).
 */
export function applyBatchDefaults(event: Record<string, unknown>, batch: RequestFacts['batch']): void {
  if (!batch) return;
  if (event.sentAt === undefined && batch.sentAt !== undefined) event.sentAt = batch.sentAt;
  for (const key of ['context', 'integrations'] as const) {
    const shared = batch[key];
    if (!isObject(shared)) continue;
    const own = event[key];
    if (own === undefined) event[key] = { ...shared };
    else if (isObject(own)) event[key] = { ...shared, ...own };
  }
}

/** IPv4 clients on a dual-stack socket appear as `::ffff:a.b.c.d`; Segment stores the IPv4 form. */
export function normaliseIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * The id part of a made-up messageId: SHA-256 of the call without `sentAt` (which changes on every
 * resend) when it has a client time, else a random UUID.
 */
function madeUpId(event: Record<string, unknown>): string {
  if (typeof event.timestamp !== 'string' && typeof event.originalTimestamp !== 'string') return randomUUID();
  const { sentAt: _sentAt, ...content } = event;
  return createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 32);
}

/**
 * Completes a valid call in place (Segment Spec "Timestamps" and "Common Fields"):
 *
 * - `userId`, `anonymousId`, `groupId`, `previousId` sent as numbers become strings; `null` ids are
 *   removed (they mean "not set").
 * - `messageId`, when absent, is made up: from the call's content when it carries a client time
 *   (`timestamp` or `originalTimestamp`), so a client resending it after a failure is stored once;
 *   a random UUID otherwise, since identical calls without a time may be distinct events.
 * - `receivedAt` is the receive time.
 * - `context.ip` is the client address unless the call carries one.
 * - Clock skew: with a client time (`timestamp`, else `originalTimestamp`) and `sentAt`,
 *   `timestamp = receivedAt − (sentAt − client time)`; `originalTimestamp` keeps the client time.
 *   Without `sentAt` the client time is kept as is; without a client time `timestamp = receivedAt`.
 *   (https://segment.com/docs/connections/spec/common/#timestamps)
 * - `writeKey` (a credential, not event data) is removed.
 *
 * The call must have passed schema validation (date-times parse).
 */
export function enrichEvent(event: Record<string, unknown>, type: EventType, facts: RequestFacts): SegmentEvent {
  delete event.writeKey;
  event.type = type;
  for (const key of ['userId', 'anonymousId', 'groupId', 'previousId'] as const) {
    const value = event[key];
    if (typeof value === 'number') event[key] = String(value);
    else if (value === null || value === '') delete event[key];
  }
  if (typeof event.messageId !== 'string' || event.messageId === '') event.messageId = `${GENERATED_MESSAGE_ID_PREFIX}${madeUpId(event)}`;

  const receivedAt = facts.receivedAt;
  event.receivedAt = new Date(receivedAt).toISOString();

  const ip = normaliseIp(facts.ip);
  if (ip) {
    const context = isObject(event.context) ? event.context : (event.context = {});
    if (context.ip === undefined || context.ip === null || context.ip === '') context.ip = ip;
  }

  const clientTime = typeof event.timestamp === 'string' ? event.timestamp : typeof event.originalTimestamp === 'string' ? event.originalTimestamp : undefined;
  if (clientTime === undefined) {
    event.timestamp = event.receivedAt;
  } else {
    const client = Date.parse(clientTime);
    const sentAt = typeof event.sentAt === 'string' ? Date.parse(event.sentAt) : Number.NaN;
    event.originalTimestamp ??= clientTime;
    event.timestamp = Number.isFinite(sentAt) && Number.isFinite(client) ? new Date(receivedAt - (sentAt - client)).toISOString() : clientTime;
  }
  return event as SegmentEvent;
}
