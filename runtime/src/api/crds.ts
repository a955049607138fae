import type { TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { GROUP, VERSION, CommonStatus } from './common.js';
import { IntegrationSpec, IntegrationStatus } from './integration.js';
import { CRD_RULE_DEPTH, FieldRule, MappingSpec } from './mapping.js';
import { SourceSpec } from './source.js';

type JsonSchema = Record<string, unknown>;

/**
 * Rewrites a TypeBox/JSON Schema into a Kubernetes structural schema
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
 * `patternProperties` → `additionalProperties`; `additionalProperties: false` dropped (the API
 * server prunes unknown fields instead); `uniqueItems` dropped (forbidden; lists use
 * `x-kubernetes-list-type: set`); fields with a `default` not `required`; `x-crd-value-validations`
 * (required-only oneOf/anyOf/not the runtime checks its own way) merged in; recursive `$ref`s expanded CRD_RULE_DEPTH levels, deeper levels
 * kept with `x-kubernetes-preserve-unknown-fields`.
 * @throws Error on `anyOf`, `oneOf` or `allOf`, which this converter does not express.
 */
export function toStructural(schema: TSchema | JsonSchema, at = '#', defs = new Map<string, JsonSchema>([['FieldRule', FieldRule as JsonSchema]]), depth = 0): JsonSchema {
  const src = JSON.parse(JSON.stringify(schema)) as JsonSchema;
  if (typeof src.$id === 'string') defs.set(src.$id, src);
  if (typeof src.$ref === 'string') {
    const target = defs.get(src.$ref);
    if (!target) throw new Error(`${at}: unresolved $ref ${src.$ref}`);
    // CRD schemas cannot recurse: expand a few levels, then keep the rest as-is.
    if (depth >= CRD_RULE_DEPTH) return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    return toStructural(target, at, defs, depth + 1);
  }
  for (const forbidden of ['anyOf', 'oneOf', 'allOf']) {
    if (forbidden in src) throw new Error(`${at}: ${forbidden} cannot be expressed in a CRD schema`);
  }
  const out: JsonSchema = {};
  const sub = (v: unknown, where: string) => toStructural(v as JsonSchema, where, defs, depth);
  for (const [key, value] of Object.entries(src)) {
    if (key === '$id' || key === '$schema' || key === 'uniqueItems' || key === 'contentEncoding') continue;
    if (key === 'x-crd-value-validations') {
      // Required-only oneOf/anyOf/not: allowed in a structural schema as value validations.
      Object.assign(out, value);
      continue;
    }
    if (key === 'properties') {
      out.properties = Object.fromEntries(Object.entries(value as Record<string, JsonSchema>).map(([k, v]) => [k, sub(v, `${at}/properties/${k}`)]));
    } else if (key === 'items') {
      out.items = sub(value, `${at}/items`);
    } else if (key === 'patternProperties') {
      const values = Object.values(value as Record<string, JsonSchema>);
      if (values.length !== 1) throw new Error(`${at}: only one patternProperties entry can become additionalProperties`);
      out.additionalProperties = sub(values[0], `${at}/additionalProperties`);
    } else if (key === 'additionalProperties') {
      if (typeof value === 'object') out.additionalProperties = sub(value, `${at}/additionalProperties`);
      // false: the API server prunes unknown fields; true: preserved below
    } else {
      out[key] = value;
    }
  }
  if (src.additionalProperties === true && src.properties) out['x-kubernetes-preserve-unknown-fields'] = true;
  // The API server drops an empty `properties`: left in, GitOps tools would see a diff forever.
  if (out.properties && Object.keys(out.properties as object).length === 0) delete out.properties;
  // `kubectl explain` shows descriptions only: state the default and bounds there too. Rules
  // nested in `each` repeat the first level's fields word for word: their descriptions are left
  // out there, which keeps the Mapping CRD well under the API server's request size limit.
  if (depth >= 2 && at.includes('/each')) delete out.description;
  else if (typeof out.description === 'string') out.description = describeLimits(out.description, out);
  // A field with a default is never missing once the API server has defaulted the object, and a
  // parent's `default: {}` must itself validate (the API server checks defaults without applying
  // the nested ones), so such fields are not listed as required.
  if (Array.isArray(out.required) && out.properties) {
    const props = out.properties as Record<string, JsonSchema>;
    const required = (out.required as string[]).filter((k) => props[k]?.default === undefined);
    if (required.length) out.required = required;
    else delete out.required;
  }
  return out;
}

/** Appends `Default: …` and the bounds of a schema node to its description, unless it states them. */
function describeLimits(description: string, node: JsonSchema): string {
  const parts: string[] = [];
  const value = node.default;
  const isEmpty = value !== null && typeof value === 'object' && Object.keys(value).length === 0;
  if (value !== undefined && !isEmpty && !/\bDefault\b/.test(description)) parts.push(`Default: ${typeof value === 'string' ? value : JSON.stringify(value)}.`);
  const range = (min: unknown, max: unknown, unit: string) => {
    if (min !== undefined && max !== undefined) parts.push(`${unit} ${min}–${max}.`);
    else if (min !== undefined) parts.push(`${unit} at least ${min}.`);
    else if (max !== undefined) parts.push(`${unit} at most ${max}.`);
  };
  if (node.type === 'integer' || node.type === 'number') range(node.minimum, node.maximum, 'Range');
  if (node.type === 'array' && (node.minItems !== undefined || node.maxItems !== undefined)) range(node.minItems, node.maxItems, 'Items');
  if (parts.length === 0) return description;
  return `${description.replace(/\s*$/, '')} ${parts.join(' ')}`;
}

interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: TSchema;
  status: TSchema;
  printerColumns: JsonSchema[];
}

const KINDS: KindInfo[] = [
  {
    kind: 'Source',
    plural: 'sources',
    singular: 'source',
    shortNames: ['sysrc'],
    spec: SourceSpec,
    status: CommonStatus(),
    printerColumns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'Integration',
    plural: 'integrations',
    singular: 'integration',
    shortNames: ['syint'],
    spec: IntegrationSpec,
    status: IntegrationStatus,
    printerColumns: [
      { name: 'Destination', type: 'string', jsonPath: '.spec.destination.type' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
      { name: 'Backlog', type: 'integer', jsonPath: '.status.backlog' },
      { name: 'Paused', type: 'boolean', jsonPath: '.spec.paused', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'Mapping',
    plural: 'mappings',
    singular: 'mapping',
    shortNames: ['symap'],
    spec: MappingSpec,
    status: CommonStatus(),
    printerColumns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];

/** The CustomResourceDefinition object of one kind. */
export function crdFor(info: KindInfo): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind: info.kind, listKind: `${info.kind}List`, plural: info.plural, singular: info.singular, shortNames: info.shortNames, categories: ['switchyard'] },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: (info.spec as JsonSchema).description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'APIVersion defines the versioned schema of this representation of an object.' },
                kind: { type: 'string', description: 'Kind is a string value representing the REST resource this object represents.' },
                metadata: { type: 'object' },
                spec: toStructural(info.spec, `${info.kind}.spec`),
                status: toStructural(info.status, `${info.kind}.status`),
              },
            },
          },
        },
      ],
    },
  };
}

/** Rendered CRD files: file name (`switchyard.io_sources.yaml`) → YAML text, in a stable order. */
export function renderCrds(): Map<string, string> {
  const header = '# Generated from runtime/src/api by `npm run crds`. Do not edit.\n';
  return new Map(KINDS.map((k) => [`${GROUP}_${k.plural}.yaml`, header + stringify(crdFor(k), { lineWidth: 0 })]));
}

/**
 * The same CRDs as Helm templates for `charts/switchyard/templates/crds/` (file name → text): rendered
 * only when `crds.install` is true, labelled like the chart's other objects, and annotated so that
 * `helm uninstall` keeps them (`helm.sh/resource-policy: keep`: deleting a CRD deletes every resource
 * of its kind), Argo CD syncs them first (sync-wave -10) and server-side (the Mapping CRD is too large
 * for client-side apply's last-applied annotation) and never prunes or deletes them (Argo CD honours
 * resource-policy keep on Application deletion only, not when a sync prunes), plus
 * `crds.annotations`. Template delimiters in descriptions are escaped.
 */
export function renderChartCrds(): Map<string, string> {
  const header = [
    '{{- /* Generated from runtime/src/api by `npm run crds`, like crds/. Do not edit. */ -}}',
    '{{- if .Values.crds.install }}',
    'apiVersion: apiextensions.k8s.io/v1',
    'kind: CustomResourceDefinition',
    'metadata:',
    '  name: %NAME%',
    '  labels:',
    '    {{- include "switchyard.labels" . | nindent 4 }}',
    '  annotations:',
    '    helm.sh/resource-policy: keep',
    '    argocd.argoproj.io/sync-wave: "-10"',
    '    argocd.argoproj.io/sync-options: ServerSideApply=true,Prune=false,Delete=false',
    '    {{- with .Values.crds.annotations }}',
    '    {{- toYaml . | nindent 4 }}',
    '    {{- end }}',
  ].join('\n');
  return new Map(
    KINDS.map((k) => {
      const crd = crdFor(k);
      const spec = stringify({ spec: crd.spec }, { lineWidth: 0 }).replace(/\{\{/g, '{{ "{{" }}');
      return [`${GROUP}_${k.plural}.yaml`, `${header.replace('%NAME%', `${k.plural}.${GROUP}`)}\n${spec}{{- end }}\n`];
    }),
  );
}
