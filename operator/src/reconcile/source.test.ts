import { jest } from '@jest/globals';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Operator } from '../controller.js';
import { useNatsFixture } from '../../../runtime/src/test-support/nats.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor } from '../test-support/kube.js';
import { condition, createResource, getResource, patchResource, startTestOperator, testOperatorSettings } from '../test-support/operator.js';

jest.setTimeout(60_000);

const nats = useNatsFixture();
let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let operator: Operator;

beforeAll(async () => {
  kc = testKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createTestNamespace(kc, 'sources');
  operator = await startTestOperator(kc, testOperatorSettings(ns, nats.fx.nats, nats.fx.streams));
});
afterAll(async () => {
  await operator?.stop();
  await deleteTestNamespace(kc, ns);
});

const source = (name: string, key: string, extra: Record<string, unknown> = {}) => ({
  kind: 'Source',
  metadata: { name },
  spec: { writeKey: { secretKeyRef: { name: 'write-keys', key } }, allowedOrigins: ['https://shop.example'], ...extra },
});

async function sourcesFile(): Promise<{ sources: Array<{ name: string; writeKey: string; allowedOrigins: string[]; limits: Record<string, number> }> } | undefined> {
  const secret = await core.readNamespacedSecret({ name: 'switchyard-sources', namespace: ns }).catch(() => undefined);
  const raw = secret?.data?.['sources.yaml'];
  return raw ? JSON.parse(Buffer.from(raw, 'base64').toString()) : undefined;
}

test('write keys resolve into the ingestion sources Secret; conflicts and missing keys show in status', async () => {
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'write-keys' }, stringData: { web: 'wk-web-1', app: 'wk-web-1' } } });
  await createResource(kc, ns, source('web', 'web', { limits: { eventsPerSecond: 50 } }));
  await waitFor(async () => (await sourcesFile())?.sources.length === 1, { what: 'the sources file with web' });
  await createResource(kc, ns, source('app', 'app'));
  await createResource(kc, ns, source('later', 'missing'));

  const app = await waitFor(async () => {
    const r = await getResource(kc, 'sources', ns, 'app');
    return condition(r, 'Ready') ? r : undefined;
  }, { what: 'status of app' });
  expect(condition(app, 'Ready')).toMatchObject({ status: 'False', reason: 'WriteKeyConflict' });
  expect(condition(app, 'Ready')!.message).toContain(`${ns}/web`);
  const later = await waitFor(async () => {
    const r = await getResource(kc, 'sources', ns, 'later');
    return condition(r, 'Ready') ? r : undefined;
  }, { what: 'status of later' });
  expect(condition(later, 'WriteKeyResolved')).toMatchObject({ status: 'False', reason: 'SecretKeyNotFound' });
  const web = await getResource(kc, 'sources', ns, 'web');
  expect(condition(web, 'Ready')).toMatchObject({ status: 'True' });
  expect(web!.status.observedGeneration).toBe(web!.metadata.generation);

  const file = (await sourcesFile())!;
  expect(file.sources).toEqual([{ namespace: ns, name: 'web', writeKey: 'wk-web-1', allowedOrigins: ['https://shop.example'], limits: expect.objectContaining({ eventsPerSecond: 50 }), consent: { missing: 'allow' } }]);

  // Fixing the Secret resolves both; a changed write key reaches the file.
  await core.replaceNamespacedSecret({ name: 'write-keys', namespace: ns, body: { metadata: { name: 'write-keys' }, stringData: { web: 'wk-web-2', app: 'wk-app-1', missing: 'wk-later-1' } } });
  await waitFor(async () => (await sourcesFile())?.sources.map((s) => `${s.name}=${s.writeKey}`).sort().join(',') === 'app=wk-app-1,later=wk-later-1,web=wk-web-2', { what: 'every write key in the file' });
  await waitFor(async () => condition(await getResource(kc, 'sources', ns, 'app'), 'Ready')?.status === 'True', { what: 'app Ready' });

  // A spec change and a deletion reach the file too.
  await patchResource(kc, 'sources', ns, 'web', { spec: { allowedOrigins: ['*'] } });
  await waitFor(async () => (await sourcesFile())?.sources.find((s) => s.name === 'web')?.allowedOrigins[0] === '*', { what: 'web origins updated' });
  await core.deleteNamespacedSecret({ name: 'write-keys', namespace: ns });
  await waitFor(async () => (await sourcesFile())?.sources.length === 0, { what: 'no source without its Secret' });
  await waitFor(async () => condition(await getResource(kc, 'sources', ns, 'web'), 'Ready')?.reason === 'SecretNotFound', { what: 'web SecretNotFound' });
});
