// spec.tag of a Source against the real kube-apiserver with crds/ installed: defaults, the CEL rules
// of configurable syncs, and the way into the ingestion's sources file.
import type { KubeConfig } from '@kubernetes/client-node';
import { SourcesFile, parseSettings } from '@switchyard/runtime';
import type { Source } from '@switchyard/runtime/api';
import { desiredSourcesSecret, resolveSources } from './desired/source.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from './test-support/kube.js';
import { createResource } from './test-support/operator.js';

let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, 'source-tag');
});
afterAll(async () => deleteTestNamespace(kc, ns));

const source = (name: string, tag: unknown) => ({
  kind: 'Source',
  metadata: { name },
  spec: { writeKey: { secretKeyRef: { name: 'write-keys', key: name } }, tag },
});

/** The apiserver's refusal (status and message) of a Source, or undefined when it is created. */
const refusal = (name: string, tag: unknown) =>
  createResource(kc, ns, source(name, tag)).then(
    () => undefined,
    (e: { status: number; message: string }) => ({ status: e.status, message: e.message }),
  );

describe('Source spec.tag in the kube-apiserver', () => {
  it('is stored with its defaults, and reaches the ingestion sources file as the ingestion reads it', async () => {
    const created = (await createResource(
      kc,
      ns,
      source('web', {
        serverCookie: { enabled: true },
        builtinSyncs: { crossDomain: { domains: ['shop-eu.example'] } },
        syncs: [
          { name: 'crm', kind: 'urlParameter', parameter: 'crm_id' },
          { name: 'partner', kind: 'fetch', url: 'https://id.partner.example/sync?u={anonymousId}', path: 'id' },
        ],
      }),
    )) as unknown as Source;
    expect(created.spec.tag).toMatchObject({
      enabled: true,
      cookie: { anonymousIdName: 'ajs_anonymous_id', sameSite: 'Lax', maxAgeDays: 365 },
      serverCookie: { enabled: true, httpOnly: false, maxAgeDays: 400, timeout: '2s' },
      transport: { maxEvents: 20, flushInterval: '1s', lease: '3s' },
      builtinSyncs: { meta: { enabled: true }, crossDomain: { enabled: true, domains: ['shop-eu.example'] } },
    });
    const [resolved] = resolveSources([created], () => ({ web: 'wk_web_0123456789' }));
    const secret = desiredSourcesSecret([resolved!], 'switchyard-system', 'switchyard-sources');
    const file = parseSettings<SourcesFile>(SourcesFile, JSON.parse(secret.stringData!['sources.yaml']!), 'sources file');
    expect(file.sources[0]!.tag).toEqual(created.spec.tag);
  });

  it('refuses a sync without the fields of its kind, with the CEL rule\'s message', async () => {
    expect(await refusal('no-path', { syncs: [{ name: 'p', kind: 'fetch', url: 'https://id.example/' }] })).toEqual({
      status: 422,
      message: expect.stringContaining('kind fetch needs url and path'),
    });
    expect(await refusal('no-parameter', { syncs: [{ name: 'p', kind: 'urlParameter' }] })).toMatchObject({ message: expect.stringContaining('kind urlParameter needs parameter') });
    expect(await refusal('no-url', { syncs: [{ name: 'p', kind: 'pixel' }] })).toMatchObject({ message: expect.stringContaining('kind pixel needs url') });
  });

  it('refuses a field of another kind, and two syncs of one name', async () => {
    expect(await refusal('foreign', { syncs: [{ name: 'c', kind: 'cookie', cookie: 'c', url: 'https://x.example/' }] })).toMatchObject({
      status: 422,
      message: expect.stringContaining('url is only for kind fetch or pixel'),
    });
    expect(
      await refusal('twice', {
        syncs: [
          { name: 'crm', kind: 'urlParameter', parameter: 'a' },
          { name: 'crm', kind: 'urlParameter', parameter: 'b' },
        ],
      }),
    ).toMatchObject({ status: 422, message: expect.stringMatching(/spec\.tag\.syncs\[1\].*Duplicate value/) });
  });
});
