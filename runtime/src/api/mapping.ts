import { Type, type Static } from '@sinclair/typebox';
import { API_VERSION, AnyValue, CommonStatus, ObjectMeta, StringEnum } from './common.js';
import { Conditions, MAX_EXPRESSION_LENGTH, PATH_PATTERN, SOURCE_PATH_PATTERN } from './condition.js';
import { DESTINATION_TYPES } from './integration.js';
import { LookupTable, TransformStep } from './transform.js';


/** How deep field rules nest (`each`) inside the CRD schema; deeper levels are kept as-is by the API server and checked by the Mapping compiler. */
export const CRD_RULE_DEPTH = 3;

/** Name of a lookup table or a field set. */
const NAME = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_-]{0,62}$', description: 'A name: a letter, then letters, digits, _ or -, at most 63 characters.' });

/** One output field: where its value comes from, how it is transformed, and where it goes. `each` nests rules for array elements. */
export const FieldRule = Type.Recursive(
  (This) =>
    Type.Object(
      {
        to: Type.String({ description: 'Path written in the output, e.g. `params.value`.', pattern: PATH_PATTERN, minLength: 1, maxLength: 512 }),
        from: Type.Optional(
          Type.String({
            description: 'Path read from the event, e.g. `properties.revenue` (relative to the element inside `each`). `$name` is the output event name (after rename), `$type` the event type.',
            pattern: SOURCE_PATH_PATTERN,
            maxLength: 512,
          }),
        ),
        fallbacks: Type.Optional(
          Type.Array(Type.String({ pattern: SOURCE_PATH_PATTERN, maxLength: 512 }), {
            description: 'Paths tried in order when `from` gives no present value (after transforms). What is present is set by `presence`.',
            maxItems: 16,
          }),
        ),
        value: Type.Optional(AnyValue({ description: 'Static value (any JSON). Excludes from, fallbacks, expr and default.' })),
        expr: Type.Optional(
          Type.String({
            description: 'CEL expression computing the value (https://github.com/google/cel-spec); variables event, properties, traits, context, type, name, and item inside each. Excludes from, fallbacks and value.',
            minLength: 1,
            maxLength: MAX_EXPRESSION_LENGTH,
          }),
        ),
        presence: Type.Optional(
          StringEnum(['notNull', 'notEmpty'] as const, {
            description: 'What counts as present. notNull: anything but missing and null ("", 0, false, [] and {} are present). notEmpty: also not "" (or only whitespace), [] or {}. Default: notNull.',
          }),
        ),
        transforms: Type.Optional(Type.Array(TransformStep, { description: 'Steps applied in order to each candidate value (from, then each fallback) until one gives a present result.', maxItems: 32 })),
        default: Type.Optional(AnyValue({ description: 'Value written when no source gives a present value (written as is, not transformed). Without it the output field is left out.' })),
        required: Type.Optional(Type.Boolean({ description: 'The event fails (dead-lettered with this rule and field named) when the field would be left out. Default: false.' })),
        when: Type.Optional(Conditions('The rule applies only when all these conditions hold (paths relative to the element inside each).')),
        merge: Type.Optional(Type.Boolean({ description: 'The value must be an object; its keys are written into the object at `to` instead of replacing it. Default: false.' })),
        each: Type.Optional(
          Type.Array(This, {
            description:
              'Rules applied to each element of the array value (an object counts as a one-element array), building the elements of the output array at `to`; their paths are relative to the element. Levels deeper than the CRD schema are kept as-is and checked by the Mapping compiler.',
            maxItems: 256,
          }),
        ),
        include: Type.Optional(
          Type.Array(NAME, {
            description: 'Field sets (spec.fieldSets) whose rules run on each element before the rules of each, with paths relative to the element: like each, it makes the rule map an array.',
            maxItems: 32,
          }),
        ),
      },
      {
        description: 'One output field: where it comes from (from/fallbacks, value or expr), how it is transformed, and where it goes (to).',
        additionalProperties: false,
        // The Mapping compiler's checks, repeated in the CRD so the API server refuses such rules at
        // admission: exactly one of from, value and expr; fallbacks only with from; default,
        // transforms and each not with value. Required-only value validations, not CEL: CEL cannot
        // see the untyped `value` and `default`, and a rule this deep in nested lists exceeds the
        // API server's cost budget.
        'x-crd-value-validations': {
          oneOf: [{ required: ['from'] }, { required: ['value'] }, { required: ['expr'] }],
          not: {
            anyOf: [
              { required: ['fallbacks'], not: { required: ['from'] } },
              { required: ['value', 'default'] },
              { required: ['value', 'transforms'] },
              { required: ['value', 'each'] },
              { required: ['value', 'include'] },
            ],
          },
        },
      },
    ),
  { $id: 'FieldRule' },
);
export type FieldRule = Static<typeof FieldRule>;

/** Rules of one part of a Mapping (global, one eventSpecific key, or default). */
export const MappingPart = Type.Object(
  {
    rename: Type.Optional(Type.String({ description: 'Output event name. Default: the track event name, or the event type for other calls.', minLength: 1, maxLength: 256 })),
    include: Type.Optional(Type.Array(NAME, { description: 'Field sets (spec.fieldSets) whose rules run before this part\'s fields, in order.', maxItems: 32 })),
    fields: Type.Optional(Type.Array(Type.Ref(FieldRule), { description: 'Field rules, applied in order; a later rule writing the same path wins.', maxItems: 512 })),
  },
  { additionalProperties: false },
);
export type MappingPart = Static<typeof MappingPart>;

/** Named, reusable rules: included by parts or by other field sets. */
export const FieldSet = Type.Object(
  {
    include: Type.Optional(Type.Array(NAME, { description: 'Other field sets whose rules run first (cycles are refused).', maxItems: 32 })),
    fields: Type.Optional(Type.Array(Type.Ref(FieldRule), { description: 'Field rules, applied in order.', maxItems: 512 })),
  },
  { description: 'Reusable field rules (e.g. the item rules shared by several e-commerce events).', additionalProperties: false },
);
export type FieldSet = Static<typeof FieldSet>;

export const MappingSpec = Type.Object(
  {
    destinationType: Type.Optional(
      StringEnum(DESTINATION_TYPES, { description: "Destination type this Mapping is written for, if any; its output is then checked against that destination's output schema." }),
    ),
    drop: Type.Optional(
      Conditions('Events for which any of these conditions holds are dropped before any rule runs (acknowledged and counted with reason filtered).'),
    ),
    lookups: Type.Optional(Type.Record(NAME, LookupTable, { description: 'Lookup tables by name, used by the transform step `lookup: <name>`.', maxProperties: 64 })),
    fieldSets: Type.Optional(Type.Record(NAME, FieldSet, { description: 'Reusable field rules by name, used by `include` in parts and field sets.', maxProperties: 64 })),
    global: Type.Optional(Type.Composite([MappingPart], { description: 'Rules applied to every event before the event-specific or default part. Alone they do not make an event deliverable.', additionalProperties: false })),
    eventSpecific: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 256 }), MappingPart, {
        description:
          'Rules by event, applied after global: keys are track event names (e.g. "Order Completed") or the types page, screen, identify, group, alias. A track event named like a type is addressed by its name.',
        maxProperties: 1024,
      }),
    ),
    default: Type.Optional(Type.Composite([MappingPart], { description: 'Rules for events no eventSpecific key matches, applied after global. Without it such events are dropped (counted as no_matching_rule).', additionalProperties: false })),
  },
  { description: 'How events become the destination payload.', additionalProperties: false },
);
export type MappingSpec = Static<typeof MappingSpec>;

export const Mapping = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('Mapping'),
    metadata: ObjectMeta,
    spec: MappingSpec,
    status: Type.Optional(CommonStatus()),
  },
  { additionalProperties: false },
);
export type Mapping = Static<typeof Mapping>;
