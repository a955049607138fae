/**
 * @switchyard/operator: reconciles Source, Integration and Mapping resources into JetStream
 * consumers, forwarder Deployments and the ingestion's sources Secret.
 */
export { startOperator, type Operator, type OperatorOptions } from './controller.js';
export { OperatorSettings, parseOperatorSettings, loadOperatorSettings } from './settings.js';
export * from './conditions.js';
export { desiredConfigMap, desiredDeployment, desiredRuntimeSecret, configChecksum, forwarderConfig, forwarderSettings, forwarderName, forwarderSelector, labelValue, FORWARDER_PATHS } from './desired/integration.js';
export { resolveSources, desiredSourcesSecret, SOURCES_FILE_KEY, type ResolvedSource } from './desired/source.js';
export { deploymentCondition } from './reconcile/integration.js';
export { WorkQueue, type WorkQueueOptions, type ReconcileResult } from './kube/queue.js';
export { LeaderElector, type LeaderElectorOptions } from './kube/leader.js';
export { ResilientInformer, type ResilientInformerOptions } from './kube/informer.js';
export { operatorMetrics, type OperatorMetrics } from './metrics.js';
