import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, CustomObjectsApi, loadYaml } from '@kubernetes/client-node';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from './kube.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const exampleIntegration = loadYaml<{ metadata: Record<string, unknown>; spec: Record<string, any> }>(readFileSync(path.join(repoRoot, 'examples/4-integration.yaml'), 'utf8'));

describe('the suite control plane', () => {
  const kc = testKubeConfig();
  const custom = kc.makeApiClient(CustomObjectsApi);
  let namespace = '';

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'crd');
  });
  afterAll(async () => deleteTestNamespace(kc, namespace));

  const create = (name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      group: 'switchyard.io',
      version: 'v1alpha1',
      namespace,
      plural: 'integrations',
      body: { apiVersion: 'switchyard.io/v1alpha1', kind: 'Integration', metadata: { name, namespace }, spec },
    });

  it('serves the CRDs of crds/, Established', async () => {
    const crd = await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: 'integrations.switchyard.io' });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
  });

  it('accepts the example Integration, with the schema defaults applied', async () => {
    const created = (await create('example', exampleIntegration.spec)) as { spec: { forwarder?: unknown; delivery: { batchSize: number } } };
    expect(created.spec.delivery.batchSize).toBe(1);
    expect(created.spec.forwarder).toBeDefined();
  });

  it('refuses an Integration breaking a CEL rule, with its message', async () => {
    const { webhook: _webhook, ...destination } = exampleIntegration.spec.destination;
    const err = await create('no-webhook', { ...exampleIntegration.spec, destination }).then(
      () => undefined,
      (e: { code: number; body: string }) => e,
    );
    expect(err?.code).toBe(422);
    expect(err?.body).toContain('destination.webhook is required when type is webhook');
  });

  it('refuses an Integration breaking the schema, naming the field', async () => {
    const err = await create('batch-zero', { ...exampleIntegration.spec, delivery: { ...exampleIntegration.spec.delivery, batchSize: 0 } }).then(
      () => undefined,
      (e: { code: number; body: string }) => e,
    );
    expect(err?.code).toBe(422);
    expect(err?.body).toContain('spec.delivery.batchSize');
    expect(err?.body).toMatch(/greater than or equal to 1/);
  });
});
