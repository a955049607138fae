import { Type, type Static } from '@sinclair/typebox';

/** Graph API version used when `apiVersion` is not set: the latest at the time of writing (v26.0, 29 July 2026; https://developers.facebook.com/docs/graph-api/changelog/versions/). */
export const META_DEFAULT_API_VERSION = 'v26.0';

/** Base URL of the Graph API (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api#send). */
export const META_DEFAULT_ENDPOINT = 'https://graph.facebook.com';

/**
 * Settings of the `meta-capi` destination (`spec.destination.metaCapi`). The access token (and the
 * optional app secret) live in the credentials Secret, never here.
 */
export const MetaCapiSettings = Type.Object(
  {
    pixelId: Type.String({
      description: 'ID of the Meta Pixel (dataset) the events are sent to: the digits shown in Events Manager. Required.',
      pattern: '^[0-9]{1,32}$',
    }),
    apiVersion: Type.String({
      description: `Graph API version in the path, vMAJOR.MINOR. Default: ${META_DEFAULT_API_VERSION}. Meta supports each version for at least two years (https://developers.facebook.com/docs/graph-api/changelog/versions/).`,
      pattern: '^v[0-9]{1,3}\\.[0-9]{1,3}$',
      default: META_DEFAULT_API_VERSION,
    }),
    endpoint: Type.String({
      description: `Base URL of the Graph API, without the version: a proxy or a test server. Default: ${META_DEFAULT_ENDPOINT}.`,
      format: 'uri',
      pattern: '^https?://[^?#]+$',
      maxLength: 2048,
      default: META_DEFAULT_ENDPOINT,
    }),
    testEventCode: Type.Optional(
      Type.String({
        description:
          'Test Events code from Events Manager (e.g. TEST12345): sent as test_event_code, so the events show in the Test Events tool. Remove it in production. Default: none.',
        pattern: '^[A-Za-z0-9_-]{1,64}$',
      }),
    ),
  },
  {
    description:
      'Meta Conversions API: each mapped payload is one server event, sent in batches of up to 1,000 per request to POST {endpoint}/{apiVersion}/{pixelId}/events with the access token of the credentials Secret (key access_token; optional key app_secret adds appsecret_proof). Events older than 7 days (62 days for physical_store) are dead-lettered as stale_event before sending, since Meta refuses the whole request for one of them.',
    additionalProperties: false,
  },
);
export type MetaCapiSettings = Static<typeof MetaCapiSettings>;
