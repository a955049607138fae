import type { ValidateFunction } from 'ajv';
import { MappingSpec, type DestinationType, type FieldRule, type MappingPart } from '../api/index.js';
import { createAjv, deepFreeze, toProblems } from '../api/validate.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { MAX_WRITE_INDEX, parsePath, readPath, writePath, type PathSegment } from './path.js';

/** A Segment-spec event as stored in the events stream (https://segment.com/docs/connections/spec/common/). */
export type SegmentEvent = Record<string, unknown>;

/**
 * What a compiled Mapping makes of one event: the output event name and payload, or why it was
 * dropped (`no_matching_rule`: no eventSpecific key matched and the Mapping has no `default`).
 */
export type MappingResult = { ok: true; name: string; payload: Record<string, unknown> } | { ok: false; dropped: 'no_matching_rule' };

/** A Mapping ready to apply: paths parsed, rules checked. Immutable and safe to share between forwarders. */
export interface CompiledMapping {
  /** Destination type the Mapping declares it is written for, if any. */
  readonly destinationType: DestinationType | undefined;
  /** Applies the rules to one event (never mutates it). Semantics: runtime/src/mapping/README.md. */
  apply(event: SegmentEvent): MappingResult;
}

type Source = { kind: 'name' } | { kind: 'type' } | { kind: 'path'; segments: PathSegment[] };

interface CompiledRule {
  to: PathSegment[];
  /** Static value (`value`), deep-frozen. */
  value?: { v: unknown };
  /** `from` then `fallbacks`, tried in order. */
  sources: Source[];
  /** `default`, deep-frozen. */
  fallback?: { v: unknown };
  each?: CompiledRule[];
}

interface CompiledPart {
  rename: string | undefined;
  rules: CompiledRule[];
}

interface Context {
  name: string;
  type: string;
}

let validateSpec: ValidateFunction | undefined;

/** JSON-pointer escaping of one token (RFC 6901). */
const esc = (token: string): string => token.replaceAll('~', '~0').replaceAll('/', '~1');

function compileSource(text: string, where: string, problems: Problem[]): Source | undefined {
  if (text === '$name') return { kind: 'name' };
  if (text === '$type') return { kind: 'type' };
  if (/^\$(name|type)[.[]/.test(text)) {
    problems.push({ path: where, rule: 'path', message: `${text.slice(0, 5)} takes no sub-path` });
    return undefined;
  }
  const parsed = parsePath(text);
  if (typeof parsed === 'string') {
    problems.push({ path: where, rule: 'path', message: parsed });
    return undefined;
  }
  return { kind: 'path', segments: parsed };
}

function compileRules(rules: readonly FieldRule[] | undefined, where: string, problems: Problem[]): CompiledRule[] {
  const out: CompiledRule[] = [];
  (rules ?? []).forEach((rule, i) => {
    const at = `${where}/${i}`;
    const before = problems.length;
    const hasFrom = rule.from !== undefined;
    const hasValue = Object.hasOwn(rule, 'value');
    if (hasFrom && hasValue) problems.push({ path: `${at}/value`, rule: 'oneOf', message: 'a rule takes exactly one of from and value, not both' });
    if (!hasFrom && !hasValue) problems.push({ path: at, rule: 'oneOf', message: 'a rule needs exactly one of from and value' });
    if (!hasFrom && Object.hasOwn(rule, 'default')) problems.push({ path: `${at}/default`, rule: 'dependency', message: 'default is only allowed with from' });
    if (!hasFrom && rule.fallbacks !== undefined) problems.push({ path: `${at}/fallbacks`, rule: 'dependency', message: 'fallbacks are only allowed with from' });
    if (!hasFrom && rule.each !== undefined) problems.push({ path: `${at}/each`, rule: 'dependency', message: 'each is only allowed with from' });

    const to = parsePath(rule.to);
    if (typeof to === 'string') problems.push({ path: `${at}/to`, rule: 'path', message: to });
    else if (to.some((s) => s.index !== undefined && s.index > MAX_WRITE_INDEX)) {
      problems.push({ path: `${at}/to`, rule: 'path', message: `array indexes written by a rule are at most ${MAX_WRITE_INDEX}` });
    }
    const sources: Source[] = [];
    if (hasFrom) {
      const s = compileSource(rule.from!, `${at}/from`, problems);
      if (s) sources.push(s);
    }
    (rule.fallbacks ?? []).forEach((f, j) => {
      const s = compileSource(f, `${at}/fallbacks/${j}`, problems);
      if (s) sources.push(s);
    });
    const each = rule.each !== undefined ? compileRules(rule.each, `${at}/each`, problems) : undefined;
    if (problems.length > before || typeof to === 'string') return;
    const compiled: CompiledRule = { to, sources };
    if (hasValue) compiled.value = { v: deepFreeze(structuredClone(rule.value)) };
    if (Object.hasOwn(rule, 'default')) compiled.fallback = { v: deepFreeze(structuredClone(rule.default)) };
    if (each) compiled.each = each;
    out.push(compiled);
  });
  return out;
}

function compilePart(part: MappingPart | undefined, where: string, problems: Problem[]): CompiledPart | undefined {
  if (!part) return undefined;
  return { rename: part.rename, rules: compileRules(part.fields, `${where}/fields`, problems) };
}

const isAbsent = (v: unknown): boolean => v === undefined || v === null;

function resolve(source: Source, root: unknown, ctx: Context): unknown {
  switch (source.kind) {
    case 'name':
      return ctx.name;
    case 'type':
      return ctx.type;
    default:
      return readPath(root, source.segments);
  }
}

function applyRules(rules: readonly CompiledRule[], root: unknown, ctx: Context, out: Record<string, unknown>, owned: WeakSet<object>): void {
  for (const rule of rules) {
    let value: unknown;
    if (rule.value) value = rule.value.v;
    else {
      for (const s of rule.sources) {
        value = resolve(s, root, ctx);
        if (!isAbsent(value)) break;
      }
      if (isAbsent(value)) {
        if (!rule.fallback) continue;
        value = rule.fallback.v;
      } else if (rule.each) {
        if (!Array.isArray(value)) continue;
        const each = rule.each;
        value = value.map((element: unknown) => {
          const item: Record<string, unknown> = {};
          owned.add(item);
          applyRules(each, element, ctx, item, owned);
          return item;
        });
        owned.add(value as object);
      }
    }
    writePath(out, rule.to, value, owned);
  }
}

/**
 * Compiles a Mapping spec (Mapping v1): validates it against the MappingSpec JSON Schema, checks
 * every rule (exactly one of `from`/`value`; `default`, `fallbacks` and `each` only with `from`;
 * paths well-formed, without `__proto__`, `constructor` or `prototype`), and parses every path once.
 * The spec is not modified. Semantics: runtime/src/mapping/README.md.
 * @throws SwitchyardError INVALID_MAPPING whose `details` are {@link Problem}s with JSON-pointer
 * paths relative to the spec, e.g. `/eventSpecific/Order Completed/fields/2/from`.
 */
export function compileMapping(spec: MappingSpec): CompiledMapping {
  validateSpec ??= createAjv({ useDefaults: false }).compile(MappingSpec);
  if (!validateSpec(spec)) {
    const problems = toProblems(validateSpec.errors);
    throw new SwitchyardError(ErrorCodes.INVALID_MAPPING, `invalid mapping:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`, { details: problems });
  }
  const problems: Problem[] = [];
  const global = compilePart(spec.global, '/global', problems);
  const fallbackPart = compilePart(spec.default, '/default', problems);
  const specific = new Map<string, CompiledPart>();
  for (const [key, part] of Object.entries(spec.eventSpecific ?? {})) {
    specific.set(key, compilePart(part, `/eventSpecific/${esc(key)}`, problems)!);
  }
  if (problems.length > 0) {
    throw new SwitchyardError(ErrorCodes.INVALID_MAPPING, `invalid mapping:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`, { details: problems });
  }
  const destinationType = spec.destinationType;

  return Object.freeze({
    destinationType,
    apply(event: SegmentEvent): MappingResult {
      const type = typeof event.type === 'string' ? event.type : '';
      const trackName = typeof event.event === 'string' ? event.event : undefined;
      const key = type === 'track' ? trackName : type;
      const part = (key !== undefined ? specific.get(key) : undefined) ?? fallbackPart;
      if (!part) return { ok: false, dropped: 'no_matching_rule' };
      const name = part.rename ?? global?.rename ?? (type === 'track' ? (trackName ?? 'track') : type);
      const ctx: Context = { name, type };
      const payload: Record<string, unknown> = {};
      const owned = new WeakSet<object>([payload]);
      if (global) applyRules(global.rules, event, ctx, payload, owned);
      applyRules(part.rules, event, ctx, payload, owned);
      return { ok: true, name, payload };
    },
  });
}
