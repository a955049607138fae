import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTempDirs } from '../test-support/temp.js';
import { main } from './index.js';

const tempDir = useTempDirs('sy-validate-');

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples');

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'switchyard', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('switchyard validate', () => {
  it('accepts the bundled examples', async () => {
    const r = await run('validate', '-f', examples);
    expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/^5 resource\(s\) valid$/) });
  });

  it('skips other Kubernetes objects in the files, says which, and exits 0', async () => {
    const r = await run('validate', '-f', examples, path.join(examples, 'cluster/ingestion.yaml'));
    expect(r).toMatchObject({ code: 0, out: '5 resource(s) valid; 2 other resource(s) skipped (apps/v1 Deployment, v1 Service)' });
    expect(r.err).toMatch(/^note: subfolders not read/);
  });

  it('still refuses a switchyard.io document of an unknown kind or version among other objects', async () => {
    const dir = await tempDir();
    await cp(examples, dir, { recursive: true });
    await writeFile(path.join(dir, 'extra.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: switchyard.io/v1\nkind: Source\nmetadata: {name: s}\n');
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(dir, 'extra.yaml')}#1: /kind: unsupported apiVersion/kind switchyard.io/v1/Source`);
    expect(r.err).toContain('1 problem(s)');
  });

  it('names file, object, field and rule of each problem and exits 1', async () => {
    const dir = await tempDir();
    await cp(examples, dir, { recursive: true });
    const file = path.join(dir, '4-integration.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('batchSize: 1', 'batchSize: 0').replace('name: webhook-ecommerce', 'name: missing-mapping'));
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}#0 (Integration/default/example-webhook): /spec/delivery/batchSize: must be >= 1 (minimum)`);
    expect(r.err).toContain('1 problem(s)');
  });

  it("checks each Integration with its destination type: the Secret's keys when it is there, the vendor's batch limit always", async () => {
    const dir = await tempDir();
    const meta = (batchSize: number, secret = true) =>
      [
        'apiVersion: switchyard.io/v1alpha1\nkind: Source\nmetadata: {name: web}\nspec: {writeKey: {value: wk_meta_test}}',
        'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: meta}\nspec: {default: {fields: [{to: event_name, from: $name}]}}',
        `apiVersion: switchyard.io/v1alpha1\nkind: Integration\nmetadata: {name: meta}\nspec:\n  sourceRefs: [{name: web}]\n  mappingRef: {name: meta}\n  destination: {type: meta-capi, metaCapi: {pixelId: "1234567890"}}\n  credentialsSecretRef: {name: meta-creds}\n  delivery: {batchSize: ${batchSize}}`,
        ...(secret ? ['apiVersion: v1\nkind: Secret\nmetadata: {name: meta-creds}\nstringData: {token: x}'] : []),
      ].join('\n---\n');
    const file = path.join(dir, 'meta.yaml');
    await writeFile(file, meta(100));
    let r = await run('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.err).toContain('/spec/credentialsSecretRef/name: Integration default/meta: the credentials Secret meta-creds (spec.credentialsSecretRef) must hold access_token for Meta Conversions API (credentials)');
    await writeFile(file, meta(1500, false));
    r = await run('validate', '-f', file);
    expect(r.code).toBe(1);
    expect(r.err).toContain('delivery.batchSize 1500 is more than Meta Conversions API takes per request (1000)');
    expect(r.err).not.toContain('access_token');
  });

  it('checks each Integration against its Mapping: output its payload schema refuses, an invalid where', async () => {
    const dir = await tempDir();
    await cp(examples, dir, { recursive: true });
    const file = path.join(dir, '4-integration.yaml');
    const text = await readFile(file, 'utf8');
    const schema = '\n      payloadSchema: {type: object, required: [orderNumber]}';
    await writeFile(file, text.replace(/(url: .*)/, `$1${schema}`));
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Integration\/default\/example-webhook\): \/spec\/mappingRef\/name: Mapping default\/webhook-ecommerce at \/eventSpecific\/Product Viewed: output never has orderNumber/);
    await writeFile(file, text.replace('events:', 'events:\n    where: [{path: properties.total}]'));
    const r2 = await run('validate', '-f', dir);
    expect(r2.code).toBe(1);
    expect(r2.err).toContain('/spec/events/where/0: a test needs an operator');
  });

  it('says which subfolders it did not read, and reads them with -R', async () => {
    const dir = await tempDir();
    await cp(examples, dir, { recursive: true });
    await writeFile(path.join(dir, 'mappings', 'broken.yaml'), 'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: broken}\nspec:\n  default:\n    fields:\n      - {to: a, from: "b..c"}\n');
    const flat = await run('validate', '-f', dir);
    expect(flat.code).toBe(0);
    expect(flat.err).toBe(`note: subfolders not read (add -R to read them): ${path.join(dir, 'argocd')}, ${path.join(dir, 'cluster')}, ${path.join(dir, 'mappings')}`);
    const deep = await run('validate', '-R', '-f', dir);
    expect(deep.code).toBe(1);
    expect(deep.err).toContain(`${path.join(dir, 'mappings', 'broken.yaml')}#0 (Mapping/default/broken): /spec/default/fields/0/from`);
    // Event fixtures and other plain data met on the way are not resources, and not problems.
    expect(deep.err).not.toContain('events');
  });

  it('skips plain data files (event fixtures) whether or not it recurses', async () => {
    const events = path.join(examples, 'mappings', 'events');
    const r = await run('validate', '-f', events);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^no Switchyard resources found in .*events .*; \d+ other resource\(s\) skipped \(non-Kubernetes document\)$/);
    const dir = await tempDir();
    await writeFile(path.join(dir, 'forgot.yaml'), 'kind: Mapping\nmetadata: {name: m}\nspec: {}\n');
    expect((await run('validate', '-f', dir)).err).toContain('unsupported apiVersion/kind');
  });

  it('shows at most 20 problems per file, then says how many more', async () => {
    const dir = await tempDir();
    const fields = Array.from({ length: 30 }, (_, i) => `      - {to: "a${i}", from: "b..c"}`).join('\n');
    await writeFile(path.join(dir, 'm.yaml'), `apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: m}\nspec:\n  default:\n    fields:\n${fields}\n`);
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    const lines = r.err.split('\n');
    expect(lines.filter((l) => l.includes('/spec/default/fields/'))).toHaveLength(20);
    expect(r.err).toContain('and 10 more problem(s) in this file');
    expect(r.err).toContain('30 problem(s)');
  });

  it('reports mapping rule errors with the path of the offending rule', async () => {
    const dir = await tempDir();
    await writeFile(
      path.join(dir, 'm.yaml'),
      'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: m}\nspec:\n  default:\n    fields:\n      - {to: a, from: x, value: 1}\n',
    );
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/Mapping\/default\/m\): \/spec\/default\/fields\/0/);
  });

  it('does not require Secrets unless asked, since they usually live outside Git', async () => {
    const dir = await tempDir();
    await cp(examples, dir, { recursive: true });
    await writeFile(path.join(dir, '1-secrets.yaml'), '');
    expect((await run('validate', '-f', dir)).code).toBe(0);
    const strict = await run('validate', '-f', dir, '--require-secrets');
    expect(strict.code).toBe(1);
    expect(strict.err).toContain('/spec/credentialsSecretRef/name: Secret default/example-webhook-credentials not found (reference)');
  });

  it('exits 2 on a usage error', async () => {
    expect((await run('validate')).code).toBe(2);
  });
  it('fails when the paths hold no resources, so a wrong path in CI cannot pass', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'notes.txt'), 'not yaml');
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`no Switchyard resources found in ${dir}`);
    // Only other objects: still a failure, naming what was skipped.
    await writeFile(path.join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\n');
    const others = await run('validate', '-f', dir);
    expect(others.code).toBe(1);
    expect(others.err).toContain(`no Switchyard resources found in ${dir} (files ending in .yaml, .yml or .json); 1 other resource(s) skipped (v1 Service)`);
  });

  it('says a reference points at a resource with errors, and explains path rules in words', async () => {
    const dir = await tempDir();
    await cp(examples, dir, { recursive: true });
    const file = path.join(dir, '3-mapping.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('from: properties.order_id', 'from: "properties.order_id["'));
    const r = await run('validate', '-f', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\/from: must be \$name, \$type or a path such as properties\.products\[0\]\.price .*\(pattern\)/);
    expect(r.err).toContain('/spec/mappingRef/name: Mapping default/webhook-ecommerce has errors (reference)');
  });
});
