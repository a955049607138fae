import { Type, type Static } from '@sinclair/typebox';

/**
 * Settings of the `snapchat` destination (`spec.destination.snapchat`): Snap's Conversions API v3,
 * `POST {endpoint}/v3/{pixelId}/events?access_token=…`
 * (https://developers.snap.com/api/marketing-api/Conversions-API/UsingTheAPI). The access token is
 * a secret: it lives in the credentials Secret (key `access_token`), never here.
 */
export const SnapchatSettings = Type.Object(
  {
    pixelId: Type.String({
      description: 'Snap Pixel ID for web and offline events, or Snap App ID for app events (Events Manager); it is the {ID} of /v3/{ID}/events. Required; no default.',
      pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$',
      minLength: 1,
      maxLength: 64,
    }),
    endpoint: Type.String({
      description: 'Base URL of the Conversions API, without the /v3 path (for tests and egress proxies). Default https://tr.snapchat.com.',
      format: 'uri',
      pattern: '^https?://',
      maxLength: 2048,
      default: 'https://tr.snapchat.com',
    }),
    validateOnly: Type.Boolean({
      description:
        "Send to Snap's Test Event endpoint /v3/{ID}/events/validate instead: events are checked and shown under test events in Events Manager, not recorded (https://developers.snap.com/api/marketing-api/Conversions-API/VerifySetUp). Default false.",
      default: false,
    }),
  },
  {
    description:
      'Snap Conversions API v3. Events are sent in batches of up to 2000 (delivery.batchSize, default 100) with the access token of the credentials Secret (key access_token) in the access_token query parameter, as Snap documents. Events older than 37 days are refused before sending (Snap takes none older).',
    additionalProperties: false,
  },
);
export type SnapchatSettings = Static<typeof SnapchatSettings>;
