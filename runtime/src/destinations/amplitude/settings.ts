import { Type, type Static } from '@sinclair/typebox';

/**
 * Settings of the `amplitude` destination (`spec.destination.amplitude`): the Amplitude HTTP V2
 * API (https://amplitude.com/docs/apis/analytics/http-v2). The project API key is a secret: it
 * lives in the credentials Secret under `api_key`, never here.
 */
export const AmplitudeSettings = Type.Object(
  {
    endpoint: Type.String({
      description:
        'Base URL of the HTTP V2 API; requests go to <endpoint>/2/httpapi. Default https://api2.amplitude.com (US data center). Projects with EU data residency use https://api.eu.amplitude.com. Tests and proxies may point elsewhere.',
      default: 'https://api2.amplitude.com',
      format: 'uri',
      pattern: '^https?://[^?#]+$',
      maxLength: 2048,
    }),
    minIdLength: Type.Optional(
      Type.Integer({
        description:
          "Minimum length of user_id and device_id, sent as options.min_id_length. Default: not sent (Amplitude's default is 5). Amplitude removes a shorter id from the event and refuses an event left without any; the output schema refuses such payloads before sending.",
        minimum: 1,
        maximum: 1024,
      }),
    ),
    maxEventAgeHours: Type.Integer({
      description:
        'Events whose time is older than this many hours are refused before sending (dead letter stale_event). Default 168 (7 days): Amplitude deduplicates insert_id for 7 days only, so an older event replayed after a first delivery could be counted twice. 0 sends events of any age (the HTTP V2 API itself sets no age limit).',
      default: 168,
      minimum: 0,
      maximum: 87600,
    }),
  },
  {
    description:
      'Amplitude HTTP V2 API: one Amplitude event per mapped payload, up to 2,000 events and under 1 MB per request (larger sends are split). The project API key comes from the credentials Secret (key api_key). Amplitude has no test mode: use a separate Amplitude project (its own API key) for tests. 400 answers naming events fail only those events (the others are retried); 429 throttling pauses the Integration (30 s, or Retry-After); 5xx are retried (insert_id deduplicates).',
    additionalProperties: false,
  },
);
export type AmplitudeSettings = Static<typeof AmplitudeSettings>;
