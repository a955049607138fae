import { Type, type Static } from '@sinclair/typebox';

/**
 * Settings of the `pinterest` destination (`spec.destination.pinterest`): the Pinterest API for
 * Conversions v5, `POST {endpoint}/v5/ad_accounts/{adAccountId}/events`
 * (https://developers.pinterest.com/docs/api/v5/events-create). The conversion access token is a
 * secret: it lives in the credentials Secret (key `access_token`), never here.
 */
export const PinterestSettings = Type.Object(
  {
    adAccountId: Type.String({
      description: 'Pinterest ad account id the conversions are reported for (digits only, at most 18: Ads Manager → Ad account overview). Required; no default.',
      pattern: '^[0-9]+$',
      minLength: 1,
      maxLength: 18,
    }),
    endpoint: Type.String({
      description: 'Base URL of the Pinterest API, without the /v5 path (for tests and egress proxies). Default https://api.pinterest.com.',
      format: 'uri',
      pattern: '^https?://',
      maxLength: 2048,
      default: 'https://api.pinterest.com',
    }),
    test: Type.Boolean({
      description:
        'Send `?test=true`: Pinterest validates the events and answers as usual but records nothing (use it to check a setup, then turn it off). Default false.',
      default: false,
    }),
  },
  {
    description:
      'Pinterest API for Conversions v5. Events are sent in batches of up to 1000 (delivery.batchSize, default 100) with the conversion access token of the credentials Secret (key access_token) as a Bearer token. Events older than 7 days are refused before sending (Pinterest takes none older).',
    additionalProperties: false,
  },
);
export type PinterestSettings = Static<typeof PinterestSettings>;
