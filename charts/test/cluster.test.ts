// The chart's manifests against a real kube-apiserver: everything it renders is accepted (server-side
// dry run, with the CRDs in the render and the prometheus-operator CRDs installed), and a GitOps
// controller applying it with server-side apply sees no difference afterwards (no perpetual diff).
// A control plane of this file's own: these tests create CRDs and ClusterRoles, which no other
// suite should see. No controller manager: nothing but our applies may change the objects.
import { jest } from '@jest/globals';
import { startControlPlane, type ControlPlane } from '../../operator/src/test-support/control-plane.js';
import { FULL_VALUES, renderChart } from './helm.js';
import { applyCrdDir, clusterScopedKinds, ensureNamespaces, inNamespace, kubectl, kubectlOk, manifestDrift, monitoringCrdsDir, namespacesReferenced, objectKey, resourceVersions, yamlStream } from './kube.js';

jest.setTimeout(60_000);

let plane: ControlPlane;
let clusterScoped: Set<string>;

beforeAll(async () => {
  plane = await startControlPlane({ crdDir: false, controllers: [] });
  // ServiceMonitor and PodMonitor: the kinds the full values render besides the core ones.
  await applyCrdDir(plane.kubeconfigPath, monitoringCrdsDir());
  clusterScoped = await clusterScopedKinds(plane.kubeconfigPath);
});

/**
 * The chart rendered for `release` in `namespace`, every namespaced object given that namespace
 * where it has none (as Helm and Argo CD apply them), and the namespaces it uses created.
 */
async function renderForCluster(release: string, namespace: string, valuesFiles: string[]): Promise<{ objects: Array<Record<string, any>>; manifests: string }> {
  const rendered = await renderChart({ release, namespace, valuesFiles });
  const objects = inNamespace(rendered.objects, namespace, clusterScoped);
  await ensureNamespaces(plane.kubeconfigPath, namespacesReferenced(objects, namespace));
  return { objects, manifests: yamlStream(objects) };
}

afterAll(async () => {
  await plane?.stop();
});

/** The field manager Argo CD's application controller applies with (ServerSideApply=true). */
const ARGOCD_MANAGER = 'argocd-controller';

const renders = [
  { name: 'default values', release: 'dry', namespace: 'dry-system', valuesFiles: [] as string[] },
  { name: 'ci/full-values.yaml', release: 'dryfull', namespace: 'dryfull-system', valuesFiles: [FULL_VALUES] },
];

test.each(renders)('the API server accepts every object of the $name render (server-side dry run), each one new', async ({ release, namespace, valuesFiles }) => {
  const { objects, manifests } = await renderForCluster(release, namespace, valuesFiles);
  expect(objects.filter((o) => o.kind === 'CustomResourceDefinition').length).toBeGreaterThanOrEqual(3);

  const result = await kubectl(plane.kubeconfigPath, ['apply', '--server-side', '--dry-run=server', '-f', '-', '-o', 'json'], manifests);
  expect({ code: result.code, stderr: result.stderr.trim() }).toEqual({ code: 0, stderr: '' });
  const answered = JSON.parse(result.stdout) as { kind: string; items: Array<Record<string, any>> };
  expect(answered.items.map(objectKey).sort()).toEqual(objects.map(objectKey).sort());
  // A dry-run create answers without a resourceVersion; an update of an existing object has one.
  expect(answered.items.filter((o) => o.metadata.resourceVersion).map(objectKey)).toEqual([]);
  // Dry run: nothing was stored.
  const stored = await kubectlOk(plane.kubeconfigPath, ['get', '-f', '-', '--ignore-not-found', '-o', 'name'], manifests);
  expect(stored.trim()).toBe('');
});

test('applied with server-side apply as Argo CD does, the full render is stored as written, shows no diff, and a second apply changes nothing', async () => {
  const { objects, manifests } = await renderForCluster('live', 'live-system', [FULL_VALUES]);
  const apply = ['apply', '--server-side', `--field-manager=${ARGOCD_MANAGER}`, '-f', '-'];
  await kubectlOk(plane.kubeconfigPath, apply, manifests);
  // The API server writes the CRDs' status once after creating them; wait for that before comparing.
  const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition').map((o) => `crd/${o.metadata.name}`);
  await kubectlOk(plane.kubeconfigPath, ['wait', '--for=condition=Established', '--timeout=30s', ...crds]);

  // Every field of every manifest is in the live object unchanged (nothing dropped or normalized).
  const live = JSON.parse(await kubectlOk(plane.kubeconfigPath, ['get', '-f', '-', '-o', 'json'], manifests)) as { items: Array<Record<string, any>> };
  const byKey = new Map(live.items.map((o) => [objectKey(o), o]));
  expect(objects.flatMap((o) => manifestDrift(o, byKey.get(objectKey(o))).map((d) => `${objectKey(o)} ${d}`))).toEqual([]);
  const before = await resourceVersions(plane.kubeconfigPath, objects);
  expect([...before.keys()].sort()).toEqual(objects.map(objectKey).sort());

  // Exit 0: no differences (1: differences, above 1: an error).
  const diff = await kubectl(plane.kubeconfigPath, ['diff', '--server-side', `--field-manager=${ARGOCD_MANAGER}`, '-f', '-'], manifests);
  expect({ code: diff.code, diff: diff.stdout, stderr: diff.stderr.trim() }).toEqual({ code: 0, diff: '', stderr: '' });

  await kubectlOk(plane.kubeconfigPath, apply, manifests);
  expect(await resourceVersions(plane.kubeconfigPath, objects)).toEqual(before);
});
