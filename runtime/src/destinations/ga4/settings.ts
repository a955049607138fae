import { Type, type Static } from '@sinclair/typebox';

/** Default base URL of the GA4 Measurement Protocol (https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference#transport). */
export const GA4_DEFAULT_ENDPOINT = 'https://www.google-analytics.com';

/**
 * Settings of the `ga4` destination (`spec.destination.ga4`): the GA4 Measurement Protocol
 * (https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference). The API
 * secret is no setting: it is the `api_secret` key of the credentials Secret.
 */
export const Ga4Settings = Type.Object(
  {
    measurementId: Type.Optional(
      Type.String({
        description:
          'Measurement ID of the GA4 web data stream (Admin > Data streams > your stream), e.g. G-ABC123XYZ9; not the stream ID. Sent as the measurement_id query parameter; payloads then need client_id. Required unless firebaseAppId is set (exactly one of the two). No default.',
        pattern: '^G-[A-Z0-9]{4,20}$',
        maxLength: 22,
      }),
    ),
    firebaseAppId: Type.Optional(
      Type.String({
        description:
          'Firebase App ID of a GA4 app data stream (Firebase console > Project settings > Your apps), e.g. 1:1234567890:android:321abc456def7890. Sent as the firebase_app_id query parameter; payloads then need app_instance_id instead of client_id. Set either this or measurementId. No default.',
        pattern: '^1:[0-9]+:(android|ios|web):[0-9a-f]+$',
        maxLength: 128,
      }),
    ),
    endpoint: Type.String({
      description:
        'Base URL requests go to, without a path: /mp/collect (or /debug/mp/collect) is appended. Default https://www.google-analytics.com; https://region1.google-analytics.com collects in the EU; tests and proxies point it elsewhere.',
      default: GA4_DEFAULT_ENDPOINT,
      format: 'uri',
      pattern: '^https?://[^?#]+$',
      maxLength: 2048,
    }),
    debug: Type.Boolean({
      description:
        'Send to the validation server (/debug/mp/collect) instead: GA4 records nothing and answers validationMessages, each turning the event it names into a permanent failure (dead letter) — for trying a Mapping against GA4. Requests then carry validation_behavior ENFORCE_RECOMMENDATIONS so limits are reported too. Default false.',
      default: false,
    }),
  },
  {
    description:
      'Google Analytics 4 Measurement Protocol. Each mapped payload is one MP body carrying one event; payloads of the same user (same top-level fields) are sent together, up to 25 events and under 130 kB per request, each event keeping its own timestamp_micros. GA4 answers 2xx even for events it drops, so payloads are checked against its limits before sending; events older than 72 hours are dead-lettered (stale_event) without being sent. 429 and 5xx are retried; other 4xx are permanent.',
    additionalProperties: false,
    'x-kubernetes-validations': [{ rule: 'has(self.measurementId) != has(self.firebaseAppId)', message: 'destination.ga4 needs exactly one of measurementId (web stream) and firebaseAppId (app stream)' }],
  },
);
export type Ga4Settings = Static<typeof Ga4Settings>;
