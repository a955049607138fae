/**
 * Paths of Mapping v1 rules, parsed once at compile time into segments, then read from events and
 * written into output objects without any per-event parsing. Grammar (see PATH_PATTERN in
 * api/mapping.ts): a first key, then `.key`, `[n]` or `["any key"]` segments, e.g.
 * `properties.products[0]["price.eur"]`.
 */

/**
 * One step of a path: an own key of an object, or an index of an array. `inherited` marks keys
 * that also name a property of Object.prototype (`toString`, `hasOwnProperty`…): only those need
 * an own-key check when read, so the common case is a single property load.
 */
export type PathSegment = { key: string; index?: undefined; inherited?: boolean } | { index: number; key?: undefined; inherited?: undefined };

/** Keys refused anywhere in a path: writing them could reach `Object.prototype`. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Largest array index a `to` path may write (keeps one rule from allocating a huge array). */
export const MAX_WRITE_INDEX = 9999;

const IDENT = /[A-Za-z0-9_$@-]/;

/**
 * Parses a path into segments.
 * @returns the segments, or an error message (not thrown: the compiler collects problems).
 */
export function parsePath(text: string): PathSegment[] | string {
  const segments: PathSegment[] = [];
  let i = 0;
  const ident = (): string => {
    const start = i;
    while (i < text.length && IDENT.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  while (i < text.length) {
    const first = segments.length === 0;
    const c = text[i]!;
    if (c === '[' && text[i + 1] === '"') {
      const end = text.indexOf('"]', i + 2);
      if (end < 0) return `unterminated ["…"] at offset ${i}`;
      const key = text.slice(i + 2, end);
      if (key.length === 0) return `empty key at offset ${i}`;
      segments.push({ key });
      i = end + 2;
    } else if (c === '[') {
      if (first) return 'a path cannot start with an index';
      const end = text.indexOf(']', i);
      const digits = end < 0 ? '' : text.slice(i + 1, end);
      if (!/^[0-9]+$/.test(digits)) return `bad index at offset ${i}: expected [n] or ["key"]`;
      segments.push({ index: Number(digits) });
      i = end + 1;
    } else if (c === '.' && !first) {
      i++;
      const key = ident();
      if (!key) return `expected a key after "." at offset ${i - 1}`;
      segments.push({ key });
    } else if (first) {
      const key = ident();
      if (!key) return `unexpected ${JSON.stringify(c)} at offset ${i}`;
      segments.push({ key });
    } else {
      return `unexpected ${JSON.stringify(c)} at offset ${i}`;
    }
  }
  if (segments.length === 0) return 'empty path';
  for (const s of segments) {
    if (s.key !== undefined && FORBIDDEN_KEYS.has(s.key)) return `the key ${JSON.stringify(s.key)} is not allowed in a path`;
  }
  // One shape for every segment keeps the readers' property accesses monomorphic.
  return segments.map((s) => (s.key !== undefined ? { key: s.key, index: undefined, inherited: s.key in Object.prototype } : { key: undefined, index: s.index, inherited: undefined }));
}

/**
 * Reads a path from a JSON value: only own keys of plain objects and in-range indexes of arrays.
 * @returns the value, or undefined when any step is missing.
 */
export function readPath(root: unknown, segments: readonly PathSegment[]): unknown {
  let cur: unknown = root;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (s.index !== undefined) {
      if (!Array.isArray(cur) || s.index >= cur.length) return undefined;
      cur = cur[s.index];
    } else {
      // `inherited` is false only for keys parsePath checked; segments built by hand get the own-key check.
      if (Array.isArray(cur) || (s.inherited !== false && !Object.hasOwn(cur, s.key))) return undefined;
      // A key no prototype of a JSON object holds can only be an own key: one load suffices.
      cur = (cur as Record<string, unknown>)[s.key];
    }
  }
  return cur;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function put(container: Record<string, unknown> | unknown[], s: PathSegment, value: unknown): void {
  if (s.index !== undefined) {
    const arr = container as unknown[];
    while (arr.length < s.index) arr.push(null);
    arr[s.index] = value;
  } else {
    // Keys were checked against FORBIDDEN_KEYS at compile time, and containers are plain objects
    // we created or copied: the only setter a plain object inherits (__proto__) cannot be reached.
    (container as Record<string, unknown>)[s.key] = value;
  }
}

/**
 * Writes `value` at `segments` into `out`, creating objects and arrays on the way; a non-container
 * in the way is replaced (later rules win). Containers not in `owned` (taken from the event or a
 * static value) are copied before being written into, so neither is ever mutated.
 */
export function writePath(out: Record<string, unknown>, segments: readonly PathSegment[], value: unknown, owned: Set<object> | WeakSet<object>): void {
  let cur: Record<string, unknown> | unknown[] = out;
  for (let i = 0; i < segments.length - 1; i++) {
    const s = segments[i]!;
    const wantArray = segments[i + 1]!.index !== undefined;
    let child: unknown = s.index !== undefined ? (cur as unknown[])[s.index] : Object.hasOwn(cur, s.key) ? (cur as Record<string, unknown>)[s.key] : undefined;
    if (wantArray ? !Array.isArray(child) : !isPlainObject(child)) {
      child = wantArray ? [] : {};
      owned.add(child as object);
    } else if (!owned.has(child as object)) {
      child = wantArray ? [...(child as unknown[])] : { ...(child as Record<string, unknown>) };
      owned.add(child as object);
    }
    put(cur, s, child);
    cur = child as Record<string, unknown> | unknown[];
  }
  put(cur, segments[segments.length - 1]!, value);
}
