import { Type, type Static } from '@sinclair/typebox';
import { PositiveDuration, StringEnum } from '../../api/common.js';

/**
 * Where the events took place, TikTok's `event_source`
 * (https://business-api.tiktok.com/portal/docs?id=1771101303285761): `web` (measured by a Pixel
 * Code), `app` (a TikTok App ID; allowlist-only at TikTok), `offline` (an Offline Event Set ID) or
 * `crm` (a CRM Event Set ID).
 */
export const TIKTOK_EVENT_SOURCES = ['web', 'app', 'offline', 'crm'] as const;
export type TiktokEventSource = (typeof TIKTOK_EVENT_SOURCES)[number];

/** Settings of the `tiktok` destination (`spec.destination.tiktok`). The access token is a credential (key `access_token`), never a setting. */
export const TiktokSettings = Type.Object(
  {
    pixelCode: Type.String({
      description:
        'The Event Source ID sent as event_source_id: the Pixel Code for web events (Events Manager → Web Events, e.g. C4ABCDEFGH1234567890), the Offline or CRM Event Set ID for offline and crm events, the TikTok App ID for app events. Required.',
      minLength: 1,
      maxLength: 64,
      pattern: '^[A-Za-z0-9_-]+$',
    }),
    eventSource: StringEnum(TIKTOK_EVENT_SOURCES, {
      description:
        'TikTok event_source: web (events on a website, pixelCode is a Pixel Code), app (allowlist-only at TikTok), offline (in-store, an Offline Event Set ID) or crm (a CRM Event Set ID). For web events TikTok requires page.url in every event; offline events take standard event names only. Default: web.',
      default: 'web',
    }),
    endpoint: Type.String({
      description: 'Base URL of the TikTok Business API; the request goes to <endpoint>/open_api/v1.3/event/track/. Change it only for a proxy or a test server. Default: https://business-api.tiktok.com.',
      default: 'https://business-api.tiktok.com',
      format: 'uri',
      pattern: '^https?://',
      maxLength: 2048,
    }),
    testEventCode: Type.Optional(
      Type.String({
        description:
          'Test event code from Events Manager (Test Events tab): sent as test_event_code so TikTok shows the events there instead of using them for ads. Remove it for real traffic. Default: none (live events).',
        minLength: 1,
        maxLength: 128,
      }),
    ),
    maxEventAge: Type.Optional(
      PositiveDuration({
        description:
          'Dead-letter (reason stale_event), without sending it, an event whose event_time is older than this (e.g. 28d, the longest click-through attribution window TikTok offers; older conversions are not attributed). TikTok documents no age limit of its own for the Events API, so the default is none: every event is sent.',
      }),
    ),
  },
  {
    description:
      'TikTok Events API 2.0 (POST /open_api/v1.3/event/track/, up to 1,000 events per request). The access token comes from the credentials Secret, key access_token (Events Manager → Settings → Generate Access Token). TikTok answers HTTP 200 with a code: 0 is success, 40100 (rate limit) is retried as throttling, 40002 (a bad parameter in one of the events) sends each event of the batch alone once so only the bad ones are dead-lettered, other 4xxxx codes are permanent, 5xxxx are retried.',
    additionalProperties: false,
  },
);
export type TiktokSettings = Static<typeof TiktokSettings>;
