import { Type, type Static } from '@sinclair/typebox';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { RUNTIME_VERSION, natsSettings, streamSettings, parseSettings, parseDuration, ErrorCodes, SwitchyardError, type NatsSettings, type NatsSettingsInput, type StreamSettings } from '@switchyard/runtime';
import { NAME_PATTERN, PositiveDuration, Quantity } from '@switchyard/runtime/api';
import { Annotations } from './conditions.js';

const ResourceList = Type.Record(Type.String({ pattern: '^(cpu|memory|ephemeral-storage)$' }), Quantity());

/**
 * Environment variables the operator sets on forwarder pods itself: `forwarder.env` may not name
 * them (a settings error), so the runtime's own view of its pod cannot be replaced by mistake.
 */
export const OPERATOR_FORWARDER_ENV: readonly string[] = ['POD_NAME'];

/** One entry of `forwarder.env`: a plain value, or a key of a Secret in the Integration's namespace. */
const ForwarderEnvVar = Type.Object(
  {
    // Kubernetes' classic environment variable name rule (a C identifier, plus '-' and '.').
    name: Type.String({ pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$', maxLength: 256 }),
    value: Type.Optional(Type.String()),
    valueFrom: Type.Optional(
      Type.Object(
        {
          secretKeyRef: Type.Object(
            { name: Type.String({ pattern: NAME_PATTERN, maxLength: 253 }), key: Type.String({ pattern: '^[-._a-zA-Z0-9]+$', maxLength: 253 }), optional: Type.Optional(Type.Boolean()) },
            { additionalProperties: false },
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A pod toleration (core/v1 Toleration). */
const Toleration = Type.Object(
  {
    key: Type.Optional(Type.String()),
    operator: Type.Optional(Type.Unsafe<'Exists' | 'Equal'>({ type: 'string', enum: ['Exists', 'Equal'] })),
    value: Type.Optional(Type.String()),
    effect: Type.Optional(Type.Unsafe<'NoSchedule' | 'PreferNoSchedule' | 'NoExecute'>({ type: 'string', enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] })),
    tolerationSeconds: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

/** The terms of one kind of pod affinity (core/v1 Affinity); the API server validates them. */
const AffinityTerms = Type.Record(Type.String(), Type.Unknown());

/** Operator settings: defaults → JSON Schema → ajv → frozen object (see {@link parseOperatorSettings}). */
export const OperatorSettings = Type.Object(
  {
    namespaces: Type.Array(Type.String({ pattern: NAME_PATTERN }), {
      description: 'Namespaces whose Sources, Integrations and Mappings are reconciled. Default: [] (every namespace).',
      default: [],
    }),
    workers: Type.Integer({ description: 'Reconciles running at once (never two for one resource). Default: 4.', default: 4, minimum: 1, maximum: 64 }),
    resyncPeriod: PositiveDuration({ description: 'Every resource is reconciled again this often, repairing drift no watch reports (e.g. a JetStream consumer deleted by hand). Default: 5m.', default: '5m' }),
    backlogInterval: PositiveDuration({ description: "How often each Integration's status.backlog is refreshed from its consumer. Default: 30s.", default: '30s' }),
    retry: Type.Object(
      {
        baseDelay: PositiveDuration({ description: 'Delay before the first retry of a failed reconcile; doubles per failure. Default: 500ms.', default: '500ms' }),
        maxDelay: PositiveDuration({ description: 'Longest delay between retries of a failed reconcile. Default: 2m.', default: '2m' }),
      },
      { default: {}, additionalProperties: false },
    ),
    leaderElection: Type.Object(
      {
        enabled: Type.Boolean({ description: 'Act only while holding the Lease, so two replicas never both act. Default: true.', default: true }),
        namespace: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'Namespace of the Lease. Default: POD_NAMESPACE, else the ingestion namespace.' })),
        leaseName: Type.String({ pattern: NAME_PATTERN, description: 'Name of the coordination.k8s.io Lease. Default: switchyard-operator.', default: 'switchyard-operator' }),
        leaseDuration: PositiveDuration({ description: 'How long a Lease stays valid without renewal; a standby takes over after it. Default: 15s.', default: '15s' }),
        renewDeadline: PositiveDuration({ description: 'The leader gives up (and stops acting) when it cannot renew within this. Default: 10s.', default: '10s' }),
        retryPeriod: PositiveDuration({ description: 'How often the Lease is renewed or its acquisition tried. Default: 2s.', default: '2s' }),
      },
      { default: {}, additionalProperties: false },
    ),
    forwarder: Type.Object(
      {
        image: Type.String({ description: `Runtime image of forwarder pods. Default: ghcr.io/switchyard/runtime:${RUNTIME_VERSION}.`, default: `ghcr.io/switchyard/runtime:${RUNTIME_VERSION}`, minLength: 1 }),
        imagePullPolicy: Type.Unsafe<'Always' | 'IfNotPresent' | 'Never'>({ type: 'string', enum: ['Always', 'IfNotPresent', 'Never'], default: 'IfNotPresent', description: 'Default: IfNotPresent.' }),
        imagePullSecrets: Type.Array(Type.String({ pattern: NAME_PATTERN }), { description: 'Pull Secrets (in each Integration namespace). Default: [].', default: [] }),
        command: Type.Array(Type.String({ minLength: 1 }), {
          description: "The runtime CLI inside the image; the operator appends `forward …` arguments, so what runs never depends on the image's entrypoint. Default: [node, /app/runtime/bin/switchyard.js].",
          default: ['node', '/app/runtime/bin/switchyard.js'],
          minItems: 1,
        }),
        natsServers: Type.Optional(
          Type.Array(Type.String({ minLength: 1 }), {
            description: 'NATS URLs as the forwarder pods reach them, when they differ from the operator\'s (e.g. the operator runs outside the cluster). Default: nats.servers.',
            minItems: 1,
          }),
        ),
        metricsPort: Type.Integer({ description: 'Container port of /healthz, /readyz and /metrics. Default: 9090.', default: 9090, minimum: 1, maximum: 65535 }),
        serviceAccountName: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'ServiceAccount of forwarder pods (no API token is mounted). Default: the namespace default.' })),
        resources: Type.Object(
          { requests: Type.Optional(ResourceList), limits: Type.Optional(ResourceList) },
          {
            description: 'Resources of a forwarder pod unless the Integration sets spec.forwarder.resources. Default: requests {cpu: 50m, memory: 96Mi}, limits {memory: 512Mi}.',
            default: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '512Mi' } },
            additionalProperties: false,
          },
        ),
        podLabels: Type.Record(Type.String(), Type.String(), { description: 'Extra labels on forwarder pods (e.g. for NetworkPolicies). Default: {}.', default: {} }),
        env: Type.Array(ForwarderEnvVar, {
          description:
            'Extra environment variables of forwarder pods, after the ones the operator sets (POD_NAME, which may not be named here), e.g. HTTPS_PROXY, HTTP_PROXY and NO_PROXY for an egress proxy. Each has `value`, or `valueFrom.secretKeyRef` naming a Secret that must exist in every Integration namespace. Names are unique. Default: [].',
          default: [],
        }),
        nodeSelector: Type.Record(Type.String(), Type.String(), { description: 'Node selector of forwarder pods. Default: {}.', default: {} }),
        tolerations: Type.Array(Toleration, { description: 'Tolerations of forwarder pods. Default: [].', default: [] }),
        affinity: Type.Object(
          { nodeAffinity: Type.Optional(AffinityTerms), podAffinity: Type.Optional(AffinityTerms), podAntiAffinity: Type.Optional(AffinityTerms) },
          { description: 'Affinity of forwarder pods (core/v1 Affinity). Default: {}.', default: {}, additionalProperties: false },
        ),
        priorityClassName: Type.Optional(Type.String({ pattern: NAME_PATTERN, maxLength: 253, description: 'PriorityClass of forwarder pods. Default: none (the cluster default).' })),
        podAnnotations: Type.Record(Type.String(), Type.String(), {
          description: 'Extra annotations on forwarder pods; switchyard.io/config-checksum, which the operator sets, may not be named here. Default: {}.',
          default: {},
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    ingestion: Type.Object(
      {
        namespace: Type.String({ pattern: NAME_PATTERN, description: 'Namespace of the ingestion Deployment. Default: switchyard-system.', default: 'switchyard-system' }),
        sourcesSecret: Type.String({
          pattern: NAME_PATTERN,
          description: 'Secret the operator writes with every Source\'s resolved write key (key `sources.yaml`); the ingestion mounts it and reloads it without a restart. Default: switchyard-sources.',
          default: 'switchyard-sources',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    nats: Type.Optional(Type.Unknown({ description: 'NATS connection of the operator and of the forwarders it runs (see the runtime settings). `NATS_URL` fills `servers`.' })),
    streams: Type.Optional(Type.Unknown({ description: 'Stream names and limits (see the runtime settings).' })),
    metricsPort: Type.Integer({ description: 'Port of the operator\'s /metrics, /healthz and /readyz (0: none). Default: 8080.', default: 8080, minimum: 0, maximum: 65535 }),
  },
  { additionalProperties: false },
);

/** Parsed operator settings; `nats` and `streams` are the runtime's own. */
export type OperatorSettings = Omit<Static<typeof OperatorSettings>, 'nats' | 'streams'> & {
  nats: Readonly<NatsSettings>;
  streams: Readonly<StreamSettings>;
};

/**
 * Applies defaults and validates operator settings; `nats`/`streams` go through the runtime's
 * own settings schema (`NATS_URL` from `env` fills `nats.servers`).
 * @throws SwitchyardError INVALID_SETTINGS naming the failing field, when the leader-election
 * durations are out of order (retryPeriod < renewDeadline < leaseDuration) or retry.baseDelay
 * exceeds retry.maxDelay, or when
 * `forwarder.env` / `forwarder.podAnnotations` name what the operator sets itself (see {@link checkForwarderPod}).
 */
export function parseOperatorSettings(input: unknown = {}, env: NodeJS.ProcessEnv = process.env): Readonly<OperatorSettings> {
  const raw = (input ?? {}) as { nats?: unknown; streams?: unknown };
  const { nats: _nats, streams: _streams, ...rest } = raw;
  const base = parseSettings<Static<typeof OperatorSettings>>(OperatorSettings, rest, 'operator settings');
  const streams = streamSettings(raw.streams ?? {});
  const nats = natsSettings((raw.nats ?? {}) as NatsSettingsInput, env);
  checkForwarderPod(base.forwarder);
  const { leaseDuration, renewDeadline, retryPeriod } = base.leaderElection;
  // client-go's rule: a leader must give up (renewDeadline) before others may take over (leaseDuration).
  if (!(parseDuration(retryPeriod) < parseDuration(renewDeadline) && parseDuration(renewDeadline) < parseDuration(leaseDuration))) {
    throw new SwitchyardError(ErrorCodes.INVALID_SETTINGS, `invalid operator settings:\n  /leaderElection: retryPeriod (${retryPeriod}) < renewDeadline (${renewDeadline}) < leaseDuration (${leaseDuration}) must hold (order)`);
  }
  if (parseDuration(base.retry.baseDelay) > parseDuration(base.retry.maxDelay)) {
    throw new SwitchyardError(ErrorCodes.INVALID_SETTINGS, `invalid operator settings:\n  /retry: baseDelay (${base.retry.baseDelay}) <= maxDelay (${base.retry.maxDelay}) must hold (order)`);
  }
  return Object.freeze({ ...base, nats, streams }) as Readonly<OperatorSettings>;
}

/**
 * What JSON Schema does not say about the forwarder pod settings: each `env` entry has exactly one
 * of `value` and `valueFrom`, names are unique (server-side apply refuses a list with a key twice)
 * and none is one the operator sets ({@link OPERATOR_FORWARDER_ENV}); `podAnnotations` leaves the
 * config checksum, which rolls the pods, to the operator.
 * @throws SwitchyardError INVALID_SETTINGS naming each offending field.
 */
function checkForwarderPod(forwarder: Static<typeof OperatorSettings>['forwarder']): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  forwarder.env.forEach((v, i) => {
    const at = `/forwarder/env/${i}`;
    if ((v.value === undefined) === (v.valueFrom === undefined)) problems.push(`${at}: set either value or valueFrom`);
    if (OPERATOR_FORWARDER_ENV.includes(v.name)) problems.push(`${at}/name: ${v.name} is set by the operator`);
    if (seen.has(v.name)) problems.push(`${at}/name: ${v.name} is named twice`);
    seen.add(v.name);
  });
  if (Annotations.configChecksum in forwarder.podAnnotations) problems.push(`/forwarder/podAnnotations: ${Annotations.configChecksum} is set by the operator`);
  if (problems.length) throw new SwitchyardError(ErrorCodes.INVALID_SETTINGS, `invalid operator settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
}

/**
 * Reads operator settings from a YAML or JSON file (none: every default).
 * @throws SwitchyardError BAD_FILE or INVALID_SETTINGS.
 */
export async function loadOperatorSettings(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Readonly<OperatorSettings>> {
  if (!file) return parseOperatorSettings({}, env);
  let raw: unknown;
  try {
    raw = parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot read operator settings ${file}: ${(cause as Error).message}`, { cause });
  }
  return parseOperatorSettings(raw, env);
}
