import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { renderChartCrds, renderCrds, toStructural } from './crds.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const crdDir = path.join(repoRoot, 'crds');
const chartCrdDir = path.join(repoRoot, 'charts/switchyard/templates/crds');

describe('generated CRDs', () => {
  it('crds/ matches the API definitions (run `npm run crds` after changing runtime/src/api)', async () => {
    const rendered = renderCrds();
    const onDisk = (await readdir(crdDir)).filter((f) => f.endsWith('.yaml')).sort();
    expect(onDisk).toEqual([...rendered.keys()].sort());
    for (const [name, text] of rendered) {
      expect({ name, text: await readFile(path.join(crdDir, name), 'utf8') }).toEqual({ name, text });
    }
  });

  it('the Helm chart\'s CRD templates match the API definitions too (`npm run crds` writes both)', async () => {
    const rendered = renderChartCrds();
    const onDisk = (await readdir(chartCrdDir)).filter((f) => f.endsWith('.yaml')).sort();
    expect(onDisk).toEqual([...rendered.keys()].sort());
    for (const [name, text] of rendered) {
      expect({ name, text: await readFile(path.join(chartCrdDir, name), 'utf8') }).toEqual({ name, text });
    }
  });

  it('the chart\'s copies carry the same spec as crds/, with template delimiters escaped', () => {
    const plain = renderCrds();
    for (const [name, text] of renderChartCrds()) {
      expect(text).toMatch(/^\{\{- \/\*.*\*\/ -\}\}\n\{\{- if \.Values\.crds\.install \}\}\n/);
      expect(text).toContain('    helm.sh/resource-policy: keep\n');
      expect(text).toContain('    argocd.argoproj.io/sync-options: ServerSideApply=true,Prune=false,Delete=false\n');
      const specPart = text.slice(text.indexOf('\nspec:\n') + 1, text.lastIndexOf('{{- end }}')).replace(/\{\{ "\{\{" \}\}/g, '{{');
      expect(parse(specPart).spec).toEqual(parse(plain.get(name)!).spec);
    }
  });

  it('are structural: every node has a type or preserves unknown fields, and no forbidden keyword remains', () => {
    const forbidden = ['$ref', '$id', 'allOf', 'patternProperties', 'uniqueItems', 'const'];
    // anyOf/oneOf/not may only hold value validations: here, `required` lists (nested).
    const valueOnly = (v: unknown): boolean =>
      Array.isArray(v) ? v.every(valueOnly) : !!v && typeof v === 'object' && Object.entries(v).every(([k, x]) => (k === 'required' ? Array.isArray(x) : ['anyOf', 'oneOf', 'not'].includes(k) && valueOnly(x)));
    const walk = (node: Record<string, unknown>, at: string) => {
      for (const k of forbidden) expect({ at, has: k in node }).toEqual({ at, has: false });
      for (const k of ['anyOf', 'oneOf', 'not']) if (k in node) expect({ at, k, valueOnly: valueOnly(node[k]) }).toEqual({ at, k, valueOnly: true });
      if (!('type' in node)) expect({ at, preserve: node['x-kubernetes-preserve-unknown-fields'] }).toEqual({ at, preserve: true });
      if (node.properties) {
        expect({ at, additionalProperties: node.additionalProperties }).toEqual({ at, additionalProperties: undefined });
        for (const [k, v] of Object.entries(node.properties as Record<string, Record<string, unknown>>)) walk(v, `${at}.${k}`);
      }
      if (node.items) walk(node.items as Record<string, unknown>, `${at}[]`);
      if (typeof node.additionalProperties === 'object') walk(node.additionalProperties as Record<string, unknown>, `${at}{}`);
    };
    for (const [name, text] of renderCrds()) {
      const crd = parse(text);
      walk(crd.spec.versions[0].schema.openAPIV3Schema, name);
    }
  });

  it('cuts recursive mapping rules at a fixed depth and keeps deeper levels as unknown fields', () => {
    const crd = parse(renderCrds().get('switchyard.io_mappings.yaml')!);
    let rule = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.global.properties.fields.items;
    let depth = 1;
    while (rule.properties?.each?.items?.properties) {
      rule = rule.properties.each.items;
      depth++;
    }
    expect(depth).toBe(3);
    expect(rule.properties.each.items).toEqual({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
  });

  it('hold no empty `properties` map, which the API server drops (a perpetual diff for GitOps tools)', () => {
    for (const [name, text] of renderCrds()) expect({ name, empty: /^\s*properties: \{\}$/m.test(text) }).toEqual({ name, empty: false });
  });

  it('refuses schema constructs a CRD cannot express', () => {
    expect(() => toStructural({ anyOf: [{ type: 'string' }, { type: 'integer' }] }, 'x')).toThrow(/anyOf/);
  });
  it('describe every field, so `kubectl explain` is useful', () => {
    const missing: string[] = [];
    const walk = (node: Record<string, any>, at: string) => {
      // Rules nested in `each` repeat the first level's fields: described once, at the first level.
      if (!node.description && !/\.each\[\]\./.test(at)) missing.push(at);
      for (const [k, v] of Object.entries(node.properties ?? {})) walk(v as Record<string, any>, `${at}.${k}`);
      if (node.items?.properties) for (const [k, v] of Object.entries(node.items.properties)) walk(v as Record<string, any>, `${at}[].${k}`);
      if (node.additionalProperties?.properties) for (const [k, v] of Object.entries(node.additionalProperties.properties)) walk(v as Record<string, any>, `${at}{}.${k}`);
    };
    for (const [name, text] of renderCrds()) {
      const root = parse(text).spec.versions[0].schema.openAPIV3Schema.properties;
      walk(root.spec, `${name} spec`);
      walk(root.status, `${name} status`);
    }
    expect(missing).toEqual([]);
  });

  it('state defaults and bounds in descriptions, which is all `kubectl explain` shows', () => {
    const spec = parse(renderCrds().get('switchyard.io_integrations.yaml')!).spec.versions[0].schema.openAPIV3Schema.properties.spec.properties;
    expect(spec.delivery.properties.batchSize.description).toMatch(/^Most events per send to the destination .*Range 1–2000\.$/);
    expect(spec.delivery.properties.concurrency.description).toBe('Destination requests in flight at once, per replica. Default: 8. Range 1–256.');
    expect(spec.delivery.properties.timeout.description).toMatch(/Default: 10s\.$/);
    expect(spec.sourceRefs.description).toMatch(/Items 1–64\.$/);
  });
});
