import { Type, type TSchema, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

/** API group of every Switchyard resource. */
export const GROUP = 'switchyard.io';
/** The one served and stored version. */
export const VERSION = 'v1alpha1';
/** `apiVersion` written on every resource. */
export const API_VERSION = `${GROUP}/${VERSION}`;

/**
 * A string restricted to `values`, as a plain `enum` (not `anyOf` of literals), so the schema stays
 * structural for a CRD (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
 */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}

/** Go-style single-unit duration such as `500ms`, `10s`, `2m`, `1h`, `7d`; parsed by {@link parseDuration}. */
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$';

/** A duration string (see {@link DURATION_PATTERN}). */
export function Duration(options: SchemaOptions = {}) {
  return Type.String({ pattern: DURATION_PATTERN, maxLength: 16, ...options });
}

/** A duration greater than zero: {@link DURATION_PATTERN} without `0s`, `0.0m`… */
export const POSITIVE_DURATION_PATTERN = '^([0-9]*[1-9][0-9]*(\\.[0-9]+)?|[0-9]+\\.[0-9]*[1-9][0-9]*)(ms|s|m|h|d)$';

/** A duration string greater than zero (see {@link POSITIVE_DURATION_PATTERN}). */
export function PositiveDuration(options: SchemaOptions = {}) {
  return Type.String({ pattern: POSITIVE_DURATION_PATTERN, maxLength: 16, ...options });
}

/** A Kubernetes resource quantity such as `100m`, `0.5`, `128Mi`, `1G` (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/). */
export function Quantity(options: SchemaOptions = {}) {
  return Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$', maxLength: 32, ...options });
}

/** Kubernetes object name (DNS-1123 subdomain, RFC 1123). */
export const NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** A reference to another object of the same namespace by name. */
export function LocalObjectReference(description: string) {
  return Type.Object(
    {
      name: Type.String({
        description: 'Name of the object, in the namespace of the referring resource.',
        pattern: NAME_PATTERN,
        minLength: 1,
        maxLength: 253,
      }),
    },
    { description, additionalProperties: false },
  );
}

/** A key of a Secret in the same namespace. */
export function SecretKeySelector(description: string) {
  return Type.Object(
  {
    name: Type.String({ description: 'Name of the Secret, in the namespace of the resource.', pattern: NAME_PATTERN, minLength: 1, maxLength: 253 }),
    key: Type.String({ description: 'Key within the Secret.', minLength: 1, maxLength: 253, pattern: '^[-._a-zA-Z0-9]+$' }),
  },
  { description, additionalProperties: false },
  );
}

/** Any JSON value, kept as-is by the API server. */
export function AnyValue(options: SchemaOptions = {}): TSchema {
  return Type.Unknown({ ...options, 'x-kubernetes-preserve-unknown-fields': true });
}

/** Standard Kubernetes condition (metav1.Condition). */
export const Condition = Type.Object(
  {
    type: Type.String({ description: 'Type of condition in CamelCase, e.g. Ready.', maxLength: 316 }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'Status of the condition.' }),
    observedGeneration: Type.Optional(Type.Integer({ description: 'metadata.generation the condition was set for.', minimum: 0 })),
    lastTransitionTime: Type.String({ description: 'Last time the condition changed status.', format: 'date-time' }),
    reason: Type.String({ description: 'Machine-readable CamelCase reason for the last transition.', maxLength: 1024 }),
    message: Type.String({ description: 'Human-readable details about the last transition.', maxLength: 32768 }),
  },
  { additionalProperties: false },
);

/** The `status` every Switchyard resource carries. */
export function CommonStatus<E extends Record<string, TSchema> = {}>(extra: E = {} as E) {
  return Type.Object(
    {
      observedGeneration: Type.Optional(Type.Integer({ description: 'metadata.generation the status was computed for.', minimum: 0 })),
      conditions: Type.Optional(
        Type.Array(Condition, {
          description: 'Latest observations of the resource state; `Ready` rolls up the others.',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['type'],
        }),
      ),
      ...extra,
    },
    { description: 'Observed state, written by the operator.', additionalProperties: false },
  );
}

/** Object metadata as far as Switchyard reads it; everything else is kept untouched. */
export const ObjectMeta = Type.Object(
  {
    name: Type.String({ pattern: NAME_PATTERN, minLength: 1, maxLength: 253 }),
    namespace: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 })),
    generation: Type.Optional(Type.Integer()),
    uid: Type.Optional(Type.String()),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);
