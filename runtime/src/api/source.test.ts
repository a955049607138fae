// spec.tag of a Source: the schema (ajv), the per-kind sync rules the CRD states in CEL, and the
// example in examples/2-source.yaml.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { readSourcesFile } from '../cli/ingest.js';
import { resolveLocal } from '../local/resolve.js';
import { useTempDirs } from '../test-support/temp.js';
import { renderCrds } from './crds.js';
import { validateDocument, type LoadedResource } from './resources.js';
import { SYNC_KIND_FIELDS, TagSpec, tagProblems, type Source } from './source.js';
import { parseSettings } from './validate.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const tempDir = useTempDirs('sy-source-');

const sourceWithTag = (tag: unknown) => ({
  apiVersion: 'switchyard.io/v1alpha1',
  kind: 'Source',
  metadata: { name: 'web' },
  spec: { writeKey: { value: 'wk_test_123456' }, ...(tag === undefined ? {} : { tag }) },
});

/** Schema problems, then the problems `switchyard dev` and `switchyard validate` report (resolveLocal). */
function check(tag: unknown): { path: string; rule: string; message: string }[] {
  const { resource, problems } = validateDocument(sourceWithTag(tag), 'mem#0');
  if (!resource) return problems.map(({ path, rule, message }) => ({ path, rule, message }));
  const loaded: LoadedResource[] = [{ resource, origin: 'mem#0' }];
  return resolveLocal(loaded).problems.map(({ path, rule, message }) => ({ path, rule, message }));
}

describe('Source spec.tag', () => {
  it('is optional; given, every default is filled in', () => {
    expect((validateDocument(sourceWithTag(undefined), 'mem#0').resource as Source).spec).not.toHaveProperty('tag');
    const { resource, problems } = validateDocument(sourceWithTag({}), 'mem#0');
    expect(problems).toEqual([]);
    expect((resource as Source).spec.tag).toEqual({
      enabled: true,
      cookie: { anonymousIdName: 'ajs_anonymous_id', userIdName: 'ajs_user_id', maxAgeDays: 365, sameSite: 'Lax' },
      serverCookie: { enabled: false, httpOnly: false, maxAgeDays: 400, timeout: '2s' },
      transport: { maxEvents: 20, maxBytes: 64000, flushInterval: '1s', retryMinDelay: '1s', retryMaxDelay: '1m', maxAttempts: 10, maxAge: '7d', lease: '3s' },
      consent: { defaults: {} },
      builtinSyncs: {
        meta: { enabled: true },
        google: { enabled: true },
        tiktok: { enabled: true },
        microsoft: { enabled: true },
        pinterest: { enabled: true },
        snapchat: { enabled: true },
        crossDomain: { enabled: true, domains: [] },
      },
      syncs: [],
    });
  });

  it('takes a sync of each kind with its fields', () => {
    expect(
      check({
        syncs: [
          { name: 'crm', kind: 'urlParameter', parameter: 'crm_id', category: 'Analytics' },
          { name: 'loyalty', kind: 'cookie', cookie: 'loyalty', pattern: 'member=(\\w+)' },
          { name: 'app', kind: 'localStorage', key: 'state', path: 'user.id' },
          { name: 'partner', kind: 'fetch', url: 'https://id.partner.example/sync?u={anonymousId}', path: 'id', credentials: 'omit' },
          { name: 'dsp', kind: 'pixel', url: 'https://match.dsp.example/px?u={anonymousId}', lifetimeDays: 30 },
        ],
      }),
    ).toEqual([]);
  });

  it('refuses, naming the field, what the schema states: bounds, patterns, enums and unknown fields', () => {
    expect(
      check({
        cookie: { maxAgeDays: 401, sameSite: 'lax' },
        transport: { flushInterval: '0s', maxBytes: 100000 },
        builtinSyncs: { google: { measurementId: 'UA-1' }, meta: { bogus: true } },
        syncs: [{ name: '1st', kind: 'beacon' }],
      }).map((p) => `${p.path} ${p.rule}`),
    ).toEqual(
      expect.arrayContaining([
        '/spec/tag/cookie/maxAgeDays maximum',
        '/spec/tag/cookie/sameSite enum',
        '/spec/tag/transport/flushInterval pattern',
        '/spec/tag/transport/maxBytes maximum',
        '/spec/tag/builtinSyncs/google/measurementId pattern',
        '/spec/tag/builtinSyncs/meta/bogus additionalProperties',
        '/spec/tag/syncs/0/name pattern',
        '/spec/tag/syncs/0/kind enum',
      ]),
    );
  });

  it('refuses a sync missing the fields of its kind, or holding those of another, as the CRD rules do', () => {
    expect(
      check({
        syncs: [
          { name: 'a', kind: 'fetch', url: 'https://id.example/sync' },
          { name: 'b', kind: 'urlParameter' },
          { name: 'c', kind: 'cookie', cookie: 'c', parameter: 'c' },
          { name: 'd', kind: 'pixel', url: 'https://px.example/', path: 'x' },
        ],
      }),
    ).toEqual([
      { path: '/spec/tag/syncs/0/path', rule: 'required', message: 'kind fetch needs url and path' },
      { path: '/spec/tag/syncs/1/parameter', rule: 'required', message: 'kind urlParameter needs parameter' },
      { path: '/spec/tag/syncs/2/parameter', rule: 'kind', message: 'parameter is only for kind urlParameter' },
      { path: '/spec/tag/syncs/3/path', rule: 'kind', message: 'path is only for kind localStorage or fetch' },
    ]);
  });

  it('refuses two syncs of one name, and a pattern that is no JavaScript regular expression', () => {
    expect(
      check({
        syncs: [
          { name: 'crm', kind: 'urlParameter', parameter: 'a' },
          { name: 'crm', kind: 'cookie', cookie: 'crm', pattern: 'id=(' },
        ],
      }),
    ).toEqual([
      { path: '/spec/tag/syncs/1/name', rule: 'unique', message: 'sync name crm is used more than once' },
      { path: '/spec/tag/syncs/1/pattern', rule: 'pattern', message: expect.stringMatching(/^not a JavaScript regular expression: /) },
    ]);
  });

  it('states the same per-kind rules in the CRD, as CEL with the same messages', () => {
    const crd = parse(renderCrds().get('switchyard.io_sources.yaml')!);
    const syncs = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.tag.properties.syncs;
    expect(syncs['x-kubernetes-list-type']).toBe('map');
    expect(syncs['x-kubernetes-list-map-keys']).toEqual(['name']);
    const messages = (syncs.items['x-kubernetes-validations'] as { message: string }[]).map((v) => v.message);
    for (const [kind, { needs }] of Object.entries(SYNC_KIND_FIELDS)) expect(messages).toContain(`kind ${kind} needs ${needs.join(' and ')}`);
    // Each problem tagProblems finds for a missing or foreign field is one of these messages.
    const tag = parseSettings<TagSpec>(TagSpec, { syncs: [{ name: 'a', kind: 'fetch', url: 'https://x.example/' }, { name: 'b', kind: 'cookie', cookie: 'b', key: 'k' }] }, 'tag');
    for (const p of tagProblems(tag)) expect(messages).toContain(p.message);
  });

  it('travels in the ingestion sources file, defaults applied', async () => {
    const file = path.join(await tempDir(), 'sources.yaml');
    const entry = { namespace: 'shop', name: 'web', writeKey: 'wk_1', allowedOrigins: [], limits: {}, tag: { serverCookie: { enabled: true } } };
    await writeFile(file, JSON.stringify({ sources: [entry, { namespace: 'shop', name: 'app', writeKey: 'wk_2', allowedOrigins: [], limits: {} }] }));
    const [web, app] = await readSourcesFile(file);
    expect(web!.tag).toMatchObject({ enabled: true, serverCookie: { enabled: true, httpOnly: false, maxAgeDays: 400 }, transport: { lease: '3s' } });
    expect(app!.tag).toBeUndefined();
    await writeFile(file, JSON.stringify({ sources: [{ ...entry, tag: { transport: { lease: 'soon' } } }] }));
    await expect(readSourcesFile(file)).rejects.toMatchObject({ code: 'SY_INVALID_SETTINGS', message: expect.stringContaining('/sources/0/tag/transport/lease') });
  });

  it('examples/2-source.yaml shows a tag section that is valid once uncommented', async () => {
    const text = await readFile(path.join(repoRoot, 'examples/2-source.yaml'), 'utf8');
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l === '  # tag:');
    expect(start).toBeGreaterThan(0);
    const block = lines.slice(start).filter((l) => l.startsWith('  # '));
    expect(block.length).toBe(lines.length - start - 1); // the section runs to the end of the file
    const uncommented = [...lines.slice(0, start), ...block.map((l) => `  ${l.slice(4)}`)].join('\n');
    const doc = parse(uncommented) as { spec: { tag: unknown } };
    const problems = check(doc.spec.tag);
    expect(problems).toEqual([]);
    expect((doc.spec.tag as { syncs: { kind: string }[] }).syncs.map((s) => s.kind).sort()).toEqual(Object.keys(SYNC_KIND_FIELDS).sort());
  });
});
