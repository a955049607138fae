import { Type } from '@sinclair/typebox';
import { AmplitudeSettings } from './amplitude/settings.js';
import { Ga4Settings } from './ga4/settings.js';
import { GoogleAdsSettings } from './google-ads/settings.js';
import { MetaCapiSettings } from './meta-capi/settings.js';
import { PinterestSettings } from './pinterest/settings.js';
import { SnapchatSettings } from './snapchat/settings.js';
import { TiktokSettings } from './tiktok/settings.js';
import { WebhookSettings } from './webhook/settings.js';

/** Destination types this version delivers to; each has a folder under runtime/src/destinations. */
export const DESTINATION_TYPES = ['webhook', 'ga4', 'meta-capi', 'tiktok', 'google-ads', 'pinterest', 'snapchat', 'amplitude'] as const;
export type DestinationTypeName = (typeof DESTINATION_TYPES)[number];

/**
 * Field of `spec.destination` holding each type's settings: the camelCase of the type, so CEL
 * rules can name it.
 */
export const SETTINGS_FIELDS = {
  webhook: 'webhook',
  ga4: 'ga4',
  'meta-capi': 'metaCapi',
  tiktok: 'tiktok',
  'google-ads': 'googleAds',
  pinterest: 'pinterest',
  snapchat: 'snapchat',
  amplitude: 'amplitude',
} as const satisfies Record<DestinationTypeName, string>;

/** The settings fields of `spec.destination`, each the schema of its folder's settings.ts (pure schemas: the API layer builds the Integration CRD from them). */
export const DESTINATION_SETTINGS = {
  webhook: Type.Optional(WebhookSettings),
  ga4: Type.Optional(Ga4Settings),
  metaCapi: Type.Optional(MetaCapiSettings),
  tiktok: Type.Optional(TiktokSettings),
  googleAds: Type.Optional(GoogleAdsSettings),
  pinterest: Type.Optional(PinterestSettings),
  snapchat: Type.Optional(SnapchatSettings),
  amplitude: Type.Optional(AmplitudeSettings),
};
