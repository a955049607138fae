import { PatchStrategy } from '@kubernetes/client-node';
import { normalizeIntegration } from '@switchyard/runtime';
import type { Integration, Mapping, Source } from '@switchyard/runtime/api';
import { Annotations, mergeConditions, readyCondition } from '../conditions.js';
import { deploymentCondition } from '../reconcile/integration.js';
import { kubeClients } from '../kube/client.js';
import { parseOperatorSettings } from '../settings.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig } from '../test-support/kube.js';
import { configChecksum, desiredConfigMap, desiredDeployment, desiredRuntimeSecret, forwarderConfig, labelValue } from './integration.js';
import { desiredSourcesSecret, resolveSources } from './source.js';

const settings = parseOperatorSettings({ nats: { servers: ['nats://nats.switchyard:4222'], user: 'u', pass: 'secret' } }, {});

function integration(spec: Partial<Integration['spec']> = {}): Integration {
  return normalizeIntegration({
    apiVersion: 'switchyard.io/v1alpha1',
    kind: 'Integration',
    metadata: { name: 'shop-webhook', namespace: 'shop', uid: 'uid-1', generation: 3 },
    spec: { sourceRefs: [{ name: 'web' }], mappingRef: { name: 'm' }, destination: { type: 'webhook', webhook: { url: 'https://example.com/hook' } }, ...spec } as Integration['spec'],
  } as Integration);
}
const mapping: Mapping = { apiVersion: 'switchyard.io/v1alpha1', kind: 'Mapping', metadata: { name: 'm', namespace: 'shop', generation: 1 }, spec: { default: { fields: [{ to: 'event', from: '$name' }] } } };

describe('forwarder ConfigMap and Deployment', () => {
  test('the ConfigMap holds identity and spec only; NATS settings and credential files go in the runtime Secret', () => {
    const cm = desiredConfigMap(integration(), mapping);
    expect(cm.metadata?.name).toBe('shop-webhook-forwarder');
    expect(cm.metadata?.ownerReferences).toEqual([{ apiVersion: 'switchyard.io/v1alpha1', kind: 'Integration', name: 'shop-webhook', uid: 'uid-1', controller: true, blockOwnerDeletion: true }]);
    expect(Object.keys(cm.data!)).toEqual(['forwarder.yaml']);
    const config = JSON.parse(cm.data!['forwarder.yaml']!);
    expect(config.integration.metadata).toEqual({ name: 'shop-webhook', namespace: 'shop', uid: 'uid-1' });
    expect(config.integration.status).toBeUndefined();

    const tlsSettings = parseOperatorSettings({ nats: { servers: ['tls://nats:4222'], token: 't0k', credsFile: '/op/nats.creds', tls: { caFile: '/op/ca.pem' } } }, {});
    const secret = desiredRuntimeSecret(integration(), tlsSettings, { 'nats.creds': 'JWT', 'ca.crt': 'CA' });
    const data = Object.fromEntries(Object.entries(secret.data!).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(Object.keys(data).sort()).toEqual(['ca.crt', 'nats.creds', 'settings.yaml']);
    expect([data['nats.creds'], data['ca.crt']]).toEqual(['JWT', 'CA']);
    expect(JSON.parse(data['settings.yaml']!).nats).toEqual({
      servers: ['tls://nats:4222'],
      name: 'switchyard',
      minServerVersion: '2.10.0',
      token: 't0k',
      credsFile: '/etc/switchyard/runtime/nats.creds',
      tls: { handshakeFirst: false, caFile: '/etc/switchyard/runtime/ca.crt' },
    });
    expect(secret.metadata?.ownerReferences?.[0]?.uid).toBe('uid-1');
    // The operator outside the cluster, the pods inside: each its own URL.
    const split = parseOperatorSettings({ nats: { servers: ['nats://localhost:4222'] }, forwarder: { natsServers: ['nats://nats.switchyard-system:4222'] } }, {});
    const splitData = Buffer.from(desiredRuntimeSecret(integration(), split, {}).data!['settings.yaml']!, 'base64').toString();
    expect(JSON.parse(splitData).nats.servers).toEqual(['nats://nats.switchyard-system:4222']);
  });

  test('the Deployment runs an explicit command with the mounted config and credentials', () => {
    const d = desiredDeployment(integration({ credentialsSecretRef: { name: 'creds' } }), settings, 'abc');
    const pod = d.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.command).toEqual(['node', '/app/runtime/bin/switchyard.js']);
    expect(c.args).toEqual(['forward', '--config', '/etc/switchyard/config/forwarder.yaml', '--settings', '/etc/switchyard/runtime/settings.yaml', '--credentials-dir', '/etc/switchyard/credentials', '--metrics-port', '9090']);
    expect(pod.volumes).toEqual([
      { name: 'config', configMap: { name: 'shop-webhook-forwarder' } },
      { name: 'runtime', secret: { secretName: 'shop-webhook-forwarder' } },
      { name: 'credentials', secret: { secretName: 'creds' } },
    ]);
    expect(d.spec!.template.metadata!.annotations![Annotations.configChecksum]).toBe('abc');
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '512Mi' } });
    expect(d.spec!.replicas).toBe(1);
  });

  test('pause scales to zero; spec.forwarder sets replicas and resources', () => {
    expect(desiredDeployment(integration({ paused: true }), settings, 'x').spec!.replicas).toBe(0);
    const d = desiredDeployment(integration({ forwarder: { replicas: 3, resources: { limits: { memory: '1Gi' } } } }), settings, 'x');
    expect(d.spec!.replicas).toBe(3);
    expect(d.spec!.template.spec!.containers[0]!.resources).toEqual({ limits: { memory: '1Gi' } });
  });

  test('the checksum changes with the config or a Secret version, not with key order', () => {
    const a = configChecksum({ x: '1', y: '2' }, ['uid-a/7']);
    expect(configChecksum({ y: '2', x: '1' }, ['uid-a/7'])).toBe(a);
    expect(configChecksum({ x: '1', y: '2' }, ['uid-a/8'])).not.toBe(a);
    expect(configChecksum({ x: '1', y: '3' }, ['uid-a/7'])).not.toBe(a);
    expect(configChecksum({ x: '1', y: '2' }, [])).not.toBe(a);
  });

  test('status, pause, replicas and resources do not change the rendered config', () => {
    const withStatus = { ...integration(), status: { observedGeneration: 3, backlog: 10 } } as Integration;
    expect(forwarderConfig(withStatus, mapping)).toEqual(forwarderConfig(integration(), mapping));
    expect(desiredConfigMap(integration({ paused: true, forwarder: { replicas: 4, resources: { limits: { memory: '1Gi' } } } }), mapping)).toEqual(desiredConfigMap(integration(), mapping));
    expect(desiredConfigMap(integration({ delivery: { batchSize: 7 } as never }), mapping)).not.toEqual(desiredConfigMap(integration(), mapping));
  });

  test('without forwarder env, scheduling or annotations the pod template is as it always was (existing Deployments do not roll)', () => {
    const d = desiredDeployment(integration(), settings, 'abc');
    const pod = d.spec!.template.spec!;
    expect(Object.keys(pod)).toEqual(['automountServiceAccountToken', 'terminationGracePeriodSeconds', 'securityContext', 'containers', 'volumes']);
    expect(d.spec!.template.metadata!.annotations).toEqual({ [Annotations.configChecksum]: 'abc' });
    expect(pod.containers[0]!.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    // The defaults written out render the same bytes as leaving them out.
    const explicit = parseOperatorSettings({ nats: { servers: ['nats://nats.switchyard:4222'], user: 'u', pass: 'secret' }, forwarder: { env: [], nodeSelector: {}, tolerations: [], affinity: {}, podAnnotations: {} } }, {});
    expect(JSON.stringify(desiredDeployment(integration(), explicit, 'abc'))).toBe(JSON.stringify(d));
  });

  test('forwarder env, scheduling and annotations from the settings reach the pod template, which the API server accepts', async () => {
    const forwarder = {
      env: [
        { name: 'HTTPS_PROXY', value: 'http://proxy.egress:3128' },
        { name: 'NO_PROXY', value: '.svc,.cluster.local' },
        { name: 'PROXY_TOKEN', valueFrom: { secretKeyRef: { name: 'egress', key: 'token' } } },
      ],
      nodeSelector: { 'node-role.example/egress': 'true' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'switchyard', effect: 'NoSchedule' }],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] }] } } },
      priorityClassName: 'switchyard-forwarders',
      podAnnotations: { 'sidecar.istio.io/inject': 'false' },
    };
    const custom = parseOperatorSettings({ forwarder }, {});
    const d = desiredDeployment(integration(), custom, 'abc');
    const pod = d.spec!.template.spec!;
    expect(pod.containers[0]!.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, ...forwarder.env]);
    expect(pod.nodeSelector).toEqual(forwarder.nodeSelector);
    expect(pod.tolerations).toEqual(forwarder.tolerations);
    expect(pod.affinity).toEqual(forwarder.affinity);
    expect(pod.priorityClassName).toBe('switchyard-forwarders');
    expect(d.spec!.template.metadata!.annotations).toEqual({ 'sidecar.istio.io/inject': 'false', [Annotations.configChecksum]: 'abc' });
    // The settings are frozen; the Deployment gets copies the client may change.
    expect(Object.isFrozen(pod.tolerations)).toBe(false);
    expect(pod.affinity).not.toBe(custom.forwarder.affinity);

    // The API server takes it as the operator sends it (server-side apply, dry run).
    const kc = testKubeConfig();
    const ns = await createTestNamespace(kc, 'desired');
    try {
      const inNs = integration();
      inNs.metadata.namespace = ns;
      const applied = await kubeClients(kc).objects.patch(desiredDeployment(inNs, custom, 'abc'), undefined, 'All', 'switchyard-operator', true, PatchStrategy.ServerSideApply);
      // Plain JSON: the client hands back class instances.
      const template = JSON.parse(JSON.stringify(applied.spec!.template)) as NonNullable<typeof d.spec>['template'];
      expect(template.spec!.containers[0]!.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }, ...forwarder.env]);
      expect(template.spec).toMatchObject({ nodeSelector: forwarder.nodeSelector, tolerations: forwarder.tolerations, affinity: forwarder.affinity, priorityClassName: 'switchyard-forwarders' });
      expect(template.metadata!.annotations).toEqual(d.spec!.template.metadata!.annotations);
    } finally {
      await deleteTestNamespace(kc, ns);
    }
  });

  test('label values stay within 63 characters and distinct', () => {
    const long = 'a'.repeat(100);
    expect(labelValue(long)).toHaveLength(63);
    expect(labelValue(long)).not.toBe(labelValue(`${'a'.repeat(99)}b`));
    expect(labelValue('short')).toBe('short');
  });
});

describe('DeploymentAvailable', () => {
  const dep = (status: object, replicas = 1, generation = 2) => ({ metadata: { generation }, spec: { replicas, selector: {}, template: {} }, status });
  test.each([
    ['no Deployment', undefined, false, 'False', 'RolloutInProgress'],
    ['not observed yet', dep({ observedGeneration: 1 }), false, 'False', 'RolloutInProgress'],
    ['pods not available', dep({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 0 }), false, 'False', 'RolloutInProgress'],
    ['old pods left', dep({ observedGeneration: 2, replicas: 2, updatedReplicas: 1, availableReplicas: 1 }), false, 'False', 'RolloutInProgress'],
    ['stuck', dep({ observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'too slow' }] }), false, 'False', 'ProgressDeadlineExceeded'],
    ['available', dep({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }), false, 'True', 'Available'],
    ['paused and scaled down', dep({ observedGeneration: 2 }, 0), true, 'True', 'Paused'],
    ['paused, pods left', dep({ observedGeneration: 2, replicas: 1 }, 0), true, 'False', 'RolloutInProgress'],
  ])('%s', (_what, live, paused, status, reason) => {
    expect(deploymentCondition(live as never, paused)).toMatchObject({ status, reason });
  });
});

describe('conditions', () => {
  test('lastTransitionTime moves only when the status changes', () => {
    const first = mergeConditions(undefined, [{ type: 'Ready', status: 'False', reason: 'A', message: 'a' }], 1, Date.parse('2026-01-01T00:00:00.500Z'));
    expect(first[0]).toEqual({ type: 'Ready', status: 'False', reason: 'A', message: 'a', observedGeneration: 1, lastTransitionTime: '2026-01-01T00:00:00Z' });
    const same = mergeConditions(first, [{ type: 'Ready', status: 'False', reason: 'B', message: 'b' }], 2, Date.parse('2026-01-02T00:00:00Z'));
    expect(same[0]!.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    const flipped = mergeConditions(same, [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok' }], 2, Date.parse('2026-01-03T00:00:00Z'));
    expect(flipped[0]!.lastTransitionTime).toBe('2026-01-03T00:00:00Z');
  });

  test('Ready rolls up the first failing part', () => {
    expect(readyCondition([{ type: 'A', status: 'True', reason: 'ok', message: '' }])).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(readyCondition([{ type: 'A', status: 'True', reason: 'ok', message: '' }, { type: 'B', status: 'False', reason: 'Broken', message: 'why' }])).toEqual({ type: 'Ready', status: 'False', reason: 'Broken', message: 'B: why' });
  });
});

describe('sources', () => {
  const source = (name: string, ref: { name: string; key: string } | undefined, created: string, namespace = 'shop'): Source =>
    ({
      apiVersion: 'switchyard.io/v1alpha1',
      kind: 'Source',
      metadata: { name, namespace, creationTimestamp: created },
      spec: { writeKey: ref ? { secretKeyRef: ref } : { value: 'inline-key-1' }, allowedOrigins: ['https://shop.example'], limits: { maxEventBytes: 32768, maxBatchBytes: 512000, eventsPerSecond: 10, burst: 20 } },
    }) as unknown as Source;
  const secrets: Record<string, Record<string, string>> = { 'shop/keys': { web: 'wk-web', dup: 'wk-web', empty: '' } };
  const lookup = (ns: string, name: string) => secrets[`${ns}/${name}`];

  test('write keys resolve from Secrets; missing, empty, inline and duplicate keys are refused with a reason', () => {
    const resolved = resolveSources(
      [
        source('late-dup', { name: 'keys', key: 'dup' }, '2026-01-02T00:00:00Z'),
        source('web', { name: 'keys', key: 'web' }, '2026-01-01T00:00:00Z'),
        source('no-secret', { name: 'nope', key: 'web' }, '2026-01-01T00:00:00Z'),
        source('no-key', { name: 'keys', key: 'empty' }, '2026-01-01T00:00:00Z'),
        source('inline', undefined, '2026-01-01T00:00:00Z'),
      ],
      lookup,
    );
    const byName = Object.fromEntries(resolved.map((r) => [r.source.metadata.name, r.condition.reason]));
    expect(byName).toEqual({ web: 'Resolved', 'late-dup': 'WriteKeyConflict', 'no-secret': 'SecretNotFound', 'no-key': 'SecretKeyNotFound', inline: 'InlineWriteKey' });
    // A Source that already holds a write key keeps it against an older claimant.
    const kept = resolveSources([source('web', { name: 'keys', key: 'web' }, '2026-01-05T00:00:00Z'), source('old', { name: 'keys', key: 'dup' }, '2026-01-01T00:00:00Z')], lookup, new Set(['shop/web']));
    expect(Object.fromEntries(kept.map((r) => [r.source.metadata.name, r.condition.reason]))).toEqual({ web: 'Resolved', old: 'WriteKeyConflict' });
    const secret = desiredSourcesSecret(resolved, 'switchyard-system', 'switchyard-sources');
    const file = JSON.parse(secret.stringData!['sources.yaml']!);
    expect(file).toEqual({ sources: [{ namespace: 'shop', name: 'web', writeKey: 'wk-web', allowedOrigins: ['https://shop.example'], limits: { maxEventBytes: 32768, maxBatchBytes: 512000, eventsPerSecond: 10, burst: 20 }, consent: { missing: 'allow' } }] });
  });
});

describe('operator settings', () => {
  test('defaults, and leader-election durations in client-go order', () => {
    expect(parseOperatorSettings({}, {}).leaderElection).toMatchObject({ enabled: true, leaseDuration: '15s', renewDeadline: '10s', retryPeriod: '2s' });
    expect(() => parseOperatorSettings({ leaderElection: { renewDeadline: '20s' } }, {})).toThrow(/retryPeriod \(2s\) < renewDeadline \(20s\) < leaseDuration \(15s\)/);
    expect(() => parseOperatorSettings({ workers: 0 }, {})).toThrow(/\/workers/);
    expect(() => parseOperatorSettings({ retry: { baseDelay: '5m', maxDelay: '1m' } }, {})).toThrow(/\/retry: baseDelay \(5m\) <= maxDelay \(1m\) must hold/);
    expect(parseOperatorSettings({ retry: { baseDelay: '1m', maxDelay: '1m' } }, {}).retry).toEqual({ baseDelay: '1m', maxDelay: '1m' });
  });

  test('forwarder pod settings: defaults, and what the operator sets itself cannot be named', () => {
    expect(parseOperatorSettings({}, {}).forwarder).toMatchObject({ env: [], nodeSelector: {}, tolerations: [], affinity: {}, podAnnotations: {} });
    expect(parseOperatorSettings({}, {}).forwarder.priorityClassName).toBeUndefined();
    const env = (...vars: object[]) => () => parseOperatorSettings({ forwarder: { env: vars } }, {});
    expect(env({ name: 'POD_NAME', value: 'x' })).toThrow(/\/forwarder\/env\/0\/name: POD_NAME is set by the operator/);
    expect(env({ name: 'HTTPS_PROXY', value: 'a' }, { name: 'HTTPS_PROXY', value: 'b' })).toThrow(/\/forwarder\/env\/1\/name: HTTPS_PROXY is named twice/);
    expect(env({ name: 'A' })).toThrow(/\/forwarder\/env\/0: set either value or valueFrom/);
    expect(env({ name: 'A', value: 'a', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } })).toThrow(/\/forwarder\/env\/0: set either value or valueFrom/);
    expect(env({ name: 'A', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } })).toThrow(/\/forwarder\/env\/0\/valueFrom/);
    expect(env({ name: '1A', value: 'a' })).toThrow(/\/forwarder\/env\/0\/name/);
    expect(env({ name: 'HTTP_PROXY', value: '' })).not.toThrow();
    expect(() => parseOperatorSettings({ forwarder: { podAnnotations: { [Annotations.configChecksum]: 'x' } } }, {})).toThrow(/\/forwarder\/podAnnotations: switchyard.io\/config-checksum is set by the operator/);
    expect(() => parseOperatorSettings({ forwarder: { tolerations: [{ key: 'k', effect: 'NoRun' }] } }, {})).toThrow(/\/forwarder\/tolerations\/0\/effect/);
    expect(() => parseOperatorSettings({ forwarder: { affinity: { zoneAffinity: {} } } }, {})).toThrow(/\/forwarder\/affinity/);
    expect(() => parseOperatorSettings({ forwarder: { priorityClassName: 'High' } }, {})).toThrow(/\/forwarder\/priorityClassName/);
  });
});
