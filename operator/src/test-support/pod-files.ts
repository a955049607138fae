import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import type { V1ObjectFieldSelector, V1Pod } from '@kubernetes/client-node';

/** A ConfigMap or Secret as the API serves it (Secret `data` values are base64). */
export interface KeyedObject {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** The bytes of every key of a ConfigMap (`data` as UTF-8, `binaryData` base64-decoded). */
export function configMapBytes(cm: KeyedObject): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(cm.data ?? {})) out.set(k, Buffer.from(v, 'utf8'));
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out.set(k, Buffer.from(v, 'base64'));
  return out;
}

/** The bytes of every key of a Secret (its `data` base64-decoded). */
export function secretBytes(secret: KeyedObject): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(secret.data ?? {})) out.set(k, Buffer.from(v, 'base64'));
  return out;
}

/**
 * Picks the files of a volume from an object's keys: every key as a file of its name, or only
 * `items` (key → relative path, optional per-file mode). A listed key that is missing fails unless
 * `optional`.
 * @throws Error naming the missing key.
 */
export function selectItems(
  keys: Map<string, Buffer>,
  items: { key: string; path: string; mode?: number }[] | undefined,
  what: string,
  optional: boolean,
): { path: string; bytes: Buffer; mode?: number }[] {
  if (!items || items.length === 0) return [...keys].map(([k, bytes]) => ({ path: k, bytes }));
  const out: { path: string; bytes: Buffer; mode?: number }[] = [];
  for (const item of items) {
    const bytes = keys.get(item.key);
    if (bytes === undefined) {
      if (optional) continue;
      throw new Error(`key ${item.key} not found in ${what}`);
    }
    out.push({ path: item.path, bytes, ...(item.mode !== undefined ? { mode: item.mode } : {}) });
  }
  return out;
}

/**
 * Makes the files of `dir` exactly `files` (paths relative to it): each changed file is written
 * to a temporary name then renamed over the old one, so a reader never sees a half-written file,
 * and files listed in `previous` but no longer wanted are removed. Unchanged files are not touched
 * (their mtime stays). Resolves to the set of paths now written, for the next call.
 */
export async function syncFiles(
  dir: string,
  files: { path: string; bytes: Buffer; mode?: number }[],
  defaultMode: number,
  previous: ReadonlySet<string>,
): Promise<Set<string>> {
  const written = new Set<string>();
  for (const f of files) {
    const rel = path.normalize(f.path);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`volume file path ${f.path} leaves the volume`);
    const target = path.join(dir, rel);
    written.add(rel);
    const mode = f.mode ?? defaultMode;
    const current = await readFile(target).catch(() => undefined);
    if (current && current.equals(f.bytes)) continue;
    await mkdir(path.dirname(target), { recursive: true });
    const tmp = `${target}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, f.bytes);
    // Mode 0o444-style read-only files stay readable by the owner that rewrites them later.
    await chmod(tmp, mode | 0o600);
    await rename(tmp, target);
  }
  for (const rel of previous) {
    if (!written.has(rel)) await rm(path.join(dir, rel), { force: true });
  }
  return written;
}

/**
 * The value of a downward-API field of `pod` (`metadata.name`, `metadata.namespace`,
 * `metadata.uid`, `metadata.labels['k']`, `metadata.annotations['k']`, `metadata.labels` and
 * `metadata.annotations` as `k="v"` lines, `spec.nodeName`, `spec.serviceAccountName`,
 * `status.podIP`, `status.podIPs`, `status.hostIP`, `status.hostIPs`); the IPs are 127.0.0.1.
 * @throws Error for any other field path.
 */
export function podField(pod: V1Pod, ref: V1ObjectFieldSelector, nodeName: string): string {
  const p = ref.fieldPath;
  const meta = pod.metadata ?? {};
  const mapKey = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(p);
  if (mapKey) return (meta[mapKey[1] as 'labels' | 'annotations'] ?? {})[mapKey[2]!] ?? '';
  switch (p) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'metadata.labels':
    case 'metadata.annotations': {
      const m = (p === 'metadata.labels' ? meta.labels : meta.annotations) ?? {};
      return Object.keys(m)
        .sort()
        .map((k) => `${k}=${JSON.stringify(m[k])}`)
        .join('\n');
    }
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? 'default';
    case 'status.podIP':
    case 'status.podIPs':
    case 'status.hostIP':
    case 'status.hostIPs':
      return '127.0.0.1';
    default:
      throw new Error(`fieldRef ${p} is not supported by the fake node`);
  }
}

/**
 * Kubernetes' `$(VAR)` expansion of command, args and env values: `$(NAME)` becomes the value of
 * NAME when `lookup` knows it and stays as written otherwise; `$$` is a literal `$`.
 */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c !== '$' || i + 1 >= input.length) {
      out += c;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close === -1) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const value = lookup(name);
      out += value ?? input.slice(i, close + 1);
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/** A rewrite of a path prefix (`from`, e.g. a mountPath or an image's `/app`) to a local folder. */
export interface PathRule {
  from: string;
  to: string;
}

/**
 * Rewrites `value` when it is a path under one of `rules` (exactly `from`, or `from/…`), either
 * as a whole or after the first `=` (`--config=/etc/x`). The first matching rule wins, so list
 * the longer prefixes first.
 */
export function rewritePath(value: string, rules: readonly PathRule[]): string {
  const apply = (s: string): string | undefined => {
    for (const r of rules) {
      if (s === r.from || s.startsWith(r.from.endsWith('/') ? r.from : `${r.from}/`)) return r.to + s.slice(r.from.length);
    }
    return undefined;
  };
  const whole = apply(value);
  if (whole !== undefined) return whole;
  const eq = value.indexOf('=');
  if (eq > 0) {
    const rest = apply(value.slice(eq + 1));
    if (rest !== undefined) return value.slice(0, eq + 1) + rest;
  }
  return value;
}

/**
 * Rewrites a declared container port to the local one it was given: `value` equal to the port
 * number, or ending in `=NUM` or `:NUM` (`--port=8080`, `0.0.0.0:8080`).
 */
export function rewritePort(value: string, ports: ReadonlyMap<number, number>): string {
  const m = /^(.*[=:])?(\d+)$/.exec(value);
  if (!m) return value;
  const local = ports.get(Number(m[2]));
  return local === undefined ? value : `${m[1] ?? ''}${local}`;
}
