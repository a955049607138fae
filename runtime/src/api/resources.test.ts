import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { useTempDirs } from '../test-support/temp.js';
import { loadResources, validateDocument } from './resources.js';

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

  it('refuses other API groups and kinds', () => {
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

describe('loadResources', () => {
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
