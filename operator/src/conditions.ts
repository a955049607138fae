/**
 * Finalizer, condition types, reasons, labels and annotations: every name the operator writes on
 * resources, in one place. Conditions follow metav1.Condition
 * (https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#typical-status-properties).
 */

/** Finalizer on Integrations: its JetStream consumer is deleted before the Integration goes. */
export const FINALIZER = 'switchyard.io/consumer';
/** Field manager of every server-side apply and status write. */
export const FIELD_MANAGER = 'switchyard-operator';

/** Labels on the objects the operator owns (Kubernetes recommended labels plus ours). */
export const Labels = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  integration: 'switchyard.io/integration',
} as const;
/** Value of `app.kubernetes.io/managed-by` on objects the operator owns. */
export const MANAGED_BY = 'switchyard-operator';

/** Annotations the operator writes. */
export const Annotations = {
  /** SHA-256 of the forwarder's rendered config and credentials; a change rolls the pods. */
  configChecksum: 'switchyard.io/config-checksum',
} as const;

/** Condition types in `status.conditions` of the Switchyard kinds. */
export const ConditionTypes = {
  /** Rolls up the others: True when every one is True. */
  Ready: 'Ready',
  /** Integration: its Mapping exists and compiles. */
  MappingResolved: 'MappingResolved',
  /** Integration: its credentials Secret exists (or none is referenced). */
  CredentialsResolved: 'CredentialsResolved',
  /** Integration: its JetStream consumer exists with the desired configuration. */
  ConsumerReady: 'ConsumerReady',
  /** Integration: its forwarder Deployment has rolled out and its pods are available. */
  DeploymentAvailable: 'DeploymentAvailable',
  /** Source: its write key resolved from its Secret and is unique. */
  WriteKeyResolved: 'WriteKeyResolved',
} as const;
/** One of {@link ConditionTypes}. */
export type ConditionType = (typeof ConditionTypes)[keyof typeof ConditionTypes];

/** CamelCase reasons of conditions and Events (README: Status). */
export const Reasons = {
  Ready: 'Ready',
  Resolved: 'Resolved',
  Compiled: 'Compiled',
  MappingNotFound: 'MappingNotFound',
  MappingInvalid: 'MappingInvalid',
  /** The Mapping compiles, but not for this Integration: another destination type, an invalid events.where, or output its destination's schema refuses. */
  MappingIncompatible: 'MappingIncompatible',
  SpecInvalid: 'SpecInvalid',
  NoCredentials: 'NoCredentials',
  SecretNotFound: 'SecretNotFound',
  SecretKeyNotFound: 'SecretKeyNotFound',
  /** The destination type refuses the settings or the credentials Secret (a required key missing…). */
  DestinationInvalid: 'DestinationInvalid',
  WriteKeyConflict: 'WriteKeyConflict',
  InlineWriteKey: 'InlineWriteKey',
  ConsumerCreated: 'ConsumerCreated',
  ConsumerUpdated: 'ConsumerUpdated',
  ConsumerRecreated: 'ConsumerRecreated',
  ConsumerInSync: 'ConsumerInSync',
  ConsumerDeleted: 'ConsumerDeleted',
  ConsumerRestored: 'ConsumerRestored',
  ConsumerError: 'ConsumerError',
  NatsUnavailable: 'NatsUnavailable',
  Available: 'Available',
  RolloutInProgress: 'RolloutInProgress',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  WaitingForDependencies: 'WaitingForDependencies',
  Paused: 'Paused',
  ApplyFailed: 'ApplyFailed',
} as const;
/** One of {@link Reasons}. */
export type Reason = (typeof Reasons)[keyof typeof Reasons];

/** A metav1.Condition. `lastTransitionTime` is RFC 3339 with second precision. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** A condition as a reconciler computes it, before times are filled in. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/**
 * Merges freshly computed conditions into the previous ones (pure): `lastTransitionTime` stays
 * when the status did not change, so an unchanged condition is byte-identical and no status write
 * follows. Conditions not in `next` are dropped. Order follows `next`.
 * @param now milliseconds since the epoch (injected clock).
 */
export function mergeConditions(previous: readonly Condition[] | undefined, next: readonly ConditionInput[], generation: number | undefined, now: number): Condition[] {
  const stamp = new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return next.map((c) => {
    const old = previous?.find((p) => p.type === c.type);
    const condition: Condition = {
      type: c.type,
      status: c.status,
      lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : stamp,
      reason: c.reason,
      message: c.message,
    };
    if (generation !== undefined) condition.observedGeneration = generation;
    return condition;
  });
}

/**
 * The `Ready` condition rolled up from the others (pure): True when all are True, else False
 * (Unknown when the first not-True one is Unknown) with that one's reason and message.
 */
export function readyCondition(parts: readonly ConditionInput[], whenReady: { reason: string; message: string } = { reason: Reasons.Ready, message: 'all conditions are met' }): ConditionInput {
  const failing = parts.find((c) => c.status !== 'True');
  if (!failing) return { type: ConditionTypes.Ready, status: 'True', ...whenReady };
  return { type: ConditionTypes.Ready, status: failing.status, reason: failing.reason, message: `${failing.type}: ${failing.message}` };
}

/** Finds a condition by type. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
