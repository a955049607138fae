import type { DestinationType as DestinationTypeName } from '../api/index.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { Destination, DestinationOptions, DestinationType } from './types.js';
import { WebhookDestination } from './webhook/index.js';

export * from './types.js';
export { WebhookDestination, classifyStatus, parseRetryAfter, webhookHeaders, ERROR_BODY_LIMIT } from './webhook/index.js';

/**
 * Every destination type, by the name used in `spec.destination.type` (DESTINATION_TYPES in
 * api/integration.ts). One folder per type under runtime/src/destinations.
 */
export const DESTINATIONS: Readonly<Record<DestinationTypeName, DestinationType>> = Object.freeze({
  webhook: WebhookDestination,
});

/**
 * Builds the destination of an Integration (`spec.destination.type`).
 * @throws SwitchyardError INVALID_RESOURCE for an unknown type or settings the type refuses.
 */
export function createDestination(options: DestinationOptions): Destination {
  const type = options.integration.spec.destination.type;
  const factory = Object.hasOwn(DESTINATIONS, type) ? DESTINATIONS[type] : undefined;
  if (!factory) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `unknown destination type ${JSON.stringify(type)}`);
  return factory.create(options);
}
