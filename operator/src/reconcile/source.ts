import { API_VERSION } from '@switchyard/runtime/api';
import { ConditionTypes, Reasons, findCondition, mergeConditions, readyCondition, type Condition } from '../conditions.js';
import { desiredSourcesSecret, resolveSources } from '../desired/source.js';
import { applyObject, patchStatus } from '../kube/client.js';
import type { ReconcileResult } from '../kube/queue.js';
import { jsonEqual, secretData, type ReconcileContext } from './context.js';

/** Queue key of the one reconcile that handles every Source together. */
export const SOURCES_QUEUE_KEY = 'Sources';

/**
 * Reconciles every Source at once, since write keys must be unique across them (`holders`: the
 * Sources that held their write keys after the previous pass, kept by the caller): resolves each
 * write key from its Secret, applies the ingestion's sources Secret (the ingestion re-reads the
 * mounted file without a restart), then writes each Source's status (WriteKeyResolved, Ready)
 * where it changed, with an Event when a Source's readiness flips.
 * @throws ApiException when the sources Secret cannot be written (e.g. its namespace is missing).
 */
export async function reconcileSources(ctx: ReconcileContext, holders: Set<string> = new Set()): Promise<ReconcileResult> {
  const sources = ctx.cache.sources.list().filter((s) => !s.metadata.deletionTimestamp);
  const resolved = resolveSources(
    sources as never,
    (ns, name) => {
      const secret = ctx.cache.secrets.get(name, ns);
      return secret ? secretData(secret) : undefined;
    },
    holders,
  );
  const { namespace, sourcesSecret } = ctx.settings.ingestion;
  await applyObject(ctx.clients, desiredSourcesSecret(resolved, namespace, sourcesSecret));
  // The next pass favours these even before the informer shows their new status.
  holders.clear();
  for (const r of resolved) if (r.entry) holders.add(`${r.entry.namespace}/${r.entry.name}`);
  for (const { source, condition } of resolved) {
    const live = ctx.cache.sources.get(source.metadata.name, source.metadata.namespace);
    if (!live) continue;
    const key = `Source/${live.metadata.namespace}/${live.metadata.name}`;
    const current = ctx.statusMemo.current(key, live);
    const previous = (current.conditions ?? []) as Condition[];
    const generation = live.metadata.generation;
    const ready = readyCondition([condition], { reason: Reasons.Ready, message: "the write key is in the ingestion's sources Secret" });
    const status = { observedGeneration: generation, conditions: mergeConditions(previous, [ready, condition], generation, ctx.clock.now()) };
    if (jsonEqual(status, current)) continue;
    const version = await patchStatus(ctx.clients, 'Source', live.metadata.namespace!, live.metadata.name, status, current);
    ctx.statusMemo.remember(key, version, status);
    ctx.metrics.statusWrites.inc({ kind: 'Source' });
    if (findCondition(previous, ConditionTypes.Ready)?.status !== ready.status) {
      void ctx.recorder.record({ apiVersion: API_VERSION, kind: 'Source', metadata: live.metadata as never }, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message);
    }
  }
  return {};
}
