import type { KubeConfig } from '@kubernetes/client-node';
import { silentLogger } from '../../../runtime/src/logger.js';
import { createRegistry } from '../../../runtime/src/metrics.js';
import type { NatsSettings, StreamSettings } from '../../../runtime/src/settings.js';
import { startOperator, type Operator } from '../controller.js';
import { parseOperatorSettings, type OperatorSettings } from '../settings.js';
import { kubeRequest } from './kube.js';

/** Short periods so tests see resyncs, backlog refreshes and retries quickly. */
export function testOperatorSettings(namespace: string, nats: Pick<NatsSettings, 'servers'>, streams: StreamSettings, overrides: Record<string, unknown> = {}): Readonly<OperatorSettings> {
  return parseOperatorSettings(
    {
      namespaces: [namespace],
      workers: 2,
      resyncPeriod: '3s',
      backlogInterval: '500ms',
      retry: { baseDelay: '100ms', maxDelay: '1s' },
      leaderElection: { namespace, leaseDuration: '3s', renewDeadline: '2s', retryPeriod: '300ms' },
      ingestion: { namespace },
      metricsPort: 0,
      nats: { servers: [...nats.servers] },
      streams,
      ...overrides,
    },
    {},
  );
}

/** Starts an operator scoped to one test namespace and waits until it leads with filled caches. */
export async function startTestOperator(kubeConfig: KubeConfig, settings: Readonly<OperatorSettings>, identity?: string, wait = true): Promise<Operator> {
  const operator = await startOperator({ kubeConfig, settings, logger: silentLogger, registry: createRegistry({ defaultMetrics: false }), ...(identity ? { identity } : {}) });
  if (wait) await operator.ready();
  return operator;
}

const API = '/apis/switchyard.io/v1alpha1';

/** Raw JSON of a Switchyard resource (undefined when it does not exist). */
export async function getResource<T = Record<string, any>>(kc: KubeConfig, plural: string, namespace: string, name: string): Promise<T | undefined> {
  try {
    return await kubeRequest<T>(kc, 'GET', `${API}/namespaces/${namespace}/${plural}/${name}`);
  } catch (e) {
    if ((e as { status?: number }).status === 404) return undefined;
    throw e;
  }
}

/** Creates a Switchyard resource from `body` (kind decides the plural). */
export async function createResource(kc: KubeConfig, namespace: string, body: { kind: string; metadata: { name: string } } & Record<string, unknown>): Promise<Record<string, any>> {
  const plural = `${body.kind.toLowerCase()}s`;
  return kubeRequest(kc, 'POST', `${API}/namespaces/${namespace}/${plural}`, { apiVersion: 'switchyard.io/v1alpha1', ...body, metadata: { ...body.metadata, namespace } });
}

/** JSON merge patch of a Switchyard resource. */
export async function patchResource(kc: KubeConfig, plural: string, namespace: string, name: string, patch: unknown): Promise<Record<string, any>> {
  return kubeRequest(kc, 'PATCH', `${API}/namespaces/${namespace}/${plural}/${name}`, patch, 'application/merge-patch+json');
}

/** The condition of `type` on a raw resource. */
export function condition(resource: Record<string, any> | undefined, type: string): { status: string; reason: string; message: string; observedGeneration?: number } | undefined {
  return (resource?.status?.conditions as Array<{ type: string; status: string; reason: string; message: string }> | undefined)?.find((c) => c.type === type);
}
