/**
 * The transform and forward stage: JetStream consumers per Integration, mapping, delivery with
 * retries, dead letters and max-deliveries advisories. Behaviour: startForwarder's docstring.
 */
export {
  startForwarder,
  retryDelayMs,
  MAX_RETRY_AFTER_MS,
  MIN_RETRY_DELAY_MS,
  type Forwarder,
  type ForwarderConfig,
  type ForwarderOptions,
  type ForwarderStats,
  type DeliveryRecord,
} from './forwarder.js';
export {
  ensureIntegrationConsumer,
  integrationConsumerInfo,
  consumerBacklog,
  deleteIntegrationConsumers,
  integrationConsumerConfig,
  advisoryConsumerConfig,
  integrationFilters,
  consumerUpdate,
  immutableConsumerChanges,
  normalizeIntegration,
  ackWaitMs,
  ACK_WAIT_MARGIN_MS,
  type IntegrationConsumerResult,
  type ResumePoint,
} from './consumer.js';
export { compileIntegrationRoute, compileMappingResource, consentAllows, type IntegrationRoute, type SkipReason, type ConsentMissing } from './route.js';
export { describeViolations } from './forwarder.js';
export { DeadLetterPublisher, deadLetterMsgId, type DeadLetter, type DeadLetterReason } from './dead-letter.js';
export {
  listDeadLetters,
  getDeadLetter,
  replayDeadLetters,
  replayFailed,
  DEAD_LETTER_REASONS,
  REPLAY_OF_HEADER,
  type IntegrationRef,
  type StoredDeadLetter,
  type DeadLetterFilter,
  type ReplayOptions,
  type ReplayResult,
  type ReplayOutcome,
} from './dead-letters.js';
export { forwarderMetrics, DELIVERY_OUTCOMES, type ForwarderMetrics, type DeliveryOutcomeLabel } from './metrics.js';
