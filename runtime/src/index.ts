/**
 * @switchyard/runtime: the ingestion API, the transform and forward stage, and the pieces they share.
 * `@switchyard/runtime/api` holds the resource types (Source, Integration, Mapping).
 */
export * from './errors.js';
export * from './clock.js';
export * from './settings.js';
export { parseDuration } from './duration.js';
export { connectNats, assertServerSupported, compareVersions } from './nats/connection.js';
export { ensureStreams, desiredStreams } from './nats/streams.js';
export { BatchPublisher, type OutgoingMessage, type PublishOutcome } from './nats/publisher.js';
export * as subjects from './nats/subjects.js';
export { createIngestionApp, startIngestion, type IngestionSource, type IngestionOptions } from './ingestion/index.js';
export {
  startForwarder,
  ensureIntegrationConsumer,
  integrationConsumerInfo,
  consumerBacklog,
  type IntegrationConsumerResult,
  type ResumePoint,
  type Forwarder,
  type ForwarderConfig,
  compileIntegrationRoute,
  compileMappingResource,
  consentAllows,
  type IntegrationRoute,
} from './forward/index.js';
export { compileMapping, checkMappingOutput, type CompiledMapping, type MappingResult } from './mapping/index.js';
export { createLogger, type Logger } from './logger.js';
export { createRegistry } from './metrics.js';
export { SourcesFile, readSourcesFile } from './cli/ingest.js';
export { readForwarderConfig } from './cli/forward.js';
export { RUNTIME_VERSION } from './destinations/types.js';
export { parseSettings, deepFreeze, compileValidator, formatProblems } from './api/validate.js';
export { deleteIntegrationConsumers, normalizeIntegration, integrationConsumerConfig } from './forward/index.js';
export {
  DEFINITIONS,
  DESTINATIONS,
  DESTINATION_TYPES,
  createDestination,
  checkDestination,
  destinationDefinition,
  starterMapping,
  signWebhook,
  verifyWebhookSignature,
  type DestinationDefinition,
  type Destination,
  type SendResult,
  type ItemResult,
} from './destinations/index.js';
