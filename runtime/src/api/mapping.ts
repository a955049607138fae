import { Type, type Static } from '@sinclair/typebox';
import { API_VERSION, AnyValue, CommonStatus, ObjectMeta, StringEnum } from './common.js';
import { DESTINATION_TYPES } from './integration.js';

/**
 * Path into an event or an output object: dot-separated keys with optional `[n]` indexes,
 * e.g. `properties.products[0].price`. A key holding a dot or bracket is written `["a.b"]`.
 */
export const PATH_PATTERN = '^([A-Za-z0-9_$@-]+|\\["[^"]+"\\])(\\[[0-9]+\\]|\\.[A-Za-z0-9_$@-]+|\\["[^"]+"\\])*$';

/** How deep field rules nest (`each`) inside the CRD schema; deeper levels are kept as-is by the API server and checked by the Mapping compiler. */
export const CRD_RULE_DEPTH = 3;

/** A source path: {@link PATH_PATTERN}, or `$name` / `$type`. */
export const SOURCE_PATH_PATTERN = '^(\\$name|\\$type|' + PATH_PATTERN.slice(1, -1) + ')$';

/** One output field: where it comes from and where it goes. `each` nests rules for array elements. */
export const FieldRule = Type.Recursive(
  (This) =>
    Type.Object(
      {
        to: Type.String({ description: 'Path written in the output, e.g. `params.value`.', pattern: PATH_PATTERN, minLength: 1, maxLength: 512 }),
        from: Type.Optional(
          Type.String({
            description: 'Path read from the event, e.g. `properties.revenue`. `$name` is the output event name (after rename), `$type` the event type.',
            pattern: SOURCE_PATH_PATTERN,
            maxLength: 512,
          }),
        ),
        fallbacks: Type.Optional(
          Type.Array(Type.String({ pattern: SOURCE_PATH_PATTERN, maxLength: 512 }), {
            description: 'Paths tried in order when `from` is absent. A value is absent when it is missing or null; "", 0 and false are present.',
            maxItems: 16,
          }),
        ),
        value: Type.Optional(AnyValue({ description: 'Static value written to `to` (any JSON). Excludes from, fallbacks and default.' })),
        default: Type.Optional(AnyValue({ description: 'Value written when from and every fallback are absent. Without it the output field is left out.' })),
        each: Type.Optional(
          Type.Array(This, {
            description:
              'Rules applied to each element of the array read by `from`, building the elements of the output array at `to`; their paths are relative to the element. Levels deeper than the CRD schema are kept as-is and checked by the Mapping compiler.',
            maxItems: 256,
          }),
        ),
      },
      {
        description: 'One output field: where it comes from (from/fallbacks, value or default) and where it goes (to).',
        additionalProperties: false,
        // The Mapping compiler's checks, repeated in the CRD so the API server refuses such rules at
        // admission: exactly one of from and value; default, fallbacks and each only with from.
        // Required-only value validations, not CEL: CEL cannot see the untyped `value` and
        // `default`, and a rule this deep in nested lists exceeds the API server's cost budget.
        'x-crd-value-validations': {
          oneOf: [{ required: ['from'] }, { required: ['value'] }],
          anyOf: [{ required: ['from'] }, { not: { anyOf: [{ required: ['default'] }, { required: ['fallbacks'] }, { required: ['each'] }] } }],
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
    fields: Type.Optional(Type.Array(Type.Ref(FieldRule), { description: 'Field rules, applied in order; a later rule writing the same path wins.', maxItems: 512 })),
  },
  { additionalProperties: false },
);
export type MappingPart = Static<typeof MappingPart>;

export const MappingSpec = Type.Object(
  {
    destinationType: Type.Optional(
      StringEnum(DESTINATION_TYPES, { description: 'Destination type this Mapping is written for, if any; its output is then checked against that destination.' }),
    ),
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
