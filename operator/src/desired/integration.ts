import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1Deployment, V1EnvVar, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { parseDuration } from '@switchyard/runtime';
import { API_VERSION, type Integration, type Mapping } from '@switchyard/runtime/api';
import { Annotations, Labels, MANAGED_BY } from '../conditions.js';
import type { OperatorSettings } from '../settings.js';

/** Where the forwarder pod finds its files. */
export const FORWARDER_PATHS = {
  configDir: '/etc/switchyard/config',
  config: '/etc/switchyard/config/forwarder.yaml',
  settings: '/etc/switchyard/config/settings.yaml',
  credentialsDir: '/etc/switchyard/credentials',
} as const;

/** Name of an Integration's ConfigMap and Deployment: `<integration>-forwarder`. */
export function forwarderName(integration: Pick<Integration, 'metadata'>): string {
  return `${integration.metadata.name}-forwarder`;
}

/**
 * A label value for `name`: label values are at most 63 characters
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set),
 * object names up to 253, so long names are cut and end in a hash of the whole.
 */
export function labelValue(name: string): string {
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, 52).replace(/[-.]+$/, '')}-${hash}`;
}

/** Labels that select an Integration's forwarder pods. */
export function forwarderSelector(integration: Pick<Integration, 'metadata'>): Record<string, string> {
  return { [Labels.integration]: labelValue(integration.metadata.name), [Labels.component]: 'forwarder' };
}

function ownerReference(integration: Integration) {
  return { apiVersion: API_VERSION, kind: 'Integration', name: integration.metadata.name, uid: integration.metadata.uid!, controller: true, blockOwnerDeletion: true };
}

function commonLabels(integration: Integration): Record<string, string> {
  return {
    [Labels.name]: 'switchyard',
    [Labels.instance]: labelValue(integration.metadata.name),
    [Labels.managedBy]: MANAGED_BY,
    ...forwarderSelector(integration),
  };
}

/** The runtime settings file of a forwarder: NATS connection (no secrets) and stream names. */
export function forwarderSettings(settings: Pick<OperatorSettings, 'nats' | 'streams'>): Record<string, unknown> {
  const { servers, name, tls, minServerVersion } = settings.nats;
  const nats: Record<string, unknown> = { servers, name, minServerVersion };
  if (tls) nats.tls = tls;
  return { nats, streams: settings.streams };
}

/**
 * The forwarder config file `{integration, mapping}` the runtime's `forward --config` reads
 * (runtime readForwarderConfig): both resources reduced to identity and spec, so status writes
 * never change it (and never roll the pods); `paused` and `forwarder` (replicas, resources) are left
 * out too, since the Deployment itself carries them.
 */
export function forwarderConfig(integration: Integration, mapping: Mapping): { integration: unknown; mapping: unknown } {
  const meta = (m: Integration['metadata']) => ({ name: m.name, namespace: m.namespace, ...(m.uid ? { uid: m.uid } : {}) });
  // Pause and the Deployment's own shape (replicas, resources) do not reach the process: leaving
  // them out keeps the checksum, so pausing scales the same ReplicaSet instead of rolling a new one.
  const { paused: _paused, forwarder: _forwarder, ...spec } = integration.spec;
  return {
    integration: { apiVersion: API_VERSION, kind: 'Integration', metadata: meta(integration.metadata), spec },
    mapping: { apiVersion: API_VERSION, kind: 'Mapping', metadata: meta(mapping.metadata), spec: mapping.spec },
  };
}

/**
 * The ConfigMap `<integration>-forwarder` (pure): `forwarder.yaml` (see {@link forwarderConfig},
 * written as JSON, which is YAML) and `settings.yaml` ({@link forwarderSettings}), owned by the
 * Integration so garbage collection removes it with it.
 */
export function desiredConfigMap(integration: Integration, mapping: Mapping, settings: Pick<OperatorSettings, 'nats' | 'streams'>): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: forwarderName(integration), namespace: integration.metadata.namespace!, labels: commonLabels(integration), ownerReferences: [ownerReference(integration)] },
    data: {
      'forwarder.yaml': `${JSON.stringify(forwarderConfig(integration, mapping), null, 2)}\n`,
      'settings.yaml': `${JSON.stringify(forwarderSettings(settings), null, 2)}\n`,
    },
  };
}

/**
 * SHA-256 (hex) over the ConfigMap data and the credentials Secret data, keys sorted: the pod
 * template carries it, so any change to either rolls the pods (mounted files would change
 * eventually, but the forwarder reads them once at start).
 */
export function configChecksum(configData: Record<string, string>, secretData: Record<string, string> | undefined): string {
  const hash = createHash('sha256');
  for (const [part, data] of [['config', configData], ['secret', secretData ?? {}]] as const) {
    for (const key of Object.keys(data).sort()) hash.update(`${part}\0${key}\0${data[key]}\0`);
  }
  return hash.digest('hex');
}

/**
 * The forwarder Deployment `<integration>-forwarder` (pure). One container running the runtime
 * image's CLI with explicit command and args (`forward --config … --settings …
 * [--credentials-dir …] --metrics-port N`), the ConfigMap and the credentials Secret mounted
 * read-only, probes on /readyz and /healthz, non-root with a read-only root filesystem, no API
 * token. `paused` scales it to zero (the consumer is kept). A rolling update starts the new pod
 * before stopping the old one. The termination grace period outlasts a graceful stop, which
 * finishes deliveries in flight (about twice the delivery timeout).
 * @param checksum {@link configChecksum} of what the pods read.
 */
export function desiredDeployment(integration: Integration, settings: Pick<OperatorSettings, 'forwarder'>, checksum: string): V1Deployment {
  const { forwarder } = settings;
  const spec = integration.spec;
  const selector = forwarderSelector(integration);
  const volumes: V1Volume[] = [{ name: 'config', configMap: { name: forwarderName(integration) } }];
  const mounts: V1VolumeMount[] = [{ name: 'config', mountPath: FORWARDER_PATHS.configDir, readOnly: true }];
  const args = ['forward', '--config', FORWARDER_PATHS.config, '--settings', FORWARDER_PATHS.settings];
  if (spec.credentialsSecretRef) {
    volumes.push({ name: 'credentials', secret: { secretName: spec.credentialsSecretRef.name } });
    mounts.push({ name: 'credentials', mountPath: FORWARDER_PATHS.credentialsDir, readOnly: true });
    args.push('--credentials-dir', FORWARDER_PATHS.credentialsDir);
  }
  args.push('--metrics-port', String(forwarder.metricsPort));
  const env: V1EnvVar[] = [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }];
  const resources = spec.forwarder.resources?.requests || spec.forwarder.resources?.limits ? spec.forwarder.resources : forwarder.resources;
  const gracePeriod = Math.ceil((2 * parseDuration(spec.delivery.timeout)) / 1000) + 15;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: forwarderName(integration), namespace: integration.metadata.namespace!, labels: commonLabels(integration), ownerReferences: [ownerReference(integration)] },
    spec: {
      replicas: spec.paused ? 0 : spec.forwarder.replicas,
      selector: { matchLabels: selector },
      revisionHistoryLimit: 3,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: { ...forwarder.podLabels, ...commonLabels(integration) }, annotations: { [Annotations.configChecksum]: checksum } },
        spec: {
          automountServiceAccountToken: false,
          ...(forwarder.serviceAccountName ? { serviceAccountName: forwarder.serviceAccountName } : {}),
          ...(forwarder.imagePullSecrets.length ? { imagePullSecrets: forwarder.imagePullSecrets.map((name) => ({ name })) } : {}),
          terminationGracePeriodSeconds: gracePeriod,
          securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'forwarder',
              image: forwarder.image,
              imagePullPolicy: forwarder.imagePullPolicy,
              command: [...forwarder.command],
              args,
              env,
              ports: [{ name: 'metrics', containerPort: forwarder.metricsPort, protocol: 'TCP' }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, failureThreshold: 6, initialDelaySeconds: 10 },
              resources: structuredClone(resources) as never,
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}
