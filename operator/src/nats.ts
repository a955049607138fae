import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams, ErrorCodes, SwitchyardError, type Logger, type NatsSettings, type StreamSettings } from '@switchyard/runtime';

/** nats.js errors meaning the server is unreachable or not answering (nats-core errors.ts). */
const OUTAGE_ERRORS = new Set(['TimeoutError', 'RequestError', 'NoRespondersError', 'ClosedConnectionError', 'ConnectionError', 'DrainingConnectionError']);

/** Whether `error` means NATS (or JetStream) is unavailable rather than refusing a request. */
export function isNatsOutage(error: unknown): boolean {
  if (error instanceof SwitchyardError) return error.code === ErrorCodes.NATS_UNAVAILABLE || error.code === ErrorCodes.NATS_TOO_OLD;
  return error instanceof Error && OUTAGE_ERRORS.has(error.name);
}

/** How long one JetStream API request of the operator may take, in ms. */
export const JETSTREAM_TIMEOUT_MS = 5_000;

/**
 * The operator's NATS connection, made on first use: when NATS is down the operator keeps running
 * and each reconcile reports the outage in status, trying again on its next attempt. The streams
 * are ensured once per connection.
 */
export class NatsHandle {
  private nc: NatsConnection | undefined;
  private manager: JetStreamManager | undefined;
  private connecting: Promise<JetStreamManager> | undefined;
  private streamsReady = false;
  private closed = false;

  constructor(
    private readonly nats: NatsSettings,
    private readonly streams: StreamSettings,
    private readonly logger: Logger,
  ) {}

  /**
   * A JetStream manager on a live connection with the streams in place.
   * @throws SwitchyardError NATS_UNAVAILABLE (or NATS_TOO_OLD) when no usable server answers.
   */
  async jsm(): Promise<JetStreamManager> {
    if (this.manager && this.nc && !this.nc.isClosed()) {
      if (!this.streamsReady) {
        await ensureStreams(this.manager, this.streams);
        this.streamsReady = true;
      }
      return this.manager;
    }
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<JetStreamManager> {
    if (this.closed) throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, 'the NATS connection is closed');
    const nc = await connectNats(this.nats, { timeout: 3_000 });
    if (this.closed) {
      await nc.close().catch(() => undefined);
      throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, 'the NATS connection is closed');
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: JETSTREAM_TIMEOUT_MS });
      await ensureStreams(jsm, this.streams);
      this.nc = nc;
      this.manager = jsm;
      this.streamsReady = true;
      void this.watchReconnects(nc);
      this.logger.info({ server: nc.getServer() }, 'connected to NATS');
      return jsm;
    } catch (cause) {
      await nc.close().catch(() => undefined);
      if (cause instanceof SwitchyardError) throw cause;
      throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, `JetStream is not usable: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Creation time of the events stream (JetStream `created`), read at most every 10 s: it tells
   * whether an ack floor recorded earlier counts in the same stream.
   * @throws as {@link jsm}.
   */
  async eventsStreamCreated(): Promise<string> {
    const now = Date.now();
    if (this.streamCreated && now - this.streamCreated.at < 10_000) return this.streamCreated.value;
    const info = await (await this.jsm()).streams.info(this.streams.events.name);
    this.streamCreated = { value: info.created, at: now };
    return info.created;
  }

  private streamCreated: { value: string; at: number } | undefined;

  /**
   * Makes the next {@link jsm} ensure the streams again: after a reconnect (the server may have
   * restarted without them, e.g. memory storage) or when a request says a stream is missing.
   */
  streamsLost(): void {
    this.streamsReady = false;
    this.streamCreated = undefined;
  }

  private async watchReconnects(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'reconnect') {
        this.streamsLost();
        this.logger.info({ server: status.server }, 'reconnected to NATS');
      }
    }
  }

  /** Closes the connection (if any); later calls to {@link jsm} fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    const nc = this.nc;
    this.nc = undefined;
    this.manager = undefined;
    await nc?.close().catch(() => undefined);
  }
}
