import type { V1Secret } from '@kubernetes/client-node';
import type { SourcesFile } from '@switchyard/runtime';
import type { Source } from '@switchyard/runtime/api';
import { Labels, MANAGED_BY, Reasons, type ConditionInput, ConditionTypes } from '../conditions.js';

/** Key of the sources Secret holding the ingestion's sources file. */
export const SOURCES_FILE_KEY = 'sources.yaml';

/** What resolving one Source gave: its entry in the sources file, or why it has none. */
export interface ResolvedSource {
  source: Source;
  /** The WriteKeyResolved condition. */
  condition: ConditionInput;
  entry?: SourcesFile['sources'][number];
}

/**
 * Resolves every Source's write key (pure): from `writeKey.secretKeyRef` through `secrets`
 * (namespace/name → decoded data). An inline `writeKey.value` is refused in a cluster (it would
 * sit in plain sight in the resource). Two Sources with one write key are ambiguous: one already
 * resolved (in `holders`, the namespace/name of Sources resolved by the previous pass, or per its
 * status) keeps it, else the older one (creationTimestamp, then namespace/name);
 * the others are refused, so adding a Source never takes events away from one that works.
 */
export function resolveSources(
  sources: readonly Source[],
  secrets: (namespace: string, name: string) => Record<string, string> | undefined,
  holders: ReadonlySet<string> = new Set(),
): ResolvedSource[] {
  const held = (s: Source) =>
    holders.has(`${s.metadata.namespace ?? 'default'}/${s.metadata.name}`) || (s.status?.conditions ?? []).some((c) => c.type === ConditionTypes.WriteKeyResolved && c.status === 'True');
  const ordered = [...sources].sort((a, b) => {
    if (held(a) !== held(b)) return held(a) ? -1 : 1;
    const ta = (a.metadata as { creationTimestamp?: string | Date }).creationTimestamp;
    const tb = (b.metadata as { creationTimestamp?: string | Date }).creationTimestamp;
    const d = (ta ? new Date(ta).getTime() : 0) - (tb ? new Date(tb).getTime() : 0);
    return d !== 0 ? d : `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);
  });
  const owners = new Map<string, string>();
  return ordered.map((source) => {
    const ns = source.metadata.namespace ?? 'default';
    const fail = (reason: string, message: string): ResolvedSource => ({ source, condition: { type: ConditionTypes.WriteKeyResolved, status: 'False', reason, message } });
    const ref = source.spec.writeKey.secretKeyRef;
    if (!ref) return fail(Reasons.InlineWriteKey, 'spec.writeKey.value is honoured only by `switchyard dev`; in a cluster put the write key in a Secret and use spec.writeKey.secretKeyRef');
    const data = secrets(ns, ref.name);
    if (!data) return fail(Reasons.SecretNotFound, `Secret ${ns}/${ref.name} not found`);
    const writeKey = data[ref.key]?.trim();
    if (!writeKey) return fail(Reasons.SecretKeyNotFound, `Secret ${ns}/${ref.name} has no key ${ref.key} (or it is empty)`);
    const owner = owners.get(writeKey);
    if (owner) return fail(Reasons.WriteKeyConflict, `Source ${owner} already uses this write key; write keys must be unique`);
    owners.set(writeKey, `${ns}/${source.metadata.name}`);
    return {
      source,
      condition: { type: ConditionTypes.WriteKeyResolved, status: 'True', reason: Reasons.Resolved, message: `write key from Secret ${ref.name}, key ${ref.key}` },
      entry: {
        namespace: ns,
        name: source.metadata.name,
        writeKey,
        allowedOrigins: [...source.spec.allowedOrigins],
        limits: { ...source.spec.limits },
        consent: { missing: source.spec.consent?.missing ?? 'allow' },
        ...(source.spec.tag ? { tag: structuredClone(source.spec.tag) } : {}),
      },
    };
  });
}

/**
 * The ingestion's sources Secret (pure): key `sources.yaml` holding `{sources: […]}` (the runtime's
 * SourcesFile, JSON being YAML) sorted by namespace/name, so an unchanged set renders the same bytes.
 */
export function desiredSourcesSecret(resolved: readonly ResolvedSource[], namespace: string, name: string): V1Secret {
  const sources = resolved
    .flatMap((r) => (r.entry ? [r.entry] : []))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels: { [Labels.name]: 'switchyard', [Labels.component]: 'ingestion', [Labels.managedBy]: MANAGED_BY } },
    type: 'Opaque',
    stringData: { [SOURCES_FILE_KEY]: `${JSON.stringify({ sources }, null, 2)}\n` },
  };
}
