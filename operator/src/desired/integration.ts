import { createHash } from 'node:crypto';
import type { V1Affinity, V1ConfigMap, V1Deployment, V1EnvVar, V1Secret, V1Toleration, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { parseDuration } from '@switchyard/runtime';
import { API_VERSION, type Integration, type Mapping } from '@switchyard/runtime/api';
import { Annotations, Labels, MANAGED_BY } from '../conditions.js';
import type { OperatorSettings } from '../settings.js';

/** Where the forwarder pod finds its files. */
export const FORWARDER_PATHS = {
  configDir: '/etc/switchyard/config',
  config: '/etc/switchyard/config/forwarder.yaml',
  runtimeDir: '/etc/switchyard/runtime',
  settings: '/etc/switchyard/runtime/settings.yaml',
  credentialsDir: '/etc/switchyard/credentials',
} as const;

/** Files of the operator's NATS connection copied to the forwarder pods: Secret key → settings field. */
const NATS_FILES = [
  ['nats.creds', 'credsFile'],
  ['ca.crt', 'caFile'],
  ['tls.crt', 'certFile'],
  ['tls.key', 'keyFile'],
] as const;

/** Contents of the operator's NATS credential and TLS files, by Secret key (see {@link NATS_FILES}). */
export type NatsFiles = Partial<Record<(typeof NATS_FILES)[number][0], string>>;

/** The paths of the NATS credential and TLS files in the operator's settings. */
export function natsFilePaths(nats: OperatorSettings['nats']): Partial<Record<keyof NatsFiles, string>> {
  const paths: Partial<Record<keyof NatsFiles, string>> = {};
  if (nats.credsFile) paths['nats.creds'] = nats.credsFile;
  if (nats.tls?.caFile) paths['ca.crt'] = nats.tls.caFile;
  if (nats.tls?.certFile) paths['tls.crt'] = nats.tls.certFile;
  if (nats.tls?.keyFile) paths['tls.key'] = nats.tls.keyFile;
  return paths;
}

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

/**
 * The runtime settings file of a forwarder (pure): the operator's NATS connection (servers from
 * `forwarder.natsServers` when set), credentials included, with credential and TLS files pointing
 * at their copies in the runtime Secret, and the stream names. It goes in a Secret, never a ConfigMap.
 */
export function forwarderSettings(settings: Pick<OperatorSettings, 'nats' | 'streams'> & { forwarder?: Pick<OperatorSettings['forwarder'], 'natsServers'> }): Record<string, unknown> {
  const { servers, name, minServerVersion, user, pass, token, credsFile, tls } = settings.nats;
  const nats: Record<string, unknown> = { servers: settings.forwarder?.natsServers ?? servers, name, minServerVersion };
  if (user !== undefined) nats.user = user;
  if (pass !== undefined) nats.pass = pass;
  if (token !== undefined) nats.token = token;
  if (credsFile) nats.credsFile = `${FORWARDER_PATHS.runtimeDir}/nats.creds`;
  if (tls) {
    nats.tls = {
      handshakeFirst: tls.handshakeFirst,
      ...(tls.caFile ? { caFile: `${FORWARDER_PATHS.runtimeDir}/ca.crt` } : {}),
      ...(tls.certFile ? { certFile: `${FORWARDER_PATHS.runtimeDir}/tls.crt` } : {}),
      ...(tls.keyFile ? { keyFile: `${FORWARDER_PATHS.runtimeDir}/tls.key` } : {}),
    };
  }
  return { nats, streams: settings.streams };
}

/**
 * The runtime Secret `<integration>-forwarder` (pure): `settings.yaml` ({@link forwarderSettings})
 * and the copies of the operator's NATS credential and TLS files, owned by the Integration.
 * Forwarder pods run in the Integration's namespace, where the operator's own Secrets cannot be
 * mounted, hence the copy.
 */
export function desiredRuntimeSecret(integration: Integration, settings: Pick<OperatorSettings, 'nats' | 'streams'> & { forwarder?: Pick<OperatorSettings['forwarder'], 'natsServers'> }, files: NatsFiles): V1Secret {
  const data: Record<string, string> = { 'settings.yaml': Buffer.from(`${JSON.stringify(forwarderSettings(settings), null, 2)}\n`).toString('base64') };
  for (const [key] of NATS_FILES) if (files[key] !== undefined) data[key] = Buffer.from(files[key]!).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: forwarderName(integration), namespace: integration.metadata.namespace!, labels: commonLabels(integration), ownerReferences: [ownerReference(integration)] },
    type: 'Opaque',
    data,
  };
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
 * written as JSON, which is YAML), owned by the Integration so garbage collection removes it with it.
 */
export function desiredConfigMap(integration: Integration, mapping: Mapping): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: forwarderName(integration), namespace: integration.metadata.namespace!, labels: commonLabels(integration), ownerReferences: [ownerReference(integration)] },
    data: { 'forwarder.yaml': `${JSON.stringify(forwarderConfig(integration, mapping), null, 2)}\n` },
  };
}

/**
 * SHA-256 (hex) over the ConfigMap data and the versions (`uid/resourceVersion`) of the Secrets
 * the pods mount: the pod template carries it, so any change to them rolls the pods (mounted files
 * would change eventually, but the forwarder reads them once at start). Secret values never enter
 * it: an annotation anyone may read must not allow guessing them.
 */
export function configChecksum(configData: Record<string, string>, secretVersions: readonly string[]): string {
  const hash = createHash('sha256');
  for (const key of Object.keys(configData).sort()) hash.update(`config\0${key}\0${configData[key]}\0`);
  for (const version of secretVersions) hash.update(`secret\0${version}\0`);
  return hash.digest('hex');
}

/**
 * The forwarder Deployment `<integration>-forwarder` (pure). One container running the runtime
 * image's CLI with explicit command and args (`forward --config … --settings …
 * [--credentials-dir …] --metrics-port N`), the ConfigMap, the runtime Secret and the credentials
 * Secret mounted read-only, probes on /readyz and /healthz, non-root with a read-only root filesystem, no API
 * token; `forwarder.env` after POD_NAME, and `forwarder.nodeSelector`, `tolerations`, `affinity`,
 * `priorityClassName` and `podAnnotations` (beside the checksum) on the pod, each left out when
 * unset. `paused` scales it to zero (the consumer is kept). A rolling update starts the new pod
 * before stopping the old one. The termination grace period outlasts a graceful stop, which
 * finishes deliveries in flight (about twice the delivery timeout).
 * @param checksum {@link configChecksum} of what the pods read.
 */
export function desiredDeployment(integration: Integration, settings: Pick<OperatorSettings, 'forwarder'>, checksum: string): V1Deployment {
  const { forwarder } = settings;
  const spec = integration.spec;
  const selector = forwarderSelector(integration);
  const volumes: V1Volume[] = [
    { name: 'config', configMap: { name: forwarderName(integration) } },
    { name: 'runtime', secret: { secretName: forwarderName(integration) } },
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'config', mountPath: FORWARDER_PATHS.configDir, readOnly: true },
    { name: 'runtime', mountPath: FORWARDER_PATHS.runtimeDir, readOnly: true },
  ];
  const args = ['forward', '--config', FORWARDER_PATHS.config, '--settings', FORWARDER_PATHS.settings];
  if (spec.credentialsSecretRef) {
    volumes.push({ name: 'credentials', secret: { secretName: spec.credentialsSecretRef.name } });
    mounts.push({ name: 'credentials', mountPath: FORWARDER_PATHS.credentialsDir, readOnly: true });
    args.push('--credentials-dir', FORWARDER_PATHS.credentialsDir);
  }
  args.push('--metrics-port', String(forwarder.metricsPort));
  // The operator's own variables come first; settings cannot name them (OPERATOR_FORWARDER_ENV).
  const env: V1EnvVar[] = [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, ...(structuredClone(forwarder.env) as V1EnvVar[])];
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
        metadata: { labels: { ...forwarder.podLabels, ...commonLabels(integration) }, annotations: { ...forwarder.podAnnotations, [Annotations.configChecksum]: checksum } },
        spec: {
          automountServiceAccountToken: false,
          ...(forwarder.serviceAccountName ? { serviceAccountName: forwarder.serviceAccountName } : {}),
          ...(forwarder.imagePullSecrets.length ? { imagePullSecrets: forwarder.imagePullSecrets.map((name) => ({ name })) } : {}),
          // Scheduling fields appear only when set, so Deployments rendered without them stay as they were.
          ...(Object.keys(forwarder.nodeSelector).length ? { nodeSelector: { ...forwarder.nodeSelector } } : {}),
          ...(forwarder.tolerations.length ? { tolerations: structuredClone(forwarder.tolerations) as V1Toleration[] } : {}),
          ...(Object.keys(forwarder.affinity).length ? { affinity: structuredClone(forwarder.affinity) as V1Affinity } : {}),
          ...(forwarder.priorityClassName ? { priorityClassName: forwarder.priorityClassName } : {}),
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
