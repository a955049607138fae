import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../../api/common.js';

/** Settings of the `webhook` destination (`spec.destination.webhook`). */
export const WebhookSettings = Type.Object(
  {
    url: Type.String({ description: 'HTTP(S) URL the payloads are sent to.', format: 'uri', pattern: '^https?://', maxLength: 2048 }),
    method: StringEnum(['POST', 'PUT', 'PATCH'] as const, { description: 'HTTP method.', default: 'POST' }),
    headers: Type.Record(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' }), Type.String({ maxLength: 8192 }), {
      description: 'Extra non-secret HTTP headers. Secret headers (Authorization…) come from spec.credentialsSecretRef: each key of that Secret is sent as a header, except signature.secretKey.',
      default: {},
      maxProperties: 64,
    }),
    signature: Type.Optional(
      Type.Object(
        {
          secretKey: Type.String({ description: 'Key of the credentials Secret holding the HMAC secret (never sent as a header).', minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
          header: Type.String({ description: 'Header carrying the signature.', default: 'Switchyard-Signature', pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$', maxLength: 128 }),
        },
        {
          description:
            'Sign each request: the header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (Stripe\'s scheme), so a receiver checks the body and refuses replays older than its tolerance (verifyWebhookSignature). Default: unsigned.',
          additionalProperties: false,
        },
      ),
    ),
    payloadSchema: Type.Optional(
      Type.Object({}, {
        description:
          "JSON Schema (draft 2020-12) every mapped payload must satisfy: a Mapping that can never satisfy it is refused, and a payload that does not is dead-lettered (reason invalid_output) naming the field and the rule that wrote it, never sent. Default: any JSON object.",
        additionalProperties: true,
        'x-kubernetes-preserve-unknown-fields': true,
      }),
    ),
  },
  {
    description:
      'POST JSON to a URL. With delivery.batchSize 1 (the default) the body is the mapped payload; above 1 it is {"batch": [payload, …]}. 2xx is success; 408, 429 and 5xx other than 501/505 are retried (Retry-After honoured); other statuses are permanent failures.',
    additionalProperties: false,
  },
);
export type WebhookSettings = Static<typeof WebhookSettings>;
