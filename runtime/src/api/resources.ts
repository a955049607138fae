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
/**
 * A file's text (UTF-8).
 * @throws SwitchyardError BAD_FILE naming the file when it cannot be read.
 */
export async function readTextFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}

export const TEST_FILE = /\.test\.(ya?ml|json)$/;

const DATA_FILE = /\.(ya?ml|json)$/;

/** Options of {@link expandPaths} and {@link loadResources}. */
export interface ExpandOptions {
  /** Also read subfolders, like `kubectl apply -R` (skipping `node_modules` and dot-folders). Default: false. */
  recursive?: boolean;
  /** Also list Mapping test files (`*.test.yaml`…) found in folders. Default: false. */
  testFiles?: boolean;
}

/**
 * Expands files and folders into file paths, sorted per folder: the `*.yaml`, `*.yml` and `*.json`
 * files of each folder except Mapping test files, and with `recursive` those of its subfolders.
 * A file named explicitly is always kept.
 * @returns the files, and (without `recursive`) the subfolders holding such files that were not
 * read, so callers can say so instead of passing silently.
 * @throws SwitchyardError BAD_FILE when a path cannot be read.
 */
export async function expandPaths(paths: string[], options: ExpandOptions = {}): Promise<string[] & { unread?: string[] }> {
  const out: string[] & { unread?: string[] } = [];
  const unread: string[] = [];
  const listed = (name: string): boolean => DATA_FILE.test(name) && (options.testFiles === true || !TEST_FILE.test(name));
  const holdsData = async (dir: string, depth: number): Promise<boolean> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    if (entries.some((e) => e.isFile() && DATA_FILE.test(e.name) && !TEST_FILE.test(e.name))) return true;
    if (depth >= 3) return false;
    for (const e of entries) if (e.isDirectory() && !skipFolder(e.name) && (await holdsData(path.join(dir, e.name), depth + 1))) return true;
    return false;
  };
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) if (e.isFile() && listed(e.name)) out.push(path.join(dir, e.name));
    for (const e of entries) {
      if (!e.isDirectory() || skipFolder(e.name)) continue;
      const sub = path.join(dir, e.name);
      if (options.recursive) await walk(sub);
      else if (await holdsData(sub, 0)) unread.push(sub);
    }
  };
  for (const p of paths) {
    let info;
    try {
      info = await stat(p);
    } catch (cause) {
      throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot read ${p}: ${(cause as Error).message}`, { cause });
    }
    if (info.isDirectory()) await walk(p);
    else out.push(p);
  }
  if (unread.length > 0) out.unread = unread;
  return out;
}

const skipFolder = (name: string): boolean => name === 'node_modules' || name.startsWith('.');

/** The note callers print when folders were not read: `subfolders not read (add -R to read them): a/b, a/c`. */
export function formatUnread(unread: readonly string[] | undefined): string | undefined {
  return unread && unread.length > 0 ? `note: subfolders not read (add -R to read them): ${unread.join(', ')}` : undefined;
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
  options: ExpandOptions = {},
): Promise<{ resources: LoadedResource[]; problems: ResourceProblem[]; invalid: Set<string>; skipped: SkippedResource[]; unread: string[] }> {
  const resources: LoadedResource[] = [];
  const skipped: SkippedResource[] = [];
  const invalid = new Set<string>();
  const problems: ResourceProblem[] = [];
  const seen = new Map<string, string>();
  const files = await expandPaths(paths, options);
  for (const file of files) {
    const text = await readTextFile(file);
    const parsed = parseYaml(text, file);
    problems.push(...parsed.problems);
    for (const { doc, origin } of parsed.docs) {
      const other = otherResourceKind(doc);
      if (other) {
        skipped.push({ origin, ...other });
        continue;
      }
      // Folders hold data files too (event fixtures, package.json): not objects at all.
      if (isPlainData(doc)) {
        skipped.push({ origin, apiVersion: '', kind: 'non-Kubernetes document' });
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
  return { resources, problems, invalid, skipped, unread: files.unread ?? [] };
}

/**
 * A document with none of `apiVersion`, `kind`, `metadata` and `spec`: plain data (an event, a
 * package.json), not a Kubernetes object. One with any of them is checked, so a resource missing
 * its apiVersion is still reported.
 */
const isPlainData = (doc: unknown): boolean =>
  !doc || typeof doc !== 'object' || Array.isArray(doc) || !['apiVersion', 'kind', 'metadata', 'spec'].some((k) => k in doc);

/** Summarises skipped documents for a terminal: `2 other resource(s) skipped (apps/v1 Deployment, v1 Service)`. */
export function formatSkipped(skipped: SkippedResource[]): string {
  const kinds = [...new Set(skipped.map((s) => `${s.apiVersion} ${s.kind}`.trim()))];
  return `${skipped.length} other resource(s) skipped (${kinds.join(', ')})`;
}

/** Most problems shown per file: one YAML slip (an unquoted `[`) can otherwise produce hundreds. */
export const MAX_PROBLEMS_PER_FILE = 20;

/**
 * Keeps the first {@link MAX_PROBLEMS_PER_FILE} problems of each file, adding one line per file
 * that says how many more there are.
 */
export function capProblems(problems: readonly ResourceProblem[]): ResourceProblem[] {
  const perFile = new Map<string, number>();
  const out: ResourceProblem[] = [];
  const fileOf = (p: ResourceProblem) => p.origin.replace(/#\d+$/, '');
  for (const p of problems) {
    const file = fileOf(p);
    const n = (perFile.get(file) ?? 0) + 1;
    perFile.set(file, n);
    if (n <= MAX_PROBLEMS_PER_FILE) out.push(p);
  }
  for (const [file, n] of perFile) {
    if (n > MAX_PROBLEMS_PER_FILE) out.push({ origin: file, path: '/', rule: 'more', message: `and ${n - MAX_PROBLEMS_PER_FILE} more problem(s) in this file; fix the first ones (often a YAML slip) and run again` });
  }
  return out;
}

/** Formats resource problems, one per line, for a terminal. */
export function formatResourceProblems(problems: ResourceProblem[]): string {
  return problems.map((p) => `${p.origin}${p.object ? ` (${p.object})` : ''}: ${p.path}: ${p.message} (${p.rule})`).join('\n');
}

export { formatProblems };
