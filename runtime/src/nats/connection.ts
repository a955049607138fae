import { readFile } from 'node:fs/promises';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { NatsSettings } from '../settings.js';

/** Compares dotted versions (`2.10.3` vs `2.9.10`); pre-release suffixes are ignored. */
export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Throws unless the connected server runs JetStream and is at least `minVersion`.
 * @throws SwitchyardError NATS_TOO_OLD naming both versions.
 */
export function assertServerSupported(nc: NatsConnection, minVersion: string): void {
  const info = nc.info;
  const version = info?.version ?? '0.0.0';
  if (compareVersions(version, minVersion) < 0) {
    throw new SwitchyardError(
      ErrorCodes.NATS_TOO_OLD,
      `nats-server ${version} at ${nc.getServer()} is too old: Switchyard needs ${minVersion} or newer (multi-subject consumer filters arrived in 2.10)`,
    );
  }
  if (info && info.jetstream === false) {
    throw new SwitchyardError(ErrorCodes.NATS_TOO_OLD, `nats-server at ${nc.getServer()} runs without JetStream; start it with -js`);
  }
}

/** Maps settings to nats.js connection options (reading creds and TLS files). */
export async function connectionOptions(settings: NatsSettings): Promise<NodeConnectionOptions> {
  const options: NodeConnectionOptions = {
    servers: [...settings.servers],
    name: settings.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
  };
  if (settings.user !== undefined) options.user = settings.user;
  if (settings.pass !== undefined) options.pass = settings.pass;
  if (settings.token !== undefined) options.token = settings.token;
  if (settings.credsFile) options.authenticator = credsAuthenticator(await readFile(settings.credsFile));
  if (settings.tls) {
    options.tls = {
      ...(settings.tls.caFile ? { caFile: settings.tls.caFile } : {}),
      ...(settings.tls.certFile ? { certFile: settings.tls.certFile } : {}),
      ...(settings.tls.keyFile ? { keyFile: settings.tls.keyFile } : {}),
      ...(settings.tls.handshakeFirst ? { handshakeFirst: true } : {}),
    };
  }
  return options;
}

/**
 * Connects to NATS and checks the server version.
 * @throws SwitchyardError NATS_UNAVAILABLE when no server answers, NATS_TOO_OLD when it is too old.
 */
export async function connectNats(settings: NatsSettings, overrides: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({ ...(await connectionOptions(settings)), ...overrides });
  } catch (cause) {
    throw new SwitchyardError(ErrorCodes.NATS_UNAVAILABLE, `cannot connect to NATS at ${settings.servers.join(', ')}: ${(cause as Error).message}`, { cause });
  }
  try {
    assertServerSupported(nc, settings.minServerVersion);
  } catch (e) {
    await nc.close();
    throw e;
  }
  return nc;
}
