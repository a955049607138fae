import { compileMappingResource } from '@switchyard/runtime';
import { API_VERSION, type Mapping } from '@switchyard/runtime/api';
import { ConditionTypes, Reasons, findCondition, mergeConditions, type Condition, type ConditionInput } from '../conditions.js';
import { patchStatus } from '../kube/client.js';
import type { ReconcileResult } from '../kube/queue.js';
import { jsonEqual, type ReconcileContext } from './context.js';

/**
 * Reconciles one Mapping: compiles it and writes `Ready` (reason Compiled, or MappingInvalid with
 * the compiler's message naming the offending rule) when it changed. The Integrations that use it
 * are queued by the controller on every Mapping change.
 */
export async function reconcileMapping(ctx: ReconcileContext, namespace: string, name: string): Promise<ReconcileResult> {
  const mapping = ctx.cache.mappings.get(name, namespace);
  if (!mapping || mapping.metadata.deletionTimestamp) return {};
  let ready: ConditionInput;
  try {
    compileMappingResource(mapping as Mapping);
    const users = ctx.cache.integrations.list(namespace).filter((i) => i.spec.mappingRef.name === name).length;
    ready = { type: ConditionTypes.Ready, status: 'True', reason: Reasons.Compiled, message: `compiled; used by ${users} Integration${users === 1 ? '' : 's'}` };
  } catch (e) {
    ready = { type: ConditionTypes.Ready, status: 'False', reason: Reasons.MappingInvalid, message: (e as Error).message };
  }
  const key = `Mapping/${namespace}/${name}`;
  const current = ctx.statusMemo.current(key, mapping);
  const previous = (current.conditions ?? []) as Condition[];
  const generation = mapping.metadata.generation;
  const status = { observedGeneration: generation, conditions: mergeConditions(previous, [ready], generation, ctx.clock.now()) };
  if (jsonEqual(status, current)) return {};
  const version = await patchStatus(ctx.clients, 'Mapping', namespace, name, status, current);
  ctx.statusMemo.remember(key, version, status);
  ctx.metrics.statusWrites.inc({ kind: 'Mapping' });
  const before = findCondition(previous, ConditionTypes.Ready);
  if (before?.status !== ready.status) {
    // The Event says what happened; the user count belongs to status only (it changes without a transition).
    const message = ready.status === 'True' ? 'compiled' : ready.message;
    void ctx.recorder.record({ apiVersion: API_VERSION, kind: 'Mapping', metadata: mapping.metadata as Mapping['metadata'] }, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, message);
  }
  return {};
}
