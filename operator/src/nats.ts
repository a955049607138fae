import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, ensureStreams, ErrorCodes, SwitchyardError, type Logger, type NatsSettings, type StreamSettings } from '@switchyard/runtime';

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
    if (this.manager && this.nc && !this.nc.isClosed()) return this.manager;
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<JetStreamManager> {
    const nc = await connectNats(this.nats, { timeout: 3_000 });
    try {
      const jsm = await jetstreamManager(nc, { timeout: JETSTREAM_TIMEOUT_MS });
      await ensureStreams(jsm, this.streams);
      this.nc = nc;
      this.manager = jsm;
      this.logger.info({ server: nc.getServer() }, 'connected to NATS');
      return jsm;
    } catch (cause) {
      await nc.close().catch(() => undefined);
      if (cause instanceof SwitchyardError) throw cause;
      throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, `JetStream is not usable: ${(cause as Error).message}`, { cause });
    }
  }

  /** Closes the connection (if any). */
  async close(): Promise<void> {
    const nc = this.nc;
    this.nc = undefined;
    this.manager = undefined;
    await nc?.close().catch(() => undefined);
  }
}
