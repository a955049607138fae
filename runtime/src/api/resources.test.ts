import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { useTempDirs } from '../test-support/temp.js';
import { formatSkipped, loadResources, otherResourceKind, validateDocument } from './resources.js';

const tempDir = useTempDirs('sy-res-');

const source = {
  apiVersion: 'switchyard.io/v1alpha1',
  kind: 'Source',
  metadata: { name: 'web' },
  spec: { writeKey: { value: 'wk_test_123456' } },
};

describe('validateDocument', () => {
  it('applies schema defaults and the default namespace', () => {
    const { resource, problems } = validateDocument(structuredClone(source), 'mem#0');
    expect(problems).toEqual([]);
    expect(resource).toMatchObject({
      metadata: { name: 'web', namespace: 'default' },
      spec: { allowedOrigins: [], limits: { maxEventBytes: 32768, maxBatchBytes: 512000 } },
    });
  });

  it('names the field and rule of each problem', () => {
    const bad = structuredClone(source) as Record<string, any>;
    bad.spec.limits = { maxEventBytes: 'big' };
    bad.spec.extra = 1;
    const { problems } = validateDocument(bad, 'mem#0');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '/spec/limits/maxEventBytes', rule: 'type' }),
        expect.objectContaining({ path: '/spec/extra', rule: 'additionalProperties' }),
      ]),
    );
  });

  it('refuses other API groups and kinds (a forwarder config must hold ours; loadResources skips them before)', () => {
    const { problems } = validateDocument({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }, 'mem#0');
    expect(problems[0]).toMatchObject({ rule: 'enum', path: '/kind' });
  });

  it('validates mapping rules nested deeper than the CRD schema holds', () => {
    const deep = (n: number): Record<string, unknown> => (n === 0 ? { to: 'x', from: 'y', bogus: true } : { to: 'x', from: 'y', each: [deep(n - 1)] });
    const mapping = { apiVersion: 'switchyard.io/v1alpha1', kind: 'Mapping', metadata: { name: 'm' }, spec: { default: { fields: [deep(5)] } } };
    const { problems } = validateDocument(mapping, 'mem#0');
    expect(problems).toEqual([
      expect.objectContaining({ path: '/spec/default/fields/0/each/0/each/0/each/0/each/0/each/0/bogus', rule: 'additionalProperties' }),
    ]);
  });
});

describe('otherResourceKind', () => {
  it('names objects of other API groups, and v1 kinds other than Secret', () => {
    expect(otherResourceKind({ apiVersion: 'apps/v1', kind: 'Deployment' })).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment' });
    expect(otherResourceKind({ apiVersion: 'v1', kind: 'ConfigMap' })).toEqual({ apiVersion: 'v1', kind: 'ConfigMap' });
    expect(otherResourceKind({ apiVersion: 'v1', kind: 'Service' })).toEqual({ apiVersion: 'v1', kind: 'Service' });
    expect(otherResourceKind({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application' })).toEqual({ apiVersion: 'argoproj.io/v1alpha1', kind: 'Application' });
  });

  it('leaves ours, switchyard.io mistakes and documents without apiVersion or kind to validation', () => {
    expect(otherResourceKind({ apiVersion: 'v1', kind: 'Secret' })).toBeUndefined();
    expect(otherResourceKind(source)).toBeUndefined();
    expect(otherResourceKind({ apiVersion: 'switchyard.io/v1alpha1', kind: 'Sauce' })).toBeUndefined();
    expect(otherResourceKind({ apiVersion: 'switchyard.io/v1', kind: 'Source' })).toBeUndefined();
    expect(otherResourceKind({ apiVersion: 'switchyard.io', kind: 'Source' })).toBeUndefined();
    expect(otherResourceKind({ kind: 'Deployment' })).toBeUndefined();
    expect(otherResourceKind({ apiVersion: 'apps/v1' })).toBeUndefined();
    expect(otherResourceKind({ apiVersion: 'apps/v1', kind: '' })).toBeUndefined();
    expect(otherResourceKind(['x'])).toBeUndefined();
    expect(otherResourceKind('text')).toBeUndefined();
  });
});

describe('loadResources', () => {
  it('skips documents of other API groups and kinds, and still refuses switchyard.io mistakes and documents without apiVersion or kind', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'mixed.yaml');
    await writeFile(
      file,
      [
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec: {replicas: 1}',
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}',
        'apiVersion: switchyard.io/v1alpha1\nkind: Source\nmetadata: {name: web}\nspec: {writeKey: {value: wk_test_123456}}',
        'apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {authorization: x}',
        'apiVersion: switchyard.io/v1alpha1\nkind: Sauce\nmetadata: {name: s}',
        'apiVersion: switchyard.io/v1beta1\nkind: Source\nmetadata: {name: old}',
        'metadata: {name: nothing}',
        'apiVersion: v1\nkind: Service\nmetadata: {name: svc}',
      ].join('\n---\n'),
    );
    const { resources, problems, skipped } = await loadResources([dir]);
    expect(resources.map((r) => r.resource.kind)).toEqual(['Source', 'Secret']);
    expect(skipped).toEqual([
      { origin: `${file}#0`, apiVersion: 'apps/v1', kind: 'Deployment' },
      { origin: `${file}#1`, apiVersion: 'v1', kind: 'ConfigMap' },
      { origin: `${file}#7`, apiVersion: 'v1', kind: 'Service' },
    ]);
    expect(problems).toEqual([
      expect.objectContaining({ origin: `${file}#4`, path: '/kind', rule: 'enum', message: expect.stringContaining('switchyard.io/v1alpha1/Sauce') }),
      expect.objectContaining({ origin: `${file}#5`, path: '/kind', rule: 'enum', message: expect.stringContaining('switchyard.io/v1beta1/Source') }),
      expect.objectContaining({ origin: `${file}#6`, path: '/kind', rule: 'enum', message: expect.stringContaining('apiVersion/kind (none)/(none)') }),
    ]);
    expect(formatSkipped(skipped)).toBe('3 other resource(s) skipped (apps/v1 Deployment, v1 ConfigMap, v1 Service)');
  });

  it('reads multi-document YAML from folders, reporting syntax errors and duplicates with their origin', async () => {
    const dir = await tempDir();
    await writeFile(
      path.join(dir, 'a.yaml'),
      `apiVersion: switchyard.io/v1alpha1\nkind: Source\nmetadata: {name: web}\nspec: {writeKey: {value: wk_test_123456}}\n---\napiVersion: switchyard.io/v1alpha1\nkind: Source\nmetadata: {name: web, namespace: default}\nspec: {writeKey: {value: wk_test_654321}}\n`,
    );
    await writeFile(path.join(dir, 'b.yml'), 'kind: [unclosed\n');
    await writeFile(path.join(dir, 'notes.txt'), 'ignored');
    const { resources, problems } = await loadResources([dir]);
    expect(resources.map((r) => r.origin)).toEqual([`${path.join(dir, 'a.yaml')}#0`]);
    expect(problems).toEqual([
      expect.objectContaining({ origin: `${path.join(dir, 'a.yaml')}#1`, rule: 'unique' }),
      expect.objectContaining({ origin: `${path.join(dir, 'b.yml')}#0`, rule: 'yaml' }),
    ]);
  });
});
