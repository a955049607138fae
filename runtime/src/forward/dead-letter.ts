import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { deadLetterSubject } from '../nats/subjects.js';
import type { StreamSettings } from '../settings.js';

/**
 * Why an event was dead-lettered:
 * - `permanent_failure`: the destination refused it with a status a retry cannot fix (4xx but 408/429, 501, 505…);
 * - `retries_exhausted`: it still failed with a retryable error on its last attempt (retrySchedule used up);
 * - `max_deliver_exceeded`: JetStream gave up on it after max_deliver deliveries without an answer
 *   from us (a process that kept dying mid-delivery), reported by a max-deliveries advisory;
 * - `invalid_event`: the stored message is not a JSON object;
 * - `mapping_failed`: the Mapping failed on it (a required field without a value, a strict lookup
 *   miss); the error names the rule and the field;
 * - `invalid_output`: the mapped payload does not satisfy the destination's output schema; the
 *   error names the field, the schema rule and the Mapping rule that wrote it. Never sent;
 * - `stale_event`: the vendor would refuse it for its age (Meta's 7 days, GA4's 72 hours…), judged
 *   on the injected clock. Never sent, so it cannot sink the request of the others.
 * A vendor's refusal of one item of a batch (a Google Ads partial failure row, a Pinterest failed
 * event) is a `permanent_failure` whose error is the vendor's reason; the others are acked.
 */
export type DeadLetterReason = 'permanent_failure' | 'retries_exhausted' | 'max_deliver_exceeded' | 'invalid_event' | 'mapping_failed' | 'invalid_output' | 'stale_event';

/** Body of a dead letter (JSON), stored on `<prefix>.deadletter.<ns>.<integration>` in the dead-letter stream. */
export interface DeadLetter {
  integration: { namespace: string; name: string };
  reason: DeadLetterReason;
  /** HTTP status of the last attempt, when the destination answered. */
  status?: number;
  /** What went wrong: network error, timeout, start of the response body… */
  error?: string;
  /** Deliveries of the event (JetStream delivery count). */
  attempts: number;
  /** ISO-8601 time the event was given up on (injected clock). */
  failedAt: string;
  /** Sequence of the event in the events stream. */
  streamSeq: number;
  /** Subject of the event (`<prefix>.events.<ns>.<source>.<type>`), empty when it was no longer stored. */
  subject: string;
  /** `namespace/name` of the Source (the Sy-Source header), when known. */
  source?: string;
  /** The event as stored (parsed JSON; the raw text when it is not JSON; null when no longer stored). */
  event: unknown;
}

/** `Nats-Msg-Id` of a dead letter: `<consumer>:<streamSeq>`, so the same event is stored once per Integration within the stream's duplicate window. */
export function deadLetterMsgId(consumer: string, streamSeq: number): string {
  return `${consumer}:${streamSeq}`;
}

/** Stores dead letters and waits for JetStream's acknowledgement. */
export class DeadLetterPublisher {
  private readonly js: JetStreamClient;

  constructor(
    nc: NatsConnection,
    private readonly streams: StreamSettings,
    private readonly consumer: string,
    private readonly timeoutMs = 5_000,
  ) {
    this.js = jetstream(nc);
  }

  /**
   * Publishes one dead letter with `Nats-Msg-Id` {@link deadLetterMsgId} and headers `Sy-Reason`,
   * `Sy-Integration`, plus `extraHeaders` (the original event's `Sy-Consent-Missing`, so a replay
   * keeps its Source's consent policy); resolves once the dead-letter stream stored it (or
   * recognised a duplicate).
   * @throws Error when JetStream does not acknowledge in time or refuses it.
   */
  async publish(letter: DeadLetter, extraHeaders: Record<string, string> = {}): Promise<{ seq: number; duplicate: boolean }> {
    const h = headers();
    for (const [k, v] of Object.entries(extraHeaders)) h.set(k, v);
    h.set('Sy-Reason', letter.reason);
    h.set('Sy-Integration', `${letter.integration.namespace}/${letter.integration.name}`);
    const ack = await this.js.publish(deadLetterSubject(this.streams.subjectPrefix, letter.integration.namespace, letter.integration.name), JSON.stringify(letter), {
      msgID: deadLetterMsgId(this.consumer, letter.streamSeq),
      expect: { streamName: this.streams.deadLetter.name },
      headers: h,
      timeout: this.timeoutMs,
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }
}
