import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { normalizeIntegration } from '@switchyard/runtime';
import type { Integration } from '@switchyard/runtime/api';
import { loadProcessSettings } from '../../runtime/src/cli/common.js';
import { desiredDeployment, desiredRuntimeSecret, natsFilePaths } from '../../operator/src/desired/integration.js';
import { parseOperatorSettings } from '../../operator/src/settings.js';
import { CHART_DIR, FULL_VALUES, chartCopy, helm, renderChart } from './helm.js';

type Obj = Record<string, any>;

const RELEASE_NS = 'switchyard-system';

/** The one object of `kind` (and `name` when given); fails the test when there is not exactly one. */
function one(objects: Obj[], kind: string, name?: string): Obj {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found[0]!;
}

const ofKind = (objects: Obj[], kind: string) => objects.filter((o) => o.kind === kind);

/** Sorted kind/namespace/name of every object. */
const inventory = (objects: Obj[]) => objects.map((o) => `${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`).sort();

/** Parses a ConfigMap key holding YAML. */
const configFile = (cm: Obj, key: string) => parse(cm.data[key] as string) as Obj;

/** Each volume mount of `container` as mount path → the volume it mounts. */
function mountedVolumes(pod: Obj, container: Obj): Map<string, Obj> {
  const volumes = new Map((pod.volumes as Obj[]).map((v) => [v.name as string, v]));
  return new Map((container.volumeMounts as Obj[]).map((m) => [m.mountPath as string, volumes.get(m.name)!]));
}

/**
 * Where `file` comes from in the pod: the volume mounted on its folder and the key of the file
 * (the volume's item whose path is the file name); undefined when no volume holds it.
 */
function fileSource(pod: Obj, container: Obj, file: string): { volume: Obj; key: string } | undefined {
  const volume = mountedVolumes(pod, container).get(path.dirname(file));
  if (!volume) return undefined;
  const items = (volume.secret ?? volume.configMap)?.items as Obj[] | undefined;
  if (!items) return { volume, key: path.basename(file) };
  const item = items.find((i) => i.path === path.basename(file));
  return item ? { volume, key: item.key } : undefined;
}

/** Every JSON path under `value` whose value is null or an empty object (the API server drops them: a perpetual diff). */
function emptyFields(value: unknown, at = ''): string[] {
  if (value === null) return [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => emptyFields(v, `${at}[${i}]`));
  if (typeof value === 'object') {
    const entries = Object.entries(value as Obj);
    if (entries.length === 0) return [at];
    return entries.flatMap(([k, v]) => emptyFields(v, `${at}.${k}`));
  }
  return [];
}

/** Every value under a key naming a port (port, containerPort, targetPort, number). */
function portValues(value: unknown): Array<number | string> {
  if (Array.isArray(value)) return value.flatMap(portValues);
  if (value && typeof value === 'object') {
    return Object.entries(value as Obj).flatMap(([k, v]) => (['port', 'containerPort', 'targetPort', 'number'].includes(k) && typeof v !== 'object' ? [v] : portValues(v)));
  }
  return [];
}

let defaults: { text: string; objects: Obj[] };
let full: { text: string; objects: Obj[] };
let fullValues: Obj;

beforeAll(async () => {
  [defaults, full] = await Promise.all([renderChart(), renderChart({ valuesFiles: [FULL_VALUES] })]);
  fullValues = parse(await readFile(FULL_VALUES, 'utf8')) as Obj;
});

describe('helm lint', () => {
  test.each([
    ['default values', []],
    ['every optional feature (ci/full-values.yaml)', ['-f', FULL_VALUES]],
  ])('passes --strict with %s', async (_what, args) => {
    const result = await helm(['lint', '--strict', await chartCopy(), ...args]);
    expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });
});

describe('objects', () => {
  test('default values render the CRDs, settings, operator, ingestion, RBAC and NetworkPolicies', () => {
    expect(inventory(defaults.objects)).toEqual(
      [
        'ClusterRole//switchyard-system-sy-switchyard-operator',
        'ClusterRoleBinding//switchyard-system-sy-switchyard-operator',
        'ConfigMap/switchyard-system/sy-switchyard-settings',
        'CustomResourceDefinition//integrations.switchyard.io',
        'CustomResourceDefinition//mappings.switchyard.io',
        'CustomResourceDefinition//sources.switchyard.io',
        'Deployment/switchyard-system/sy-switchyard-ingestion',
        'Deployment/switchyard-system/sy-switchyard-operator',
        'NetworkPolicy/switchyard-system/sy-switchyard-ingestion',
        'NetworkPolicy/switchyard-system/sy-switchyard-operator',
        'PodDisruptionBudget/switchyard-system/sy-switchyard-ingestion',
        'Role/switchyard-system/sy-switchyard-operator-leader',
        'RoleBinding/switchyard-system/sy-switchyard-operator-leader',
        'Service/switchyard-system/sy-switchyard-ingestion',
        'Service/switchyard-system/sy-switchyard-operator-metrics',
        'ServiceAccount/switchyard-system/sy-switchyard-ingestion',
        'ServiceAccount/switchyard-system/sy-switchyard-operator',
      ].sort(),
    );
  });

  test('full values add the Ingress, HPA, monitors and dashboard, and Roles per watched namespace instead of a ClusterRole', () => {
    const kinds = new Set(full.objects.map((o) => o.kind));
    for (const kind of ['Ingress', 'HorizontalPodAutoscaler', 'ServiceMonitor', 'PodMonitor', 'PodDisruptionBudget', 'NetworkPolicy']) expect(kinds).toContain(kind);
    expect(kinds).not.toContain('ClusterRole');
    expect(kinds).not.toContain('ClusterRoleBinding');
    expect(one(full.objects, 'ConfigMap', 'sy-full-dashboard').metadata.namespace).toBe('monitoring');
  });

  test('every object carries the chart labels, commonLabels and an Argo CD sync wave; CRDs first, then identities and config, then workloads', () => {
    const waves: Record<string, string> = {};
    for (const o of full.objects) {
      expect(o.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': 'switchyard',
        'app.kubernetes.io/instance': 'sy',
        'app.kubernetes.io/part-of': 'switchyard',
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/version': '0.1.0',
        'helm.sh/chart': 'switchyard-0.1.0',
        team: 'data-platform',
      });
      const wave = o.metadata.annotations?.['argocd.argoproj.io/sync-wave'];
      expect([o.kind, o.metadata.name, typeof wave]).toEqual([o.kind, o.metadata.name, 'string']);
      expect(wave).toMatch(/^-?[0-9]+$/);
      waves[o.kind] = wave;
      expect(o.metadata.annotations?.['helm.sh/hook']).toBeUndefined();
    }
    for (const o of defaults.objects) expect([o.kind, o.metadata.name, o.metadata.annotations?.['argocd.argoproj.io/sync-wave']]).toEqual([o.kind, o.metadata.name, expect.stringMatching(/^-?[0-9]+$/)]);
    const w = (kind: string) => Number(waves[kind]);
    expect(w('CustomResourceDefinition')).toBe(-10);
    // The settings ConfigMap goes with the identities, before the workloads that mount it.
    expect(one(full.objects, 'ConfigMap', 'sy-full-settings').metadata.annotations['argocd.argoproj.io/sync-wave']).toBe('-5');
    for (const kind of ['ServiceAccount', 'Role', 'RoleBinding']) expect(w(kind)).toBeLessThan(w('Deployment'));
    expect(w('CustomResourceDefinition')).toBeLessThan(w('ServiceAccount'));
    expect(w('NetworkPolicy')).toBeLessThan(w('Deployment'));
    for (const kind of ['ServiceMonitor', 'PodMonitor', 'Ingress']) expect(w(kind)).toBeGreaterThan(w('Service'));
    expect(one(full.objects, 'ConfigMap', 'sy-full-dashboard').metadata.annotations['argocd.argoproj.io/sync-wave']).toBe('1');
  });

  test('renders are deterministic: two renders of the same values are identical', async () => {
    const again = await renderChart({ valuesFiles: [FULL_VALUES] });
    expect(again.text).toBe(full.text);
  });

  test('no object has a null or empty field the API server would drop (a perpetual diff in Argo CD); ports are integers', () => {
    for (const o of [...defaults.objects, ...full.objects].filter((o) => o.kind !== 'CustomResourceDefinition')) {
      expect([`${o.kind}/${o.metadata.name}`, emptyFields(o)]).toEqual([`${o.kind}/${o.metadata.name}`, []]);
    }
    const ports = full.objects.filter((o) => o.kind !== 'CustomResourceDefinition').flatMap((o) => portValues(o));
    expect(ports.length).toBeGreaterThan(10);
    // A number, or a port name (never a number in a string).
    for (const port of ports) expect(typeof port === 'number' || /^[a-z][a-z0-9-]*$/.test(port)).toBe(true);
  });
});

describe('CRDs', () => {
  test('are rendered with helm.sh/resource-policy keep and the first sync wave, and not at all with crds.install=false', async () => {
    const crds = ofKind(defaults.objects, 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(['integrations.switchyard.io', 'mappings.switchyard.io', 'sources.switchyard.io']);
    for (const crd of crds) {
      expect(crd.metadata.annotations['helm.sh/resource-policy']).toBe('keep');
      expect(crd.metadata.annotations['argocd.argoproj.io/sync-wave']).toBe('-10');
    }
    expect(one(full.objects, 'CustomResourceDefinition', 'sources.switchyard.io').metadata.annotations['example.com/owner']).toBe('data-platform');
    const without = await renderChart({ values: [{ crds: { install: false } }] });
    expect(ofKind(without.objects, 'CustomResourceDefinition')).toEqual([]);
    expect(without.objects.length).toBe(defaults.objects.length - 3);
  });
});

describe('pods', () => {
  const deployments = () => [...ofKind(defaults.objects, 'Deployment'), ...ofKind(full.objects, 'Deployment')];

  test('every pod runs non-root 10001 with RuntimeDefault seccomp, no privilege escalation, a read-only root filesystem, no capabilities and a writable /tmp', () => {
    expect(deployments()).toHaveLength(4);
    for (const d of deployments()) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of pod.containers) {
        expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
        expect(mountedVolumes(pod, c).get('/tmp')?.emptyDir).toBeDefined();
        expect(c.resources.requests).toBeDefined();
        expect(c.resources.limits.memory).toBeDefined();
      }
    }
  });

  test('only the operator mounts a service account token', () => {
    for (const objects of [defaults.objects, full.objects]) {
      const [operator, ingestion] = ['operator', 'ingestion'].map((c) => ofKind(objects, 'Deployment').find((d) => d.metadata.labels['app.kubernetes.io/component'] === c)!);
      expect(operator!.spec.template.spec.automountServiceAccountToken).toBe(true);
      expect(ingestion!.spec.template.spec.automountServiceAccountToken).toBe(false);
      const ingestionSa = one(objects, 'ServiceAccount', ingestion!.spec.template.spec.serviceAccountName);
      expect(ingestionSa.automountServiceAccountToken).toBe(false);
    }
  });

  test('probes: the ingestion /readyz and /healthz on its API port (its /metrics on a port of its own), the operator on its metrics port', () => {
    for (const [objects, apiPort, metricsPort, ingestionMetricsPort] of [
      [defaults.objects, 8080, 8080, 9090],
      [full.objects, 8090, 8081, 9095],
    ] as const) {
      const ingestion = one(objects, 'Deployment', objects === defaults.objects ? 'sy-switchyard-ingestion' : 'sy-full-ingestion').spec.template.spec.containers[0];
      expect(ingestion.ports).toEqual([
        { name: 'http', containerPort: apiPort, protocol: 'TCP' },
        { name: 'metrics', containerPort: ingestionMetricsPort, protocol: 'TCP' },
      ]);
      expect(ingestion.args.slice(ingestion.args.indexOf('--metrics-port'), ingestion.args.indexOf('--metrics-port') + 2)).toEqual(['--metrics-port', String(ingestionMetricsPort)]);
      expect(ingestion.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(ingestion.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      const operator = one(objects, 'Deployment', objects === defaults.objects ? 'sy-switchyard-operator' : 'sy-full-operator').spec.template.spec.containers[0];
      expect(operator.ports).toEqual([{ name: 'metrics', containerPort: metricsPort, protocol: 'TCP' }]);
      expect(operator.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
      expect(operator.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    }
  });

  test('images: the appVersion tag by default, the digest when one is set', () => {
    const images = (objects: Obj[]) => ofKind(objects, 'Deployment').map((d) => d.spec.template.spec.containers[0].image).sort();
    expect(images(defaults.objects)).toEqual(['ghcr.io/switchyard/operator:0.1.0', 'ghcr.io/switchyard/runtime:0.1.0']);
    expect(images(full.objects)).toEqual([
      `registry.example.com/switchyard/operator@${fullValues.image.operator.digest}`,
      `registry.example.com/switchyard/runtime@${fullValues.image.runtime.digest}`,
    ]);
    for (const d of ofKind(full.objects, 'Deployment')) expect(d.spec.template.spec.imagePullSecrets).toEqual([{ name: 'registry-credentials' }]);
  });

  test('the pods roll when their settings change, and only then', async () => {
    const checksum = (objects: Obj[], component: string) =>
      ofKind(objects, 'Deployment').find((d) => d.metadata.labels['app.kubernetes.io/component'] === component)!.spec.template.metadata.annotations['checksum/config'];
    const workers = await renderChart({ values: [{ operator: { settings: { workers: 9 } } }] });
    expect(checksum(workers.objects, 'operator')).not.toBe(checksum(defaults.objects, 'operator'));
    expect(checksum(workers.objects, 'ingestion')).toBe(checksum(defaults.objects, 'ingestion'));
    const streams = await renderChart({ values: [{ streams: { events: { maxAge: '3d' } } }] });
    expect(checksum(streams.objects, 'ingestion')).not.toBe(checksum(defaults.objects, 'ingestion'));
    expect(checksum(streams.objects, 'operator')).not.toBe(checksum(defaults.objects, 'operator'));
  });

  test('with autoscaling the ingestion Deployment leaves replicas to the HPA; without, it sets them', () => {
    expect(one(defaults.objects, 'Deployment', 'sy-switchyard-ingestion').spec.replicas).toBe(2);
    expect('replicas' in one(full.objects, 'Deployment', 'sy-full-ingestion').spec).toBe(false);
    const hpa = one(full.objects, 'HorizontalPodAutoscaler');
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'sy-full-ingestion' }, minReplicas: 3, maxReplicas: 20 });
    expect(hpa.spec.metrics.map((m: Obj) => [m.resource.name, m.resource.target.averageUtilization])).toEqual([
      ['cpu', 60],
      ['memory', 80],
    ]);
  });

  test('a stopping ingestion pod keeps serving for preStopSleepSeconds (below its grace period) before SIGTERM', async () => {
    const ingestion = one(defaults.objects, 'Deployment', 'sy-switchyard-ingestion').spec.template.spec;
    expect(ingestion.containers[0].lifecycle).toEqual({ preStop: { exec: { command: ['sleep', '5'] } } });
    expect(ingestion.terminationGracePeriodSeconds).toBeGreaterThan(5);
    const none = await renderChart({ values: [{ ingestion: { preStopSleepSeconds: 0 } }] });
    expect(one(none.objects, 'Deployment', 'sy-switchyard-ingestion').spec.template.spec.containers[0].lifecycle).toBeUndefined();
    await expect(renderChart({ values: [{ ingestion: { preStopSleepSeconds: 30, terminationGracePeriodSeconds: 30 } }] })).rejects.toThrow('ingestion.preStopSleepSeconds must be below ingestion.terminationGracePeriodSeconds');
  });

  test('the operator\'s role is never bound to the namespace\'s default ServiceAccount', async () => {
    await expect(renderChart({ values: [{ operator: { serviceAccount: { create: false } } }] })).rejects.toThrow('operator.serviceAccount.name is required when operator.serviceAccount.create is false');
    const named = await renderChart({ values: [{ operator: { serviceAccount: { create: false, name: 'platform-operator' } } }] });
    expect(ofKind(named.objects, 'ServiceAccount').map((sa) => sa.metadata.name)).toEqual(['sy-switchyard-ingestion']);
    expect(one(named.objects, 'ClusterRoleBinding').subjects).toEqual([{ kind: 'ServiceAccount', name: 'platform-operator', namespace: expect.any(String) }]);
  });

  test('the ingestion spreads over zones and nodes, selecting its own pods, and has a PodDisruptionBudget', () => {
    const pod = one(defaults.objects, 'Deployment', 'sy-switchyard-ingestion').spec.template.spec;
    const selector = one(defaults.objects, 'Deployment', 'sy-switchyard-ingestion').spec.selector;
    expect(pod.topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: selector },
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: selector },
    ]);
    expect(one(defaults.objects, 'PodDisruptionBudget').spec).toEqual({ maxUnavailable: 1, selector });
    expect(one(full.objects, 'PodDisruptionBudget').spec.minAvailable).toBe('50%');
    expect(one(full.objects, 'PodDisruptionBudget').spec.maxUnavailable).toBeUndefined();
  });
});

describe('settings', () => {
  for (const [what, objects, release] of [
    ['default values', () => defaults.objects, 'sy-switchyard'],
    ['full values', () => full.objects, 'sy-full'],
  ] as const) {
    describe(what, () => {
      test("operator.yaml parses with the operator's own settings parser and says where the chart puts things", () => {
        const cm = one(objects(), 'ConfigMap', `${release}-settings`);
        const settings = parseOperatorSettings(configFile(cm, 'operator.yaml'), {});
        const runtime = one(objects(), 'Deployment', `${release}-ingestion`).spec.template.spec.containers[0].image;
        expect(settings.ingestion).toEqual({ namespace: RELEASE_NS, sourcesSecret: `${release}-sources` });
        expect(settings.leaderElection.namespace).toBe(RELEASE_NS);
        expect(settings.forwarder.image).toBe(runtime);
        expect(settings.forwarder.command).toEqual(['node', '/app/runtime/bin/switchyard.js']);
        expect(settings.forwarder.natsServers).toEqual(settings.nats.servers);
        const operator = one(objects(), 'Deployment', `${release}-operator`).spec.template.spec.containers[0];
        // The port is a flag in the pod spec, beside the probes and the Service that use it.
        expect(configFile(cm, 'operator.yaml')).not.toHaveProperty('metricsPort');
        expect(operator.args.slice(2)).toEqual(['--metrics-port', String(operator.ports[0].containerPort)]);
      });

      test('the operator reads operator.yaml from the mounted ConfigMap, and every NATS file it names is mounted from its Secret', () => {
        const cm = one(objects(), 'ConfigMap', `${release}-settings`);
        const deployment = one(objects(), 'Deployment', `${release}-operator`);
        const pod = deployment.spec.template.spec;
        const container = pod.containers[0];
        expect(container.command).toEqual(['node', '/app/operator/bin/switchyard-operator.js']);
        expect(container.args.slice(0, 2)).toEqual(['--settings', '/etc/switchyard/operator/operator.yaml']);
        const source = fileSource(pod, container, container.args[1]);
        expect(source).toEqual({ volume: expect.objectContaining({ configMap: expect.objectContaining({ name: cm.metadata.name }) }), key: 'operator.yaml' });
        expect(container.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
        const settings = parseOperatorSettings(configFile(cm, 'operator.yaml'), {});
        for (const file of Object.values(natsFilePaths(settings.nats))) expect([file, fileSource(pod, container, file!)?.volume.secret]).toEqual([file, expect.objectContaining({ secretName: expect.any(String) })]);
      });

      test("settings.yaml loads with the runtime's own loader; the ingestion mounts it, its NATS files and the sources Secret the operator writes", async () => {
        const cm = one(objects(), 'ConfigMap', `${release}-settings`);
        const operatorSettings = parseOperatorSettings(configFile(cm, 'operator.yaml'), {});
        const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-settings-'));
        try {
          await writeFile(path.join(dir, 'settings.yaml'), cm.data['settings.yaml']);
          const settings = await loadProcessSettings(path.join(dir, 'settings.yaml'));
          // The ingestion and the operator (hence the forwarders) agree on NATS and on the streams.
          expect(settings.streams).toEqual(operatorSettings.streams);
          expect(settings.nats).toEqual(operatorSettings.nats);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
        const pod = one(objects(), 'Deployment', `${release}-ingestion`).spec.template.spec;
        const container = pod.containers[0];
        expect(container.command).toEqual(['node', '/app/runtime/bin/switchyard.js']);
        const args: string[] = container.args;
        expect(args.slice(0, 7)).toEqual(['ingest', '--sources', '/etc/switchyard/sources/sources.yaml', '--settings', '/etc/switchyard/settings/settings.yaml', '--port', String(container.ports[0].containerPort)]);
        expect(fileSource(pod, container, args[2]!)).toEqual({ volume: expect.objectContaining({ secret: expect.objectContaining({ secretName: operatorSettings.ingestion.sourcesSecret }) }), key: 'sources.yaml' });
        expect(fileSource(pod, container, args[4]!)?.volume.configMap.name).toBe(cm.metadata.name);
        expect(fileSource(pod, container, args[4]!)?.key).toBe('settings.yaml');
        for (const file of Object.values(natsFilePaths(operatorSettings.nats))) expect(fileSource(pod, container, file!)?.volume.secret).toBeDefined();
      });
    });
  }

  test('full values: NATS credentials, TLS and auth come from their Secrets, by file and by environment', () => {
    const cm = one(full.objects, 'ConfigMap', 'sy-full-settings');
    const nats = configFile(cm, 'operator.yaml').nats;
    expect(nats).toEqual({
      servers: fullValues.natsConnection.servers,
      credsFile: '/etc/switchyard/nats/creds/switchyard.creds',
      tls: { caFile: '/etc/switchyard/nats/tls/ca.crt', certFile: '/etc/switchyard/nats/tls/tls.crt', keyFile: '/etc/switchyard/nats/tls/tls.key', handshakeFirst: true },
    });
    for (const name of ['sy-full-operator', 'sy-full-ingestion']) {
      const pod = one(full.objects, 'Deployment', name).spec.template.spec;
      const container = pod.containers[0];
      expect(fileSource(pod, container, nats.credsFile)).toEqual({ volume: expect.objectContaining({ secret: expect.objectContaining({ secretName: 'nats-user-creds' }) }), key: 'switchyard.creds' });
      for (const [file, key] of [
        [nats.tls.caFile, 'ca.crt'],
        [nats.tls.certFile, 'tls.crt'],
        [nats.tls.keyFile, 'tls.key'],
      ]) {
        expect(fileSource(pod, container, file)).toEqual({ volume: expect.objectContaining({ secret: expect.objectContaining({ secretName: 'nats-client-tls' }) }), key });
      }
      expect(container.volumeMounts.filter((m: Obj) => m.name.startsWith('nats-')).every((m: Obj) => m.readOnly === true)).toBe(true);
      expect(container.env.filter((e: Obj) => e.name.startsWith('NATS_'))).toEqual([
        { name: 'NATS_USER', valueFrom: { secretKeyRef: { name: 'nats-auth', key: 'username' } } },
        { name: 'NATS_PASSWORD', valueFrom: { secretKeyRef: { name: 'nats-auth', key: 'password' } } },
      ]);
    }
  });

  test('full values: forwarder pods run the runtime image with the pull Secrets, and their runtime Secret carries copies of the NATS files', () => {
    const settings = parseOperatorSettings(configFile(one(full.objects, 'ConfigMap', 'sy-full-settings'), 'operator.yaml'), {});
    const integration = forwarderIntegration();
    const pod = desiredDeployment(integration, settings, 'checksum').spec!.template;
    expect(pod.spec!.containers[0]!.image).toBe(`registry.example.com/switchyard/runtime@${fullValues.image.runtime.digest}`);
    expect(pod.spec!.imagePullSecrets).toEqual([{ name: 'registry-credentials' }]);
    expect(pod.spec!.serviceAccountName).toBe('switchyard-forwarder');
    expect(pod.metadata!.labels).toMatchObject({ 'network.example.com/egress': 'vendors' });
    const secret = desiredRuntimeSecret(integration, settings, { 'nats.creds': 'JWT', 'ca.crt': 'CA', 'tls.crt': 'CERT', 'tls.key': 'KEY' });
    expect(Object.keys(secret.data!).sort()).toEqual(['ca.crt', 'nats.creds', 'settings.yaml', 'tls.crt', 'tls.key']);
  });
});

/** An Integration as the operator sees it, for building its forwarder with the rendered settings. */
function forwarderIntegration(): Integration {
  return normalizeIntegration({
    apiVersion: 'switchyard.io/v1alpha1',
    kind: 'Integration',
    metadata: { name: 'shop-webhook', namespace: 'a', uid: 'uid-1', generation: 1 },
    spec: { sourceRefs: [{ name: 'web' }], mappingRef: { name: 'm' }, destination: { type: 'webhook', webhook: { url: 'https://example.com/hook' } } } as Integration['spec'],
  } as Integration);
}

describe('forwarder pods', () => {
  const forwarder = {
    env: [
      { name: 'HTTPS_PROXY', value: 'http://proxy.egress.svc:3128' },
      { name: 'NO_PROXY', value: '.svc,.cluster.local' },
      { name: 'PROXY_TOKEN', valueFrom: { secretKeyRef: { name: 'egress-proxy', key: 'token' } } },
    ],
    nodeSelector: { 'node.example.com/egress': 'true' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'egress', effect: 'NoSchedule' }],
    affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/component': 'forwarder' } } } }] } },
    priorityClassName: 'switchyard-forwarders',
    podAnnotations: { 'sidecar.istio.io/inject': 'false' },
  };

  test('env, scheduling and annotations reach operator.yaml, parse with the operator\'s settings parser and land on the forwarder pod', async () => {
    const { objects } = await renderChart({ values: [{ operator: { forwarder } }] });
    const operatorYaml = configFile(one(objects, 'ConfigMap', 'sy-switchyard-settings'), 'operator.yaml');
    expect(operatorYaml.forwarder).toMatchObject(forwarder);
    const settings = parseOperatorSettings(operatorYaml, {});
    expect(settings.forwarder).toMatchObject(forwarder);
    const pod = desiredDeployment(forwarderIntegration(), settings, 'checksum').spec!.template;
    expect(pod.spec!.containers[0]!.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, ...forwarder.env]);
    expect(pod.spec).toMatchObject({ nodeSelector: forwarder.nodeSelector, tolerations: forwarder.tolerations, affinity: forwarder.affinity, priorityClassName: forwarder.priorityClassName });
    expect(pod.metadata!.annotations).toEqual({ ...forwarder.podAnnotations, 'switchyard.io/config-checksum': 'checksum' });
  });

  test('by default operator.yaml names none of them, so forwarder pods are as without them', () => {
    const operatorYaml = configFile(one(defaults.objects, 'ConfigMap', 'sy-switchyard-settings'), 'operator.yaml');
    for (const key of Object.keys(forwarder)) expect(operatorYaml.forwarder).not.toHaveProperty(key);
    const pod = desiredDeployment(forwarderIntegration(), parseOperatorSettings(operatorYaml, {}), 'checksum').spec!.template.spec!;
    expect(pod.containers[0]!.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    for (const key of ['nodeSelector', 'tolerations', 'affinity', 'priorityClassName']) expect(pod).not.toHaveProperty(key);
  });

  test.each([
    ['an env var the operator sets', { env: [{ name: 'POD_NAME', value: 'x' }] }, 'operator.forwarder.env[0]: POD_NAME is set by the operator'],
    ['an env var named twice (the operator refuses it at start)', { env: [{ name: 'A', value: 'one' }, { name: 'A', value: 'two' }] }, 'operator.forwarder.env[1]: A is named twice'],
    ['an env var with neither value nor valueFrom', { env: [{ name: 'HTTPS_PROXY' }] }, /env\/0/],
    ['the config checksum annotation', { podAnnotations: { 'switchyard.io/config-checksum': 'x' } }, 'operator.forwarder.podAnnotations: switchyard.io/config-checksum is the operator\'s'],
    ['an unknown toleration effect', { tolerations: [{ key: 'k', effect: 'NoRun' }] }, /tolerations\/0\/effect/],
  ])('the chart refuses %s', async (_what, values, where) => {
    await expect(renderChart({ values: [{ operator: { forwarder: values } }] })).rejects.toThrow(where);
  });
});

describe('RBAC', () => {
  const namespacedRules = [
    { apiGroups: ['switchyard.io'], resources: ['sources', 'integrations', 'mappings'], verbs: ['get', 'list', 'watch', 'patch'] },
    { apiGroups: ['switchyard.io'], resources: ['sources/status', 'integrations/status', 'mappings/status'], verbs: ['patch'] },
    { apiGroups: ['switchyard.io'], resources: ['integrations/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['secrets', 'configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'watch', 'create', 'patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  ];
  const leaseRules = (name: string) => [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [name], verbs: ['get', 'update'] },
  ];

  test('no wildcard anywhere', () => {
    for (const o of [...defaults.objects, ...full.objects].filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
      for (const rule of o.rules) for (const v of [...rule.apiGroups, ...rule.resources, ...rule.verbs, ...(rule.resourceNames ?? [])]) expect(v).not.toContain('*');
    }
  });

  test('watching every namespace: one ClusterRole with exactly the rules, bound to the operator; the Lease in the release namespace', () => {
    expect(one(defaults.objects, 'ClusterRole').rules).toEqual(namespacedRules);
    const binding = one(defaults.objects, 'ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one(defaults.objects, 'ClusterRole').metadata.name });
    const sa = one(defaults.objects, 'Deployment', 'sy-switchyard-operator').spec.template.spec.serviceAccountName;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: RELEASE_NS }]);
    one(defaults.objects, 'ServiceAccount', sa);
    const role = one(defaults.objects, 'Role');
    expect(role.metadata.namespace).toBe(RELEASE_NS);
    expect(role.rules).toEqual(leaseRules('switchyard-operator'));
    expect(one(defaults.objects, 'RoleBinding').subjects).toEqual([{ kind: 'ServiceAccount', name: sa, namespace: RELEASE_NS }]);
  });

  test('watching namespaces a and b: a Role and RoleBinding in each, and in the release namespace the Lease and the sources Secret by name', () => {
    const roles = ofKind(full.objects, 'Role');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['a', 'b', RELEASE_NS]);
    for (const ns of ['a', 'b']) {
      const role = roles.find((r) => r.metadata.namespace === ns)!;
      expect(role.rules).toEqual(namespacedRules);
      const binding = ofKind(full.objects, 'RoleBinding').find((b) => b.metadata.namespace === ns)!;
      expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name });
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'sy-operator', namespace: RELEASE_NS }]);
    }
    expect(roles.find((r) => r.metadata.namespace === RELEASE_NS)!.rules).toEqual([
      ...leaseRules('sy-full-operator'),
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['sy-full-sources'], verbs: ['create', 'patch'] },
    ]);
  });

  test('a watched release namespace gets the namespaced rules once, and its Lease Role nothing more', async () => {
    const { objects } = await renderChart({ values: [{ operator: { watchNamespaces: [RELEASE_NS, 'shop'] } }] });
    const roles = ofKind(objects, 'Role');
    expect(roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort()).toEqual(['shop/sy-switchyard-operator', `${RELEASE_NS}/sy-switchyard-operator`, `${RELEASE_NS}/sy-switchyard-operator-leader`].sort());
    expect(roles.find((r) => r.metadata.name === 'sy-switchyard-operator-leader')!.rules).toEqual(leaseRules('switchyard-operator'));
  });
});

describe('network and monitoring', () => {
  test('NetworkPolicies: the ingestion port open to anyone (or the given peers), the operator only on its metrics port; egress only when enabled', () => {
    const ingestion = one(defaults.objects, 'NetworkPolicy', 'sy-switchyard-ingestion').spec;
    expect(ingestion.podSelector.matchLabels).toEqual(one(defaults.objects, 'Deployment', 'sy-switchyard-ingestion').spec.selector.matchLabels);
    expect(ingestion.policyTypes).toEqual(['Ingress']);
    expect(ingestion.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }, { ports: [{ protocol: 'TCP', port: 9090 }] }]);
    const operator = one(defaults.objects, 'NetworkPolicy', 'sy-switchyard-operator').spec;
    expect(operator.podSelector.matchLabels).toEqual(one(defaults.objects, 'Deployment', 'sy-switchyard-operator').spec.selector.matchLabels);
    expect(operator.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]);
    expect(operator.egress).toBeUndefined();

    const fullIngestion = one(full.objects, 'NetworkPolicy', 'sy-full-ingestion').spec;
    expect(fullIngestion.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(fullIngestion.ingress[0].from).toEqual(fullValues.networkPolicy.ingestion.from);
    expect(fullIngestion.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 8090 }]);
    // /metrics has a port of its own, open to the monitoring peers only.
    expect(fullIngestion.ingress[1]).toEqual({ ports: [{ protocol: 'TCP', port: 9095 }], from: fullValues.networkPolicy.ingestion.metricsFrom });
    const egressPorts = (spec: Obj) => spec.egress.flatMap((r: Obj) => r.ports.map((p: Obj) => `${p.protocol}/${p.port}`));
    expect(egressPorts(fullIngestion)).toEqual(['UDP/53', 'TCP/53', 'TCP/4222', 'TCP/4318']);
    const fullOperator = one(full.objects, 'NetworkPolicy', 'sy-full-operator').spec;
    expect(fullOperator.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8081 }], from: fullValues.networkPolicy.operator.from }]);
    expect(egressPorts(fullOperator)).toEqual(['UDP/53', 'TCP/53', 'TCP/4222', 'TCP/4318', 'TCP/443', 'TCP/6443']);
    expect(fullOperator.egress.at(-1).to).toEqual([{ ipBlock: { cidr: '10.0.0.0/16' } }]);

    const off = async () => ofKind((await renderChart({ values: [{ networkPolicy: { enabled: false } }] })).objects, 'NetworkPolicy');
    return expect(off()).resolves.toEqual([]);
  });

  test('Services select their pods and name the ports the ServiceMonitors scrape', () => {
    for (const component of ['ingestion', 'operator']) {
      const monitor = one(full.objects, 'ServiceMonitor', `sy-full-${component}`);
      expect(monitor.metadata.labels.release).toBe('kube-prometheus-stack');
      const service = ofKind(full.objects, 'Service').find((s) => s.metadata.labels['app.kubernetes.io/component'] === component)!;
      for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) expect(service.metadata.labels[k]).toBe(v);
      expect(service.spec.ports.map((p: Obj) => p.name)).toContain(monitor.spec.endpoints[0].port);
      expect(monitor.spec.endpoints[0]).toMatchObject({ path: '/metrics', interval: '15s', scrapeTimeout: '10s' });
      const deployment = ofKind(full.objects, 'Deployment').find((d) => d.metadata.labels['app.kubernetes.io/component'] === component)!;
      expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
      const target = service.spec.ports[0].targetPort;
      expect(deployment.spec.template.spec.containers[0].ports.map((p: Obj) => p.name)).toContain(target);
    }
  });

  test("the PodMonitor selects the forwarder pods the operator makes, on their metrics port, in the watched namespaces", () => {
    const settings = parseOperatorSettings(configFile(one(full.objects, 'ConfigMap', 'sy-full-settings'), 'operator.yaml'), {});
    const pod = desiredDeployment(forwarderIntegration(), settings, 'checksum').spec!.template;
    const monitor = one(full.objects, 'PodMonitor');
    expect(pod.metadata!.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.namespaceSelector).toEqual({ matchNames: ['a', 'b'] });
    const port = monitor.spec.podMetricsEndpoints[0].port;
    expect(pod.spec!.containers[0]!.ports).toContainEqual(expect.objectContaining({ name: port, containerPort: 9191 }));
    return expect(renderChart({ values: [{ metrics: { podMonitor: { enabled: true } } }] }).then((r) => one(r.objects, 'PodMonitor').spec.namespaceSelector)).resolves.toEqual({ any: true });
  });

  test('the Ingress routes the tracking API and the tag (not /metrics) to the ingestion Service, with TLS', () => {
    const ingress = one(full.objects, 'Ingress');
    const service = one(full.objects, 'Service', 'sy-full-ingestion');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.tls).toEqual([{ secretName: 'data-shop-example-tls', hosts: ['data.shop.example'] }]);
    const paths = ingress.spec.rules[0].http.paths;
    expect(paths.map((p: Obj) => p.path)).toEqual(['/v1', '/tag', '/analytics.js']);
    for (const p of paths) expect(p.backend).toEqual({ service: { name: service.metadata.name, port: { number: service.spec.ports[0].port } } });
  });

  test('the Grafana dashboard ConfigMap holds dashboards/switchyard.json; enabled without the file, rendering fails saying so', async () => {
    const dashboard = one(full.objects, 'ConfigMap', 'sy-full-dashboard');
    expect(dashboard.metadata.labels.grafana_dashboard).toBe('1');
    expect(dashboard.metadata.annotations.grafana_folder).toBe('Switchyard');
    expect(JSON.parse(dashboard.data['switchyard.json'])).toEqual(JSON.parse(await readFile(path.join(CHART_DIR, 'dashboards/switchyard.json'), 'utf8')));

    const bare = await mkdtemp(path.join(os.tmpdir(), 'switchyard-nodash-'));
    try {
      await cp(await chartCopy(), path.join(bare, 'switchyard'), { recursive: true, filter: (src) => !src.includes(`${path.sep}dashboards`) });
      const failed = await helm(['template', 'sy', path.join(bare, 'switchyard'), '--set', 'metrics.grafanaDashboard.enabled=true']);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toContain('metrics.grafanaDashboard.enabled needs dashboards/switchyard.json');
      const off = await helm(['template', 'sy', path.join(bare, 'switchyard')]);
      expect(off.code).toBe(0);
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  });
});

describe('values schema', () => {
  test('the chart refuses Kubernetes older than 1.29', async () => {
    await expect(renderChart({ kubeVersion: '1.28.9' })).rejects.toThrow('>=1.29.0-0');
    await expect(renderChart({ kubeVersion: '1.29.0' })).resolves.toBeDefined();
  });

  test.each([
    ['an unknown key', { operator: { watchNamespace: ['a'] } }, "at '/operator': additional properties 'watchNamespace' not allowed"],
    ['a wrong type', { ingestion: { replicas: 'two' } }, "at '/ingestion/replicas'"],
    ['a bad duration', { streams: { events: { maxAge: '7 days' } } }, "at '/streams/events/maxAge'"],
    ['a bad operator duration', { operator: { settings: { resyncPeriod: '0s' } } }, "at '/operator/settings/resyncPeriod'"],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, "at '/image/pullPolicy'"],
    ['an unknown top-level key', { natsConection: {} }, "additional properties 'natsConection' not allowed"],
  ])('refuses %s, naming the field', async (_what, values, message) => {
    await expect(renderChart({ values: [values] })).rejects.toThrow(message);
  });

  test('refuses inconsistent NATS settings with the value to fix', async () => {
    await expect(renderChart({ values: [{ natsConnection: { auth: { userKey: 'user' } } }] })).rejects.toThrow('natsConnection.auth.secretName is required');
    await expect(renderChart({ values: [{ natsConnection: { tls: { enabled: true, secretName: 's', certKey: 'tls.crt' } } }] })).rejects.toThrow('certKey and natsConnection.tls.keyKey go together');
  });

  test('the NATS dependency is pinned to one version, and its nats-box pod is off by default', async () => {
    const chart = parse(await readFile(path.join(CHART_DIR, 'Chart.yaml'), 'utf8'));
    expect(chart.dependencies).toEqual([expect.objectContaining({ name: 'nats', version: expect.stringMatching(/^\d+\.\d+\.\d+$/), condition: 'nats.enabled' })]);
    const values = parse(await readFile(path.join(CHART_DIR, 'values.yaml'), 'utf8'));
    expect(values.nats.natsBox).toEqual({ enabled: false });
  });

  test('refuses operator settings the operator would refuse at start (a crash-looping pod after an upgrade)', async () => {
    const le = (leaderElection: Record<string, unknown>) => renderChart({ values: [{ operator: { settings: { leaderElection } } }] });
    await expect(le({ leaseDuration: '5s', renewDeadline: '10s' })).rejects.toThrow('operator.settings.leaderElection: retryPeriod (2s) < renewDeadline (10s) < leaseDuration (5s) must hold');
    await expect(le({ retryPeriod: '1500ms', renewDeadline: '0.025m', leaseDuration: '1.5s' })).rejects.toThrow('must hold');
    await expect(le({ retryPeriod: '1500ms', renewDeadline: '0.05m', leaseDuration: '0.001h' })).resolves.toBeDefined();
    await expect(renderChart({ values: [{ operator: { settings: { retry: { baseDelay: '5m', maxDelay: '1m' } } } }] })).rejects.toThrow('operator.settings.retry: baseDelay (5m) must not exceed maxDelay (1m)');
    await expect(renderChart({ values: [{ operator: { replicas: 2, settings: { leaderElection: { enabled: false } } } }] })).rejects.toThrow('operator.replicas above 1 needs operator.settings.leaderElection.enabled');
    await expect(renderChart({ values: [{ operator: { replicas: 2 } }] })).resolves.toBeDefined();
  });

  test('the nats subchart keeps its own values', async () => {
    await expect(renderChart({ values: [{ nats: { config: { merge: { max_payload: 2097152 } } } }] })).resolves.toBeDefined();
  });
});

describe('bundled NATS (nats.enabled)', () => {
  test('only the URLs change, to the NATS chart Service of the release, and streams get 3 replicas', async () => {
    const bundled = await renderChart({ values: [{ nats: { enabled: true } }] });
    // The stand-in subchart renders nothing: the rest of the render is ours and unchanged in shape.
    expect(inventory(bundled.objects)).toEqual(inventory(defaults.objects));
    const operatorYaml = configFile(one(bundled.objects, 'ConfigMap', 'sy-switchyard-settings'), 'operator.yaml');
    const settings = parseOperatorSettings(operatorYaml, {});
    expect(settings.nats.servers).toEqual(['nats://sy-nats.switchyard-system.svc.cluster.local:4222']);
    expect(settings.forwarder.natsServers).toEqual(settings.nats.servers);
    expect([settings.streams.events.replicas, settings.streams.deadLetter.replicas]).toEqual([3, 3]);
    const runtimeYaml = configFile(one(bundled.objects, 'ConfigMap', 'sy-switchyard-settings'), 'settings.yaml');
    expect(runtimeYaml.nats.servers).toEqual(settings.nats.servers);
    expect(runtimeYaml.streams.events.replicas).toBe(3);
    // Without the bundled NATS, one replica: a single external server is the common case.
    expect(configFile(one(defaults.objects, 'ConfigMap', 'sy-switchyard-settings'), 'settings.yaml').streams.events.replicas).toBe(1);
  });

  test("follows the NATS chart's naming: a release name containing \"nats\" is its fullname", async () => {
    const bundled = await renderChart({ release: 'analytics-nats', namespace: 'data', values: [{ nats: { enabled: true } }] });
    const settings = configFile(one(bundled.objects, 'ConfigMap', 'analytics-nats-switchyard-settings'), 'operator.yaml');
    expect(settings.nats.servers).toEqual(['nats://analytics-nats.data.svc.cluster.local:4222']);
    const single = await renderChart({ values: [{ nats: { enabled: true, config: { cluster: { enabled: false } } }, streams: { deadLetter: { replicas: 2 } } }] });
    const streams = configFile(one(single.objects, 'ConfigMap', 'sy-switchyard-settings'), 'settings.yaml').streams;
    expect([streams.events.replicas, streams.deadLetter.replicas]).toEqual([1, 2]);
  });
});
