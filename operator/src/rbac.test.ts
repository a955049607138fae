import { jest } from '@jest/globals';
import { CoordinationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { useNatsFixture } from '../../runtime/src/test-support/nats.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor } from './test-support/kube.js';
import { startTestOperator, testOperatorSettings } from './test-support/operator.js';

jest.setTimeout(60_000);

const nats = useNatsFixture();
let admin: KubeConfig;
let ns: string;

beforeAll(async () => {
  admin = testKubeConfig();
  ns = await createTestNamespace(admin, 'rbac');
});
afterAll(() => deleteTestNamespace(admin, ns));

/** A KubeConfig for a new ServiceAccount of `ns` allowed only what `rules` say (in `ns`). */
async function restrictedKubeConfig(rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[]): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'limited' } } });
  await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: 'limited' }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: { metadata: { name: 'limited' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'limited' }, subjects: [{ kind: 'ServiceAccount', name: 'limited', namespace: ns }] },
  });
  const token = await core.createNamespacedServiceAccountToken({ name: 'limited', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'limited', token: token.status!.token }],
    contexts: [{ name: 'limited', cluster: cluster.name, user: 'limited' }],
    currentContext: 'limited',
  });
  return kc;
}

test('a leader that cannot list its resources does not act, and stops without waiting for its caches, releasing the Lease', async () => {
  const kc = await restrictedKubeConfig([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]);
  const operator = await startTestOperator(kc, testOperatorSettings(ns, nats.fx.nats, nats.fx.streams), 'limited', false);
  try {
    await waitFor(() => operator.holdsLease(), { what: 'the Lease held' });
    await new Promise((r) => setTimeout(r, 1000));
    // Lists are refused (403): it holds the Lease but never acts.
    expect(operator.isLeader()).toBe(false);
  } finally {
    // Must not wait for the caches that never fill.
    await operator.stop();
  }
  const lease = await admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'switchyard-operator', namespace: ns });
  expect(lease.spec?.holderIdentity).toBe('');
});
