import { Type, type Static } from '@sinclair/typebox';
import { Duration, StringEnum } from './api/common.js';
import { parseSettings } from './api/validate.js';

/** Oldest nats-server the runtime works with: multi-subject consumer filters arrived in 2.10. */
export const MIN_NATS_SERVER_VERSION = '2.10.0';

export const NatsSettings = Type.Object(
  {
    servers: Type.Array(Type.String({ minLength: 1 }), {
      description: 'NATS server URLs. Default: NATS_URL (comma-separated) or nats://127.0.0.1:4222.',
      minItems: 1,
      default: ['nats://127.0.0.1:4222'],
    }),
    name: Type.String({ description: 'Connection name shown by the server.', default: 'switchyard' }),
    user: Type.Optional(Type.String({ description: 'User name (with pass). Default: NATS_USER.' })),
    pass: Type.Optional(Type.String({ description: 'Password (with user). Default: NATS_PASSWORD.' })),
    token: Type.Optional(Type.String({ description: 'Authentication token. Default: NATS_TOKEN.' })),
    credsFile: Type.Optional(Type.String({ description: 'Path of a NATS .creds file (JWT + NKey seed).' })),
    tls: Type.Optional(
      Type.Object(
        {
          caFile: Type.Optional(Type.String({ description: 'CA bundle (PEM) to verify the server.' })),
          certFile: Type.Optional(Type.String({ description: 'Client certificate (PEM) for mutual TLS.' })),
          keyFile: Type.Optional(Type.String({ description: 'Client key (PEM) for mutual TLS.' })),
          handshakeFirst: Type.Boolean({ description: 'TLS before the INFO exchange (server `handshake_first`).', default: false }),
        },
        { description: 'TLS; present means required.', additionalProperties: false },
      ),
    ),
    minServerVersion: Type.String({ description: 'Refuse servers older than this.', default: MIN_NATS_SERVER_VERSION, pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+$' }),
  },
  { additionalProperties: false },
);
export type NatsSettings = Static<typeof NatsSettings>;

export const StreamSettings = Type.Object(
  {
    subjectPrefix: Type.String({ description: 'First subject token of every Switchyard subject.', default: 'sy', pattern: '^[A-Za-z0-9_-]+$' }),
    events: Type.Object(
      {
        name: Type.String({ description: 'Stream holding accepted events.', default: 'EVENTS', pattern: '^[A-Za-z0-9_-]+$' }),
        maxAge: Duration({ description: 'Events older than this are removed.', default: '7d' }),
        maxBytes: Type.Integer({ description: 'Stream size cap in bytes (-1: none); the oldest events go first.', default: -1, minimum: -1 }),
        replicas: Type.Integer({ description: 'Stream replicas (1 or 3 in a cluster).', default: 1, minimum: 1, maximum: 5 }),
        duplicateWindow: Duration({ description: 'Window in which a repeated Nats-Msg-Id (source + messageId) is stored once.', default: '10m' }),
        storage: StringEnum(['file', 'memory'] as const, { description: 'Storage of the stream.', default: 'file' }),
      },
      { default: {}, additionalProperties: false },
    ),
    deadLetter: Type.Object(
      {
        name: Type.String({ description: 'Stream holding dead letters.', default: 'DEADLETTER', pattern: '^[A-Za-z0-9_-]+$' }),
        maxAge: Duration({ description: 'Dead letters older than this are removed.', default: '30d' }),
        maxBytes: Type.Integer({ description: 'Size cap in bytes (-1: none).', default: -1, minimum: -1 }),
        replicas: Type.Integer({ description: 'Stream replicas.', default: 1, minimum: 1, maximum: 5 }),
        duplicateWindow: Duration({ description: 'Window in which a dead letter of the same event (consumer + stream sequence) is stored once.', default: '1d' }),
      },
      { default: {}, additionalProperties: false },
    ),
    advisories: Type.Object(
      {
        name: Type.String({ description: 'Stream capturing JetStream max-deliveries advisories of the events stream.', default: 'SY_ADVISORIES', pattern: '^[A-Za-z0-9_-]+$' }),
        maxAge: Duration({ description: 'Advisories older than this are removed.', default: '7d' }),
      },
      { default: {}, additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
export type StreamSettings = Static<typeof StreamSettings>;

/** NATS settings as written by a user: every field optional. */
export type NatsSettingsInput = Omit<Partial<NatsSettings>, 'tls'> & { tls?: Partial<NonNullable<NatsSettings['tls']>> };

/**
 * Parses NATS settings, applying defaults. From the environment, when the input does not set them:
 * `NATS_URL` (comma-separated) fills `servers`, `NATS_USER` + `NATS_PASSWORD` fill `user`/`pass`
 * and `NATS_TOKEN` fills `token` (so credentials can come from a Kubernetes Secret as env vars).
 * @throws SwitchyardError INVALID_SETTINGS naming the failing field.
 */
export function natsSettings(input: NatsSettingsInput = {}, env: NodeJS.ProcessEnv = process.env): Readonly<NatsSettings> {
  const fromEnv = env.NATS_URL?.split(',').map((s) => s.trim()).filter(Boolean);
  const servers = input.servers ?? (fromEnv?.length ? fromEnv : undefined);
  const fill: Partial<NatsSettingsInput> = {};
  if (servers) fill.servers = servers;
  if (input.user === undefined && input.pass === undefined && env.NATS_USER) Object.assign(fill, { user: env.NATS_USER, pass: env.NATS_PASSWORD ?? '' });
  if (input.token === undefined && env.NATS_TOKEN) fill.token = env.NATS_TOKEN;
  return parseSettings<NatsSettings>(NatsSettings, { ...input, ...fill }, 'NATS settings');
}

/** Parses stream settings, applying defaults. */
export function streamSettings(input: unknown = {}): Readonly<StreamSettings> {
  return parseSettings<StreamSettings>(StreamSettings, input, 'stream settings');
}
