import { jest } from '@jest/globals';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { freePort, startNatsServer, type RunningNatsServer } from '../../../runtime/src/local/nats-server.js';
import type { Operator } from '../controller.js';
import { consumerName } from '../../../runtime/src/nats/subjects.js';
import { ackWaitMs } from '../../../runtime/src/forward/consumer.js';
import { useNatsFixture } from '../../../runtime/src/test-support/nats.js';
import { Annotations, FINALIZER } from '../conditions.js';
import { createTestNamespace, deleteTestNamespace, kubeRequest, testKubeConfig, waitFor } from '../test-support/kube.js';
import { condition, createResource, getResource, patchResource, startTestOperator, testOperatorSettings } from '../test-support/operator.js';

jest.setTimeout(60_000);

const nats = useNatsFixture();
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let ns: string;
let operator: Operator | undefined;

beforeAll(async () => {
  kc = testKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
});

beforeEach(async () => {
  ns = await createTestNamespace(kc, 'integration');
});

afterEach(async () => {
  await operator?.stop();
  operator = undefined;
  await deleteTestNamespace(kc, ns);
});

const mapping = (name = 'orders', to = 'event') => ({ kind: 'Mapping', metadata: { name }, spec: { default: { fields: [{ to, from: '$name' }] } } });
const integration = (name = 'shop-hook', spec: Record<string, unknown> = {}) => ({
  kind: 'Integration',
  metadata: { name },
  spec: {
    sourceRefs: [{ name: 'web' }],
    mappingRef: { name: 'orders' },
    destination: { type: 'webhook', webhook: { url: 'http://127.0.0.1:9/hook' } },
    delivery: { retrySchedule: ['1s', '5s'], timeout: '2s' },
    ...spec,
  },
});

async function start(overrides: Record<string, unknown> = {}) {
  operator = await startTestOperator(kc, testOperatorSettings(ns, nats.fx.nats, nats.fx.streams, overrides));
  return operator;
}

const consumer = (name: string) => nats.fx.jsm.consumers.info(nats.fx.streams.events.name, consumerName(ns, name)).catch(() => undefined);
const deployment = (name: string) => apps.readNamespacedDeployment({ name: `${name}-forwarder`, namespace: ns }).catch(() => undefined);
const configMap = (name: string) => core.readNamespacedConfigMap({ name: `${name}-forwarder`, namespace: ns }).catch(() => undefined);
const checksum = async (name: string) => (await deployment(name))?.spec?.template.metadata?.annotations?.[Annotations.configChecksum];

test('creates the consumer, ConfigMap and Deployment, with status and finalizer', async () => {
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'hook-creds' }, stringData: { Authorization: 'Bearer one' } } });
  await createResource(kc, ns, mapping());
  await createResource(kc, ns, integration('shop-hook', { credentialsSecretRef: { name: 'hook-creds' } }));
  await start();

  const info = await waitFor(() => consumer('shop-hook'), { what: 'the consumer' });
  expect(info.config.max_deliver).toBe(3);
  // The Source's events, then the dead letters replayed to this Integration alone.
  expect(info.config.filter_subjects).toEqual([`${nats.fx.streams.subjectPrefix}.events.${ns}.web.*`, `${nats.fx.streams.subjectPrefix}.replay.${ns}.shop-hook.>`]);
  // With a backoff JetStream waits backoff[i] for delivery i: the ack wait plus the retry delay.
  expect(info.config.backoff).toEqual([(ackWaitMs(2000) + 1000) * 1e6, (ackWaitMs(2000) + 5000) * 1e6]);

  const d = await waitFor(() => deployment('shop-hook'), { what: 'the Deployment' });
  const owner = d.metadata!.ownerReferences![0]!;
  expect(owner).toMatchObject({ kind: 'Integration', name: 'shop-hook', controller: true });
  const container = d.spec!.template.spec!.containers[0]!;
  expect(container.args).toContain('--credentials-dir');
  const cm = await waitFor(() => configMap('shop-hook'), { what: 'the ConfigMap' });
  expect(JSON.parse(cm.data!['forwarder.yaml']!).mapping.spec).toEqual(mapping().spec);

  const status = await waitFor(
    async () => {
      const i = await getResource(kc, 'integrations', ns, 'shop-hook');
      return condition(i, 'ConsumerReady')?.status === 'True' && condition(i, 'MappingResolved')?.status === 'True' ? i : undefined;
    },
    { what: 'Integration status' },
  );
  expect(status.metadata.finalizers).toContain(FINALIZER);
  expect(status.status.observedGeneration).toBe(status.metadata.generation);
  expect(condition(status, 'CredentialsResolved')).toMatchObject({ status: 'True', reason: 'Resolved' });
  // No kubelet here: the pods never become available, and Ready says why.
  expect(condition(status, 'DeploymentAvailable')).toMatchObject({ status: 'False', reason: 'RolloutInProgress' });
  expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'RolloutInProgress' });
  expect(status.status.backlog).toBe(0);

  const m = await waitFor(async () => {
    const r = await getResource(kc, 'mappings', ns, 'orders');
    return condition(r, 'Ready')?.status === 'True' ? r : undefined;
  }, { what: 'Mapping Ready' });
  expect(condition(m, 'Ready')!.reason).toBe('Compiled');
});

test('spec, Mapping and Secret changes update the consumer and roll the pods', async () => {
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'hook-creds' }, stringData: { Authorization: 'Bearer one' } } });
  await createResource(kc, ns, mapping());
  await createResource(kc, ns, integration('shop-hook', { credentialsSecretRef: { name: 'hook-creds' } }));
  await start();
  const first = await waitFor(() => checksum('shop-hook'), { what: 'the first checksum' });

  await patchResource(kc, 'integrations', ns, 'shop-hook', { spec: { delivery: { retrySchedule: ['1s', '2s', '3s', '4s'] } } });
  await waitFor(async () => (await consumer('shop-hook'))?.config.max_deliver === 5, { what: 'max_deliver updated' });
  const second = await waitFor(async () => ((await checksum('shop-hook')) !== first ? checksum('shop-hook') : undefined), { what: 'a new checksum after the spec change' });
  await waitFor(async () => {
    const i = await getResource(kc, 'integrations', ns, 'shop-hook');
    return i?.status?.observedGeneration === i?.metadata.generation && i?.metadata.generation === 2;
  }, { what: 'observedGeneration 2' });

  await patchResource(kc, 'mappings', ns, 'orders', { spec: { default: { fields: [{ to: 'name', from: '$name' }] } } });
  await waitFor(async () => JSON.parse((await configMap('shop-hook'))?.data?.['forwarder.yaml'] ?? '{}').mapping?.spec.default.fields[0].to === 'name', { what: 'the ConfigMap with the new Mapping' });
  const third = await waitFor(async () => ((await checksum('shop-hook')) !== second ? checksum('shop-hook') : undefined), { what: 'a new checksum after the Mapping change' });

  await core.replaceNamespacedSecret({ name: 'hook-creds', namespace: ns, body: { metadata: { name: 'hook-creds' }, stringData: { Authorization: 'Bearer two' } } });
  await waitFor(async () => (await checksum('shop-hook')) !== third, { what: 'a new checksum after the Secret change' });
});

test('pause scales the forwarder to zero and keeps the consumer', async () => {
  await createResource(kc, ns, mapping());
  await createResource(kc, ns, integration());
  await start();
  await waitFor(async () => (await deployment('shop-hook'))?.spec?.replicas === 1, { what: 'one replica' });
  await patchResource(kc, 'integrations', ns, 'shop-hook', { spec: { paused: true } });
  await waitFor(async () => (await deployment('shop-hook'))?.spec?.replicas === 0, { what: 'zero replicas' });
  const i = await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'shop-hook');
    return condition(r, 'Ready')?.reason === 'Paused' ? r : undefined;
  }, { what: 'Ready reason Paused' });
  expect(condition(i, 'Ready')!.status).toBe('True');
  expect(await consumer('shop-hook')).toBeDefined();
  // Events wait in the stream; status.backlog counts them on the next refresh.
  const js = jetstream(nats.fx.nc);
  for (let n = 0; n < 3; n++) await js.publish(`${nats.fx.streams.subjectPrefix}.events.${ns}.web.track`, JSON.stringify({ type: 'track', event: 'Paused', messageId: `m${n}` }));
  await waitFor(async () => (await getResource(kc, 'integrations', ns, 'shop-hook'))?.status?.backlog === 3, { what: 'status.backlog 3' });
});

test('deletion removes the consumer through the finalizer; the Deployment goes by garbage collection', async () => {
  await createResource(kc, ns, mapping());
  await createResource(kc, ns, integration());
  await start();
  await waitFor(() => consumer('shop-hook'), { what: 'the consumer' });
  await waitFor(() => deployment('shop-hook'), { what: 'the Deployment' });
  await waitFor(async () => (await getResource(kc, 'integrations', ns, 'shop-hook'))?.metadata.finalizers?.includes(FINALIZER), { what: 'the finalizer' });
  await kubeRequest(kc, 'DELETE', `/apis/switchyard.io/v1alpha1/namespaces/${ns}/integrations/shop-hook`);
  await waitFor(async () => (await getResource(kc, 'integrations', ns, 'shop-hook')) === undefined, { what: 'the Integration gone' });
  expect(await consumer('shop-hook')).toBeUndefined();
  await waitFor(async () => (await deployment('shop-hook')) === undefined, { what: 'the Deployment collected' });
});

test('drift is repaired: a consumer deleted by hand, a Deployment edited by hand', async () => {
  await createResource(kc, ns, mapping());
  await createResource(kc, ns, integration());
  await start();
  const before = await waitFor(() => consumer('shop-hook'), { what: 'the consumer' });
  await waitFor(async () => (await getResource(kc, 'integrations', ns, 'shop-hook'))?.status?.backlog === 0, { what: 'status with a backlog' });
  await waitFor(async () => (await getResource(kc, 'integrations', ns, 'shop-hook'))?.status?.consumer?.name === before.name, { what: 'status.consumer' });
  await nats.fx.jsm.consumers.delete(nats.fx.streams.events.name, before.name);
  // An event stored while the consumer is gone must not be skipped by its replacement.
  const gap = await jetstream(nats.fx.nc).publish(`${nats.fx.streams.subjectPrefix}.events.${ns}.web.track`, JSON.stringify({ type: 'track', event: 'Gap', messageId: 'gap-1' }));
  const after = await waitFor(() => consumer('shop-hook'), { what: 'the consumer re-created' });
  expect(after.config).toMatchObject({ deliver_policy: 'by_start_sequence' });
  expect(after.config.opt_start_seq).toBeLessThanOrEqual(gap.seq);
  expect(after.num_pending).toBe(1);
  const restored = await waitFor(async () => (await core.listNamespacedEvent({ namespace: ns })).items.find((e) => e.reason === 'ConsumerRestored'), { what: 'a ConsumerRestored Event' });
  expect(restored.type).toBe('Warning');

  await waitFor(() => deployment('shop-hook'), { what: 'the Deployment' });
  await kubeRequest(kc, 'PATCH', `/apis/apps/v1/namespaces/${ns}/deployments/shop-hook-forwarder`, { spec: { replicas: 5, template: { spec: { containers: [{ name: 'forwarder', image: 'evil:latest' }] } } } }, 'application/strategic-merge-patch+json');
  await waitFor(async () => {
    const d = await deployment('shop-hook');
    return d?.spec?.replicas === 1 && d.spec.template.spec!.containers[0]!.image!.startsWith('ghcr.io/switchyard/runtime:');
  }, { what: 'the Deployment set back' });
});

test('missing references and NATS outages show in status; the Integration converges once they are there', async () => {
  await createResource(kc, ns, integration('shop-hook', { credentialsSecretRef: { name: 'later' } }));
  // NATS is not there yet when the operator starts.
  const port = await freePort();
  const store = await mkdtemp(path.join(os.tmpdir(), 'switchyard-outage-'));
  let server: RunningNatsServer | undefined;
  nats.cleanups.push(async () => {
    await server?.stop();
    await rm(store, { recursive: true, force: true });
  });
  await start({ nats: { servers: [`nats://127.0.0.1:${port}`] } });
  const broken = await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'shop-hook');
    return condition(r, 'ConsumerReady')?.status === 'False' ? r : undefined;
  }, { what: 'conditions with a missing Mapping, Secret and NATS' });
  expect(condition(broken, 'MappingResolved')).toMatchObject({ status: 'False', reason: 'MappingNotFound' });
  expect(condition(broken, 'CredentialsResolved')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
  expect(condition(broken, 'ConsumerReady')).toMatchObject({ status: 'False', reason: 'NatsUnavailable' });
  expect(condition(broken, 'Ready')).toMatchObject({ status: 'False', reason: 'MappingNotFound' });
  expect(await deployment('shop-hook')).toBeUndefined();
  const events = await waitFor(async () => {
    const list = await core.listNamespacedEvent({ namespace: ns });
    return list.items.some((e) => e.reason === 'MappingNotFound') ? list.items : undefined;
  }, { what: 'a MappingNotFound Event' });
  expect(events.find((e) => e.reason === 'MappingNotFound')!.type).toBe('Warning');

  // NATS starts, the references appear: the same operator converges (retries with backoff).
  server = await startNatsServer({ port, storeDir: store });
  await createResource(kc, ns, mapping());
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'later' }, stringData: { token: 'x' } } });
  await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'shop-hook');
    return ['MappingResolved', 'CredentialsResolved', 'ConsumerReady'].every((t) => condition(r, t)?.status === 'True');
  }, { what: 'every reference resolved' });
  await waitFor(() => deployment('shop-hook'), { what: 'the Deployment' });
  // One Warning per transition, however often the Integration was reconciled meanwhile.
  expect((await core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.reason === 'MappingNotFound').map((e) => e.count)).toEqual([1]);

  // NATS goes away while the operator runs: the next reconcile says so; it comes back and heals.
  await server.stop();
  server = undefined;
  await patchResource(kc, 'integrations', ns, 'shop-hook', { spec: { delivery: { retrySchedule: ['1s'] } } });
  await waitFor(async () => condition(await getResource(kc, 'integrations', ns, 'shop-hook'), 'ConsumerReady')?.reason === 'NatsUnavailable', { what: 'NatsUnavailable during the outage' });
  server = await startNatsServer({ port, storeDir: store });
  await waitFor(async () => condition(await getResource(kc, 'integrations', ns, 'shop-hook'), 'ConsumerReady')?.status === 'True', { what: 'ConsumerReady after the outage', timeoutMs: 30_000 });

  // Deleting during an outage: the finalizer holds the Integration and its status says why.
  await server.stop();
  server = undefined;
  await kubeRequest(kc, 'DELETE', `/apis/switchyard.io/v1alpha1/namespaces/${ns}/integrations/shop-hook`);
  const waiting = await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'shop-hook');
    return condition(r, 'Ready')?.message.startsWith('waiting to delete') ? r : undefined;
  }, { what: 'Ready says the deletion waits for NATS' });
  expect(condition(waiting, 'Ready')!.reason).toBe('NatsUnavailable');
  server = await startNatsServer({ port, storeDir: store });
  await waitFor(async () => (await getResource(kc, 'integrations', ns, 'shop-hook')) === undefined, { what: 'the Integration deleted after the outage', timeoutMs: 30_000 });
});

test('an invalid Mapping is reported on the Mapping and on the Integrations using it', async () => {
  // Admission cannot check this one (array index bound): the compiler does.
  await createResource(kc, ns, { kind: 'Mapping', metadata: { name: 'orders' }, spec: { default: { fields: [{ to: 'items[99999999]', from: 'b' }] } } });
  await createResource(kc, ns, integration());
  await start();
  const m = await waitFor(async () => {
    const r = await getResource(kc, 'mappings', ns, 'orders');
    return condition(r, 'Ready') ? r : undefined;
  }, { what: 'Mapping status' });
  expect(condition(m, 'Ready')).toMatchObject({ status: 'False', reason: 'MappingInvalid' });
  const i = await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'shop-hook');
    return condition(r, 'MappingResolved') ? r : undefined;
  }, { what: 'Integration status' });
  expect(condition(i, 'MappingResolved')).toMatchObject({ status: 'False', reason: 'MappingInvalid' });
  expect(condition(i, 'MappingResolved')!.message).toContain('/default/fields/0/to');
});

test('a Mapping that can never satisfy the Integration\'s payload schema is reported as MappingIncompatible, naming the rule', async () => {
  await createResource(kc, ns, mapping());
  const payloadSchema = { type: 'object', required: ['event', 'orderId'], properties: { event: { type: 'string' }, orderId: { type: 'string' } } };
  await createResource(kc, ns, integration('strict-hook', { destination: { type: 'webhook', webhook: { url: 'http://127.0.0.1:9/hook', payloadSchema } } }));
  await createResource(kc, ns, integration('loose-hook'));
  await start();
  const i = await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'strict-hook');
    return condition(r, 'MappingResolved') ? r : undefined;
  }, { what: 'Integration status' });
  expect(condition(i, 'MappingResolved')).toMatchObject({ status: 'False', reason: 'MappingIncompatible' });
  expect(condition(i, 'MappingResolved')!.message).toMatch(/\/default: output never has orderId/);
  // The same Mapping is fine for an Integration without that schema, and on its own.
  await waitFor(async () => condition(await getResource(kc, 'integrations', ns, 'loose-hook'), 'MappingResolved')?.status === 'True', { what: 'loose-hook resolved' });
  expect(condition(await getResource(kc, 'mappings', ns, 'orders'), 'Ready')).toMatchObject({ status: 'True' });
});

test('the API server refuses invalid specs with the schema or CEL rule', async () => {
  const refuse = async (spec: Record<string, unknown>) => {
    try {
      await createResource(kc, ns, { ...integration('bad'), spec });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('accepted an invalid Integration');
  };
  const base = integration().spec;
  expect(await refuse({ ...base, destination: { type: 'webhook' } })).toContain('destination.webhook is required when type is webhook');
  expect(await refuse({ ...base, delivery: { batchSize: 0 } })).toMatch(/batchSize.*should be greater than or equal to 1/);
  expect(await refuse({ ...base, destination: { type: 'ga4', ga4: {} } })).toContain('destination.ga4 needs exactly one of measurementId (web stream) and firebaseAppId (app stream)');
  expect(await refuse({ ...base, destination: { type: 'ga4', ga4: { measurementId: 'G-ABC123', firebaseAppId: '1:1:android:a' } } })).toContain('needs exactly one of measurementId');
  expect(await refuse({ ...base, destination: { type: 'meta-capi', metaCapi: {} } })).toMatch(/pixelId: Required value/);
  expect(await refuse({ ...base, delivery: { timeout: '0s' } })).toMatch(/spec.delivery.timeout.*should match/);
  expect(await refuse({ ...base, forwarder: { resources: { limits: { gpu: '1' } } } })).toContain('resource names are cpu, memory and ephemeral-storage');
  // The Mapping compiler's own rules, repeated in the CRD.
  const refuseMapping = async (spec: Record<string, unknown>) =>
    createResource(kc, ns, { kind: 'Mapping', metadata: { name: 'bad' }, spec }).then(
      () => 'accepted',
      (e: Error) => e.message,
    );
  expect(await refuseMapping({ default: { fields: [{ to: 'a', from: 'b', value: 1 }] } })).toMatch(/spec.default.fields\[0\].*oneOf/);
  expect(await refuseMapping({ default: { fields: [{ to: 'a', value: 1, fallbacks: ['x'] }] } })).toMatch(/spec.default.fields\[0\].*must not validate the schema/);
  expect(await refuseMapping({ global: { fields: [{ to: 'a', from: 'p', each: [{ to: 'b', value: 1, default: 2 }] }] } })).toMatch(/spec.global.fields\[0\].each\[0\].*must not validate the schema/);
});

test('a restarted operator converges without duplicates or needless writes', async () => {
  await createResource(kc, ns, mapping());
  await createResource(kc, ns, integration());
  await start();
  await waitFor(async () => condition(await getResource(kc, 'integrations', ns, 'shop-hook'), 'ConsumerReady')?.status === 'True', { what: 'a reconciled Integration' });
  // Let the first term finish its follow-up reconciles.
  await new Promise((r) => setTimeout(r, 1500));
  await operator!.stop();
  const before = {
    integration: (await getResource(kc, 'integrations', ns, 'shop-hook'))!.metadata.resourceVersion,
    deployment: (await deployment('shop-hook'))!.metadata!.resourceVersion,
    configMap: (await configMap('shop-hook'))!.metadata!.resourceVersion,
    consumer: (await consumer('shop-hook'))!.created,
  };
  operator = await start();
  await waitFor(() => (operator!.metrics.reconciles as unknown as { hashMap: Record<string, { value: number }> }).hashMap && operator!.isLeader(), { what: 'the new leader' });
  await waitFor(async () => ((await operator!.registry.getSingleMetricAsString('switchyard_operator_reconciles_total')).includes('kind="Integration",result="success"') ? true : undefined), { what: 'a reconcile by the new operator' });
  await new Promise((r) => setTimeout(r, 1000));
  const deployments = await apps.listNamespacedDeployment({ namespace: ns });
  expect(deployments.items).toHaveLength(1);
  expect((await getResource(kc, 'integrations', ns, 'shop-hook'))!.metadata.resourceVersion).toBe(before.integration);
  expect((await deployment('shop-hook'))!.metadata!.resourceVersion).toBe(before.deployment);
  expect((await configMap('shop-hook'))!.metadata!.resourceVersion).toBe(before.configMap);
  expect((await consumer('shop-hook'))!.created).toBe(before.consumer);
});

test("the destination type's check of the credentials Secret shows in CredentialsResolved", async () => {
  await createResource(kc, ns, mapping());
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'meta-creds' }, stringData: { token: 'wrong key name' } } });
  await createResource(kc, ns, integration('meta', { destination: { type: 'meta-capi', metaCapi: { pixelId: '1234567890' } }, credentialsSecretRef: { name: 'meta-creds' } }));
  await start();
  const broken = await waitFor(async () => {
    const r = await getResource(kc, 'integrations', ns, 'meta');
    return condition(r, 'CredentialsResolved')?.status === 'False' ? r : undefined;
  }, { what: 'CredentialsResolved False' });
  expect(condition(broken, 'CredentialsResolved')).toMatchObject({ reason: 'DestinationInvalid', message: expect.stringContaining('must hold access_token for Meta Conversions API') });
  expect(await deployment('meta')).toBeUndefined();
  await kubeRequest(kc, 'PATCH', `/api/v1/namespaces/${ns}/secrets/meta-creds`, { stringData: { access_token: 'EAAB' } }, 'application/strategic-merge-patch+json');
  await waitFor(async () => condition(await getResource(kc, 'integrations', ns, 'meta'), 'CredentialsResolved')?.status === 'True', { what: 'CredentialsResolved True once the key is there' });
});
