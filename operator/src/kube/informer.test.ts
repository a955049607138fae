import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { silentLogger } from '../../../runtime/src/logger.js';
import { kubeRequest, testKubeConfig, waitFor } from '../test-support/kube.js';
import { ResilientInformer, type InformerEvent } from './informer.js';

jest.setTimeout(60_000);

let kc: KubeConfig;
const group = `t${randomBytes(4).toString('hex')}.example.com`;
const crdName = `widgets.${group}`;
const crd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: crdName },
  spec: {
    group,
    scope: 'Cluster',
    names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
  },
};

beforeAll(() => {
  kc = testKubeConfig();
});
afterAll(async () => {
  await kubeRequest(kc, 'DELETE', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`).catch(() => undefined);
});

async function installCrd(): Promise<void> {
  await kubeRequest(kc, 'POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
  await waitFor(async () => {
    const got = await kubeRequest<{ status?: { conditions?: { type: string; status: string }[] } }>(kc, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`);
    return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  }, { what: 'the CRD established' });
}

const createWidget = (name: string) => waitFor(() => kubeRequest(kc, 'POST', `/apis/${group}/v1/widgets`, { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name } }), { what: `widget ${name} created` });

test('an informer started before its resource exists, or whose watch breaks, comes back by itself', async () => {
  const api = kc.makeApiClient(CustomObjectsApi);
  const seen: string[] = [];
  const informer = new ResilientInformer<KubernetesObject>({
    name: 'widgets',
    kubeConfig: kc,
    path: `/apis/${group}/v1/widgets`,
    list: () => api.listClusterCustomObject({ group, version: 'v1', plural: 'widgets' }) as never,
    onEvent: (e: InformerEvent, o) => seen.push(`${e}:${o.metadata!.name}`),
    logger: silentLogger,
    baseDelayMs: 50,
    maxDelayMs: 500,
  });
  // The list fails with 404 until the CRD exists; start() keeps trying.
  const started = informer.start();
  await new Promise((r) => setTimeout(r, 300));
  expect(informer.hasSynced).toBe(false);
  await installCrd();
  await createWidget('one');
  await started;
  await waitFor(() => seen.includes('add:one'), { what: 'add:one' });

  // Removing the resource ends the watch and fails the lists; the informer retries until it is back.
  await kubeRequest(kc, 'DELETE', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`);
  await waitFor(async () => {
    try {
      await kubeRequest(kc, 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`);
      return false;
    } catch {
      return true;
    }
  }, { what: 'the CRD gone' });
  await new Promise((r) => setTimeout(r, 500));
  await installCrd();
  await createWidget('two');
  await waitFor(() => seen.includes('add:two'), { what: 'add:two after the watch broke', timeoutMs: 20_000 });
  expect(informer.get('two')).toBeDefined();
  await informer.stop();
});
