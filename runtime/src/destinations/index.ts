import { readFileSync } from 'node:fs';
import type { Integration } from '../api/index.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { amplitudeDestination } from './amplitude/index.js';
import { ga4Destination } from './ga4/index.js';
import { googleAdsDestination } from './google-ads/index.js';
import { httpDestinationType } from './http.js';
import { metaCapiDestination } from './meta-capi/index.js';
import { pinterestDestination } from './pinterest/index.js';
import type { DestinationTypeName } from './settings.js';
import { snapchatDestination } from './snapchat/index.js';
import { tiktokDestination } from './tiktok/index.js';
import type { Destination, DestinationDefinition, DestinationOptions, DestinationType } from './types.js';
import { WebhookDestination, webhookDestination } from './webhook/index.js';

export * from './types.js';
export { DESTINATION_SETTINGS, DESTINATION_TYPES, SETTINGS_FIELDS, type DestinationTypeName } from './settings.js';
export { HttpDestination, httpDestinationType, checkDestination, classifyStatus, classifyByStatus, parseRetryAfter, settingsOf, ERROR_BODY_LIMIT } from './http.js';
export { WebhookDestination, webhookHeaders, signWebhook, verifyWebhookSignature } from './webhook/index.js';

/** Every destination definition, by type name. One folder per type under runtime/src/destinations. */
export const DEFINITIONS: Readonly<Record<DestinationTypeName, DestinationDefinition>> = Object.freeze({
  webhook: webhookDestination,
  ga4: ga4Destination,
  'meta-capi': metaCapiDestination,
  tiktok: tiktokDestination,
  'google-ads': googleAdsDestination,
  pinterest: pinterestDestination,
  snapchat: snapchatDestination,
  amplitude: amplitudeDestination,
});

/** Every destination type, by the name used in `spec.destination.type`. */
export const DESTINATIONS: Readonly<Record<DestinationTypeName, DestinationType>> = Object.freeze(
  Object.fromEntries(Object.entries(DEFINITIONS).map(([k, d]) => [k, k === 'webhook' ? WebhookDestination : httpDestinationType(d)])) as unknown as Record<DestinationTypeName, DestinationType>,
);

/** The definition of the destination type named `type`, or undefined. */
export function destinationDefinition(type: string): DestinationDefinition | undefined {
  return Object.hasOwn(DEFINITIONS, type) ? DEFINITIONS[type as DestinationTypeName] : undefined;
}

/** The destination type named `type`, or undefined. */
export function destinationType(type: string): DestinationType | undefined {
  return Object.hasOwn(DESTINATIONS, type) ? DESTINATIONS[type as DestinationTypeName] : undefined;
}

/**
 * The Integration's `delivery.batchSize`, or its type's default when unset (1 for an unknown type).
 */
export function effectiveBatchSize(integration: Pick<Integration, 'spec'>): number {
  return integration.spec.delivery?.batchSize ?? destinationType(integration.spec.destination.type)?.batch?.default ?? 1;
}

/**
 * The starter Mapping YAML shipped with a destination type (its folder's mapping.yaml).
 * @throws SwitchyardError MISSING_REFERENCE for an unknown type or one without a starter.
 */
export function starterMapping(type: string): string {
  const definition = Object.hasOwn(DEFINITIONS, type) ? DEFINITIONS[type as DestinationTypeName] : undefined;
  if (!definition?.starterMapping) throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `no starter Mapping for destination type ${JSON.stringify(type)}`);
  return readFileSync(definition.starterMapping, 'utf8');
}

/**
 * Builds the destination of an Integration (`spec.destination.type`).
 * @throws SwitchyardError INVALID_RESOURCE for an unknown type or settings the type refuses.
 */
export function createDestination(options: DestinationOptions): Destination {
  const type = options.integration.spec.destination.type;
  const factory = destinationType(type);
  if (!factory) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `unknown destination type ${JSON.stringify(type)}`);
  return factory.create(options);
}
