import type { V1Deployment } from '@kubernetes/client-node';
import { JetStreamApiError, type ConsumerInfo } from '@nats-io/jetstream';
import { checkDestination, compileIntegrationRoute, compileMappingResource, destinationDefinition, consumerBacklog, deleteIntegrationConsumers, ensureIntegrationConsumer, normalizeIntegration } from '@switchyard/runtime';
import { isNatsOutage } from '../nats.js';
import { API_VERSION, type Integration, type Mapping } from '@switchyard/runtime/api';
import { ConditionTypes, FINALIZER, Reasons, findCondition, mergeConditions, readyCondition, type Condition, type ConditionInput } from '../conditions.js';
import { configChecksum, desiredConfigMap, desiredDeployment, desiredRuntimeSecret, natsFilePaths, type NatsFiles } from '../desired/integration.js';
import { readFile } from 'node:fs/promises';
import type { OperatorSettings } from '../settings.js';
import { applyObject, patchFinalizers, patchStatus } from '../kube/client.js';
import { apiMessage } from '../kube/errors.js';
import type { ReconcileResult } from '../kube/queue.js';
import { jsonEqual, type Live, type ReconcileContext } from './context.js';

type LiveIntegration = Live<Integration>;

/** JetStream API error code of a missing stream. */
const STREAM_NOT_FOUND = 10059;

/**
 * The DeploymentAvailable condition from a live Deployment (pure): True once the Deployment
 * controller saw the latest spec and every desired pod is updated and available; when paused,
 * True with reason Paused once no pod runs.
 */
export function deploymentCondition(live: V1Deployment | undefined, paused: boolean): ConditionInput {
  const type = ConditionTypes.DeploymentAvailable;
  if (!live) return { type, status: 'False', reason: Reasons.RolloutInProgress, message: 'the forwarder Deployment does not exist yet' };
  const st = live.status ?? {};
  const desired = live.spec?.replicas ?? 1;
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if ((st.observedGeneration ?? 0) < (live.metadata?.generation ?? 0)) {
    return { type, status: 'False', reason: Reasons.RolloutInProgress, message: 'waiting for the Deployment controller to see the latest spec' };
  }
  if (paused) {
    return (st.replicas ?? 0) === 0
      ? { type, status: 'True', reason: Reasons.Paused, message: 'scaled to zero; events wait in the stream' }
      : { type, status: 'False', reason: Reasons.RolloutInProgress, message: `scaling to zero: ${st.replicas} pods left` };
  }
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return { type, status: 'False', reason: Reasons.ProgressDeadlineExceeded, message: progressing.message ?? 'the rollout is stuck' };
  }
  const updated = st.updatedReplicas ?? 0;
  const available = st.availableReplicas ?? 0;
  if (updated < desired) return { type, status: 'False', reason: Reasons.RolloutInProgress, message: `${updated}/${desired} pods updated` };
  if ((st.replicas ?? 0) > updated) return { type, status: 'False', reason: Reasons.RolloutInProgress, message: `${(st.replicas ?? 0) - updated} old pods terminating` };
  if (available < desired) return { type, status: 'False', reason: Reasons.RolloutInProgress, message: `${available}/${desired} pods available` };
  return { type, status: 'True', reason: Reasons.Available, message: `${available}/${desired} pods available` };
}

/**
 * Reads the operator's NATS credential and TLS files for the forwarders' runtime Secret.
 * @throws Error when a configured file cannot be read.
 */
async function readNatsFiles(settings: Pick<OperatorSettings, 'nats'>): Promise<NatsFiles> {
  const files: NatsFiles = {};
  for (const [key, file] of Object.entries(natsFilePaths(settings.nats)) as [keyof NatsFiles, string][]) files[key] = await readFile(file, 'utf8');
  return files;
}

/** Condition types whose transition to False is worth a Warning Event. */
const WARN_ON = new Set<string>([ConditionTypes.MappingResolved, ConditionTypes.CredentialsResolved, ConditionTypes.ConsumerReady]);

/**
 * Reconciles one Integration:
 * 1. deletion: with the finalizer, deletes its JetStream consumers, then removes the finalizer
 *    (ConfigMap and Deployment go by garbage collection through their owner reference);
 * 2. adds the finalizer;
 * 3. resolves its Mapping (exists and compiles) and credentials Secret;
 * 4. creates or updates its consumer (re-created from the ack floor when a field cannot change);
 * 5. when Mapping and Secret resolve, applies the ConfigMap and the Deployment (server-side apply,
 *    so hand edits are set back); otherwise the last good ones keep running untouched;
 * 6. writes status (observedGeneration, conditions, backlog) only when it changed, and Events on
 *    transitions.
 * A NATS or API failure is shown in status first, then thrown so the queue retries with backoff.
 */
export async function reconcileIntegration(ctx: ReconcileContext, namespace: string, name: string): Promise<ReconcileResult> {
  const integration = ctx.cache.integrations.get(name, namespace);
  if (!integration) return {};
  const finalizers = integration.metadata.finalizers ?? [];
  if (integration.metadata.deletionTimestamp) {
    if (!finalizers.includes(FINALIZER)) return {};
    try {
      await deleteIntegrationConsumers(await ctx.nats.jsm(), ctx.settings.streams, integration);
    } catch (e) {
      // The finalizer holds the Integration until its consumer is gone; say why it waits.
      const reason = isNatsOutage(e) ? Reasons.NatsUnavailable : Reasons.ConsumerError;
      const others = ((integration.status?.conditions ?? []) as Condition[]).filter((c) => c.type !== ConditionTypes.Ready);
      const ready: ConditionInput = { type: ConditionTypes.Ready, status: 'False', reason, message: `waiting to delete the JetStream consumer: ${(e as Error).message}` };
      await writeStatus(ctx, integration, [ready, ...others], integration.status?.backlog);
      throw e;
    }
    await patchFinalizers(ctx.clients, 'Integration', namespace, name, integration.metadata.resourceVersion, finalizers.filter((f) => f !== FINALIZER));
    ctx.statusMemo.forget(`Integration/${namespace}/${name}`);
    void ctx.recorder.record(subject(integration), 'Normal', Reasons.ConsumerDeleted, 'JetStream consumer deleted; finalizer removed');
    ctx.logger.info({ integration: `${namespace}/${name}` }, 'consumer deleted; finalizer removed');
    return {};
  }
  if (!finalizers.includes(FINALIZER)) {
    await patchFinalizers(ctx.clients, 'Integration', namespace, name, integration.metadata.resourceVersion, [...finalizers, FINALIZER]);
  }

  let failure: unknown;
  let spec: Integration;
  try {
    spec = normalizeIntegration(integration as Integration);
  } catch (e) {
    // The CRD schema refuses what the runtime schema refuses, so this means a schema drift.
    const condition: ConditionInput = { type: ConditionTypes.Ready, status: 'False', reason: Reasons.SpecInvalid, message: (e as Error).message };
    await writeStatus(ctx, integration, [condition], integration.status?.backlog);
    return {};
  }
  const paused = spec.spec.paused;

  // Mapping
  let mapping: Mapping | undefined;
  let mappingCondition: ConditionInput;
  const liveMapping = ctx.cache.mappings.get(spec.spec.mappingRef.name, namespace);
  if (!liveMapping) {
    mappingCondition = { type: ConditionTypes.MappingResolved, status: 'False', reason: Reasons.MappingNotFound, message: `Mapping ${spec.spec.mappingRef.name} not found in namespace ${namespace}` };
  } else {
    try {
      compileMappingResource(liveMapping as Mapping);
      try {
        // This Integration's own view: destination type, events.where, its output schema.
        compileIntegrationRoute(spec, liveMapping as Mapping);
        mapping = liveMapping as Mapping;
        mappingCondition = { type: ConditionTypes.MappingResolved, status: 'True', reason: Reasons.Resolved, message: `Mapping ${liveMapping.metadata.name} compiled` };
      } catch (e) {
        mappingCondition = { type: ConditionTypes.MappingResolved, status: 'False', reason: Reasons.MappingIncompatible, message: `Mapping ${liveMapping.metadata.name} with this Integration: ${(e as Error).message}` };
      }
    } catch (e) {
      mappingCondition = { type: ConditionTypes.MappingResolved, status: 'False', reason: Reasons.MappingInvalid, message: `Mapping ${liveMapping.metadata.name}: ${(e as Error).message}` };
    }
  }

  // Credentials
  let credentialsCondition: ConditionInput;
  const secretRef = spec.spec.credentialsSecretRef;
  // The destination type's own check of its settings and the Secret's keys (what the forwarder would refuse at start).
  const destinationProblem = (credentials: Record<string, string>): string | undefined => {
    const definition = destinationDefinition(spec.spec.destination.type);
    try {
      if (definition) checkDestination(definition, spec, credentials);
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  };
  if (!secretRef) {
    const problem = destinationProblem({});
    credentialsCondition = problem
      ? { type: ConditionTypes.CredentialsResolved, status: 'False', reason: Reasons.DestinationInvalid, message: problem }
      : { type: ConditionTypes.CredentialsResolved, status: 'True', reason: Reasons.NoCredentials, message: 'no credentials Secret referenced' };
  } else {
    const secret = ctx.cache.secrets.get(secretRef.name, namespace);
    if (!secret) {
      credentialsCondition = { type: ConditionTypes.CredentialsResolved, status: 'False', reason: Reasons.SecretNotFound, message: `Secret ${secretRef.name} not found in namespace ${namespace}` };
    } else {
      const keys = Object.keys(secret.data ?? {}).length;
      const decoded = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')]));
      const problem = destinationProblem(decoded);
      credentialsCondition = problem
        ? { type: ConditionTypes.CredentialsResolved, status: 'False', reason: Reasons.DestinationInvalid, message: problem }
        : { type: ConditionTypes.CredentialsResolved, status: 'True', reason: Reasons.Resolved, message: `Secret ${secretRef.name} (${keys} key${keys === 1 ? '' : 's'})` };
    }
  }

  // JetStream consumer
  let consumerCondition: ConditionInput;
  const known = ctx.statusMemo.current(`Integration/${namespace}/${name}`, integration) as NonNullable<Integration['status']>;
  let backlog = known.backlog;
  let consumer = known.consumer;
  try {
    const jsm = await ctx.nats.jsm();
    const resumeAfter = consumer ? { ackFloor: consumer.ackFloor, ...(consumer.streamCreated ? { streamCreated: consumer.streamCreated } : {}) } : undefined;
    const result = await ensureIntegrationConsumer(jsm, ctx.settings.streams, spec, ctx.clock, resumeAfter ? { resumeAfter } : {});
    backlog ??= consumerBacklog(result.info);
    consumer = { name: result.info.name, ackFloor: result.info.ack_floor.stream_seq, streamCreated: await ctx.nats.eventsStreamCreated() };
    if (result.resumedAt !== undefined) {
      void ctx.recorder.record(subject(integration), 'Warning', Reasons.ConsumerRestored, `JetStream consumer ${result.info.name} was missing; re-created to resume at stream sequence ${result.resumedAt} (events acked since the last status refresh are delivered once more)`);
    }
    consumerCondition = { type: ConditionTypes.ConsumerReady, status: 'True', reason: Reasons.ConsumerInSync, message: `consumer ${result.info.name} on stream ${result.info.stream_name}` };
    if (result.action !== 'unchanged' && result.resumedAt === undefined) {
      const reason = { created: Reasons.ConsumerCreated, updated: Reasons.ConsumerUpdated, recreated: Reasons.ConsumerRecreated }[result.action];
      const what = result.changed?.length ? ` (${result.changed.join(', ')})` : '';
      ctx.logger.info({ integration: `${namespace}/${name}`, action: result.action, changed: result.changed }, 'consumer reconciled');
      void ctx.recorder.record(subject(integration), 'Normal', reason, `JetStream consumer ${result.info.name} ${result.action}${what}`);
    }
  } catch (e) {
    failure = e;
    if (e instanceof JetStreamApiError && e.code === STREAM_NOT_FOUND) ctx.nats.streamsLost(); // the retry re-creates it
    consumerCondition = { type: ConditionTypes.ConsumerReady, status: 'False', reason: isNatsOutage(e) ? Reasons.NatsUnavailable : Reasons.ConsumerError, message: (e as Error).message };
  }

  // ConfigMap and Deployment
  let deploymentCond: ConditionInput;
  if (mapping && credentialsCondition.status === 'True') {
    try {
      const configMap = desiredConfigMap(spec, mapping);
      const runtime = await applyObject(ctx.clients, desiredRuntimeSecret(spec, ctx.settings, await readNatsFiles(ctx.settings)));
      const versionOf = (o: { metadata?: { uid?: string; resourceVersion?: string } } | undefined) => `${o?.metadata?.uid}/${o?.metadata?.resourceVersion}`;
      const checksum = configChecksum(configMap.data ?? {}, [versionOf(runtime), ...(secretRef ? [versionOf(ctx.cache.secrets.get(secretRef.name, namespace))] : [])]);
      await applyObject(ctx.clients, configMap);
      const deployment = await applyObject(ctx.clients, desiredDeployment(spec, ctx.settings, checksum));
      deploymentCond = deploymentCondition(deployment, paused);
    } catch (e) {
      failure ??= e;
      deploymentCond = { type: ConditionTypes.DeploymentAvailable, status: 'False', reason: Reasons.ApplyFailed, message: apiMessage(e) };
    }
  } else {
    const live = ctx.cache.deployments.get(`${name}-forwarder`, namespace);
    const liveCondition = live ? deploymentCondition(live, paused) : undefined;
    deploymentCond = !liveCondition
      ? { type: ConditionTypes.DeploymentAvailable, status: 'False', reason: Reasons.WaitingForDependencies, message: 'waiting for the Mapping and the credentials Secret' }
      : liveCondition.status === 'True'
        ? { ...liveCondition, message: 'running the last good configuration; see the other conditions' }
        : liveCondition;
  }

  const parts = [mappingCondition, credentialsCondition, consumerCondition, deploymentCond];
  const ready = readyCondition(parts, paused ? { reason: Reasons.Paused, message: 'delivery paused; events wait in the stream' } : undefined);
  await writeStatus(ctx, integration, [ready, ...parts], backlog, consumer);
  if (failure) throw failure;
  return {};
}

function subject(integration: LiveIntegration) {
  return { apiVersion: API_VERSION, kind: 'Integration', metadata: integration.metadata };
}

/**
 * Writes status when it differs from the live one, then posts Events for condition transitions:
 * Warning when a part turns False, Normal when Ready turns True.
 */
async function writeStatus(
  ctx: ReconcileContext,
  integration: LiveIntegration,
  conditions: ConditionInput[],
  backlog: number | undefined,
  consumer = integration.status?.consumer,
): Promise<void> {
  const key = `Integration/${integration.metadata.namespace}/${integration.metadata.name}`;
  const current = ctx.statusMemo.current(key, integration);
  const previous = (current.conditions ?? []) as Condition[];
  const generation = integration.metadata.generation;
  const status: Record<string, unknown> = { observedGeneration: generation, conditions: mergeConditions(previous, conditions, generation, ctx.clock.now()) };
  if (backlog !== undefined) status.backlog = backlog;
  if (consumer) status.consumer = consumer;
  if (jsonEqual(status, current)) return;
  const version = await patchStatus(ctx.clients, 'Integration', integration.metadata.namespace!, integration.metadata.name, status, current);
  ctx.statusMemo.remember(key, version, status);
  ctx.metrics.statusWrites.inc({ kind: 'Integration' });
  for (const c of conditions) {
    const before = findCondition(previous, c.type);
    if (before?.status === c.status && before.reason === c.reason) continue;
    if (c.type === ConditionTypes.Ready && c.status === 'True' && before?.status !== 'True') void ctx.recorder.record(subject(integration), 'Normal', c.reason, c.message);
    else if (c.status === 'False' && WARN_ON.has(c.type)) void ctx.recorder.record(subject(integration), 'Warning', c.reason, c.message);
  }
}

/**
 * Refreshes `status.backlog` (pending + unacknowledged events) and `status.consumer` (its ack
 * floor, where a lost consumer resumes) of one Integration from its consumer, writing only when
 * they changed. A missing consumer (deleted by hand) returns
 * `missing: true` so the caller reconciles the Integration, which re-creates it.
 * @throws SwitchyardError NATS_UNAVAILABLE; ApiException from the status write.
 */
export async function refreshBacklog(ctx: ReconcileContext, integration: LiveIntegration, info: ConsumerInfo | undefined): Promise<{ missing: boolean }> {
  if (!info) return { missing: true };
  const key = `Integration/${integration.metadata.namespace}/${integration.metadata.name}`;
  const current = ctx.statusMemo.current(key, integration);
  const backlog = consumerBacklog(info);
  const consumer = { name: info.name, ackFloor: info.ack_floor.stream_seq, streamCreated: await ctx.nats.eventsStreamCreated() };
  if (!integration.status || (current.backlog === backlog && jsonEqual(current.consumer, consumer))) return { missing: false };
  const version = await patchStatus(ctx.clients, 'Integration', integration.metadata.namespace!, integration.metadata.name, { backlog, consumer });
  ctx.statusMemo.remember(key, version, { ...current, backlog, consumer });
  ctx.metrics.statusWrites.inc({ kind: 'Integration' });
  return { missing: false };
}

/** Whether an update of an Integration needs a reconcile: anything but a status-only change does. */
export function integrationChanged(before: LiveIntegration | undefined, after: LiveIntegration): boolean {
  if (!before) return true;
  const meta = (i: LiveIntegration) => [i.metadata.generation, String(i.metadata.deletionTimestamp ?? ''), i.metadata.finalizers ?? [], i.metadata.uid];
  return !jsonEqual(meta(before), meta(after));
}
