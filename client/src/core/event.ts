import { uuidv4 } from './uuid.js';

/** The Segment call types (https://segment.com/docs/connections/spec/). */
export type CallType = 'track' | 'page' | 'screen' | 'identify' | 'group' | 'alias';

/** A Segment-spec event as the tracking API takes it. */
export interface SegmentEvent {
  type: CallType;
  messageId: string;
  /** ISO 8601, set when the call is made; never changed by retries. */
  timestamp: string;
  anonymousId?: string;
  userId?: string;
  event?: string;
  name?: string;
  category?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  groupId?: string;
  previousId?: string;
  context?: Record<string, unknown>;
  integrations?: Record<string, unknown>;
  [key: string]: unknown;
}

/** `context.library` of events built by a client. */
export interface Library {
  name: string;
  version: string;
}

/**
 * Completes a call into an event: `type`, a `messageId` (`<prefix><uuid v4>` unless the caller set
 * one), `timestamp` (ISO, from `now`, unless set), and `context.library` (the caller's `context`
 * keys win, except `library`, which always names this client).
 * @param call the call's own fields (event, properties, userId…); not modified.
 */
export function buildEvent(type: CallType, call: Partial<SegmentEvent>, options: { now: Date; library: Library; messageIdPrefix?: string }): SegmentEvent {
  const context = { ...(call.context ?? {}), library: options.library };
  return {
    ...call,
    type,
    messageId: typeof call.messageId === 'string' && call.messageId ? call.messageId : `${options.messageIdPrefix ?? ''}${uuidv4()}`,
    timestamp: call.timestamp ? toIso(call.timestamp) : options.now.toISOString(),
    context,
  };
}

/** A Date or date string as ISO 8601; other values (and invalid Dates, as `Invalid Date`) are kept as text, for the caller or the ingestion to refuse. */
function toIso(value: unknown): string {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.toISOString();
  return String(value);
}
