import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { ErrorCodes, SwitchyardError } from '../errors.js';

/** One message to store in a stream. */
export interface OutgoingMessage {
  subject: string;
  data: Uint8Array;
  /** `Nats-Msg-Id`: JetStream stores a repeated id once within the stream's duplicate window. */
  msgId: string;
  /** Extra headers stored with the message. */
  headers?: Record<string, string>;
}

/** What JetStream answered for one message. */
export type PublishOutcome =
  | { ok: true; seq: number; duplicate: boolean }
  | { ok: false; error: string };

interface PendingBatch {
  outcomes: (PublishOutcome | undefined)[];
  remaining: number;
  done: () => void;
}

/** Settings of a {@link BatchPublisher}. */
export interface BatchPublisherOptions {
  /** Stream that must store the messages (`Nats-Expected-Stream`); a publish landing elsewhere fails. */
  stream: string;
  /** Milliseconds to wait for all acknowledgements of one attempt. Default 5000. */
  ackTimeoutMs?: number;
  /** Attempts for messages that got no acknowledgement (same Nats-Msg-Id, so never stored twice). Default 3. */
  attempts?: number;
}

/**
 * Stores batches of messages in JetStream with one promise per batch, not per message: every
 * message is core-published with a reply subject under one shared inbox subscription, and the
 * batch settles when every PubAck has arrived. This is how nats.go's PublishAsync works; it lifts
 * the ceiling that one awaited `js.publish` per message puts on throughput.
 *
 * A message is reported ok only after JetStream acknowledged storing it (or recognised it as a
 * duplicate of a stored one). Messages without an answer are re-published with the same
 * `Nats-Msg-Id` up to `attempts` times.
 */
export class BatchPublisher {
  private readonly prefix: string;
  private readonly sub: Subscription;
  private readonly waiting = new Map<string, { batch: PendingBatch; index: number }>();
  private counter = 0;
  private readonly ackTimeoutMs: number;
  private readonly attempts: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: BatchPublisherOptions,
  ) {
    this.ackTimeoutMs = options.ackTimeoutMs ?? 5000;
    this.attempts = options.attempts ?? 3;
    this.prefix = createInbox();
    this.sub = nc.subscribe(`${this.prefix}.*`, { callback: (err, msg) => (err ? undefined : this.onReply(msg)) });
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length + 1);
    const entry = this.waiting.get(token);
    if (!entry) return; // late answer of an attempt that timed out
    this.waiting.delete(token);
    const { batch, index } = entry;
    let outcome: PublishOutcome;
    if (msg.headers?.hasError && msg.headers.code === 503) {
      outcome = { ok: false, error: 'no stream stores this subject (no responders)' };
    } else {
      try {
        const ack = JSON.parse(new TextDecoder().decode(msg.data)) as { seq?: number; duplicate?: boolean; error?: { description?: string; err_code?: number } };
        outcome = ack.error
          ? { ok: false, error: `${ack.error.description ?? 'JetStream error'} (${ack.error.err_code ?? '?'})` }
          : { ok: true, seq: ack.seq ?? 0, duplicate: ack.duplicate === true };
      } catch {
        outcome = { ok: false, error: 'unreadable JetStream acknowledgement' };
      }
    }
    if (batch.outcomes[index] === undefined) {
      batch.outcomes[index] = outcome;
      if (--batch.remaining === 0) batch.done();
    }
  }

  private sendAttempt(messages: OutgoingMessage[], indexes: number[], outcomes: (PublishOutcome | undefined)[]): Promise<void> {
    return new Promise<void>((resolve) => {
      const tokens: string[] = [];
      const batch: PendingBatch = { outcomes, remaining: indexes.length, done: () => finish() };
      const timer = setTimeout(() => finish(), this.ackTimeoutMs);
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        for (const t of tokens) this.waiting.delete(t);
        resolve();
      };
      for (const index of indexes) {
        const m = messages[index]!;
        const token = (this.counter++).toString(36);
        tokens.push(token);
        this.waiting.set(token, { batch, index });
        const h = headers();
        h.set('Nats-Msg-Id', m.msgId);
        h.set('Nats-Expected-Stream', this.options.stream);
        if (m.headers) for (const [k, v] of Object.entries(m.headers)) h.set(k, v);
        try {
          this.nc.publish(m.subject, m.data, { reply: `${this.prefix}.${token}`, headers: h });
        } catch (e) {
          this.waiting.delete(token);
          outcomes[index] = { ok: false, error: (e as Error).message };
          batch.remaining--;
        }
      }
      if (batch.remaining === 0) finish();
    });
  }

  /**
   * Stores every message; resolves with one outcome per message, in order. Never rejects for a
   * single message: failures are outcomes.
   */
  async publish(messages: OutgoingMessage[]): Promise<PublishOutcome[]> {
    const outcomes: (PublishOutcome | undefined)[] = new Array(messages.length).fill(undefined);
    let pending = messages.map((_, i) => i);
    for (let attempt = 0; attempt < this.attempts && pending.length > 0; attempt++) {
      await this.sendAttempt(messages, pending, outcomes);
      pending = pending.filter((i) => outcomes[i] === undefined);
    }
    return outcomes.map((o) => o ?? { ok: false, error: `no JetStream acknowledgement after ${this.attempts} attempts` });
  }

  /** Like {@link publish} but throws when any message failed. @throws SwitchyardError PUBLISH_FAILED */
  async publishAll(messages: OutgoingMessage[]): Promise<number[]> {
    const outcomes = await this.publish(messages);
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw new SwitchyardError(ErrorCodes.PUBLISH_FAILED, failed.error);
    return outcomes.map((o) => (o.ok ? o.seq : 0));
  }

  /** Stops listening for acknowledgements. */
  close(): void {
    this.sub.unsubscribe();
  }
}
