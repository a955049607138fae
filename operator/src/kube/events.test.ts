import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../../runtime/src/logger.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from '../test-support/kube.js';
import { EventRecorder } from './events.js';

let kc: KubeConfig;
let ns: string;
beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, 'events');
});
afterAll(() => deleteTestNamespace(kc, ns));

test('the same Event again raises the count of the one posted before; another one is posted anew', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  let now = Date.parse('2026-11-29T10:00:00Z');
  const recorder = new EventRecorder(core, { now: () => now }, silentLogger);
  const subject = { apiVersion: 'switchyard.io/v1alpha1', kind: 'Integration', metadata: { name: 'hook', namespace: ns, uid: 'u-1' } };
  await recorder.record(subject, 'Warning', 'SecretNotFound', 'Secret x not found');
  now += 1000;
  await recorder.record(subject, 'Warning', 'SecretNotFound', 'Secret x not found');
  await recorder.record(subject, 'Normal', 'Ready', 'all conditions are met');
  const events = (await core.listNamespacedEvent({ namespace: ns })).items;
  expect(events.map((e) => [e.reason, e.count]).sort()).toEqual([
    ['Ready', 1],
    ['SecretNotFound', 2],
  ]);
  const warning = events.find((e) => e.reason === 'SecretNotFound')!;
  expect(new Date(warning.lastTimestamp!).toISOString()).toBe('2026-11-29T10:00:01.000Z');
  expect(warning.involvedObject).toMatchObject({ kind: 'Integration', name: 'hook', uid: 'u-1' });
});
