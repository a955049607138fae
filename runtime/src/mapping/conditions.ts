import deepEqual from 'fast-deep-equal';
import { RE2JS } from 're2js';
import type { EventCondition, Predicate } from '../api/index.js';
import type { Problem } from '../errors.js';
import { CelFailure, compileExpression, type CelInput, type CelScope } from './cel.js';
import { compileSource, readSource, type Scope, type Source } from './sources.js';

/**
 * A compiled condition: true when it holds for `root` (the event, or the array element inside
 * `each`). Semantics (runtime/src/mapping/README.md, "Conditions"): every operator given must
 * hold; an absent value (missing or null) passes only `exists: false`, `notEquals` and `notIn`;
 * no type coercion; a CEL expression that fails (missing key, wrong type, cost exceeded) does not
 * hold.
 */
export type ConditionFn = (root: unknown, input: CelInput) => boolean;

/** Why a condition did not hold, for `--explain`: the pointer of the first failing test and what it saw. */
export interface ConditionTrace {
  pointer: string;
  message: string;
}

/** A compiled list of conditions (all must hold), with a slower variant that says which failed. */
export interface CompiledConditions {
  readonly test: ConditionFn;
  /** Like test, but returns the first failing condition (undefined when all hold). */
  explain(root: unknown, input: CelInput): ConditionTrace | undefined;
}

type Test = (value: unknown) => boolean;

const isAbsent = (v: unknown): boolean => v === undefined || v === null;

const lower = (v: unknown): unknown => (typeof v === 'string' ? v.toLowerCase() : v);

function membership(values: readonly unknown[], ignoreCase: boolean): Test {
  const list = ignoreCase ? values.map(lower) : values;
  const primitives = new Set(list.filter((v) => v === null || typeof v !== 'object'));
  const objects = list.filter((v) => v !== null && typeof v === 'object');
  return (value) => {
    const v = ignoreCase ? lower(value) : value;
    if (primitives.has(v)) return true;
    return v !== null && typeof v === 'object' && objects.some((o) => deepEqual(o, v));
  };
}

function compilePredicate(p: Predicate, at: string, problems: Problem[], scope: Scope, celScope: CelScope): ConditionFn | undefined {
  const before = problems.length;
  const ignoreCase = p.ignoreCase === true;
  if (p.expr !== undefined) {
    const others = Object.keys(p).filter((k) => k !== 'expr');
    if (others.length > 0) problems.push({ path: `${at}/${others[0]}`, rule: 'condition', message: 'expr is used alone: put other tests in their own condition' });
    const expr = compileExpression(p.expr, 'condition', `${at}/expr`, problems, { scope: celScope });
    if (!expr || problems.length > before) return undefined;
    return (_root, input) => expr.evaluate(input) === true;
  }
  if (p.path === undefined) {
    problems.push({ path: at, rule: 'condition', message: 'a test needs a path (or use expr)' });
    return undefined;
  }
  const source = compileSource(p.path, `${at}/path`, problems, scope);
  const tests: Test[] = [];
  const absentOk: boolean[] = [];
  const add = (test: Test, holdsWhenAbsent = false) => {
    tests.push(test);
    absentOk.push(holdsWhenAbsent);
  };
  const str = (f: (s: string) => boolean): Test => (v) => typeof v === 'string' && f(ignoreCase ? v.toLowerCase() : v);
  const needle = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  if (p.exists !== undefined) {
    const want = p.exists;
    add((v) => want, !want);
  }
  if (Object.hasOwn(p, 'equals')) {
    const target = ignoreCase ? lower(p.equals) : p.equals;
    add((v) => deepEqual(ignoreCase ? lower(v) : v, target));
  }
  if (Object.hasOwn(p, 'notEquals')) {
    const target = ignoreCase ? lower(p.notEquals) : p.notEquals;
    add((v) => !deepEqual(ignoreCase ? lower(v) : v, target), true);
  }
  if (p.in) add(membership(p.in, ignoreCase));
  if (p.notIn) {
    const inList = membership(p.notIn, ignoreCase);
    add((v) => !inList(v), true);
  }
  const num = (f: (n: number) => boolean): Test => (v) => typeof v === 'number' && f(v);
  if (p.gt !== undefined) { const b = p.gt; add(num((n) => n > b)); }
  if (p.gte !== undefined) { const b = p.gte; add(num((n) => n >= b)); }
  if (p.lt !== undefined) { const b = p.lt; add(num((n) => n < b)); }
  if (p.lte !== undefined) { const b = p.lte; add(num((n) => n <= b)); }
  if (p.matches !== undefined) {
    try {
      const re = RE2JS.compile(p.matches, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
      add((v) => typeof v === 'string' && re.test(v));
    } catch (e) {
      problems.push({ path: `${at}/matches`, rule: 'regex', message: `not an RE2 regular expression: ${(e as Error).message}` });
    }
  }
  if (p.startsWith !== undefined) { const s = needle(p.startsWith); add(str((v) => v.startsWith(s))); }
  if (p.endsWith !== undefined) { const s = needle(p.endsWith); add(str((v) => v.endsWith(s))); }
  if (p.contains !== undefined) {
    const s = needle(p.contains);
    add((v) => (typeof v === 'string' ? (ignoreCase ? v.toLowerCase() : v).includes(s) : Array.isArray(v) && v.some((e) => (ignoreCase ? lower(e) : e) === s)));
  }
  if (!Object.keys(p).some((k) => k !== 'path' && k !== 'ignoreCase')) {
    problems.push({ path: at, rule: 'condition', message: 'a test needs an operator: exists, equals, notEquals, in, notIn, gt, gte, lt, lte, matches, startsWith, endsWith or contains' });
  }
  if (!source || problems.length > before) return undefined;
  return (root, input) => {
    const value = readSource(source, root, input);
    const absent = isAbsent(value);
    for (let i = 0; i < tests.length; i++) {
      if (absent ? !absentOk[i] : !tests[i]!(value)) return false;
    }
    return true;
  };
}

/**
 * Compiles one condition (at JSON pointer `at`); see {@link compileConditions}.
 * @returns undefined (and problems added) when it is invalid.
 */
export function compileCondition(c: EventCondition, at: string, problems: Problem[], scope: Scope, celScope: CelScope = scope === 'item' ? 'item' : 'event'): ConditionFn | undefined {
  const { any, all, ...own } = c;
  const before = problems.length;
  const parts: ConditionFn[] = [];
  if (Object.keys(own).length > 0) {
    const fn = compilePredicate(own, at, problems, scope, celScope);
    if (fn) parts.push(fn);
  }
  if (any) {
    const fns = any.map((p, i) => compilePredicate(p, `${at}/any/${i}`, problems, scope, celScope)).filter((f): f is ConditionFn => f !== undefined);
    parts.push((root, input) => fns.some((f) => f(root, input)));
  }
  if (all) {
    const fns = all.map((p, i) => compilePredicate(p, `${at}/all/${i}`, problems, scope, celScope)).filter((f): f is ConditionFn => f !== undefined);
    parts.push((root, input) => fns.every((f) => f(root, input)));
  }
  if (problems.length > before) return undefined;
  if (parts.length === 1) return parts[0];
  return (root, input) => parts.every((f) => f(root, input));
}

/**
 * Compiles a list of conditions that must all hold (`when`, `events.where`).
 * @param where JSON pointer of the list in the spec (problems name `${where}/${i}/…`).
 * @param scope `event` at the top level, `item` inside `each` (paths relative to the element;
 * `$item` and `$event.…` sources allowed; CEL gets `item`).
 * @returns undefined (and problems added) when a condition is invalid: bad path, no operator,
 * `expr` mixed with other tests, an RE2 syntax error, a CEL compile problem.
 */
export function compileConditions(list: readonly EventCondition[], where: string, problems: Problem[], scope: Scope): CompiledConditions | undefined {
  const before = problems.length;
  const celScope: CelScope = scope === 'item' ? 'item' : 'event';
  const fns = list.map((c, i) => compileCondition(c, `${where}/${i}`, problems, scope, celScope));
  if (problems.length > before) return undefined;
  const compiled = fns as ConditionFn[];
  const test: ConditionFn =
    compiled.length === 1 ? compiled[0]! : (root, input) => {
      for (const f of compiled) if (!f(root, input)) return false;
      return true;
    };
  return {
    test,
    explain(root, input) {
      for (let i = 0; i < compiled.length; i++) {
        if (!compiled[i]!(root, input)) {
          const c = list[i]!;
          const seen = c.path !== undefined ? describeValue(readSourceText(c.path, root, input, scope)) : undefined;
          return { pointer: `${where}/${i}`, message: c.expr !== undefined ? `expr ${JSON.stringify(c.expr)} is not true` : `${c.path ?? 'any/all'}${seen !== undefined ? ` is ${seen}` : ''}` };
        }
      }
      return undefined;
    },
  };
}

/** Reads a source given as text (explain path only: parses again). */
function readSourceText(text: string, root: unknown, input: CelInput, scope: Scope): unknown {
  const source: Source | undefined = compileSource(text, '', [], scope);
  return source ? readSource(source, root, input) : undefined;
}

/** Short rendering of a value for explanations: JSON, cut at 80 characters; `absent` for missing/null. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'absent (missing)';
  if (v === null) return 'absent (null)';
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

export { CelFailure };
