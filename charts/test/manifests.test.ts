// deploy/switchyard.yaml, the chart rendered for a plain `kubectl apply` (scripts/render-manifests.mjs):
// it is what `npm run manifests` prints today, and it installs as its header says on a real
// kube-apiserver, its pods passing the restricted Pod Security Standard its Namespace enforces.
// A control plane of this file's own: the install creates a ClusterRole and a ClusterRoleBinding,
// which no other suite should see. No controller manager: the pods are checked by a server-side dry run.
import { jest } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { startControlPlane, type ControlPlane } from '../../operator/src/test-support/control-plane.js';
import { CRDS_DIR, applyCrdDir, kubectl, kubectlOk, objectKey, resourceVersions, yamlStream } from './kube.js';

jest.setTimeout(60_000);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MANIFEST = path.join(repoRoot, 'deploy/switchyard.yaml');
const NAMESPACE = 'switchyard-system';

/** The objects of a YAML stream (empty documents left out). @throws Error on invalid YAML. */
function parseObjects(text: string): Array<Record<string, any>> {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]!.message}`);
      return doc.toJSON() as Record<string, any> | null;
    })
    .filter((o): o is Record<string, any> => o !== null && typeof o === 'object');
}

/**
 * Where `committed` and `rendered` first differ, by 1-based line with both lines, and the fix; undefined when equal.
 */
function firstDifference(committed: string, rendered: string): { line: number; committed?: string; rendered?: string; fix: string } | undefined {
  if (committed === rendered) return undefined;
  const [a, b] = [committed.split('\n'), rendered.split('\n')];
  let i = 0;
  while (a[i] === b[i]) i++;
  return { line: i + 1, committed: a[i], rendered: b[i], fix: 'run `npm run manifests` and commit deploy/switchyard.yaml' };
}

/** A Pod made of a Deployment's pod template, as its ReplicaSet would create it. */
function podOf(deployment: Record<string, any>): Record<string, any> {
  const template = structuredClone(deployment.spec.template) as { metadata: Record<string, any>; spec: Record<string, any> };
  return { apiVersion: 'v1', kind: 'Pod', metadata: { ...template.metadata, name: `${deployment.metadata.name}-probe`, namespace: deployment.metadata.namespace }, spec: template.spec };
}

describe('deploy/switchyard.yaml', () => {
  let scratch: string;
  let committed: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'switchyard-manifests-'));
    committed = await readFile(MANIFEST, 'utf8');
  });

  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  test('is what `npm run manifests` renders from the chart now', async () => {
    const fresh = path.join(scratch, 'switchyard.yaml');
    await promisify(execFile)(process.execPath, [path.join(repoRoot, 'scripts/render-manifests.mjs'), '--out', fresh], { cwd: repoRoot });
    expect(firstDifference(committed, await readFile(fresh, 'utf8'))).toBeUndefined();
  });

  test('holds the Namespace first, then namespaced objects in it, no CRD', () => {
    const objects = parseObjects(committed);
    expect(objects[0]).toMatchObject({ kind: 'Namespace', metadata: { name: NAMESPACE, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } });
    expect(objects.filter((o) => o.kind === 'CustomResourceDefinition')).toEqual([]);
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);
    expect(objects.filter((o) => !clusterScoped.has(o.kind) && o.metadata.namespace !== NAMESPACE).map(objectKey)).toEqual([]);
    const settings = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'switchyard-settings');
    expect(Object.keys(settings?.data ?? {}).sort()).toEqual(['operator.yaml', 'settings.yaml']);
  });

  describe('installed as its header says, on a real API server', () => {
    let plane: ControlPlane;

    beforeAll(async () => {
      plane = await startControlPlane({ crdDir: false, controllers: [] });
    });

    afterAll(async () => {
      await plane?.stop();
    });

    test('kubectl applies crds/ then the file server-side, as the README says; each Deployment’s pods are admitted under the restricted policy', async () => {
      await applyCrdDir(plane.kubeconfigPath, CRDS_DIR);
      const applied = await kubectl(plane.kubeconfigPath, ['apply', '--server-side', '-f', MANIFEST, '-o', 'name']);
      expect({ code: applied.code, stderr: applied.stderr.trim() }).toEqual({ code: 0, stderr: '' });
      const objects = parseObjects(committed);
      expect(applied.stdout.trim().split('\n')).toHaveLength(objects.length);

      const deployments = objects.filter((o) => o.kind === 'Deployment');
      expect(deployments.map((d) => d.metadata.name).sort()).toEqual(['switchyard-ingestion', 'switchyard-operator']);
      for (const deployment of deployments) {
        const result = await kubectl(plane.kubeconfigPath, ['create', '--dry-run=server', '-f', '-', '-o', 'name'], yamlStream([podOf(deployment)]));
        expect({ pod: deployment.metadata.name, code: result.code, stderr: result.stderr.trim() }).toEqual({ pod: deployment.metadata.name, code: 0, stderr: '' });
      }

      // The policy is enforced here: the same pod allowed to run as root is refused.
      const rootPod = podOf(deployments[0]!);
      rootPod.spec.securityContext = { ...rootPod.spec.securityContext, runAsNonRoot: false, runAsUser: 0 };
      const refused = await kubectl(plane.kubeconfigPath, ['create', '--dry-run=server', '-f', '-'], yamlStream([rootPod]));
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('violates PodSecurity "restricted');

      // Applying again stores nothing new.
      const before = await resourceVersions(plane.kubeconfigPath, objects);
      await kubectlOk(plane.kubeconfigPath, ['apply', '--server-side', '-f', MANIFEST]);
      expect(Object.fromEntries(await resourceVersions(plane.kubeconfigPath, objects))).toEqual(Object.fromEntries(before));
    });
  });
});
