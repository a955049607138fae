import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '@switchyard/runtime/api';
import { FIELD_MANAGER } from '../conditions.js';

/** The API clients the operator uses, made once from one KubeConfig. */
export interface KubeClients {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  custom: CustomObjectsApi;
  objects: KubernetesObjectApi;
}

/** Makes the API clients for `kubeConfig`. */
export function kubeClients(kubeConfig: KubeConfig): KubeClients {
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    apps: kubeConfig.makeApiClient(AppsV1Api),
    custom: kubeConfig.makeApiClient(CustomObjectsApi),
    objects: KubernetesObjectApi.makeApiClient(kubeConfig),
  };
}

/**
 * Server-side apply of a full desired object as the operator's field manager, forcing ownership of
 * its fields (https://kubernetes.io/docs/reference/using-api/server-side-apply/): a field someone
 * edited by hand is set back, fields others own alone are left as they are, and an apply that
 * changes nothing writes nothing.
 * @returns the live object after the apply.
 * @throws ApiException from the API server (e.g. 422 for an invalid object).
 */
export async function applyObject<T extends KubernetesObject>(clients: KubeClients, desired: T): Promise<T> {
  return clients.objects.patch(desired, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
}

/** Plural resource names of the Switchyard kinds. */
export const PLURALS = { Integration: 'integrations', Mapping: 'mappings', Source: 'sources' } as const;
/** A Switchyard kind: Integration, Mapping or Source. */
export type SwitchyardKind = keyof typeof PLURALS;

/**
 * Writes `status` of a Switchyard resource with a JSON merge patch on the status subresource
 * (RFC 7386); keys of `previous` missing from `status` are sent as null so they are removed.
 * @returns the resourceVersion of the object after the write.
 * @throws ApiException (404 when the resource is gone).
 */
export async function patchStatus(clients: KubeClients, kind: SwitchyardKind, namespace: string, name: string, status: Record<string, unknown>, previous: Record<string, unknown> = {}): Promise<string | undefined> {
  const body: Record<string, unknown> = { ...status };
  for (const key of Object.keys(previous)) if (!(key in status)) body[key] = null;
  const written = (await clients.custom.patchNamespacedCustomObjectStatus(
    { group: GROUP, version: VERSION, namespace, plural: PLURALS[kind], name, body: { status: body }, fieldManager: FIELD_MANAGER },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  )) as { metadata?: { resourceVersion?: string } };
  return written.metadata?.resourceVersion;
}

/**
 * Replaces `metadata.finalizers` of a Switchyard resource with a JSON merge patch carrying the
 * resourceVersion it was computed from, so a concurrent change makes it fail with 409 instead of
 * dropping someone else's finalizer.
 * @throws ApiException (409 on a stale resourceVersion, 404 when gone).
 */
export async function patchFinalizers(clients: KubeClients, kind: SwitchyardKind, namespace: string, name: string, resourceVersion: string | undefined, finalizers: string[]): Promise<void> {
  await clients.custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace, plural: PLURALS[kind], name, body: { metadata: { resourceVersion, finalizers } }, fieldManager: FIELD_MANAGER },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}
