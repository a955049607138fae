import type { ValidateFunction } from 'ajv';
import { MappingSpec, type FieldRule, type FieldSet, type MappingPart } from '../api/index.js';
import type { DestinationType } from '../api/index.js';
import { createAjv, deepFreeze, toProblems } from '../api/validate.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { CelFailure, compileExpression, type CelInput, type CompiledExpression } from './cel.js';
import { compileCondition, compileConditions, describeValue, type CompiledConditions, type ConditionFn } from './conditions.js';
import { checkOutputShape, type JsonType, type OutputField, type ShapeSegment } from './output-schema.js';
import { MAX_WRITE_INDEX, parsePath, readPath, writePath, type PathSegment } from './path.js';
import { compileSource, readSource, type Scope, type Source } from './sources.js';
import { StepFailure, compileLookup, compileTransforms, type CompiledLookup, type CompiledTransforms } from './transforms.js';

/** A Segment-spec event as stored in the events stream (https://segment.com/docs/connections/spec/common/). */
export type SegmentEvent = Record<string, unknown>;

/** Why an event was dropped on purpose (acknowledged and counted, not dead-lettered). */
export type DropReason = 'no_matching_rule' | 'filtered';

/** Why an event failed: the rule (JSON pointer into the spec), the output field and what went wrong. Such events are dead-lettered. */
export interface MappingFailure {
  rule: string;
  field: string;
  message: string;
}

/** What `--explain` tells about one rule on one event. */
export interface FieldExplanation {
  /** JSON pointer of the rule in the spec, e.g. `/eventSpecific/Order Completed/fields/2`. */
  rule: string;
  /** Output path, with element indexes inside `each`, e.g. `items[1].price`. */
  to: string;
  /** written: a source gave the value; default: the default was written; left out: nothing written; skipped: its `when` did not hold; failed: the event failed here. */
  outcome: 'written' | 'default' | 'left out' | 'skipped' | 'failed';
  /** What gave the value: a source path, `value`, `expr` or `default`. */
  from?: string;
  /** Each source tried, with what it gave, in order. */
  tried?: string[];
  /** Each transform step applied to the winning candidate, with its result. */
  steps?: string[];
  /** The value written. */
  value?: unknown;
  /** Why the rule was skipped, left out or failed. */
  reason?: string;
}

/** Everything `apply(event, {explain: true})` says about one event. */
export interface Explanation {
  /** JSON pointer of the part chosen (`/eventSpecific/<key>` or `/default`), when one was. */
  part?: string;
  /** The drop condition that held, when the event was dropped by `spec.drop`. */
  drop?: { rule: string; message: string };
  fields: FieldExplanation[];
}

/**
 * What a compiled Mapping makes of one event:
 * - `ok`: the output event name and payload;
 * - `dropped`: dropped on purpose (`no_matching_rule`: no eventSpecific key matched and there is no
 *   `default`; `filtered`: a `spec.drop` condition held);
 * - `failed`: a required field was absent, or a strict lookup missed.
 * `explain` is set when asked for.
 */
export type MappingResult =
  | { ok: true; name: string; payload: Record<string, unknown>; explain?: Explanation }
  | { ok: false; dropped: DropReason; message: string; failed?: undefined; explain?: Explanation }
  | { ok: false; failed: MappingFailure; dropped?: undefined; explain?: Explanation };

/** The output schema a Mapping is checked against at compile time, and who demands it. */
export interface OutputSchemaTarget {
  /** JSON Schema of one mapped payload. */
  schema: object;
  /** Who demands it, in messages, e.g. `destination ga4` or `Integration shop/ga4`. */
  label: string;
}

/** Options of {@link compileMapping}. */
export interface CompileOptions {
  /** Check what the Mapping can write against this schema; a part that can never satisfy it is a compile error. Default: no check. */
  outputSchema?: OutputSchemaTarget;
}

/** A Mapping ready to apply: paths parsed, rules, expressions and lookups compiled. Immutable and safe to share. */
export interface CompiledMapping {
  /** Destination type the Mapping declares it is written for, if any. */
  readonly destinationType: DestinationType | undefined;
  /** Applies the Mapping to one event (never mutates it). `explain` adds a rule-by-rule account (slower). Semantics: runtime/src/mapping/README.md. */
  apply(event: SegmentEvent, options?: { explain?: boolean }): MappingResult;
  /** What each part can write, for checks against an output schema (see {@link checkMappingOutput}). */
  readonly shapes: readonly PartShape[];
}

/** The output fields one part (global + the part's rules) can write. */
export interface PartShape {
  pointer: string;
  fields: OutputField[];
}

/** A compiled rule. Every field is always set (undefined when unused), so all rules share one shape and the hot loop stays monomorphic. */
interface CompiledRule {
  pointer: string;
  to: PathSegment[];
  toText: string;
  /** Static value (`value`), deep-frozen. */
  value: { v: unknown } | undefined;
  expr: CompiledExpression | undefined;
  /** `from` then `fallbacks`, tried in order, with their text for explanations. */
  sources: Source[];
  sourceTexts: string[];
  transforms: CompiledTransforms | undefined;
  notEmpty: boolean;
  /** `default`, deep-frozen. */
  fallback: { v: unknown } | undefined;
  required: boolean;
  when: CompiledConditions | undefined;
  merge: boolean;
  each: CompiledRule[] | undefined;
  /** Its `each` rules target `$item`: each element becomes that value, and elements without one are left out. */
  eachSelf: boolean;
}

interface CompiledPart {
  pointer: string;
  rename: string | undefined;
  rules: CompiledRule[];
}

/** JSON-pointer escaping of one token (RFC 6901). */
export const escapePointer = (token: string): string => token.replaceAll('~', '~0').replaceAll('/', '~1');

let validateSpec: ValidateFunction | undefined;

/** Everything compilation shares: problems, lookups, field sets. */
interface Env {
  problems: Problem[];
  lookups: ReadonlyMap<string, CompiledLookup>;
  fieldSets: Map<string, CompiledRule[] | 'compiling'>;
  spec: MappingSpec;
}

function compileRules(rules: readonly FieldRule[] | undefined, where: string, env: Env, scope: Scope): CompiledRule[] {
  const out: CompiledRule[] = [];
  const { problems } = env;
  (rules ?? []).forEach((rule, i) => {
    const at = `${where}/${i}`;
    const before = problems.length;
    const kinds = (['from', 'value', 'expr'] as const).filter((k) => Object.hasOwn(rule, k));
    if (kinds.length > 1) problems.push({ path: `${at}/${kinds[1]}`, rule: 'oneOf', message: `a rule takes exactly one of from, value and expr, not ${kinds.join(' and ')}` });
    if (kinds.length === 0) problems.push({ path: at, rule: 'oneOf', message: 'a rule needs exactly one of from, value and expr' });
    const hasValue = Object.hasOwn(rule, 'value');
    if (rule.from === undefined && rule.fallbacks !== undefined) problems.push({ path: `${at}/fallbacks`, rule: 'dependency', message: 'fallbacks are only allowed with from' });
    for (const k of ['default', 'transforms', 'each', 'include', 'presence'] as const) {
      if (hasValue && Object.hasOwn(rule, k)) problems.push({ path: `${at}/${k}`, rule: 'dependency', message: `${k} is not allowed with a static value` });
    }
    if (rule.merge && (rule.each || rule.include)) problems.push({ path: `${at}/merge`, rule: 'dependency', message: 'merge and each (or include) exclude each other' });

    const to = parsePath(rule.to);
    const self = rule.to === '$item';
    if (typeof to === 'string') problems.push({ path: `${at}/to`, rule: 'path', message: to });
    else if (to[0]!.key === '$item' && (!self || scope !== 'item')) {
      problems.push({ path: `${at}/to`, rule: 'path', message: scope !== 'item' ? '$item as a target is only available inside each' : '$item as a target takes no sub-path: it makes the element the value itself' });
    }
    else if (to.some((s) => s.index !== undefined && s.index > MAX_WRITE_INDEX)) {
      problems.push({ path: `${at}/to`, rule: 'path', message: `array indexes written by a rule are at most ${MAX_WRITE_INDEX}` });
    }
    const sources: Source[] = [];
    const sourceTexts: string[] = [];
    for (const [text, ptr] of [...(rule.from !== undefined ? [[rule.from, `${at}/from`]] : []), ...(rule.fallbacks ?? []).map((f, j) => [f, `${at}/fallbacks/${j}`])] as [string, string][]) {
      const s = compileSource(text, ptr, problems, scope);
      if (s) {
        sources.push(s);
        sourceTexts.push(text);
      }
    }
    const expr = rule.expr !== undefined ? compileExpression(rule.expr, 'value', `${at}/expr`, problems, { scope }) : undefined;
    const transforms = rule.transforms ? compileTransforms(rule.transforms, `${at}/transforms`, problems, env.lookups) : undefined;
    const when = rule.when ? compileConditions(rule.when, `${at}/when`, problems, scope) : undefined;
    const each =
      rule.each !== undefined || rule.include !== undefined
        ? [...includedRules(rule.include, `${at}/include`, env, [], 'item'), ...compileRules(rule.each, `${at}/each`, env, 'item')]
        : undefined;
    if (rule.each?.some((r) => r.to === '$item')) {
      rule.each.forEach((r, j) => {
        if (r.to !== '$item') problems.push({ path: `${at}/each/${j}/to`, rule: 'dependency', message: 'a rule of this each targets $item (the element is that value), so rules writing other paths would be lost' });
      });
    }
    if (problems.length > before || typeof to === 'string') return;
    out.push({
      pointer: at,
      to,
      toText: rule.to,
      value: hasValue ? { v: deepFreeze(structuredClone(rule.value)) } : undefined,
      expr,
      sources,
      sourceTexts,
      transforms: transforms && transforms.steps.length > 0 ? transforms : undefined,
      notEmpty: rule.presence === 'notEmpty',
      fallback: Object.hasOwn(rule, 'default') ? { v: deepFreeze(structuredClone(rule.default)) } : undefined,
      required: rule.required === true,
      when,
      merge: rule.merge === true,
      each,
      eachSelf: each?.some((r) => r.toText === '$item') === true,
    });
  });
  return out;
}

/**
 * Rules of the field sets named by `include` at `where`, in order (each set compiled once per
 * scope: at the top level, or inside `each` where `$item` and `$event` exist; cycles refused).
 */
function includedRules(names: readonly string[] | undefined, where: string, env: Env, chain: string[], scope: Scope = 'event'): CompiledRule[] {
  const out: CompiledRule[] = [];
  (names ?? []).forEach((name, i) => {
    const set: FieldSet | undefined = env.spec.fieldSets && Object.hasOwn(env.spec.fieldSets, name) ? env.spec.fieldSets[name] : undefined;
    if (!set) {
      env.problems.push({ path: `${where}/${i}`, rule: 'reference', message: `no field set named ${JSON.stringify(name)} in spec.fieldSets` });
      return;
    }
    const key = `${scope}:${name}`;
    const state = env.fieldSets.get(key);
    if (state === 'compiling') {
      env.problems.push({ path: `${where}/${i}`, rule: 'cycle', message: `field sets include each other: ${[...chain, name].join(' → ')}` });
      return;
    }
    if (state) {
      out.push(...state);
      return;
    }
    env.fieldSets.set(key, 'compiling');
    const at = `/fieldSets/${escapePointer(name)}`;
    const rules = [...includedRules(set.include, `${at}/include`, env, [...chain, name], scope), ...compileRules(set.fields, `${at}/fields`, env, scope)];
    env.fieldSets.set(key, rules);
    out.push(...rules);
  });
  return out;
}

function compilePart(part: MappingPart | undefined, where: string, env: Env): CompiledPart | undefined {
  if (!part) return undefined;
  const rules = [...includedRules(part.include, `${where}/include`, env, []), ...compileRules(part.fields, `${where}/fields`, env, 'event')];
  return { pointer: where, rename: part.rename, rules };
}

// ---- applying ------------------------------------------------------------------------------

const isAbsent = (v: unknown): boolean => v === undefined || v === null;

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v === 'string') return v.trim().length === 0;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A candidate that gave no present value, and why (for explanations and failure messages). */
class Absent {
  constructor(readonly reason: string, readonly fatal = false) {}
}

const MISSING = new Absent('absent (missing)');
const NULL = new Absent('absent (null)');
const EMPTY = new Absent('absent (empty)');

/** Runs presence, transforms and the shape checks of `each`/`merge` on one raw value. */
function candidate(rule: CompiledRule, raw: unknown): unknown {
  if (raw === undefined) return MISSING;
  if (raw === null) return NULL;
  if (rule.notEmpty && isEmpty(raw)) return EMPTY;
  let v: unknown = raw;
  if (rule.transforms) {
    v = rule.transforms.run(raw);
    if (v instanceof StepFailure) return new Absent(v.message, v.fatal);
    if (rule.notEmpty ? isEmpty(v) : isAbsent(v)) return new Absent('absent after transforms');
  }
  if (rule.each && !Array.isArray(v)) {
    // An object is one element: single-product events map through the same item rules.
    if (isPlainObject(v)) return [v];
    return new Absent(`each needs an array or an object, got ${typeOfJson(v)}`);
  }
  if (rule.merge && !isPlainObject(v)) return new Absent(`merge needs an object, got ${typeOfJson(v)}`);
  return v;
}

function typeOfJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Evaluates where a rule's value comes from. Returns the value, or an Absent saying why there is none. */
function ruleValue(rule: CompiledRule, root: unknown, input: CelInput, tried?: string[]): unknown {
  if (rule.value) return rule.value.v;
  let last: Absent | undefined;
  if (rule.expr) {
    const raw = rule.expr.evaluate(input);
    const v = raw instanceof CelFailure ? new Absent(`expr failed: ${raw.message}`) : candidate(rule, raw);
    tried?.push(raw instanceof CelFailure ? `expr: ${(v as Absent).reason}` : describeTry('expr', rule, raw, v));
    return v;
  }
  for (let i = 0; i < rule.sources.length; i++) {
    const raw = readSource(rule.sources[i]!, root, input);
    const v = candidate(rule, raw);
    if (tried) tried.push(describeTry(rule.sourceTexts[i]!, rule, raw, v));
    if (!(v instanceof Absent)) return v;
    if (v.fatal) return v;
    last = v;
  }
  return last ?? MISSING;
}

/** One line of `tried`: what the source held, and what transforms made of it (`properties.total: "9.5" → 9.5`). */
function describeTry(source: string, rule: CompiledRule, raw: unknown, v: unknown): string {
  if (raw === undefined || raw === null) return `${source}: ${describeValue(raw)}`;
  if (v instanceof Absent) return `${source}: ${describeValue(raw)} → ${v.reason}`;
  return rule.transforms ? `${source}: ${describeValue(raw)} → ${describeValue(v)}` : `${source}: ${describeValue(v)}`;
}

function mergeInto(out: Record<string, unknown>, to: readonly PathSegment[], value: Record<string, unknown>, owned: Set<object>): void {
  const existing = readPath(out, to);
  let target: Record<string, unknown>;
  if (isPlainObject(existing) && owned.has(existing)) target = existing;
  else {
    target = isPlainObject(existing) ? { ...existing } : {};
    owned.add(target);
    writePath(out, to, target, owned);
  }
  for (const key of Object.keys(value)) Object.defineProperty(target, key, { value: value[key], writable: true, enumerable: true, configurable: true });
}

interface Run {
  input: CelInput;
  /** Containers this run created (safe to write into); anything else is copied first. */
  owned: Set<object>;
  trace: FieldExplanation[] | undefined;
}

/** Applies rules to `root`, writing into `out`. Returns the first failure, or undefined. */
function applyRules(rules: readonly CompiledRule[], root: unknown, input: CelInput, out: Record<string, unknown>, run: Run, prefix: string): MappingFailure | undefined {
  const trace = run.trace;
  for (const rule of rules) {
    if (rule.when && !rule.when.test(root, input)) {
      if (trace) trace.push({ rule: rule.pointer, to: prefix + rule.toText, outcome: 'skipped', reason: `when ${rule.when.explain(root, input)?.message ?? 'did not hold'}` });
      continue;
    }
    const tried = trace ? [] : undefined;
    let value = ruleValue(rule, root, input, tried);
    let outcome: FieldExplanation['outcome'] = 'written';
    if (value instanceof Absent) {
      if (value.fatal) {
        const failure = { rule: rule.pointer, field: prefix + rule.toText, message: value.reason };
        if (trace) trace.push({ rule: rule.pointer, to: failure.field, outcome: 'failed', tried: tried!, reason: value.reason });
        return failure;
      }
      if (rule.fallback) {
        value = rule.fallback.v;
        outcome = 'default';
      } else if (rule.required) {
        const reasons = tried ?? [];
        if (!trace) ruleValue(rule, root, input, reasons);
        const failure = { rule: rule.pointer, field: prefix + rule.toText, message: `required field ${prefix + rule.toText} has no value: ${reasons.join('; ') || value.reason}` };
        if (trace) trace.push({ rule: rule.pointer, to: failure.field, outcome: 'failed', tried: reasons, reason: 'required' });
        return failure;
      } else {
        if (trace) trace.push({ rule: rule.pointer, to: prefix + rule.toText, outcome: 'left out', tried: tried!, reason: value.reason });
        continue;
      }
    } else if (rule.each) {
      const elements = value as unknown[];
      const each = rule.each;
      const items: unknown[] = rule.eachSelf ? [] : new Array(elements.length);
      for (let i = 0; i < elements.length; i++) {
        const item: Record<string, unknown> = {};
        run.owned.add(item);
        const element = elements[i];
        const failure = applyRules(each, element, { event: input.event, name: input.name, type: input.type, item: element }, item, run, `${prefix}${rule.toText}[${i}].`);
        if (failure) return failure;
        if (!rule.eachSelf) items[i] = item;
        else if (Object.hasOwn(item, '$item')) items.push(item.$item);
      }
      run.owned.add(items);
      value = items;
    }
    if (rule.merge && outcome === 'written') mergeInto(out, rule.to, value as Record<string, unknown>, run.owned);
    else writePath(out, rule.to, value, run.owned);
    if (trace) {
      const entry: FieldExplanation = { rule: rule.pointer, to: prefix + rule.toText, outcome, from: rule.value ? 'value' : outcome === 'default' ? 'default' : rule.expr ? 'expr' : winningSource(rule, tried!), value: rule.each ? `[${(value as unknown[]).length} element(s)]` : value };
      if (tried && tried.length > 0) entry.tried = tried;
      if (rule.transforms && outcome === 'written') entry.steps = explainSteps(rule, root, input);
      trace.push(entry);
    }
  }
  return undefined;
}

function winningSource(rule: CompiledRule, tried: readonly string[]): string {
  return rule.sourceTexts[tried.length - 1] ?? rule.sourceTexts[0] ?? '';
}

/** Re-runs the transform steps one by one on the winning candidate, for explanations. */
function explainSteps(rule: CompiledRule, root: unknown, input: CelInput): string[] {
  let raw: unknown;
  if (rule.expr) raw = rule.expr.evaluate(input);
  else {
    for (const s of rule.sources) {
      const v = readSource(s, root, input);
      if (!(candidate(rule, v) instanceof Absent)) {
        raw = v;
        break;
      }
    }
  }
  const lines: string[] = [];
  let v = raw;
  for (const step of rule.transforms!.steps) {
    v = Array.isArray(v) || !isAbsent(v) ? step.fn(v) : v;
    lines.push(`${step.op}: ${v instanceof StepFailure ? `failed: ${v.message}` : describeValue(v)}`);
    if (v instanceof StepFailure || isAbsent(v)) break;
  }
  return lines;
}

// ---- output shapes -------------------------------------------------------------------------

const JSON_TYPE_OF = (v: unknown): JsonType => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : (typeof v as JsonType));

function shapeOf(rules: readonly CompiledRule[], prefix: ShapeSegment[]): OutputField[] {
  const fields: OutputField[] = [];
  for (const rule of rules) {
    // A `$item` target is the element itself.
    const path: ShapeSegment[] = rule.toText === '$item' ? [...prefix] : [...prefix, ...rule.to.map((s): ShapeSegment => (s.index !== undefined ? { index: s.index } : { key: s.key! }))];
    const always = !rule.when && (rule.value !== undefined || rule.fallback !== undefined || rule.required);
    let types: Set<JsonType> | undefined;
    if (rule.value) types = new Set([JSON_TYPE_OF(rule.value.v)]);
    else if (rule.each) {
      types = new Set(['array']);
      if (rule.fallback) types.add(JSON_TYPE_OF(rule.fallback.v));
    }
    else {
      const produced = rule.transforms ? rule.transforms.outputType : rule.expr ? rule.expr.resultType : rule.sources.every((s) => s.kind === 'name' || s.kind === 'type') ? 'string' : undefined;
      if (produced !== undefined) {
        types = new Set([produced]);
        // Scalar steps map over an array input element by element: unless the input's type is
        // known, the result may be an array of `produced`.
        const input = rule.expr ? rule.expr.resultType : rule.sources.every((s) => s.kind === 'name' || s.kind === 'type') ? 'string' : undefined;
        if (rule.transforms && (input === undefined || input === 'array')) types.add('array');
        if (rule.fallback) types.add(JSON_TYPE_OF(rule.fallback.v));
      }
    }
    const field: OutputField = { path, types, always, pointer: rule.pointer };
    if (rule.value) field.value = rule.value;
    if (rule.merge) field.merge = true;
    fields.push(field);
    if (rule.each) fields.push(...shapeOf(rule.each, [...path, { each: true }]));
  }
  return fields;
}

/**
 * Checks what each part of a compiled Mapping can write against an output schema (see
 * mapping/output-schema.ts): a required property no rule writes, a type no rule can satisfy, a
 * static value the schema refuses, a path it forbids.
 * @returns problems with JSON pointers into the Mapping spec (deduplicated across parts).
 */
export function checkMappingOutput(mapping: CompiledMapping, target: OutputSchemaTarget): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const part of mapping.shapes) {
    for (const p of checkOutputShape(part.fields, target.schema, { partPointer: part.pointer, label: target.label })) {
      const key = `${p.path}\u0000${p.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(p);
    }
  }
  return problems;
}

/** One problem per path and message: a field set included in both scopes is checked twice. */
function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function invalid(problems: Problem[]): SwitchyardError {
  return new SwitchyardError(ErrorCodes.INVALID_MAPPING, `invalid mapping:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`, { details: problems });
}

/**
 * Compiles a Mapping spec: validates it against the MappingSpec JSON Schema, checks every rule
 * (exactly one of from/value/expr; fallbacks only with from; no default/transforms/each with a
 * static value; paths well-formed without `__proto__`, `constructor` or `prototype`), compiles
 * conditions (RE2), CEL expressions (type-checked, bounded cost), transform steps and lookup
 * tables, resolves field sets (refusing cycles), and parses every path once. With
 * `options.outputSchema`, also checks the output every part can write against it.
 * The spec is not modified. Semantics: runtime/src/mapping/README.md.
 * @throws SwitchyardError INVALID_MAPPING whose `details` are {@link Problem}s with JSON-pointer
 * paths relative to the spec, e.g. `/eventSpecific/Order Completed/fields/2/from`.
 */
export function compileMapping(spec: MappingSpec, options: CompileOptions = {}): CompiledMapping {
  validateSpec ??= createAjv({ useDefaults: false }).compile(MappingSpec);
  if (!validateSpec(spec)) throw invalid(toProblems(validateSpec.errors));
  const problems: Problem[] = [];
  const lookups = new Map<string, CompiledLookup>();
  for (const [name, table] of Object.entries(spec.lookups ?? {})) {
    const compiled = compileLookup(name, table, `/lookups/${escapePointer(name)}`, problems);
    if (compiled) lookups.set(name, compiled);
  }
  const env: Env = { problems, lookups, fieldSets: new Map(), spec };
  const drop = spec.drop ? compileDrop(spec.drop, problems) : undefined;
  const global = compilePart(spec.global, '/global', env);
  const fallbackPart = compilePart(spec.default, '/default', env);
  const specific = new Map<string, CompiledPart>();
  for (const [key, part] of Object.entries(spec.eventSpecific ?? {})) {
    specific.set(key, compilePart(part, `/eventSpecific/${escapePointer(key)}`, env)!);
  }
  // Field sets nobody includes are still checked (in the scope of each, which allows the most).
  const unused = Object.keys(spec.fieldSets ?? {}).filter((n) => !env.fieldSets.has(`event:${n}`) && !env.fieldSets.has(`item:${n}`));
  includedRules(unused, '/fieldSets', env, [], 'item');
  if (problems.length > 0) throw invalid(dedupe(problems));

  const globalRules = global?.rules ?? [];
  const shapes: PartShape[] = [...specific.values(), ...(fallbackPart ? [fallbackPart] : [])].map((part) => ({ pointer: part.pointer, fields: shapeOf([...globalRules, ...part.rules], []) }));
  const destinationType = spec.destinationType;

  const compiled: CompiledMapping = Object.freeze({
    destinationType,
    shapes,
    apply(event: SegmentEvent, applyOptions?: { explain?: boolean }): MappingResult {
      const trace: FieldExplanation[] | undefined = applyOptions?.explain ? [] : undefined;
      const explain: Explanation | undefined = trace ? { fields: trace } : undefined;
      // Results are built without spreads: this is the per-event hot path.
      const withExplain = <T extends MappingResult>(r: T): T => {
        if (explain) r.explain = explain;
        return r;
      };
      const type = typeof event.type === 'string' ? event.type : '';
      const trackName = typeof event.event === 'string' ? event.event : undefined;
      if (drop) {
        const input: CelInput = { event, name: type === 'track' ? (trackName ?? 'track') : type, type };
        const held = drop(event, input);
        if (held) {
          if (explain) explain.drop = held;
          return withExplain({ ok: false, dropped: 'filtered', message: `drop condition ${held.rule} holds` });
        }
      }
      const key = type === 'track' ? trackName : type;
      const part = (key !== undefined ? specific.get(key) : undefined) ?? fallbackPart;
      if (!part) return withExplain({ ok: false, dropped: 'no_matching_rule', message: `no eventSpecific key ${JSON.stringify(key ?? '')} and no default` });
      if (explain) explain.part = part.pointer;
      const name = part.rename ?? global?.rename ?? (type === 'track' ? (trackName ?? 'track') : type);
      const input: CelInput = { event, name, type };
      const payload: Record<string, unknown> = {};
      const run: Run = { input, owned: new Set<object>([payload]), trace };
      const failure = (global ? applyRules(global.rules, event, input, payload, run, '') : undefined) ?? applyRules(part.rules, event, input, payload, run, '');
      if (failure) return withExplain({ ok: false, failed: failure });
      return withExplain({ ok: true, name, payload });
    },
  });
  if (options.outputSchema) {
    const schemaProblems = checkMappingOutput(compiled, options.outputSchema);
    if (schemaProblems.length > 0) throw invalid(schemaProblems);
  }
  return compiled;
}

/** `spec.drop`: the first condition that holds, or undefined. */
function compileDrop(list: NonNullable<MappingSpec['drop']>, problems: Problem[]): ((event: SegmentEvent, input: CelInput) => { rule: string; message: string } | undefined) | undefined {
  const conditions = list.map((c, i) => compileCondition(c, `/drop/${i}`, problems, 'event'));
  if (conditions.some((c) => c === undefined)) return undefined;
  const tests = conditions as ConditionFn[];
  return (event, input) => {
    for (let i = 0; i < tests.length; i++) {
      if (tests[i]!(event, input)) return { rule: `/drop/${i}`, message: 'holds' };
    }
    return undefined;
  };
}
