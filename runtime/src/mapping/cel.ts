/**
 * CEL expressions of Mapping v2 (`expr:` on a field rule or in a condition), compiled once and
 * evaluated per event inside a sandbox with a bounded cost.
 *
 * Language: CEL (https://github.com/google/cel-spec/blob/master/doc/langdef.md) as implemented by
 * `@marcbachmann/cel-js` (https://github.com/marcbachmann/cel-js): it parses and type-checks against
 * declared variables at compile time and evaluates a precompiled AST.
 *
 * Variables: `event` (the whole Segment event, `map(string, dyn)`), `properties`, `traits`,
 * `context` (those parts of the event, `{}` when absent), `type` (string, the event type), `name`
 * (string, the output event name) and, in scope `item`, `item` (dyn, the current array element of an
 * `each` rule). Because `type` is a variable, CEL's type-of-types denotation `type` is not available
 * (the function `type(x)` is) and `type` cannot name an iteration variable.
 *
 * Numbers: JSON numbers are CEL doubles; literals without a dot are CEL ints. Standard CEL has no
 * `double * int`, so `properties.qty * 2` would fail at run time; this environment adds the
 * overloads `double op int` and `int op double` (op one of + - * /) returning a double, so int literals
 * mix with JSON numbers. Comparisons (`<`, `>`…) across int and double are standard CEL. `==`
 * between a JSON number and an int literal holds at run time (`properties.qty == 3`); statically
 * typed mixes such as `1 == 1.0` stay a type error, as in the spec.
 *
 * Sandbox: only the variables above and CEL's standard functions exist; no JS function is exposed,
 * no clock (`now` is not a variable), no network or files. Field access only reads own keys of maps
 * (`properties.constructor` is "no such key"); strings, lists and bytes have no fields. `matches`
 * runs on RE2 (re2js, linear time: https://github.com/google/re2/wiki/WhyRE2) instead of the
 * library's backtracking `RegExp`, and its pattern must be a string literal: it is compiled and
 * size-checked once, with the expression (a pattern read from the event could cost ~100 ms to
 * compile). `duration(s)` accepts Go durations of at most 64 characters (the library's parser is
 * super-linear).
 *
 * Cost bound. Compile time refuses sources longer than `maxExpressionLength`, ASTs above `maxNodes`
 * nodes or `maxDepth` nesting, list/map literals above `maxLiteralElements`, comprehensions
 * (`map`, `filter`, `all`, `exists`, `exists_one`) nested deeper than `maxComprehensionNesting`, and
 * regexes longer than `maxRegexLength` characters or `maxRegexInstructions` RE2 instructions
 * (`a{1000}` is short but large). At run time every evaluation has a budget of `maxCost` units,
 * metered by instrumenting the checked AST (the library has no cost hook of its own). Units, after
 * cel-go's cost model (https://github.com/google/cel-go/blob/master/checker/cost.go, 0.1 per string
 * character):
 * - 1 per evaluation of every non-leaf node: operators, calls, field and index access, and every
 *   iteration of a comprehension (its step is a node);
 * - the size of every value an operator or a function consumes (operands of `==`, `in`, `+`, `<`…,
 *   receivers and arguments of calls), counted deeply: 1 per list element or map entry, ⌈length/10⌉
 *   per string or bytes (deep equality, membership and the library's run-time overload dispatch walk
 *   into values);
 * - the size of every value `+`, a call or a literal produces, and of a comprehension's range,
 *   counted shallowly;
 * - per character a regex scans, ⌈instructions/16⌉ (RE2 falls back to an NFA whose work per
 *   character grows with the program: measured up to ~6 ns per instruction); 1000 per timestamp
 *   method given a time zone (`t.getHours("Europe/Paris")` builds an Intl formatter, ~100 µs);
 * - 1 per element or entry of the result when it is converted to JSON.
 * A node checks the budget before it runs and a size is charged as soon as the value exists, so an
 * evaluation stops within one node of exhausting the budget; no single step allocates more than
 * twice what the budget allows (a string of ~20 × maxCost characters or a list of ~2 × maxCost
 * elements at worst), and every uncharged step is O(1). Work is therefore linear in `maxCost`
 * (5–15 ms for the default 100,000 on one core), whatever the event's size; reading a value costs
 * nothing, so a 1 MiB string passes through, but consuming it (`size()`, `+`, `matches`) exceeds the
 * default budget. Input nested deeper than the JS stack fails ("Maximum call stack size exceeded").
 * An evaluation that exceeded the budget is a failure even where CEL would absorb the error (`||`,
 * `exists`).
 *
 * The metering relies on the AST of `@marcbachmann/cel-js` 8.0 (`node.meta`, an own `evaluate` per
 * node); when the shape differs, expressions are refused at compile time rather than run unmetered.
 */
import { Environment, EvaluationError, ParseError, TypeError as CelTypeError } from '@marcbachmann/cel-js';
import { Duration, UnsignedInt } from '@marcbachmann/cel-js/evaluator';
import { RE2JS } from 're2js';
import type { Problem } from '../errors.js';

/** Bounds on one expression; see the module docstring for how each is enforced. */
export interface CelLimits {
  /** Characters of source. Default 4096. */
  maxExpressionLength: number;
  /** Parsed AST nodes. Default 500. */
  maxNodes: number;
  /** AST nesting (parenthesised or member/call chains). Default 32. */
  maxDepth: number;
  /** Cost units one evaluation may spend (steps, iterations, charged sizes). Default 100,000. */
  maxCost: number;
  /** Comprehensions (`map`, `filter`, `all`, `exists`, `exists_one`) inside another's body. Default 2. */
  maxComprehensionNesting: number;
  /** Elements of one list literal or entries of one map literal. Default 256. */
  maxLiteralElements: number;
  /** Characters of a `matches` pattern. Default 256. */
  maxRegexLength: number;
  /** Instructions of a compiled `matches` pattern (RE2 program size). Default 5000. */
  maxRegexInstructions: number;
}

/** The limits used when a caller gives none. */
export const DEFAULT_CEL_LIMITS: Readonly<CelLimits> = Object.freeze({
  maxExpressionLength: 4096,
  maxNodes: 500,
  maxDepth: 32,
  maxCost: 100_000,
  maxComprehensionNesting: 2,
  maxLiteralElements: 256,
  maxRegexLength: 256,
  maxRegexInstructions: 5000,
});

/** `value`: any result; `condition`: the result must be a bool (statically when known, else at run time). */
export type CelKind = 'value' | 'condition';

/** `event`: the event variables; `item`: those plus `item`, the current element inside `each` rules. */
export type CelScope = 'event' | 'item';

/** What one evaluation sees: the event, the output name, the event type and, in scope `item`, the element. */
export interface CelInput {
  event: Record<string, unknown>;
  name: string;
  type: string;
  item?: unknown;
}

/** Why an evaluation gave no value (missing key, run-time type mismatch, cost exceeded…). Returned, never thrown. */
export class CelFailure {
  constructor(readonly message: string) {}
}

/** JSON type of a result when the checker knows it statically. */
export type CelResultType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

/** A compiled expression: parsed, checked and instrumented once, evaluated per event. */
export interface CompiledExpression {
  readonly source: string;
  /**
   * Evaluates against one event. Returns the result as plain JSON: int and uint become numbers when
   * within ±(2^53 − 1) (else a failure), doubles numbers (NaN and ±Infinity are failures), timestamps
   * ISO 8601 strings (`2024-01-01T00:00:00.000Z`), durations strings such as `"1.5s"`, bytes base64,
   * maps plain objects (non-string keys stringified) and lists arrays. Objects and arrays read from the
   * event are returned as they are (not copied): callers must not modify them. Returns a
   * {@link CelFailure} instead of throwing; a `condition` returns `true`, `false` or a failure.
   */
  evaluate(input: CelInput): unknown;
  /** Statically known JSON type of the result, else undefined (`dyn`, null…). */
  readonly resultType: CelResultType | undefined;
}

// ---- The library's AST, as far as the instrumentation relies on it (checked at compile time). ----

type EvaluateFn = (this: unknown, ev: unknown, ast: unknown, ctx: unknown) => unknown;
interface AstNode {
  op: string;
  args: unknown;
  evaluate: EvaluateFn;
  readonly meta: { evaluate?: EvaluateFn; alternate?: AstNode; macro?: MacroObject };
  readonly checkedType?: unknown;
  readonly start: number;
  readonly input: string;
}
interface MacroObject {
  evaluate: EvaluateFn;
  var?: unknown;
}
interface ComprehensionArgs {
  iterable: AstNode;
  init: AstNode;
  step: AstNode;
  iterVarName: string;
}

/** Name the `type` variable is registered under: the library declares `type` itself (the type of types). */
const TYPE_VARIABLE = '$type';
/** Internal name of the RE2 `string.matches`: the library's own overload uses backtracking `RegExp` and cannot be replaced. */
const RE2_MATCHES = '__re2_matches';
/** Internal name of the length-checked `duration(string)`: the library's parser is super-linear (a 4,000-character argument takes seconds). */
const CHECKED_DURATION = '__duration';
/** Longest duration string accepted (`duration("…")`); Go-style durations are short ("1h30m", "1.5s"). */
const MAX_DURATION_LENGTH = 64;
/** Go duration syntax (https://pkg.go.dev/time#ParseDuration), checked before the library parses it. */
const DURATION_SYNTAX = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/;
/** Timestamp methods that take a time zone: each call builds an Intl formatter (~100 µs), so it costs this many units. */
const TIME_ZONE_METHODS = new Set(['getFullYear', 'getMonth', 'getDate', 'getDayOfMonth', 'getDayOfWeek', 'getDayOfYear', 'getHours', 'getMinutes', 'getSeconds', 'getMilliseconds']);
const TIME_ZONE_COST = 1000;
/** Nodes that do O(1) work and evaluate no child. */
const LEAF_OPS = new Set(['value', 'id', 'accuValue', 'accuInc']);
/** Operators whose operands are charged (they may traverse them: deep equality, membership, concatenation, ordering). */
const CONSUMING_OPS = new Set(['==', '!=', '<', '<=', '>', '>=', 'in', '+', '-', '*', '/', '%', 'call', 'rcall']);
/** Nodes whose result is a new value (charged shallowly). */
const ALLOCATING_OPS = new Set(['+', 'call', 'rcall', 'list', 'map']);

// ---- Metering: one evaluation runs at a time (evaluation is synchronous), so the budget is module state. ----

let remaining = 0;

class CostExceeded extends Error {}
/** Thrown when the budget runs out; preallocated so that stopping costs nothing. An Error, so the library treats it as a CEL error. */
const COST_EXCEEDED = new CostExceeded('evaluation cost exceeded its budget');

const stringCost = (length: number): number => Math.ceil(length / 10);

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Shallow size: elements, entries, or ⌈length/10⌉ characters. Counting keys stops past `cap`. */
function shallowSize(v: unknown, cap: number): number {
  if (typeof v === 'string') return stringCost(v.length);
  if (typeof v !== 'object' || v === null) return 0;
  if (Array.isArray(v)) return v.length;
  if (v instanceof Uint8Array) return stringCost(v.length);
  if (v instanceof Map) return v.size;
  if (!isPlainObject(v)) return 1;
  let n = 0;
  for (const _ in v) if (++n > cap) break;
  return n;
}

/** Deep size: the shallow size of the value and of everything it holds, stopping past `cap`. */
function deepSize(v: unknown, cap: number): number {
  if (typeof v === 'string') return stringCost(v.length);
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    n = v.length;
    for (let i = 0; i < v.length && n <= cap; i++) {
      const e: unknown = v[i];
      if (typeof e === 'object' || typeof e === 'string') n += deepSize(e, cap - n);
    }
  } else if (v instanceof Uint8Array) {
    n = stringCost(v.length);
  } else if (v instanceof Map) {
    for (const [k, e] of v) {
      n += 1 + deepSize(k, cap - n) + deepSize(e, cap - n);
      if (n > cap) break;
    }
  } else if (isPlainObject(v)) {
    const o = v as Record<string, unknown>;
    for (const k in o) {
      const e = o[k];
      n += 1 + stringCost(k.length) + (typeof e === 'object' || typeof e === 'string' ? deepSize(e, cap - n) : 0);
      if (n > cap) break;
    }
  } else {
    n = 1;
  }
  return n;
}

/** Spends `cost` units, throwing when the budget is gone. */
function spend(cost: number): void {
  if ((remaining -= cost) < 0) throw COST_EXCEEDED;
}

// ---- RE2 `matches` ----

/** A pattern compiled with its expression, and what scanning one character costs. */
interface CompiledRegex {
  re: RE2JS;
  costPerCharacter: number;
}

/** The patterns of the expression being evaluated (set by `evaluate`; evaluation is synchronous). */
let activeRegexes: ReadonlyMap<string, CompiledRegex> | undefined;

/** Compiles a RE2 pattern (https://github.com/google/re2/wiki/Syntax) within the limits; the program, or why not. */
function compileRegex(pattern: string, limits: CelLimits): CompiledRegex | string {
  if (pattern.length > limits.maxRegexLength) return `regex longer than ${limits.maxRegexLength} characters`;
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (e) {
    return `invalid regex: ${e instanceof Error ? e.message : String(e)}`;
  }
  // `prog` is untyped in re2js's declarations; a missing one counts as too large (refused, not unmetered).
  const instructions = (re.re2() as { prog?: { numInst?: () => number } }).prog?.numInst?.() ?? Infinity;
  if (!(instructions <= limits.maxRegexInstructions)) return `regex compiles to ${instructions} RE2 instructions, more than the ${limits.maxRegexInstructions} allowed`;
  return { re, costPerCharacter: Math.max(1, Math.ceil(instructions / 16)) };
}

/** CEL `matches`: whether the RE2 pattern matches any substring (spec: "matches" in langdef.md). Charges the scan. */
function re2Matches(text: string, pattern: string): boolean {
  const compiled = activeRegexes?.get(pattern);
  if (!compiled) throw new EvaluationError('matches needs a string literal pattern');
  spend(text.length * compiled.costPerCharacter);
  return compiled.re.test(text);
}

// ---- duration() ----

let libraryDuration: ((vars: { s: string }) => unknown) | undefined;

/** CEL `duration(string)` with a length and syntax check first; the parsing itself is the library's. */
function checkedDuration(s: string): Duration {
  if (s.length > MAX_DURATION_LENGTH || !DURATION_SYNTAX.test(s)) {
    throw new EvaluationError(`invalid duration ${JSON.stringify(s.slice(0, MAX_DURATION_LENGTH))}: expected e.g. "1.5s" or "2h45m", at most ${MAX_DURATION_LENGTH} characters`);
  }
  if (!libraryDuration) {
    const parsed = new Environment().registerVariable('s', 'string').parse('duration(s)');
    parsed.check();
    libraryDuration = parsed as unknown as (vars: { s: string }) => unknown;
  }
  return libraryDuration({ s }) as Duration;
}

// ---- Environments (expensive to build: one per scope and parser limits, shared by every expression). ----

const environments = new Map<string, Environment>();

function parserLimits(limits: CelLimits) {
  return { maxAstNodes: limits.maxNodes, maxDepth: limits.maxDepth, maxListElements: limits.maxLiteralElements, maxMapEntries: limits.maxLiteralElements };
}

function baseEnvironment(scope: CelScope): Environment {
  const key = `${scope}|base`;
  let env = environments.get(key);
  if (env) return env;
  env = new Environment({
    unlistedVariablesAreDyn: false,
    // `{"value": 1, "currency": "USD"}` builds a JSON object: mixed literals are map(string, dyn), as in cel-go.
    homogeneousAggregateLiterals: false,
    enableOptionalTypes: false,
    limits: parserLimits(DEFAULT_CEL_LIMITS),
  })
    .registerVariable('event', 'map<string, dyn>')
    .registerVariable('properties', 'map<string, dyn>')
    .registerVariable('traits', 'map<string, dyn>')
    .registerVariable('context', 'map<string, dyn>')
    .registerVariable('name', 'string')
    .registerVariable(TYPE_VARIABLE, 'string')
    .registerFunction(`string.${RE2_MATCHES}(string): bool`, re2Matches, { async: false })
    .registerFunction('matches(string, string): bool', re2Matches, { async: false })
    .registerFunction(`${CHECKED_DURATION}(string): google.protobuf.Duration`, checkedDuration, { async: false });
  if (scope === 'item') env.registerVariable('item', 'dyn');
  const arithmetic: Record<string, (a: number, b: number) => number> = { '+': (a, b) => a + b, '-': (a, b) => a - b, '*': (a, b) => a * b, '/': (a, b) => a / b };
  for (const [op, f] of Object.entries(arithmetic)) {
    env.registerOperator(`double ${op} int: double`, (a: number, b: bigint) => f(a, Number(b)));
    env.registerOperator(`int ${op} double: double`, (a: bigint, b: number) => f(Number(a), b));
  }
  environments.set(key, env);
  return env;
}

function environment(scope: CelScope, limits: CelLimits): Environment {
  const p = parserLimits(limits);
  const d = parserLimits(DEFAULT_CEL_LIMITS);
  if (p.maxAstNodes === d.maxAstNodes && p.maxDepth === d.maxDepth && p.maxListElements === d.maxListElements) return baseEnvironment(scope);
  const key = `${scope}|${p.maxAstNodes}|${p.maxDepth}|${p.maxListElements}`;
  let env = environments.get(key);
  if (!env) environments.set(key, (env = baseEnvironment(scope).clone({ limits: p })));
  return env;
}

// ---- Compilation ----

/** "at column 7" (or "at line 2, column 3") for a 0-based offset into the source. */
function position(source: string, offset: number | undefined): string {
  if (offset === undefined) return '';
  const before = source.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return line === 1 ? ` at column ${column}` : ` at line ${line}, column ${column}`;
}

/** The user's names back in library messages. */
const userNames = (message: string): string => message.replaceAll(TYPE_VARIABLE, 'type').replaceAll(RE2_MATCHES, 'matches').replaceAll(CHECKED_DURATION, 'duration');

function describeError(e: unknown, source: string): string {
  if (e instanceof ParseError || e instanceof CelTypeError || e instanceof EvaluationError) return userNames(e.summary) + position(source, e.range?.start);
  return e instanceof Error ? e.message : String(e);
}

function isNode(v: unknown, nodeClass: Function): v is AstNode {
  return typeof v === 'object' && v !== null && v instanceof nodeClass;
}

/** Children of a node as evaluated: the expansion of a macro rewritten at parse time, a macro object's nodes, or the arguments. */
function childrenOf(node: AstNode): unknown {
  return node.meta.alternate ?? node.meta.macro ?? node.args;
}

/** Every AST node reachable from `value` (through arrays and plain objects), once each. */
function collect(value: unknown, nodeClass: Function, out: Set<AstNode>): void {
  if (isNode(value, nodeClass)) {
    if (out.has(value)) return;
    out.add(value);
    collect(childrenOf(value), nodeClass, out);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, nodeClass, out);
  } else if (typeof value === 'object' && value !== null && isPlainObject(value)) {
    for (const v of Object.values(value)) collect(v, nodeClass, out);
  }
}

/** Deepest nesting of comprehensions under `node` (a comprehension inside another's init or step). */
function comprehensionNesting(value: unknown, nodeClass: Function, seen = new Set<AstNode>()): number {
  if (isNode(value, nodeClass)) {
    if (seen.has(value)) return 0;
    seen.add(value);
    if (value.op === 'comprehension') {
      const a = value.args as ComprehensionArgs;
      return Math.max(comprehensionNesting(a.iterable, nodeClass, seen), 1 + Math.max(comprehensionNesting(a.init, nodeClass, seen), comprehensionNesting(a.step, nodeClass, seen)));
    }
    return comprehensionNesting(childrenOf(value), nodeClass, seen);
  }
  let max = 0;
  if (Array.isArray(value)) for (const v of value) max = Math.max(max, comprehensionNesting(v, nodeClass, seen));
  else if (typeof value === 'object' && value !== null && isPlainObject(value)) for (const v of Object.values(value)) max = Math.max(max, comprehensionNesting(v, nodeClass, seen));
  return max;
}

/**
 * Before type-checking: binds the identifier `type` to the event type, routes `matches` to RE2 and
 * checks literal patterns. Returns problem messages.
 */
function rewrite(nodes: Set<AstNode>, limits: CelLimits, source: string, regexes: Map<string, CompiledRegex>): string[] {
  const messages: string[] = [];
  const checkPattern = (arg: unknown, call: AstNode) => {
    const a = arg as AstNode | undefined;
    if (a?.op !== 'value' || typeof a.args !== 'string') {
      messages.push(`matches needs a string literal pattern${position(source, a?.start ?? call.start)}`);
      return;
    }
    if (regexes.has(a.args)) return;
    const compiled = compileRegex(a.args, limits);
    if (typeof compiled === 'string') messages.push(`${compiled}${position(source, a.start)}`);
    else regexes.set(a.args, compiled);
  };
  for (const node of nodes) {
    if (node.op === 'id' && node.args === 'type') node.args = TYPE_VARIABLE;
    else if (node.op === 'rcall' && Array.isArray(node.args) && node.args[0] === 'matches' && !node.meta.alternate && !node.meta.macro) {
      node.args[0] = RE2_MATCHES;
      checkPattern((node.args[2] as unknown[] | undefined)?.[0], node);
    } else if (node.op === 'call' && Array.isArray(node.args) && node.args[0] === 'matches') {
      checkPattern((node.args[1] as unknown[] | undefined)?.[1], node);
    } else if (node.op === 'call' && Array.isArray(node.args) && node.args[0] === 'duration' && !node.meta.macro) {
      node.args[0] = CHECKED_DURATION;
      const a = (node.args[1] as unknown[] | undefined)?.[0] as AstNode | undefined;
      if (a?.op === 'value' && typeof a.args === 'string' && (a.args.length > MAX_DURATION_LENGTH || !DURATION_SYNTAX.test(a.args))) {
        messages.push(`invalid duration${position(source, a.start)}: expected e.g. "1.5s" or "2h45m", at most ${MAX_DURATION_LENGTH} characters`);
      }
    } else if (node.op === 'comprehension' && (node.args as ComprehensionArgs).iterVarName === 'type') {
      messages.push(`"type" is the event type and cannot name an iteration variable${position(source, node.start)}`);
    } else if (node.meta.macro?.var === 'type') {
      messages.push(`"type" is the event type and cannot be bound by cel.bind${position(source, node.start)}`);
    }
  }
  return messages;
}

/** How a node is charged, gathered from every parent that evaluates it. */
interface Charges {
  /** Units per evaluation: 1, plus the sizes of literal operands (known at compile time). */
  step: number;
  /** Size of the result charged: 0 none, 1 shallow (allocated, or the range of a comprehension), 2 deep (an operand). */
  result: 0 | 1 | 2;
}

/**
 * After type-checking: replaces the `evaluate` of every node that does work or whose value is
 * charged by a metered one, so each evaluation spends from the budget (module docstring).
 * Returns false when the AST does not have the shape this relies on (then nothing may run).
 */
function instrument(nodes: Set<AstNode>, nodeClass: Function): boolean {
  const charges = new Map<AstNode, Charges>();
  const chargesOf = (n: AstNode): Charges => {
    let c = charges.get(n);
    if (!c) {
      const allocates = !n.meta.alternate && !n.meta.macro && ALLOCATING_OPS.has(n.op);
      charges.set(n, (c = { step: LEAF_OPS.has(n.op) ? 0 : 1, result: allocates ? 1 : 0 }));
    }
    return c;
  };
  const consume = (parent: AstNode, child: unknown, result: 1 | 2 = 2) => {
    if (!isNode(child, nodeClass)) return;
    if (child.op === 'value') chargesOf(parent).step += deepSize(child.args, Number.MAX_SAFE_INTEGER);
    else {
      const c = chargesOf(child);
      if (c.result < result) c.result = result;
    }
  };
  for (const node of nodes) {
    chargesOf(node);
    if (node.meta.alternate || node.meta.macro) continue;
    // A comprehension walks its range once, element by element (each step is charged on its own).
    if (node.op === 'comprehension') consume(node, (node.args as ComprehensionArgs).iterable, 1);
    else if (CONSUMING_OPS.has(node.op) && Array.isArray(node.args)) {
      // call: [name, args]; rcall: [name, receiver, args]; binary operators: [left, right].
      const operands: unknown[] = node.op === 'call' ? [...(node.args[1] as unknown[])] : node.op === 'rcall' ? [node.args[1], ...(node.args[2] as unknown[])] : node.args;
      for (const o of operands) consume(node, o);
      if (node.op === 'rcall' && TIME_ZONE_METHODS.has(node.args[0] as string) && (node.args[2] as unknown[]).length === 1) chargesOf(node).step += TIME_ZONE_COST;
    }
  }
  for (const [node, c] of charges) {
    const meta = node.meta;
    let inner: EvaluateFn;
    if (meta.alternate) {
      const alternate = meta.alternate;
      inner = (ev, _ast, ctx) => alternate.evaluate(ev, alternate, ctx);
    } else if (meta.macro) {
      const macro = meta.macro;
      if (typeof macro.evaluate !== 'function') return false;
      inner = (ev, _ast, ctx) => macro.evaluate(ev, macro, ctx);
    } else if (typeof meta.evaluate === 'function') {
      inner = meta.evaluate;
    } else {
      return false;
    }
    const { step, result } = c;
    if (step === 0 && result === 0) continue;
    if (result === 2) {
      node.evaluate = function (ev, ast, ctx) {
        if ((remaining -= step) < 0) throw COST_EXCEEDED;
        const r = inner.call(this, ev, ast, ctx);
        if ((typeof r === 'object' && r !== null) || typeof r === 'string') spend(deepSize(r, remaining + 1));
        return r;
      };
    } else if (result === 1) {
      node.evaluate = function (ev, ast, ctx) {
        if ((remaining -= step) < 0) throw COST_EXCEEDED;
        const r = inner.call(this, ev, ast, ctx);
        if ((typeof r === 'object' && r !== null) || typeof r === 'string') spend(shallowSize(r, remaining + 1));
        return r;
      };
    } else {
      node.evaluate = function (ev, ast, ctx) {
        if ((remaining -= step) < 0) throw COST_EXCEEDED;
        return inner.call(this, ev, ast, ctx);
      };
    }
  }
  return true;
}

/** JSON type of a checked CEL type name, when it has one. */
function jsonType(celType: string | undefined): CelResultType | undefined {
  if (celType === undefined) return undefined;
  if (celType === 'bool') return 'boolean';
  if (celType === 'string' || celType === 'bytes' || celType === 'google.protobuf.Timestamp' || celType === 'google.protobuf.Duration') return 'string';
  if (celType === 'double') return 'number';
  if (celType === 'int' || celType === 'uint') return 'integer';
  if (celType === 'list' || celType.startsWith('list<')) return 'array';
  if (celType === 'map' || celType.startsWith('map<')) return 'object';
  return undefined;
}

// ---- Results to JSON ----

class NotJson extends Error {}

function integerToJson(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new NotJson(`integer ${v} is outside the range JSON numbers hold exactly (±2^53−1)`);
  return Number(v);
}

/** "1.5s", "-0.000000001s", "3600s": CEL's string form of a duration (protobuf JSON mapping). */
function formatDuration(d: Duration): string {
  const total = d.seconds * 1_000_000_000n + BigInt(d.nanos);
  const sign = total < 0n ? '-' : '';
  const abs = total < 0n ? -total : total;
  const seconds = abs / 1_000_000_000n;
  const nanos = abs % 1_000_000_000n;
  const fraction = nanos === 0n ? '' : `.${nanos.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${sign}${seconds}${fraction}s`;
}

/** Defines `key` as an own property (a key `__proto__` stays data). */
function define(o: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, writable: true, enumerable: true, configurable: true });
  else o[key] = value;
}

/** Converts a CEL value to plain JSON, reusing arrays and objects that need no change; 1 unit per element. */
function toJson(v: unknown): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      if (!Number.isFinite(v)) throw new NotJson(`${v} is not a JSON number`);
      return v;
    case 'bigint':
      return integerToJson(v);
    case 'object': {
      if (v === null) return null;
      if (Array.isArray(v)) {
        spend(v.length);
        let out: unknown[] | undefined;
        for (let i = 0; i < v.length; i++) {
          const e: unknown = v[i];
          const c = toJson(e);
          if (c !== e && !out) out = v.slice(0, i);
          if (out) out.push(c);
        }
        return out ?? v;
      }
      if (v instanceof Date) return v.toISOString();
      if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
      if (v instanceof UnsignedInt) return integerToJson(v.valueOf());
      if (v instanceof Duration) return formatDuration(v);
      if (v instanceof Map) {
        spend(v.size);
        const out: Record<string, unknown> = {};
        for (const [k, e] of v) define(out, typeof k === 'string' ? k : String(toJson(k)), toJson(e));
        return out;
      }
      if (isPlainObject(v)) {
        const o = v as Record<string, unknown>;
        const keys = Object.keys(o);
        spend(keys.length);
        let out: Record<string, unknown> | undefined;
        for (let i = 0; i < keys.length; i++) {
          const e = o[keys[i]!];
          const c = toJson(e);
          if (c !== e && !out) {
            out = {};
            for (let j = 0; j < i; j++) define(out, keys[j]!, o[keys[j]!]);
          }
          if (out) define(out, keys[i]!, c);
        }
        return out ?? v;
      }
      throw new NotJson(`a ${v.constructor?.name ?? 'non-JSON'} value has no JSON form`);
    }
    default:
      throw new NotJson(`a ${typeof v} value has no JSON form`);
  }
}

// ---- Entry point ----

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});
const orEmpty = (v: unknown): unknown => (v === undefined || v === null ? EMPTY : v);

/**
 * Parses, type-checks and instruments a CEL expression once.
 *
 * @param source CEL source (https://github.com/google/cel-spec/blob/master/doc/langdef.md); variables
 *   and numbers as in the module docstring.
 * @param kind `condition` requires a bool: a statically known other type is a compile problem, a
 *   non-bool at run time a {@link CelFailure}.
 * @param where JSON pointer (RFC 6901) of the `expr` field in the Mapping spec; every problem carries it.
 * @param problems receives `{path: where, rule: 'expr', message}` for syntax errors (with the column),
 *   unknown variables or functions, static type errors, expressions over the limits, regexes that
 *   are invalid, too long, too large or not string literals, and conditions that are not bool.
 * @param options `scope` (`item` adds the variable `item`), `limits` overriding {@link DEFAULT_CEL_LIMITS}.
 * @returns the compiled expression, or undefined when a problem was recorded. Never throws for bad input.
 */
export function compileExpression(
  source: string,
  kind: CelKind,
  where: string,
  problems: Problem[],
  options: { scope?: CelScope; limits?: Partial<CelLimits> } = {},
): CompiledExpression | undefined {
  const limits: CelLimits = { ...DEFAULT_CEL_LIMITS, ...options.limits };
  const scope = options.scope ?? 'event';
  const problem = (message: string): undefined => {
    problems.push({ path: where, rule: 'expr', message });
    return undefined;
  };
  if (source.length > limits.maxExpressionLength) return problem(`expression is ${source.length} characters long, more than the ${limits.maxExpressionLength} allowed`);
  if (source.trim() === '') return problem('expression is empty');

  const env = environment(scope, limits);
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.parse(source);
  } catch (e) {
    if (e instanceof ParseError && e.code === 'limit_exceeded') return problem(`expression too large or too deeply nested: ${userNames(e.summary)}${position(source, e.range?.start)}`);
    return problem(`syntax error: ${describeError(e, source)}`);
  }
  const root = parsed.ast as unknown as AstNode;
  const nodeClass = Object.getPrototypeOf(root)?.constructor as Function | undefined;
  if (typeof nodeClass !== 'function' || typeof root.meta !== 'object') return problem('the CEL library has an unexpected AST shape; expressions are refused rather than run unmetered');

  let nodes = new Set<AstNode>();
  collect(root, nodeClass, nodes);
  const regexes = new Map<string, CompiledRegex>();
  const rewriteProblems = rewrite(nodes, limits, source, regexes);
  if (rewriteProblems.length > 0) {
    for (const m of rewriteProblems) problem(m);
    return undefined;
  }
  const nesting = comprehensionNesting(root, nodeClass);
  if (nesting > limits.maxComprehensionNesting) return problem(`comprehensions (map, filter, all, exists, exists_one) nest ${nesting} deep, more than the ${limits.maxComprehensionNesting} allowed`);

  let checked: ReturnType<typeof parsed.check>;
  try {
    checked = parsed.check();
  } catch (e) {
    return problem(describeError(e, source));
  }
  if (!checked.valid) return problem(describeError(checked.error, source));
  const celType = checked.type;
  if (kind === 'condition' && celType !== 'bool' && celType !== 'dyn') return problem(`a condition must be bool, but this expression is ${userNames(celType ?? 'unknown')}`);
  if (root.checkedType === undefined) return problem('the CEL library did not keep the checked AST; expressions are refused rather than re-checked per event');

  // Checking adds nodes (the fields `has()` reads) and fixes each node's evaluate: collect again.
  nodes = new Set<AstNode>();
  collect(root, nodeClass, nodes);
  if (!instrument(nodes, nodeClass)) return problem('the CEL library has an unexpected AST shape; expressions are refused rather than run unmetered');

  const maxCost = limits.maxCost;
  const condition = kind === 'condition';
  const withItem = scope === 'item';
  const run = parsed as unknown as (vars: Record<string, unknown>) => unknown;
  // One context object per expression, refilled per evaluation (no allocation on the hot path).
  const vars: Record<string, unknown> = { event: undefined, properties: undefined, traits: undefined, context: undefined, name: undefined, [TYPE_VARIABLE]: undefined };
  if (withItem) vars.item = undefined;

  const failure = (e: unknown): CelFailure => {
    if (e === COST_EXCEEDED || remaining < 0) return new CelFailure(`evaluation cost exceeded the budget of ${maxCost}`);
    if (e instanceof NotJson) return new CelFailure(`result ${e.message}`);
    if (e instanceof RangeError) return new CelFailure(e.message);
    return new CelFailure(describeError(e, source));
  };

  return {
    source,
    resultType: jsonType(celType),
    evaluate(input: CelInput): unknown {
      remaining = maxCost;
      activeRegexes = regexes;
      try {
        const event = input.event;
        vars.event = event;
        vars.properties = orEmpty(event.properties);
        vars.traits = orEmpty(event.traits);
        vars.context = orEmpty(event.context);
        vars.name = input.name;
        vars[TYPE_VARIABLE] = input.type;
        if (withItem) vars.item = input.item === undefined ? null : input.item;
        const result = run(vars);
        if (remaining < 0) return failure(COST_EXCEEDED);
        if (condition) return typeof result === 'boolean' ? result : new CelFailure(`a condition must be bool, got ${result === null ? 'null' : typeof result}`);
        return toJson(result);
      } catch (e) {
        return failure(e);
      } finally {
        // Do not keep the last event alive through this expression.
        vars.event = vars.properties = vars.traits = vars.context = undefined;
        if (withItem) vars.item = undefined;
      }
    },
  };
}
