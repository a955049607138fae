import { Type, type Static } from '@sinclair/typebox';
import { API_VERSION, CommonStatus, ObjectMeta, SecretKeySelector, StringEnum } from './common.js';

/** Default per-event size limit in bytes, after decompression (Segment's HTTP API limit). */
export const DEFAULT_MAX_EVENT_BYTES = 32 * 1024;
/** Default per-request size limit in bytes, after decompression (Segment's HTTP API limit). */
export const DEFAULT_MAX_BATCH_BYTES = 500 * 1024;

export const SourceSpec = Type.Object(
  {
    writeKey: Type.Object(
      {
        secretKeyRef: Type.Optional(SecretKeySelector('Secret key holding the write key. Required in a cluster.')),
        value: Type.Optional(
          Type.String({
            description: 'The write key itself. Honoured only by `switchyard dev` (local mode); in a cluster use secretKeyRef.',
            minLength: 8,
            maxLength: 256,
          }),
        ),
      },
      {
        description:
          'The key SDKs send (HTTP Basic user name, or `writeKey` in the body) to name this Source. It is public in every page that embeds the tag: it identifies, it does not protect.',
        additionalProperties: false,
        'x-kubernetes-validations': [
          { rule: 'has(self.secretKeyRef) != has(self.value)', message: 'set exactly one of writeKey.secretKeyRef and writeKey.value' },
        ],
      },
    ),
    allowedOrigins: Type.Array(
      Type.String({ maxLength: 2048, pattern: '^(\\*|https?://[^/]+)$' }),
      {
        description:
          'Browser origins (scheme://host[:port]) allowed to send events with CORS; `*` allows any. Empty: no browser origin is allowed (server SDKs are unaffected).',
        default: [],
        maxItems: 256,
      },
    ),
    limits: Type.Object(
      {
        maxEventBytes: Type.Integer({
          description: 'Largest accepted event in bytes, as JSON after decompression. Larger events are refused one by one.',
          default: DEFAULT_MAX_EVENT_BYTES,
          minimum: 1024,
          maximum: 1048576,
        }),
        maxBatchBytes: Type.Integer({
          description: 'Largest accepted request body in bytes, after decompression; larger requests get 413.',
          default: DEFAULT_MAX_BATCH_BYTES,
          minimum: 1024,
          maximum: 16777216,
        }),
        eventsPerSecond: Type.Integer({
          description: 'Sustained rate of events accepted for this Source per ingestion replica; above it requests get 429 with Retry-After.',
          default: 5000,
          minimum: 1,
          maximum: 10000000,
        }),
        burst: Type.Integer({
          description: 'Events that may arrive at once above the sustained rate (token bucket size).',
          default: 10000,
          minimum: 1,
          maximum: 100000000,
        }),
      },
      { description: 'Size and rate limits.', default: {}, additionalProperties: false },
    ),
    consent: Type.Object(
      {
        missing: StringEnum(['allow', 'deny'] as const, {
          description:
            "What an Integration needing a consent category does with an event of this Source that states no preference for it (no context.consent.categoryPreferences entry): allow (opt-out regimes, e.g. CCPA) or deny (opt-in regimes, e.g. GDPR).",
          default: 'allow',
        }),
      },
      { description: 'Consent policy of this Source.', default: {}, additionalProperties: false },
    ),
  },
  { description: 'A place events come from, identified by its write key.', additionalProperties: false },
);
export type SourceSpec = Static<typeof SourceSpec>;

export const Source = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('Source'),
    metadata: ObjectMeta,
    spec: SourceSpec,
    status: Type.Optional(CommonStatus()),
  },
  { additionalProperties: false },
);
export type Source = Static<typeof Source>;
