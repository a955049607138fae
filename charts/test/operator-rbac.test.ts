// The chart's RBAC is what the operator needs, and no more: the real operator, authenticated as the
// chart's ServiceAccount (a TokenRequest token) with nothing but the rendered ServiceAccount, Roles,
// ClusterRoles and bindings, runs with the rendered operator.yaml and reconciles the examples
// without a refused call; scoped to watchNamespaces, the ServiceAccount reaches nothing elsewhere.
// A control plane of this file's own (ClusterRoles are cluster-scoped), with our CRDs from crds/;
// no controller manager (no pods run: the forwarder Deployments are only created).
import { jest } from '@jest/globals';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { useNatsFixture } from '../../runtime/src/test-support/nats.js';
import type { Operator } from '../../operator/src/controller.js';
import { parseOperatorSettings } from '../../operator/src/settings.js';
import { startControlPlane, type ControlPlane } from '../../operator/src/test-support/control-plane.js';
import { kubeRequest, statusCode, waitFor } from '../../operator/src/test-support/kube.js';
import { condition, getResource, startTestOperator } from '../../operator/src/test-support/operator.js';
import { renderChart } from './helm.js';
import { clusterScopedKinds, ensureNamespaces, inNamespace, kubectlOk, namespacesReferenced, serviceAccountCan, serviceAccountKubeConfig, yamlStream } from './kube.js';

jest.setTimeout(60_000);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

const nats = useNatsFixture();
let plane: ControlPlane;
let admin: KubeConfig;
let clusterScoped: Set<string>;
let operator: Operator | undefined;

beforeAll(async () => {
  plane = await startControlPlane({ controllers: [] });
  admin = plane.kubeConfig();
  clusterScoped = await clusterScopedKinds(plane.kubeconfigPath);
});

afterEach(async () => {
  await operator?.stop();
  operator = undefined;
});

afterAll(async () => {
  await plane?.stop();
});

/** What the operator side of a release consists of, as rendered. */
interface RenderedOperator {
  /** The operator's ServiceAccount (the one its Deployment runs as). */
  serviceAccount: string;
  /** operator.yaml of the settings ConfigMap, parsed as YAML. */
  operatorYaml: Record<string, any>;
  /** The rendered ServiceAccounts, Roles, ClusterRoles and bindings. */
  rbac: Array<Record<string, any>>;
}

/**
 * Renders the chart as release `release` in `namespace` with `values` plus NATS and stream settings
 * of this suite (its server, the fixture's isolated stream names), and applies only the RBAC
 * objects (namespaces they use created first).
 */
async function applyRenderedRbac(release: string, namespace: string, values: Record<string, unknown> = {}): Promise<RenderedOperator> {
  const { streams } = nats.fx;
  const rendered = await renderChart({
    release,
    namespace,
    values: [
      {
        natsConnection: { servers: [process.env.NATS_URL] },
        streams: {
          subjectPrefix: streams.subjectPrefix,
          events: { name: streams.events.name, storage: streams.events.storage },
          deadLetter: { name: streams.deadLetter.name },
          advisories: { name: streams.advisories.name },
        },
      },
      values,
    ],
  });
  const objects = inNamespace(rendered.objects, namespace, clusterScoped);
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.spec.template.spec.containers.some((c: { name: string }) => c.name === 'operator'));
  const settings = objects.find((o) => o.kind === 'ConfigMap' && typeof o.data?.['operator.yaml'] === 'string');
  if (!deployment || !settings) throw new Error('the render has no operator Deployment or no ConfigMap with operator.yaml');
  const rbac = objects.filter((o) => RBAC_KINDS.has(o.kind));
  await ensureNamespaces(plane.kubeconfigPath, namespacesReferenced(rbac, namespace));
  await kubectlOk(plane.kubeconfigPath, ['apply', '--server-side', '--field-manager=switchyard-test', '-f', '-'], yamlStream(rbac));
  return { serviceAccount: deployment.spec.template.spec.serviceAccountName, operatorYaml: parse(settings.data['operator.yaml']), rbac };
}

/** examples/*.yaml (Secrets, Source, Mapping, Integration), moved to `namespace`. */
async function examplesIn(namespace: string): Promise<Array<Record<string, any>>> {
  const files = (await readdir(path.join(repoRoot, 'examples'))).filter((f) => f.endsWith('.yaml')).sort();
  const docs = await Promise.all(files.map(async (f) => parseAllDocuments(await readFile(path.join(repoRoot, 'examples', f), 'utf8')).map((d) => d.toJSON())));
  return docs.flat().filter(Boolean).map((o) => ({ ...o, metadata: { ...o.metadata, namespace } }));
}

async function exists(apiPath: string): Promise<boolean> {
  try {
    await kubeRequest(admin, 'GET', apiPath);
    return true;
  } catch (err) {
    if (statusCode(err) === 404) return false;
    throw err;
  }
}

/**
 * Starts the operator as the rendered ServiceAccount with the rendered operator.yaml (no metrics
 * port: tests run several), applies the examples in `workloads`, and waits for what it makes of
 * them: the sources Secret in the release namespace, the Integration's forwarder objects, its
 * conditions and Events. Fails when any reconcile failed.
 */
async function operatorReconcilesExamples(release: string, namespace: string, workloads: string, rendered: RenderedOperator): Promise<void> {
  const settings = parseOperatorSettings({ ...rendered.operatorYaml, metricsPort: 0 }, {});
  expect(settings.ingestion.namespace).toBe(namespace);
  const kc = await serviceAccountKubeConfig(admin, namespace, rendered.serviceAccount);
  const started = await startTestOperator(kc, settings, `${release}-operator`, false);
  operator = started;
  // Acting needs the Lease and filled caches: lists and watches that RBAC refuses never fill them.
  await waitFor(() => started.isLeader(), { what: 'the operator leading with filled caches' });

  await ensureNamespaces(plane.kubeconfigPath, [workloads]);
  await kubectlOk(plane.kubeconfigPath, ['apply', '--server-side', '--field-manager=switchyard-test', '-f', '-'], yamlStream(await examplesIn(workloads)));

  const sources = await waitFor(
    () => kubeRequest<{ data?: Record<string, string> }>(admin, 'GET', `/api/v1/namespaces/${namespace}/secrets/${settings.ingestion.sourcesSecret}`),
    { what: `the sources Secret ${namespace}/${settings.ingestion.sourcesSecret}` },
  );
  expect(Buffer.from(sources.data?.['sources.yaml'] ?? '', 'base64').toString()).toContain('wk_local_example_web');
  for (const apiPath of [`/apis/apps/v1/namespaces/${workloads}/deployments`, `/api/v1/namespaces/${workloads}/configmaps`, `/api/v1/namespaces/${workloads}/secrets`]) {
    await waitFor(() => exists(`${apiPath}/example-webhook-forwarder`), { what: `${apiPath}/example-webhook-forwarder` });
  }
  const integration = await waitFor(
    async () => {
      const i = await getResource(admin, 'integrations', workloads, 'example-webhook');
      return condition(i, 'MappingResolved')?.status === 'True' && condition(i, 'ConsumerReady')?.status === 'True' ? i : undefined;
    },
    { what: 'Integration example-webhook MappingResolved and ConsumerReady True' },
  );
  expect(condition(integration, 'CredentialsResolved')).toMatchObject({ status: 'True', reason: 'Resolved' });
  const source = await waitFor(async () => {
    const s = await getResource(admin, 'sources', workloads, 'web');
    return condition(s, 'Ready')?.status === 'True' ? s : undefined;
  }, { what: 'Source web Ready' });
  expect(condition(source, 'WriteKeyResolved')?.reason).toBe('Resolved');
  // Events are posted best effort (a refusal is only logged): their presence shows the permission.
  await waitFor(
    async () => {
      const events = await kubeRequest<{ items: Array<{ reportingComponent?: string; involvedObject: { kind: string } }> }>(admin, 'GET', `/api/v1/namespaces/${workloads}/events`);
      return events.items.some((e) => e.reportingComponent === 'switchyard.io/switchyard-operator' && e.involvedObject.kind === 'Integration');
    },
    { what: 'an Event of the operator about the Integration' },
  );

  const reconciles = (await started.metrics.reconciles.get()).values;
  expect(reconciles.filter((v) => v.labels.result === 'error' && v.value > 0)).toEqual([]);
  expect(reconciles.filter((v) => v.labels.result === 'success').reduce((n, v) => n + v.value, 0)).toBeGreaterThan(0);
}

test('with only the rendered RBAC (default values: all namespaces), the operator reconciles the examples without a refused call', async () => {
  const rendered = await applyRenderedRbac('sy', 'switchyard-system');
  expect(rendered.rbac.map((o) => o.kind)).toContain('ClusterRole');
  await operatorReconcilesExamples('sy', 'switchyard-system', 'shop', rendered);
});

test('with watchNamespaces [team-a], the ServiceAccount reaches team-a and its own Lease and sources Secret, nothing else, and the operator works with that', async () => {
  const namespace = 'scoped-system';
  const rendered = await applyRenderedRbac('scoped', namespace, { operator: { watchNamespaces: ['team-a'] } });
  await ensureNamespaces(plane.kubeconfigPath, ['team-b']);
  const sa = { namespace, name: rendered.serviceAccount };
  const can = (verb: string, resource: string, where: string) => serviceAccountCan(plane.kubeconfigPath, sa, verb, resource, where);
  const sourcesSecret = parseOperatorSettings(rendered.operatorYaml, {}).ingestion.sourcesSecret;

  for (const [verb, resource] of [
    ['list', 'secrets'],
    ['watch', 'secrets'],
    ['patch', 'deployments.apps'],
    ['list', 'integrations.switchyard.io'],
    ['patch', 'integrations.switchyard.io/status'],
  ] as const) {
    expect({ verb, resource, 'team-a': await can(verb, resource, 'team-a'), 'team-b': await can(verb, resource, 'team-b'), all: await can(verb, resource, '*') }).toEqual({
      verb,
      resource,
      'team-a': true,
      'team-b': false,
      all: false,
    });
  }
  // In its own namespace: the Lease and the sources Secret by name, no other Secret.
  expect(await can('update', 'leases.coordination.k8s.io/switchyard-operator', namespace)).toBe(true);
  expect(await can('update', 'leases.coordination.k8s.io/another-lease', namespace)).toBe(false);
  expect(await can('patch', `secrets/${sourcesSecret}`, namespace)).toBe(true);
  expect(await can('get', 'secrets', namespace)).toBe(false);
  expect(await can('create', 'clusterroles.rbac.authorization.k8s.io', '*')).toBe(false);

  await operatorReconcilesExamples('scoped', namespace, 'team-a', rendered);
});
