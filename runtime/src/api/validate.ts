import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import type { TSchema } from '@sinclair/typebox';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { DURATION_PATTERN, NAME_PATTERN, POSITIVE_DURATION_PATTERN } from './common.js';
import { PATH_PATTERN, SOURCE_PATH_PATTERN } from './condition.js';
import { FieldRule } from './mapping.js';

// ajv-formats ships CommonJS with a default export.
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv) => Ajv;

/** Kubernetes schema extensions: carried by the shared definitions, meaningful to the API server only. */
const KUBERNETES_KEYWORDS = [
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
  // Value validations only the CRD carries (see toStructural).
  'x-crd-value-validations',
];

/**
 * A fresh ajv instance configured the way every Switchyard schema expects: all errors, defaults
 * applied in place, string formats (date-time, uri…), Kubernetes extensions accepted as annotations,
 * and the shared `$ref` targets (FieldRule) registered.
 */
export function createAjv(options: { useDefaults?: boolean } = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: options.useDefaults ?? true, strict: true, strictTypes: false, allowUnionTypes: true });
  addFormats(ajv);
  for (const keyword of KUBERNETES_KEYWORDS) ajv.addKeyword({ keyword });
  // Shared definitions referenced by `$ref` (recursive mapping rules).
  ajv.addSchema(FieldRule);
  return ajv;
}

/** What the API's patterns mean, so a failed `pattern` reads as a rule, not a regular expression. */
const PATTERN_HINTS: Record<string, string> = {
  [PATH_PATTERN]: 'must be a path such as properties.products[0].price (a key holding dots, spaces or other characters is written ["key"])',
  [SOURCE_PATH_PATTERN]: 'must be $name, $type or a path such as properties.products[0].price (a key holding dots, spaces or other characters is written ["key"])',
  [DURATION_PATTERN]: 'must be a duration such as 500ms, 10s, 2m, 1h or 7d',
  [POSITIVE_DURATION_PATTERN]: 'must be a duration above zero such as 500ms, 10s, 2m, 1h or 7d',
  [NAME_PATTERN]: 'must be a Kubernetes name: lowercase letters, digits, "-" and "."',
};

/** Turns ajv errors into {@link Problem}s; `prefix` is prepended to each instance path. */
export function toProblems(errors: ErrorObject[] | null | undefined, prefix = ''): Problem[] {
  return (errors ?? []).map((e) => {
    let path = prefix + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path = `${path}/${(e.params as { missingProperty: string }).missingProperty}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path = `${path}/${(e.params as { additionalProperty: string }).additionalProperty}`;
      message = 'is not a known field';
    } else if (e.keyword === 'pattern') {
      const pattern = (e.params as { pattern: string }).pattern;
      message = PATTERN_HINTS[pattern] ?? message;
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    return { path: path || '/', rule: e.keyword, message };
  });
}

/** A compiled validator that returns problems instead of a boolean. Mutates the input to apply defaults. */
export function compileValidator<T>(schema: TSchema, ajv: Ajv = createAjv()): (value: unknown) => { ok: true; value: T } | { ok: false; problems: Problem[] } {
  const validate: ValidateFunction = ajv.compile(schema);
  return (value) => (validate(value) ? { ok: true, value: value as T } : { ok: false, problems: toProblems(validate.errors) });
}

/** Formats problems one per line: `  /spec/x: must be integer (type)`. */
export function formatProblems(problems: Problem[]): string {
  return problems.map((p) => `  ${p.path}: ${p.message} (${p.rule})`).join('\n');
}

const settingsValidators = new WeakMap<TSchema, ReturnType<typeof compileValidator>>();

/**
 * Validates `value` against `schema` (applying defaults), returning a deep-frozen copy.
 * @throws SwitchyardError INVALID_SETTINGS naming every failing path and rule.
 */
export function parseSettings<T>(schema: TSchema, value: unknown, what: string): Readonly<T> {
  const copy = structuredClone(value ?? {});
  let validate = settingsValidators.get(schema);
  if (!validate) settingsValidators.set(schema, (validate = compileValidator(schema)));
  const result = validate(copy) as ReturnType<ReturnType<typeof compileValidator<T>>>;
  if (!result.ok) {
    throw new SwitchyardError(ErrorCodes.INVALID_SETTINGS, `invalid ${what}:\n${formatProblems(result.problems)}`, { details: result.problems });
  }
  return deepFreeze(result.value);
}

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
