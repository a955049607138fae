import { Type, type Static } from '@sinclair/typebox';
import { AnyValue } from './common.js';

/**
 * Path into an event or an output object: dot-separated keys with optional `[n]` indexes,
 * e.g. `properties.products[0].price`. A key holding a dot or bracket is written `["a.b"]`.
 */
export const PATH_PATTERN = '^([A-Za-z0-9_$@-]+|\\["[^"]+"\\])(\\[[0-9]+\\]|\\.[A-Za-z0-9_$@-]+|\\["[^"]+"\\])*$';

/** A source path: {@link PATH_PATTERN}, or `$name` / `$type`. */
export const SOURCE_PATH_PATTERN = '^(\\$name|\\$type|' + PATH_PATTERN.slice(1, -1) + ')$';

/** Most characters of a CEL expression in a Mapping or an Integration. */
export const MAX_EXPRESSION_LENGTH = 4096;

const predicateFields = {
  path: Type.Optional(
    Type.String({
      description: 'Path of the value tested, e.g. `properties.revenue` (relative to the array element inside `each`). `$name` is the output event name, `$type` the event type.',
      pattern: SOURCE_PATH_PATTERN,
      maxLength: 512,
    }),
  ),
  exists: Type.Optional(Type.Boolean({ description: 'true: the value is present (not missing, not null); false: it is absent.' })),
  equals: Type.Optional(AnyValue({ description: 'The value equals this JSON value (deep equality, no type coercion: 1 is not "1").' })),
  notEquals: Type.Optional(AnyValue({ description: 'The value differs from this JSON value; holds when the value is absent.' })),
  in: Type.Optional(Type.Array(AnyValue(), { description: 'The value equals one of these.', minItems: 1, maxItems: 1000 })),
  notIn: Type.Optional(Type.Array(AnyValue(), { description: 'The value equals none of these; holds when the value is absent.', minItems: 1, maxItems: 1000 })),
  gt: Type.Optional(Type.Number({ description: 'The value is a number greater than this.' })),
  gte: Type.Optional(Type.Number({ description: 'The value is a number greater than or equal to this.' })),
  lt: Type.Optional(Type.Number({ description: 'The value is a number less than this.' })),
  lte: Type.Optional(Type.Number({ description: 'The value is a number less than or equal to this.' })),
  matches: Type.Optional(Type.String({ description: 'The value is a string matching this RE2 regular expression (unanchored; linear time).', minLength: 1, maxLength: 1024 })),
  startsWith: Type.Optional(Type.String({ description: 'The value is a string starting with this.', maxLength: 1024 })),
  endsWith: Type.Optional(Type.String({ description: 'The value is a string ending with this.', maxLength: 1024 })),
  contains: Type.Optional(Type.String({ description: 'The value is a string containing this, or an array with an element equal to it.', maxLength: 1024 })),
  ignoreCase: Type.Optional(Type.Boolean({ description: 'String comparisons (equals, notEquals, in, notIn, matches, startsWith, endsWith, contains) ignore case. Default: false.' })),
  expr: Type.Optional(
    Type.String({
      description: 'A CEL expression returning bool (https://github.com/google/cel-spec), with the variables event, properties, traits, context, type, name (and item inside each). Used alone, without path.',
      minLength: 1,
      maxLength: MAX_EXPRESSION_LENGTH,
    }),
  ),
};

/** One test on one value, or one CEL expression. Every operator given must hold. */
export const Predicate = Type.Object(predicateFields, {
  description: 'A test on the value at path (every operator given must hold), or a CEL expression (expr).',
  additionalProperties: false,
  minProperties: 1,
});
export type Predicate = Static<typeof Predicate>;

/**
 * A condition on an event: a {@link Predicate}, optionally with `any` (at least one of these holds)
 * and `all` (each of these holds). Everything given must hold.
 */
export const EventCondition = Type.Object(
  {
    ...predicateFields,
    any: Type.Optional(Type.Array(Predicate, { description: 'At least one of these holds.', minItems: 1, maxItems: 64 })),
    all: Type.Optional(Type.Array(Predicate, { description: 'Each of these holds.', minItems: 1, maxItems: 64 })),
  },
  {
    description:
      'A condition on an event: a test on the value at path (exists, equals, notEquals, in, notIn, gt, gte, lt, lte, matches, startsWith, endsWith, contains), a CEL expression (expr), any and all. Everything given must hold. An absent value (missing or null) passes only exists: false, notEquals and notIn.',
    additionalProperties: false,
    minProperties: 1,
  },
);
export type EventCondition = Static<typeof EventCondition>;

/** A list of conditions that must all hold (an empty list always holds). */
export function Conditions(description: string) {
  return Type.Array(EventCondition, { description, maxItems: 64 });
}
