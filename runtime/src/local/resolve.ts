import { checkDestination, destinationDefinition } from '../destinations/index.js';
import type { Integration, LoadedResource, Mapping, ResourceProblem, Secret, Source } from '../api/index.js';
import { objectKey, secretValues, tagProblems } from '../api/index.js';
import type { IngestionSource } from '../ingestion/index.js';
import type { ForwarderConfig } from '../forward/index.js';
import { compileIntegrationRoute, compileMappingResource } from '../forward/route.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';

/** Everything `switchyard dev` runs, resolved from YAML resources. */
export interface LocalPlan {
  sources: IngestionSource[];
  forwarders: ForwarderConfig[];
}

/**
 * Resolves references between loaded resources the way the operator does in a cluster: a Source's
 * write key (literal, or a Secret key), an Integration's Mapping, Sources and credentials Secret,
 * all in the referring resource's namespace. Every Mapping is compiled, so rule errors surface here.
 * With `requireSecrets: false` (offline validation of a Git repo, where Secrets usually are not)
 * a missing Secret is not a problem; the resources that need it are left out of the plan.
 * @returns the plan and every problem found (missing references, mapping errors), each naming
 * the resource and field.
 */
export function resolveLocal(loaded: LoadedResource[], options: { requireSecrets?: boolean; invalid?: Set<string> } = {}): { plan: LocalPlan; problems: ResourceProblem[] } {
  const requireSecrets = options.requireSecrets ?? true;
  const byKey = new Map<string, LoadedResource>();
  for (const l of loaded) byKey.set(objectKey(l.resource), l);
  const lookup = <T>(kind: string, ns: string, name: string) => byKey.get(`${kind}/${ns}/${name}`)?.resource as T | undefined;
  const problems: ResourceProblem[] = [];
  const problem = (l: LoadedResource, path: string, rule: string, message: string) =>
    problems.push({ origin: l.origin, object: objectKey(l.resource), path, rule, message });
  const missing = (kind: string, ns: string, name: string) =>
    options.invalid?.has(`${kind}/${ns}/${name}`) ? `${kind} ${ns}/${name} has errors` : `${kind} ${ns}/${name} not found`;

  const sources: IngestionSource[] = [];
  const writeKeys = new Map<string, string>();
  const compiled = new Map<string, boolean>();

  for (const l of loaded) {
    const r = l.resource;
    const ns = r.metadata.namespace!;
    if (r.kind === 'Source') {
      const spec = (r as Source).spec;
      // What the CRD's CEL rules check in a cluster: sync kinds and their fields, unique names.
      if (spec.tag) for (const p of tagProblems(spec.tag)) problem(l, `/spec/tag${p.path}`, p.rule, p.message);
      let writeKey = spec.writeKey.value;
      if (spec.writeKey.secretKeyRef) {
        const { name, key } = spec.writeKey.secretKeyRef;
        const secret = lookup<Secret>('Secret', ns, name);
        writeKey = secret ? secretValues(secret)[key] : undefined;
        if (!secret) {
          if (requireSecrets) problem(l, '/spec/writeKey/secretKeyRef/name', 'reference', missing('Secret', ns, name));
        }
        else if (writeKey === undefined) problem(l, '/spec/writeKey/secretKeyRef/key', 'reference', `Secret ${ns}/${name} has no key ${key}`);
      }
      if (writeKey === undefined) continue;
      const other = writeKeys.get(writeKey);
      if (other) {
        problem(l, '/spec/writeKey', 'unique', `write key already used by ${other}`);
        continue;
      }
      writeKeys.set(writeKey, objectKey(r));
      sources.push({
        namespace: ns,
        name: r.metadata.name,
        writeKey,
        allowedOrigins: [...spec.allowedOrigins],
        limits: { ...spec.limits },
        consent: { missing: spec.consent?.missing ?? 'allow' },
        ...(spec.tag ? { tag: structuredClone(spec.tag) } : {}),
      });
    } else if (r.kind === 'Mapping') {
      try {
        compileMappingResource(r as Mapping);
        compiled.set(objectKey(r), true);
      } catch (e) {
        compiled.set(objectKey(r), false);
        const details = (e as SwitchyardError).details as { path: string; rule: string; message: string }[] | undefined;
        if (details?.length) for (const d of details) problem(l, `/spec${d.path}`, d.rule, d.message);
        else problem(l, '/spec', 'mapping', (e as Error).message);
      }
    }
  }

  const forwarders: ForwarderConfig[] = [];
  for (const l of loaded) {
    if (l.resource.kind !== 'Integration') continue;
    const integration = l.resource as Integration;
    const ns = integration.metadata.namespace!;
    const spec = integration.spec;
    let ok = true;
    spec.sourceRefs.forEach((ref, i) => {
      if (!lookup<Source>('Source', ns, ref.name)) {
        problem(l, `/spec/sourceRefs/${i}/name`, 'reference', missing('Source', ns, ref.name));
        ok = false;
      }
    });
    const mapping = lookup<Mapping>('Mapping', ns, spec.mappingRef.name);
    if (!mapping) {
      problem(l, '/spec/mappingRef/name', 'reference', missing('Mapping', ns, spec.mappingRef.name));
      ok = false;
    } else if (compiled.get(objectKey(mapping)) === false) {
      problem(l, '/spec/mappingRef/name', 'reference', `Mapping ${ns}/${spec.mappingRef.name} has errors`);
      ok = false;
    } else if (mapping.spec.destinationType && mapping.spec.destinationType !== spec.destination.type) {
      problem(l, '/spec/mappingRef/name', 'destinationType', `Mapping ${ns}/${spec.mappingRef.name} is written for ${mapping.spec.destinationType}, not ${spec.destination.type}`);
      ok = false;
    } else {
      // The Integration's own checks: events.where, and the Mapping against the destination's output schema.
      try {
        compileIntegrationRoute(integration, mapping);
      } catch (e) {
        const details = (e as SwitchyardError).details as { path: string; rule: string; message: string }[] | undefined;
        const isMapping = (e as SwitchyardError).code === ErrorCodes.INVALID_MAPPING;
        if (details?.length) for (const d of details) problem(l, isMapping ? '/spec/mappingRef/name' : d.path, d.rule, isMapping ? `Mapping ${ns}/${spec.mappingRef.name} at ${d.path}: ${d.message}` : d.message);
        else problem(l, '/spec', 'integration', (e as Error).message);
        ok = false;
      }
    }
    let credentials: Record<string, string> = {};
    let credentialsKnown = true;
    if (spec.credentialsSecretRef) {
      const secret = lookup<Secret>('Secret', ns, spec.credentialsSecretRef.name);
      if (!secret) {
        if (requireSecrets) problem(l, '/spec/credentialsSecretRef/name', 'reference', missing('Secret', ns, spec.credentialsSecretRef.name));
        ok = false;
        credentialsKnown = false;
      } else credentials = secretValues(secret);
    }
    const definition = destinationDefinition(spec.destination.type);
    if (definition) {
      try {
        // Settings and batch size always; the Secret's keys only when the Secret is at hand.
        checkDestination(definition, integration, credentialsKnown ? credentials : undefined);
      } catch (e) {
        const details = (e as SwitchyardError).details as { path: string; rule: string; message: string }[] | undefined;
        if (details?.length) for (const d of details) problem(l, `/spec/destination/${definition.settingsField}${d.path}`, d.rule, d.message);
        else {
          const credentials = /credentials Secret/.test((e as Error).message);
          problem(l, credentials ? (spec.credentialsSecretRef ? '/spec/credentialsSecretRef/name' : '/spec/credentialsSecretRef') : '/spec/destination', credentials ? 'credentials' : 'destination', (e as Error).message);
        }
        ok = false;
      }
    }
    if (ok && mapping) forwarders.push({ integration, mapping, credentials });
  }
  return { plan: { sources, forwarders }, problems };
}
