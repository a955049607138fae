import { Type, type Static } from '@sinclair/typebox';

/** Google Ads API version used when `apiVersion` is not set (the latest active version in November 2026). */
export const GOOGLE_ADS_API_VERSION = 'v26';

/** A Google Ads customer id as the API takes it: 10 digits, without the dashes the UI shows. */
export const CUSTOMER_ID_PATTERN = '^[0-9]{10}$';

/** Key of `conversionActions`, as a Mapping writes it in `conversionAction`. */
export const CONVERSION_ACTION_KEY_PATTERN = '^[A-Za-z][A-Za-z0-9_]{0,63}$';

/**
 * Settings of the `google-ads` destination (`spec.destination.googleAds`): click conversions
 * uploaded with ConversionUploadService.UploadClickConversions
 * (https://developers.google.com/google-ads/api/docs/conversions/upload-clicks). Secrets
 * (developer token, OAuth client and refresh token, or an access token) live in the credentials
 * Secret, never here.
 */
export const GoogleAdsSettings = Type.Object(
  {
    customerId: Type.String({
      description: 'Google Ads customer id the conversions are uploaded to (the conversion account: customer.conversion_tracking_setting.google_ads_conversion_customer), 10 digits without dashes, e.g. 1234567890. Required.',
      pattern: CUSTOMER_ID_PATTERN,
    }),
    loginCustomerId: Type.Optional(
      Type.String({
        description: 'Manager account id sent as the login-customer-id header, 10 digits without dashes, when the OAuth user reaches customerId through a manager account. Default: not sent.',
        pattern: CUSTOMER_ID_PATTERN,
      }),
    ),
    conversionActions: Type.Record(Type.String({ pattern: CONVERSION_ACTION_KEY_PATTERN }), Type.String({ pattern: '^[0-9]{1,20}$' }), {
      description:
        'Conversion action id (digits, from the conversion action resource name customers/{customerId}/conversionActions/{id}) for each key a Mapping writes in conversionAction, e.g. {purchase: "123456789"}: the starter Mapping writes purchase. A payload may instead carry the id itself or the full resource name. A key that is not listed here makes the payload invalid for this Integration (the Mapping rule that writes it is reported). Default: {} (no keys).',
      default: {},
      maxProperties: 100,
      additionalProperties: false,
    }),
    validateOnly: Type.Boolean({
      description: 'Test mode: Google Ads validates each request and reports errors, but records nothing (validateOnly: true). Default: false.',
      default: false,
    }),
    apiVersion: Type.String({
      description: `Google Ads API version in the URL, e.g. v26 (https://developers.google.com/google-ads/api/docs/sunset-dates). Default: ${GOOGLE_ADS_API_VERSION}.`,
      pattern: '^v[0-9]{1,3}$',
      default: GOOGLE_ADS_API_VERSION,
    }),
    endpoint: Type.String({
      description: 'Base URL of the Google Ads API (a proxy or a test server). Default: https://googleads.googleapis.com.',
      format: 'uri',
      pattern: '^https?://',
      maxLength: 2048,
      default: 'https://googleads.googleapis.com',
    }),
    tokenEndpoint: Type.String({
      description: 'OAuth 2.0 token endpoint used to exchange the refresh token of the credentials Secret for access tokens. Default: https://oauth2.googleapis.com/token.',
      format: 'uri',
      pattern: '^https?://',
      maxLength: 2048,
      default: 'https://oauth2.googleapis.com/token',
    }),
  },
  {
    description:
      'Google Ads click conversions (offline conversion import) through the Google Ads API ConversionUploadService.UploadClickConversions, with partial failure: only the conversions Google refuses fail. Each mapped payload is one ClickConversion (REST JSON: gclid, gbraid or wbraid, conversionAction, conversionDateTime, conversionValue, currencyCode, orderId, userIdentifiers, consent). Credentials Secret: developer_token, and client_id + client_secret + refresh_token (or a short-lived access_token).',
    additionalProperties: false,
  },
);
export type GoogleAdsSettings = Static<typeof GoogleAdsSettings>;
