/**
 * Destination output schemas: a static check of what a Mapping part can write against the JSON
 * Schema a destination declares for one payload, and a compiled runtime validator for payloads.
 *
 * Dialect: draft-07 (what `createAjv` in api/validate.ts speaks, and what TypeBox emits) unless the
 * schema's `$schema` names draft 2020-12 (`https://json-schema.org/draft/2020-12/schema`), which
 * switches to ajv's 2020-12 class (`prefixItems`, `items` for the rest).
 *
 * Why not `createAjv`: these schemas may come from users (a webhook's `payloadSchema`), so strict
 * mode is off (unknown keywords are annotations), no defaults or coercion (a payload is never
 * modified), own properties only, and `pattern`/`patternProperties` run on RE2 (re2js: linear
 * time, no lookaround or backreferences), so a user's pattern cannot stall the forwarder (ReDoS);
 * schemas of our own destinations ({@link trustOutputSchema}) use native RegExp.
 * Each schema object gets its own ajv instance (about 0.3 ms, less than compiling), held in a
 * WeakMap with it: a schema replaced by a reload is freed with its compiled code, and two schemas
 * with the same `$id` never clash. Options: https://ajv.js.org/options.html.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import * as addFormatsModule from 'ajv-formats';
import { RE2JS } from 're2js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';

// ajv-formats ships CommonJS with a default export.
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv) => Ajv;

/** One step of an output path: an object key, an array index, or every element of an array (`each` rules). */
export type ShapeSegment = { key: string } | { index: number } | { each: true };

/** JSON Schema primitive types (https://json-schema.org/draft/2020-12/json-schema-validation#section-6.1.1); `integer` ⊂ `number`. */
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/**
 * What one rule of a Mapping part can write, as described by the Mapping compiler. A part's fields
 * are listed in rule order (global rules first, then the part's; an `each` rule's nested rules right
 * after it, their paths continuing with `{each: true}`): later writes win.
 */
export interface OutputField {
  /** Where the rule writes, from the payload root. */
  path: readonly ShapeSegment[];
  /** Possible types of the value written; undefined = unknown (copied from the event). */
  types: ReadonlySet<JsonType> | undefined;
  /** The exact value when it is static. */
  value?: { v: unknown };
  /** True when the rule writes on every event the part accepts (static value or default without condition, required). */
  always: boolean;
  /** The keys of an object are merged in at `path`: unknown keys. */
  merge?: boolean;
  /** JSON pointer of the rule in the Mapping spec, e.g. `/eventSpecific/Order Completed/fields/3`. */
  pointer: string;
}

/** One way a payload fails its output schema. */
export interface OutputViolation {
  /** JSON pointer (RFC 6901) of the offending value in the payload; a missing or unexpected property is named itself. `''` is the payload. */
  instancePath: string;
  /** The same place as a Mapping path, e.g. `events[0].params.value` (`''` for the payload itself). */
  path: string;
  /** The ajv keyword that failed, e.g. `required`, `type`, `pattern`. */
  rule: string;
  /** Human-readable explanation, e.g. `must be number`. */
  message: string;
}

/** Validates one mapped payload: undefined when it is valid, else every violation (ajv `allErrors`). Never throws, never modifies the payload. */
export interface OutputValidator {
  (payload: unknown): OutputViolation[] | undefined;
}

// ---- ajv: one instance and one compiled schema per schema object -------------------------------

type Dialect = 'draft-07' | '2020-12';

/** A schema `pattern` compiled by RE2 (ECMAScript syntax translated by re2js); `test` searches like RegExp.test. */
function re2Pattern(pattern: string): { test(s: string): boolean; toString(): string } {
  const re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  // ajv keys compiled patterns by toString(): keep it distinct per pattern.
  return { test: (s) => re.test(s), toString: () => `re2:${pattern}` };
}
re2Pattern.code = 're2Pattern'; // only read by ajv's standalone code generation, which is not used

const AJV_OPTIONS: Options = { allErrors: true, strict: false, useDefaults: false, coerceTypes: false, ownProperties: true, code: { regExp: re2Pattern } };
/** For schemas written in this code base (vendor output schemas): the same, with ajv's native RegExp patterns (about 3× faster). */
const TRUSTED_AJV_OPTIONS: Options = { ...AJV_OPTIONS, code: {} };

const trusted = new WeakSet<object>();

/**
 * Marks a schema object as written in this code base (a vendor destination's output schema, not a
 * user's `payloadSchema`): its patterns then run on the native RegExp engine instead of RE2.
 * Must be called before the schema is first compiled. Returns the schema.
 */
export function trustOutputSchema<T extends object>(schema: T): T {
  trusted.add(schema);
  return schema;
}

interface SchemaState {
  root: object;
  dialect: Dialect;
  ajv: Ajv;
  /** Key of the root schema in `ajv` (its `$id`, else a fixed key); fragments are `${key}#/pointer`. */
  key: string;
  validate: ValidateFunction;
  validator?: OutputValidator;
  fragments: Map<string, ValidateFunction | null>;
  patterns: Map<string, { test(s: string): boolean } | null>;
}

const states = new WeakMap<object, SchemaState>();

/** Compiles (once per schema object) a schema in an ajv instance of its own, so its fragments can be validated against too. */
function stateOf(schema: object): SchemaState {
  let state = states.get(schema);
  if (state) return state;
  if (!isPlainObject(schema)) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, 'invalid output schema: not a JSON Schema object');
  const dialect: Dialect = typeof schema.$schema === 'string' && schema.$schema.includes('/draft/2020-12/') ? '2020-12' : 'draft-07';
  const options = trusted.has(schema) ? TRUSTED_AJV_OPTIONS : AJV_OPTIONS;
  const ajv = dialect === '2020-12' ? (new Ajv2020(options) as unknown as Ajv) : new Ajv(options);
  addFormats(ajv);
  const id = typeof schema.$id === 'string' ? schema.$id.replace(/#$/, '') : undefined;
  const key = id ?? 'switchyard:output-schema';
  let validate: ValidateFunction | undefined;
  try {
    ajv.addSchema(schema, id ? undefined : key);
    validate = ajv.getSchema(key);
  } catch (e) {
    throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `invalid output schema: ${(e as Error).message}`, { cause: e });
  }
  if (!validate) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, 'invalid output schema: ajv could not compile it');
  state = { root: schema, dialect, ajv, key, validate, fragments: new Map(), patterns: new Map() };
  states.set(schema, state);
  return state;
}

/** Validator of the sub-schema at `pointer` (RFC 6901) in the root, refs resolved against the root; null when ajv cannot compile it alone. */
function fragment(state: SchemaState, pointer: string): ValidateFunction | null {
  let v = state.fragments.get(pointer);
  if (v === undefined) {
    try {
      v = state.ajv.getSchema(`${state.key}#${pointer.split('/').map(encodeURIComponent).join('/')}`) ?? null;
    } catch {
      v = null;
    }
    state.fragments.set(pointer, v);
  }
  return v;
}

/**
 * Compiles the runtime validator of a destination output schema (draft-07, or 2020-12 when `$schema`
 * says so). Compiled once per schema object (cached in a WeakMap; the same function is returned for
 * the same object). The validator reports every violation; a missing required property (and an
 * unexpected one) is reported at the property itself, e.g. `/events/0/name`.
 * @throws SwitchyardError INVALID_RESOURCE when ajv refuses the schema (invalid schema, unresolvable `$ref`, bad pattern).
 */
export function compileOutputValidator(schema: object): OutputValidator {
  const state = stateOf(schema);
  if (!state.validator) {
    const validate = state.validate;
    state.validator = (payload) => (validate(payload) ? undefined : toViolations(validate.errors, payload));
  }
  return state.validator;
}

/** Turns ajv errors into violations; `value` is the validated value, used to tell array indexes from keys in `path`. */
function toViolations(errors: readonly ErrorObject[] | null | undefined, value: unknown): OutputViolation[] {
  return (errors ?? []).map((e) => {
    const params = e.params as Record<string, unknown>;
    let instancePath = e.instancePath;
    const named = params.missingProperty ?? params.additionalProperty ?? params.unevaluatedProperty ?? e.propertyName ?? params.propertyName;
    if (typeof named === 'string') instancePath += `/${escapePointerToken(named)}`;
    return { instancePath, path: dottedPath(instancePath, value), rule: e.keyword, message: messageOf(e) };
  });
}

function messageOf(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
    case 'dependentRequired':
    case 'dependencies':
      return 'is required';
    case 'additionalProperties':
    case 'unevaluatedProperties':
      return 'is not allowed';
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`;
    default:
      return e.message ?? 'is invalid';
  }
}

// ---- paths -----------------------------------------------------------------------------------

const escapePointerToken = (token: string): string => token.replaceAll('~', '~0').replaceAll('/', '~1');
const unescapePointerToken = (token: string): string => token.replaceAll('~1', '/').replaceAll('~0', '~');
/** Keys written bare in a Mapping path (README "Paths"); others are written `["…"]`. */
const BARE_KEY = /^[A-Za-z0-9_$@-]+$/;
const keyText = (key: string, first: boolean): string => (BARE_KEY.test(key) ? (first ? key : `.${key}`) : `[${JSON.stringify(key)}]`);

/** A JSON pointer into `value` as a Mapping path: `/events/0/name` → `events[0].name` (index only where `value` holds an array). */
function dottedPath(pointer: string, value: unknown): string {
  if (pointer === '') return '';
  let text = '';
  let cur: unknown = value;
  for (const raw of pointer.slice(1).split('/')) {
    const token = unescapePointerToken(raw);
    if (Array.isArray(cur)) {
      text += `[${token}]`;
      cur = cur[Number(token)];
    } else {
      text += keyText(token, text === '');
      cur = isPlainObject(cur) && Object.hasOwn(cur, token) ? cur[token] : undefined;
    }
  }
  return text;
}

const keyOf = (s: ShapeSegment): string | undefined => (s as { key?: string }).key;
const indexOf = (s: ShapeSegment): number | undefined => (s as { index?: number }).index;
const isEach = (s: ShapeSegment): boolean => (s as { each?: boolean }).each === true;
const isArrayStep = (s: ShapeSegment): boolean => keyOf(s) === undefined;

/** An output path as text: `events[].params.value` (`[]` = every element). */
function pathText(path: readonly ShapeSegment[]): string {
  let text = '';
  for (const s of path) {
    const key = keyOf(s);
    text += key !== undefined ? keyText(key, text === '') : isEach(s) ? '[]' : `[${indexOf(s)}]`;
  }
  return text;
}

const pathKey = (path: readonly ShapeSegment[]): string => JSON.stringify(path.map((s) => keyOf(s) ?? indexOf(s) ?? '*each'));

function sameSegment(a: ShapeSegment, b: ShapeSegment): boolean {
  const ka = keyOf(a);
  if (ka !== undefined) return ka === keyOf(b);
  if (isEach(a)) return isEach(b);
  return indexOf(a) === indexOf(b);
}

/**
 * Where path `a` certainly stands relative to `b`: same node, strictly below it, strictly above it
 * (a prefix), in a sibling branch (same container kinds, different key or index), or `conflict`
 * (one makes a container an object where the other needs an array, or an index meets `each`).
 */
function relate(a: readonly ShapeSegment[], b: readonly ShapeSegment[]): 'equal' | 'below' | 'above' | 'sibling' | 'conflict' {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (sameSegment(x, y)) continue;
    if (keyOf(x) !== undefined && keyOf(y) !== undefined) return 'sibling';
    if (indexOf(x) !== undefined && indexOf(y) !== undefined) return 'sibling';
    return 'conflict';
  }
  return a.length === b.length ? 'equal' : a.length > b.length ? 'below' : 'above';
}

/** Whether a write at `a` may reach `b`: at or below it (`covers`), above it (`prefix`), or not at all; an index may be one of the elements `each` writes. */
function mayReach(a: readonly ShapeSegment[], b: readonly ShapeSegment[]): 'covers' | 'prefix' | 'none' {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (sameSegment(x, y)) continue;
    if (isArrayStep(x) && isArrayStep(y) && (isEach(x) || isEach(y))) continue;
    return 'none';
  }
  return a.length >= b.length ? 'covers' : 'prefix';
}

/** Values found at `rest` inside a static value (`each` = every element). */
function staticAt(value: unknown, rest: readonly ShapeSegment[]): unknown[] {
  let found: unknown[] = [value];
  for (const s of rest) {
    const next: unknown[] = [];
    const key = keyOf(s);
    for (const v of found) {
      if (key !== undefined) {
        if (isPlainObject(v) && Object.hasOwn(v, key)) next.push(v[key]);
      } else if (Array.isArray(v)) {
        const i = indexOf(s);
        if (i === undefined) next.push(...v);
        else if (i < v.length) next.push(v[i]);
      }
    }
    found = next;
  }
  return found;
}

/** Whether every branch of `rest` inside a static value reaches a plain object (and there is at least one). */
function staticObjects(value: unknown, rest: readonly ShapeSegment[]): boolean {
  let found: unknown[] = [value];
  for (const s of rest) {
    const next: unknown[] = [];
    const key = keyOf(s);
    for (const v of found) {
      if (key !== undefined) {
        if (!isPlainObject(v) || !Object.hasOwn(v, key)) return false;
        next.push(v[key]);
      } else {
        const i = indexOf(s);
        if (!Array.isArray(v) || (i !== undefined && i >= v.length)) return false;
        if (i === undefined) next.push(...v);
        else next.push(v[i]);
      }
    }
    found = next;
  }
  return found.length > 0 && found.every(isPlainObject);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function typeOfValue(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

// ---- the schema at a path ----------------------------------------------------------------------

type SchemaNode = boolean | Record<string, unknown>;

/** One sub-schema that certainly applies at a place in the output. */
interface Entry {
  node: SchemaNode;
  /** JSON pointer of `node` in the root schema. */
  pointer: string;
  /** False when reached through `$ref`/`allOf` of another entry of the same place (validating that one covers it). */
  direct: boolean;
  /** Below a nested `$id`: `$ref`s there resolve against another base, so they are not followed. */
  foreign: boolean;
  /** Keyword that led here, e.g. `properties`, `additionalProperties`, `items`. */
  via: string;
}

/** The schemas that apply at one output path; `blocked` when writing there fails (the first such place on the way is `dead` below). */
interface Location {
  entries: Entry[];
  dead: boolean;
  blocked?: { rule: string; message: string };
}

interface Check {
  state: SchemaState;
  fields: readonly OutputField[];
  label: string;
  partPointer: string;
  problems: Problem[];
  locations: Map<string, Location>;
}

/** Resolves a `$ref` inside the root document (`#`, `#/json/pointer`, or the root `$id` followed by those); other refs are not followed. */
function resolveRef(state: SchemaState, ref: string): { node: SchemaNode; pointer: string } | undefined {
  let fragmentText: string;
  if (ref.startsWith('#')) fragmentText = ref.slice(1);
  else if (ref.startsWith(`${state.key}#`)) fragmentText = ref.slice(state.key.length + 1);
  else if (ref === state.key) fragmentText = '';
  else return undefined;
  if (fragmentText !== '' && !fragmentText.startsWith('/')) return undefined; // anchors
  let node: unknown = state.root;
  let pointer = '';
  if (fragmentText !== '') {
    for (const raw of fragmentText.slice(1).split('/')) {
      let token: string;
      try {
        token = unescapePointerToken(decodeURIComponent(raw));
      } catch {
        return undefined;
      }
      if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(token)) node = node[Number(token)];
      else if (isPlainObject(node) && Object.hasOwn(node, token)) node = node[token];
      else return undefined;
      pointer += `/${escapePointerToken(token)}`;
    }
  }
  return typeof node === 'boolean' || isPlainObject(node) ? { node, pointer } : undefined;
}

/** Adds `entry` and everything that applies with it: its local `$ref` target and `allOf` members (recursively). `anyOf`, `oneOf`, `if` and `not` are not followed. */
function expand(state: SchemaState, entry: Entry, out: Entry[], seen: Set<string>): void {
  if (seen.has(entry.pointer)) return;
  seen.add(entry.pointer);
  out.push(entry);
  const node = entry.node;
  if (!isPlainObject(node)) return;
  const foreign = entry.foreign || (entry.pointer !== '' && typeof node.$id === 'string');
  if (typeof node.$ref === 'string' && !foreign) {
    const target = resolveRef(state, node.$ref);
    if (target) expand(state, { ...target, direct: false, foreign: false, via: '$ref' }, out, seen);
  }
  if (Array.isArray(node.allOf)) {
    node.allOf.forEach((sub: unknown, i) => {
      if (typeof sub === 'boolean' || isPlainObject(sub)) expand(state, { node: sub, pointer: `${entry.pointer}/allOf/${i}`, direct: false, foreign, via: 'allOf' }, out, seen);
    });
  }
}

function expandAll(state: SchemaState, entries: readonly Entry[]): Entry[] {
  const out: Entry[] = [];
  const seen = new Set<string>();
  for (const e of entries) expand(state, e, out, seen);
  return out;
}

/** The engine ajv runs, so keys match here exactly as they do at run time; null when the engine refuses the pattern (ajv skips patterns whose schema is always valid). */
function patternOf(state: SchemaState, pattern: string): { test(s: string): boolean } | null {
  let re = state.patterns.get(pattern);
  if (re === undefined) {
    try {
      re = trusted.has(state.root) ? new RegExp(pattern, 'u') : re2Pattern(pattern);
    } catch {
      re = null;
    }
    state.patterns.set(pattern, re);
  }
  return re;
}

/** The schemas at `path`, memoized per check. */
function locate(c: Check, path: readonly ShapeSegment[]): Location {
  const key = pathKey(path);
  let loc = c.locations.get(key);
  if (loc) return loc;
  if (path.length === 0) {
    loc = { entries: expandAll(c.state, [{ node: c.state.root as SchemaNode, pointer: '', direct: true, foreign: false, via: 'root' }]), dead: false };
  } else {
    const parent = locate(c, path.slice(0, -1));
    loc = parent.dead || parent.blocked ? { entries: [], dead: true } : stepInto(c, parent, path);
  }
  c.locations.set(key, loc);
  return loc;
}

/** The schemas that apply to the child `path` of `parent`, and whether the schema forbids writing it. */
function stepInto(c: Check, parent: Location, path: readonly ShapeSegment[]): Location {
  const seg = path[path.length - 1]!;
  const text = pathText(path);
  const children: Entry[] = [];
  let blocked: Location['blocked'];
  const key = keyOf(seg);
  const index = indexOf(seg);
  for (const e of parent.entries) {
    const n = e.node;
    if (!isPlainObject(n)) continue;
    const foreign = e.foreign || (e.pointer !== '' && typeof n.$id === 'string');
    const add = (node: unknown, pointer: string, via: string): void => {
      if (typeof node === 'boolean' || isPlainObject(node)) children.push({ node, pointer, direct: true, foreign, via });
    };
    if (key !== undefined) {
      let matched = false;
      if (isPlainObject(n.properties) && Object.hasOwn(n.properties, key)) {
        add(n.properties[key], `${e.pointer}/properties/${escapePointerToken(key)}`, 'properties');
        matched = true;
      }
      if (isPlainObject(n.patternProperties)) {
        for (const [pattern, sub] of Object.entries(n.patternProperties)) {
          const re = patternOf(c.state, pattern);
          // A pattern RE2 refuses may match: additionalProperties is then not known to apply.
          if (!re) matched = true;
          else if (re.test(key)) {
            add(sub, `${e.pointer}/patternProperties/${escapePointerToken(pattern)}`, 'patternProperties');
            matched = true;
          }
        }
      }
      if (!matched && Object.hasOwn(n, 'additionalProperties')) add(n.additionalProperties, `${e.pointer}/additionalProperties`, 'additionalProperties');
      if (!blocked && Object.hasOwn(n, 'propertyNames')) {
        const validate = fragment(c.state, `${e.pointer}/propertyNames`);
        if (validate && !validate(key)) {
          const why = validate.errors?.[0] ? messageOf(validate.errors[0]) : 'is refused';
          blocked = { rule: 'propertyNames', message: `writes ${text}; ${c.label} refuses the property name ${JSON.stringify(key)}: ${why}` };
        }
      }
    } else {
      const at = index ?? 0; // `each`: element 0 exists whenever the array is not empty
      if (c.state.dialect === '2020-12') {
        if (Array.isArray(n.prefixItems) && at < n.prefixItems.length) add(n.prefixItems[at], `${e.pointer}/prefixItems/${at}`, 'prefixItems');
        else if (Object.hasOwn(n, 'items')) add(n.items, `${e.pointer}/items`, 'items');
      } else if (Array.isArray(n.items)) {
        if (at < n.items.length) add(n.items[at], `${e.pointer}/items/${at}`, 'items');
        else if (Object.hasOwn(n, 'additionalItems')) add(n.additionalItems, `${e.pointer}/additionalItems`, 'additionalItems');
      } else if (Object.hasOwn(n, 'items')) {
        add(n.items, `${e.pointer}/items`, 'items');
      }
      if (!blocked && index !== undefined && typeof n.maxItems === 'number' && index >= n.maxItems) {
        blocked = { rule: 'maxItems', message: `writes ${text}; ${c.label} allows at most ${n.maxItems} items in ${pathText(path.slice(0, -1))}` };
      }
    }
  }
  const entries = expandAll(c.state, children);
  const never = entries.find((e) => e.node === false);
  if (!blocked && never) {
    if (never.via === 'additionalProperties') blocked = { rule: 'additionalProperties', message: `writes ${text}, a property ${c.label} does not allow` };
    else if (never.via === 'items' || never.via === 'additionalItems') blocked = { rule: never.via, message: `writes ${text}, an item ${c.label} does not allow` };
    else blocked = { rule: 'false schema', message: `writes ${text}, which ${c.label} forbids` };
  }
  return blocked ? { entries, dead: false, blocked } : { entries, dead: false };
}

// ---- types -------------------------------------------------------------------------------------

const JSON_TYPES: readonly JsonType[] = ['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'];

function intersect(a: ReadonlySet<JsonType>, b: ReadonlySet<JsonType>): Set<JsonType> {
  const out = new Set<JsonType>();
  for (const t of a) {
    if (b.has(t)) out.add(t);
    else if ((t === 'number' && b.has('integer')) || (t === 'integer' && b.has('number'))) out.add('integer');
  }
  return out;
}

/** Types a value at this place may have, from `type`, `const` and `enum` of every applying schema (`false` allows none); undefined = any. */
function allowedTypes(entries: readonly Entry[]): ReadonlySet<JsonType> | undefined {
  let allowed: Set<JsonType> | undefined;
  const narrow = (types: Iterable<JsonType>): void => {
    const next = new Set(types);
    allowed = allowed ? intersect(allowed, next) : next;
  };
  for (const e of entries) {
    if (e.node === false) return new Set();
    if (!isPlainObject(e.node)) continue;
    const type = e.node.type;
    if (typeof type === 'string') narrow([type as JsonType]);
    else if (Array.isArray(type)) narrow(type as JsonType[]);
    if (Object.hasOwn(e.node, 'const')) narrow([typeOfValue(e.node.const)]);
    if (Array.isArray(e.node.enum)) narrow(e.node.enum.map(typeOfValue));
  }
  return allowed;
}

/** A value of type `t` may satisfy `allowed` (an integer is a number; a number may be integral). */
const allows = (allowed: ReadonlySet<JsonType>, t: JsonType): boolean =>
  allowed.has(t) || (t === 'integer' && allowed.has('number')) || (t === 'number' && allowed.has('integer'));

const ARTICLE: Record<JsonType, string> = { string: 'a string', number: 'a number', integer: 'an integer', boolean: 'a boolean', object: 'an object', array: 'an array', null: 'null' };

function describeTypes(types: ReadonlySet<JsonType>): string {
  if (types.size === 0) return 'nothing';
  return JSON_TYPES.filter((t) => types.has(t) && !(t === 'integer' && types.has('number'))).join(' or ');
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

// ---- the static check ----------------------------------------------------------------------------

/** A field that writes the array an `each` rule builds from its nested fields (which continue with `{each: true}`): its value does not replace the elements they build. */
const isEachBuilder = (f: OutputField, rest: readonly ShapeSegment[]): boolean =>
  rest.length > 0 && isEach(rest[0]!) && f.value === undefined && !f.merge && f.types !== undefined && f.types.has('array');

/** Whether the write of field `i` never survives: a later unconditional write replaces it (same place, a parent, or a container below a scalar). */
function overwritten(fields: readonly OutputField[], i: number): boolean {
  const f = fields[i]!;
  const ownTypes = f.value ? new Set([typeOfValue(f.value.v)]) : f.types;
  for (let j = i + 1; j < fields.length; j++) {
    const g = fields[j]!;
    if (!g.always || g.merge) continue;
    const r = relate(g.path, f.path);
    if (r === 'equal') return true;
    if (r === 'above' && !isEachBuilder(g, f.path.slice(g.path.length))) return true;
    if (r === 'below' && ownTypes && !ownTypes.has(isArrayStep(g.path[f.path.length]!) ? 'array' : 'object')) return true;
  }
  return false;
}

/**
 * Whether the node at `path` is a plain object in every output where the part writes anything:
 * the last write deciding it (scanning backwards) makes it one unconditionally.
 */
function certainlyObject(fields: readonly OutputField[], path: readonly ShapeSegment[]): boolean {
  for (let j = fields.length - 1; j >= 0; j--) {
    const g = fields[j]!;
    const r = relate(g.path, path);
    if (r === 'sibling') continue;
    if (r === 'conflict') return false;
    if (r === 'below') {
      if (g.merge) continue;
      if (isArrayStep(g.path[path.length]!)) return false;
      if (g.always) return true;
      continue;
    }
    if (r === 'equal') {
      if (g.merge) continue;
      const objectOnly = g.value ? isPlainObject(g.value.v) : g.types !== undefined && g.types.size > 0 && [...g.types].every((t) => t === 'object');
      if (!objectOnly) return false;
      if (g.always) return true;
      continue;
    }
    const rest = path.slice(g.path.length);
    if (g.merge) return false;
    if (g.value) {
      if (!staticObjects(g.value.v, rest)) return false;
      if (g.always) return true;
      continue;
    }
    if (isEachBuilder(g, rest)) continue;
    return false;
  }
  // The payload is always an object; so is every element an `each` rule builds.
  return path.length === 0 || isEach(path[path.length - 1]!);
}

/** Whether any field may put something at `target`: a write at or below it, a merge above it, or a write above it whose value may hold it. */
function mayWrite(fields: readonly OutputField[], target: readonly ShapeSegment[]): boolean {
  for (const g of fields) {
    const reach = mayReach(g.path, target);
    if (reach === 'none') continue;
    if (reach === 'covers' || g.merge) return true;
    const rest = target.slice(g.path.length);
    if (g.value) {
      if (staticAt(g.value.v, rest).length > 0) return true;
      continue;
    }
    if (isEachBuilder(g, rest)) continue;
    if (g.types === undefined || g.types.has(isArrayStep(rest[0]!) ? 'array' : 'object')) return true;
  }
  return false;
}

/**
 * What later writes do to the part of field `i`'s static value at `path`: `lost` when an
 * unconditional one replaces it (or merges into it), `modified` when one may write below it or merge
 * into it (its members are then checked one by one, and what it may gain is left to the required
 * check), else `intact`.
 */
function staticFate(fields: readonly OutputField[], i: number, path: readonly ShapeSegment[]): 'intact' | 'modified' | 'lost' {
  let modified = false;
  for (let j = i + 1; j < fields.length; j++) {
    const g = fields[j]!;
    const r = relate(g.path, path);
    if (r === 'sibling') continue;
    if (r === 'below') modified = true;
    else if (r === 'conflict' || g.merge) {
      if (g.always) return 'lost';
      modified = true;
    } else if (g.always && (r === 'equal' || !isEachBuilder(g, path.slice(g.path.length)))) return 'lost';
  }
  return modified ? 'modified' : 'intact';
}

/** Validates the static value of field `i` at `path` with ajv, descending into the parts later writes leave untouched. */
function checkStatic(c: Check, i: number, value: unknown, path: readonly ShapeSegment[]): void {
  const f = c.fields[i]!;
  const fate = staticFate(c.fields, i, path);
  if (fate === 'lost') return;
  const loc = locate(c, path);
  if (loc.dead) return;
  if (loc.blocked) {
    c.problems.push({ path: f.pointer, rule: loc.blocked.rule, message: loc.blocked.message });
    return;
  }
  if (fate === 'modified') {
    if (isPlainObject(value)) for (const k of Object.keys(value)) checkStatic(c, i, value[k], [...path, { key: k }]);
    else if (Array.isArray(value)) value.forEach((v, n) => checkStatic(c, i, v, [...path, { index: n }]));
    return;
  }
  const where = pathText(path);
  const seen = new Set<string>();
  for (const e of loc.entries) {
    if (!e.direct || e.node === true) continue;
    const validate = fragment(c.state, e.pointer);
    if (!validate || validate(value)) continue;
    for (const v of toViolations(validate.errors, value)) {
      const at = v.path === '' ? where : v.path.startsWith('[') ? `${where}${v.path}` : `${where}.${v.path}`;
      const message = `writes ${preview(value)} to ${where}; ${c.label}: ${at} ${v.message}`;
      if (seen.has(message)) continue;
      seen.add(message);
      c.problems.push({ path: f.pointer, rule: v.rule, message });
    }
  }
}

/** Path, type and static-value problems of field `i`. */
function checkField(c: Check, i: number): void {
  const f = c.fields[i]!;
  if (f.merge || f.path.length === 0 || overwritten(c.fields, i)) return;
  const text = pathText(f.path);
  for (let d = 1; d <= f.path.length; d++) {
    const prefix = f.path.slice(0, d);
    const loc = locate(c, prefix);
    if (loc.blocked) {
      c.problems.push({ path: f.pointer, rule: loc.blocked.rule, message: loc.blocked.message });
      return;
    }
    if (d < f.path.length) {
      const kind: JsonType = isArrayStep(f.path[d]!) ? 'array' : 'object';
      const allowed = allowedTypes(loc.entries);
      if (allowed && !allows(allowed, kind)) {
        const at = pathText(prefix);
        c.problems.push({ path: f.pointer, rule: 'type', message: `writes ${text}, which makes ${at} ${ARTICLE[kind]}; ${c.label} expects ${describeTypes(allowed)} at ${at}` });
        return;
      }
    }
  }
  const loc = locate(c, f.path);
  const types = f.value ? new Set([typeOfValue(f.value.v)]) : f.types;
  const allowed = allowedTypes(loc.entries);
  if (types && types.size > 0 && allowed && ![...types].some((t) => allows(allowed, t))) {
    const written = JSON_TYPES.filter((t) => types.has(t))
      .map((t) => ARTICLE[t])
      .join(' or ');
    c.problems.push({ path: f.pointer, rule: 'type', message: `writes ${written} to ${text}; ${c.label} expects ${describeTypes(allowed)}` });
    return;
  }
  if (f.value) checkStatic(c, i, f.value.v, f.path);
}

/** `required` problems: a property required inside an object the part certainly builds that nothing may write. */
function checkRequired(c: Check): void {
  const seen = new Set<string>();
  const nodes: (readonly ShapeSegment[])[] = [[]];
  for (const f of c.fields) {
    for (let d = 1; d <= f.path.length; d++) {
      const prefix = f.path.slice(0, d);
      const key = pathKey(prefix);
      if (!seen.has(key)) {
        seen.add(key);
        nodes.push(prefix);
      }
    }
  }
  const reported = new Set<string>();
  for (const node of nodes) {
    const loc = locate(c, node);
    if (loc.dead || loc.blocked) continue;
    const required = new Set<string>();
    for (const e of loc.entries) {
      if (isPlainObject(e.node) && Array.isArray(e.node.required)) for (const r of e.node.required) if (typeof r === 'string') required.add(r);
    }
    if (required.size === 0 || !certainlyObject(c.fields, node)) continue;
    for (const r of required) {
      const target = [...node, { key: r }];
      if (mayWrite(c.fields, target)) continue;
      const text = pathText(target);
      if (reported.has(text)) continue;
      reported.add(text);
      c.problems.push({ path: c.partPointer, rule: 'required', message: `output never has ${text}, which ${c.label} requires` });
    }
  }
}

/**
 * Checks what one part of a Mapping (global rules + one event part, as {@link OutputField}s in rule
 * order) can write against a destination's output schema, reporting only what can never pass:
 * - `required` (at `options.partPointer`): a property the schema requires, at the top level or in an
 *   object the part certainly builds (every `each` element included), that no field may write;
 *   fields with `always: false`, writes of unknown or object type above it and merges count as may.
 * - `type` (at the field's pointer): every type the field may write is excluded by `type`, `const`
 *   or `enum` at its path (an integer is a number), or the field makes a container on its path an
 *   object or array where the schema wants something else.
 * - ajv's keyword (at the field's pointer): a static value the sub-schema at its path refuses
 *   (enum, const, pattern, maxLength, format, required inside it…); parts that later unconditional
 *   writes change are skipped.
 * - `additionalProperties`, `false schema`, `propertyNames`, `maxItems`, `items`/`additionalItems`
 *   (at the field's pointer): a path the schema forbids.
 * The schema is walked by path through `properties`, `patternProperties`, `additionalProperties`,
 * `items`/`prefixItems`/`additionalItems` (per dialect), local `$ref` and `allOf`; `anyOf`, `oneOf`,
 * `if`/`then`/`else`, `not` and non-local `$ref` add nothing (unknown), a missing `type` allows any.
 * A field that a later unconditional write replaces is not checked. Problems are judged per rule:
 * "whenever this write reaches the payload, the payload fails". An `each` element is assumed to
 * exist (a required property missing from every element fails as soon as the array has one).
 * Rules: JSON Schema 2020-12 (https://json-schema.org/draft/2020-12/json-schema-core,
 * https://json-schema.org/draft/2020-12/json-schema-validation), draft-07 for `items` arrays.
 * @throws SwitchyardError INVALID_RESOURCE when ajv refuses the schema.
 */
export function checkOutputShape(fields: readonly OutputField[], schema: object, options: { partPointer: string; label: string }): Problem[] {
  const c: Check = { state: stateOf(schema), fields, label: options.label, partPointer: options.partPointer, problems: [], locations: new Map() };
  const rootAllowed = allowedTypes(locate(c, []).entries);
  if (rootAllowed && !allows(rootAllowed, 'object')) {
    return [{ path: options.partPointer, rule: 'type', message: `output is an object; ${options.label} expects ${describeTypes(rootAllowed)}` }];
  }
  for (let i = 0; i < fields.length; i++) checkField(c, i);
  checkRequired(c);
  return c.problems;
}
