import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { TSchema } from '@sinclair/typebox';
import { API_VERSION, GROUP } from './common.js';
import { Integration } from './integration.js';
import { Mapping } from './mapping.js';
import { Secret } from './secret.js';
import { Source } from './source.js';
import { compileValidator, createAjv, formatProblems } from './validate.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';

/** Any object Switchyard reads from YAML. */
export type Resource = Source | Integration | Mapping | Secret;

/** Namespace used when a resource's metadata names none (as kubectl does). */
export const DEFAULT_NAMESPACE = 'default';

const SCHEMAS: Record<string, TSchema> = { Source, Integration, Mapping };
let validators: Map<string, ReturnType<typeof compileValidator>> | undefined;

function validatorFor(kind: string) {
  if (!validators) {
    validators = new Map();
    for (const [k, schema] of Object.entries(SCHEMAS)) validators.set(k, compileValidator(schema, createAjv()));
    validators.set('Secret', compileValidator(Secret, createAjv()));
  }
  return validators.get(kind);
}

/** A resource with where it came from, for error messages. */
export interface LoadedResource {
  resource: Resource;
  /** `file#index` of the YAML document. */
  origin: string;
}

/** A problem of one document, with its origin. */
export interface ResourceProblem extends Problem {
  origin: string;
  /** `Kind/namespace/name` when known. */
  object?: string;
}

/** `Kind/namespace/name` of a resource. */
export function objectKey(r: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${r.kind}/${r.metadata.namespace ?? DEFAULT_NAMESPACE}/${r.metadata.name}`;
}

/** A document of another API group or kind, left alone by Switchyard. */
export interface SkippedResource {
  origin: string;
  apiVersion: string;
  kind: string;
}

/**
 * Tells whether a parsed document is some other Kubernetes object (a Deployment, a ConfigMap…)
 * that Switchyard does not read: it has an `apiVersion` and a `kind`, and is neither of the
 * `switchyard.io` group nor a v1 Secret. GitOps folders mix such manifests with ours.
 * @returns `{apiVersion, kind}` of such a document, else undefined (ours, or not a Kubernetes object).
 */
export function otherResourceKind(doc: unknown): { apiVersion: string; kind: string } | undefined {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const { apiVersion, kind } = doc as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !apiVersion || !kind) return undefined;
  // A switchyard.io document with a wrong version or kind is a mistake in ours, not someone else's.
  if (apiVersion === GROUP || apiVersion.startsWith(`${GROUP}/`)) return undefined;
  if (apiVersion === 'v1' && kind === 'Secret') return undefined;
  return { apiVersion, kind };
}

/**
 * Validates one parsed document against its kind's schema, applying schema defaults in place and
 * setting `metadata.namespace` to `default` when absent. Documents of other API groups are refused
 * (a forwarder config must hold ours); {@link loadResources} skips them first (see {@link otherResourceKind}).
 * @returns the problems (empty when valid).
 */
export function validateDocument(doc: unknown, origin: string): { resource?: Resource; problems: ResourceProblem[] } {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    return { problems: [{ origin, path: '/', rule: 'type', message: 'a document must be a Kubernetes object' }] };
  }
  const obj = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: string; namespace?: string } };
  const kind = typeof obj.kind === 'string' ? obj.kind : '';
  const known = (kind === 'Secret' && obj.apiVersion === 'v1') || (kind in SCHEMAS && obj.apiVersion === API_VERSION);
  if (!known) {
    return {
      problems: [
        {
          origin,
          path: '/kind',
          rule: 'enum',
          message: `unsupported apiVersion/kind ${typeof obj.apiVersion === 'string' && obj.apiVersion ? obj.apiVersion : '(none)'}/${kind || '(none)'}; expected ${API_VERSION} Source, Integration or Mapping, or v1 Secret`,
        },
      ],
    };
  }
  const validate = validatorFor(kind)!;
  const result = validate(doc);
  const object = obj.metadata?.name ? `${kind}/${obj.metadata.namespace ?? DEFAULT_NAMESPACE}/${obj.metadata.name}` : kind;
  if (!result.ok) return { problems: result.problems.map((p) => ({ ...p, origin, object })) };
  const resource = result.value as Resource;
  resource.metadata.namespace ??= DEFAULT_NAMESPACE;
  return { resource, problems: [] };
}

/** Parses the YAML (or JSON) text of one file into documents; syntax errors become problems. */
export function parseYaml(text: string, file: string): { docs: { doc: unknown; origin: string }[]; problems: ResourceProblem[] } {
  const docs: { doc: unknown; origin: string }[] = [];
  const problems: ResourceProblem[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    const origin = `${file}#${i}`;
    if (d.errors.length > 0) {
      for (const e of d.errors) problems.push({ origin, path: '/', rule: 'yaml', message: e.message });
      return;
    }
    const value = d.toJS();
    if (value !== null && value !== undefined) docs.push({ doc: value, origin });
  });
  return { docs, problems };
}

/** Mapping test files (`switchyard test`): `*.test.yaml`, `*.test.yml`, `*.test.json`. Not resources. */
export const TEST_FILE = /\.test\.(ya?ml|json)$/;

/**
 * Expands files and folders (non-recursive: `*.yaml`, `*.yml`, `*.json` in them, except Mapping
 * test files) into file paths, sorted. A file named explicitly is always kept.
 */
export async function expandPaths(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let info;
    try {
      info = await stat(p);
    } catch (cause) {
      throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot read ${p}: ${(cause as Error).message}`, { cause });
    }
    if (info.isDirectory()) {
      const names = (await readdir(p)).filter((n) => /\.(ya?ml|json)$/.test(n) && !TEST_FILE.test(n)).sort();
      out.push(...names.map((n) => path.join(p, n)));
    } else out.push(p);
  }
  return out;
}

/**
 * Reads and validates every document of the given files and folders. Documents of other API
 * groups and kinds (see {@link otherResourceKind}) are skipped, not validated.
 * @returns the valid resources, every problem found (schema, YAML syntax, duplicates), the
 * `Kind/namespace/name` keys of documents refused by their schema (so references to them can say
 * so instead of "not found"), and the skipped documents.
 * @throws SwitchyardError BAD_FILE when a path cannot be read.
 */
export async function loadResources(
  paths: string[],
): Promise<{ resources: LoadedResource[]; problems: ResourceProblem[]; invalid: Set<string>; skipped: SkippedResource[] }> {
  const resources: LoadedResource[] = [];
  const skipped: SkippedResource[] = [];
  const invalid = new Set<string>();
  const problems: ResourceProblem[] = [];
  const seen = new Map<string, string>();
  for (const file of await expandPaths(paths)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot read ${file}: ${(cause as Error).message}`, { cause });
    }
    const parsed = parseYaml(text, file);
    problems.push(...parsed.problems);
    for (const { doc, origin } of parsed.docs) {
      const other = otherResourceKind(doc);
      if (other) {
        skipped.push({ origin, ...other });
        continue;
      }
      const { resource, problems: p } = validateDocument(doc, origin);
      problems.push(...p);
      if (!resource) {
        if (p[0]?.object?.includes('/')) invalid.add(p[0].object);
        continue;
      }
      const key = objectKey(resource);
      const earlier = seen.get(key);
      if (earlier) {
        problems.push({ origin, object: key, path: '/metadata/name', rule: 'unique', message: `${key} is also defined at ${earlier}` });
        continue;
      }
      seen.set(key, origin);
      resources.push({ resource, origin });
    }
  }
  return { resources, problems, invalid, skipped };
}

/** Summarises skipped documents for a terminal: `2 other resource(s) skipped (apps/v1 Deployment, v1 Service)`. */
export function formatSkipped(skipped: SkippedResource[]): string {
  const kinds = [...new Set(skipped.map((s) => `${s.apiVersion} ${s.kind}`))];
  return `${skipped.length} other resource(s) skipped (${kinds.join(', ')})`;
}

/** Formats resource problems, one per line, for a terminal. */
export function formatResourceProblems(problems: ResourceProblem[]): string {
  return problems.map((p) => `${p.origin}${p.object ? ` (${p.object})` : ''}: ${p.path}: ${p.message} (${p.rule})`).join('\n');
}

export { formatProblems };
