import { jest } from '@jest/globals';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Operator } from '../controller.js';
import { useNatsFixture } from '../../../runtime/src/test-support/nats.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor } from '../test-support/kube.js';
import { silentLogger } from '../../../runtime/src/logger.js';
import { systemClock } from '../../../runtime/src/clock.js';
import { LeaderElector } from './leader.js';
import { createResource, getResource, startTestOperator, testOperatorSettings } from '../test-support/operator.js';

jest.setTimeout(60_000);

const nats = useNatsFixture();
let kc: KubeConfig;
let ns: string;
const operators: Operator[] = [];

beforeAll(async () => {
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, 'leader');
});
afterAll(async () => {
  for (const o of operators) await o.stop();
  await deleteTestNamespace(kc, ns);
});

const reconciles = async (o: Operator) => {
  const metric = await o.metrics.reconciles.get();
  return metric.values.reduce((n, v) => n + v.value, 0);
};

test('two replicas: one acts, the other takes over when it stops', async () => {
  const settings = testOperatorSettings(ns, nats.fx.nats, nats.fx.streams);
  const a = await startTestOperator(kc, settings, 'replica-a');
  operators.push(a);
  const b = await startTestOperator(kc, settings, 'replica-b', false);
  operators.push(b);
  const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'switchyard-operator', namespace: ns });
  expect(lease.spec?.holderIdentity).toBe('replica-a');

  await createResource(kc, ns, { kind: 'Mapping', metadata: { name: 'm' }, spec: { default: { fields: [{ to: 'e', from: '$name' }] } } });
  await waitFor(async () => (await getResource(kc, 'mappings', ns, 'm'))?.status?.conditions, { what: 'the Mapping reconciled' });
  // Give the standby every chance to act wrongly.
  await new Promise((r) => setTimeout(r, 1000));
  expect(b.isLeader()).toBe(false);
  expect(await reconciles(b)).toBe(0);
  expect(await reconciles(a)).toBeGreaterThan(0);
  const exposition = await a.registry.metrics();
  expect(exposition).toMatch(/switchyard_operator_reconciles_total\{kind="Mapping",result="success"\} [1-9]/);
  expect(exposition).toContain('switchyard_operator_reconcile_duration_seconds_bucket');
  expect(exposition).toMatch(/switchyard_operator_queue_depth \d+/);
  expect(exposition).toContain('switchyard_operator_leader 1');
  expect(await b.registry.metrics()).toContain('switchyard_operator_leader 0');

  await a.stop();
  operators.splice(operators.indexOf(a), 1);
  // A graceful stop releases the Lease, so the standby need not wait for it to expire.
  await waitFor(() => b.isLeader(), { what: 'replica-b leading', timeoutMs: 10_000 });
  const after = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'switchyard-operator', namespace: ns });
  expect(after.spec?.holderIdentity).toBe('replica-b');
  expect(after.spec?.leaseTransitions).toBe(1);
  await createResource(kc, ns, { kind: 'Mapping', metadata: { name: 'm2' }, spec: { default: { fields: [{ to: 'e', from: '$name' }] } } });
  await waitFor(async () => (await getResource(kc, 'mappings', ns, 'm2'))?.status?.conditions, { what: 'the new leader reconciling' });
});

test('a Lease held by a replica that stopped renewing is taken over only after it expires', async () => {
  const namespace = await createTestNamespace(kc, 'lease');
  try {
    const coordination = kc.makeApiClient(CoordinationV1Api);
    await coordination.createNamespacedLease({ namespace, body: { metadata: { name: 'switchyard-operator' }, spec: { holderIdentity: 'crashed-replica', leaseDurationSeconds: 3, leaseTransitions: 4 } } });
    const started = Date.now();
    const c = await startTestOperator(kc, testOperatorSettings(namespace, nats.fx.nats, nats.fx.streams), 'replica-c', false);
    operators.push(c);
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.isLeader()).toBe(false);
    await c.ready();
    // Measured on the candidate's own clock from when it first saw the Lease: at least 3 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    const lease = await coordination.readNamespacedLease({ name: 'switchyard-operator', namespace });
    expect(lease.spec).toMatchObject({ holderIdentity: 'replica-c', leaseTransitions: 5 });
  } finally {
    await deleteTestNamespace(kc, namespace);
  }
});

test('a leader that takes long to start keeps renewing, so no standby takes over meanwhile', async () => {
  const namespace = await createTestNamespace(kc, 'slowlead');
  const electors: LeaderElector[] = [];
  try {
    const leading: string[] = [];
    const make = (identity: string, onStartedLeading: () => Promise<void>) =>
      new LeaderElector({
        kubeConfig: kc,
        namespace,
        leaseName: 'slow',
        identity,
        leaseDurationMs: 1000,
        renewDeadlineMs: 800,
        retryPeriodMs: 200,
        clock: systemClock,
        logger: silentLogger,
        onStartedLeading: async () => {
          leading.push(identity);
          await onStartedLeading();
        },
        onStoppedLeading: () => undefined,
      });
    let release!: () => void;
    const slow = make('slow', () => new Promise<void>((r) => (release = r)));
    electors.push(slow);
    slow.start();
    await waitFor(() => leading.includes('slow'), { what: 'slow leading' });
    const standby = make('standby', async () => undefined);
    electors.push(standby);
    standby.start();
    // Three lease durations while the leader's start hangs.
    await new Promise((r) => setTimeout(r, 3000));
    expect(leading).toEqual(['slow']);
    expect(slow.isLeader).toBe(true);
    release();
  } finally {
    for (const e of electors) await e.stop();
    await deleteTestNamespace(kc, namespace);
  }
});
