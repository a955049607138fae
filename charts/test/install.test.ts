// helm install / upgrade / uninstall of the chart against a real kube-apiserver: CRD changes reach
// the cluster on upgrade, uninstall keeps the CRDs and the resources of theirs, and CRDs created
// before with kubectl are refused (Helm's ownership check) unless the chart leaves them alone
// (crds.install=false) or takes them over (--take-ownership). A control plane of this file's own,
// since Helm creates and deletes cluster-scoped objects; no controller manager (no pods needed).
import { jest } from '@jest/globals';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../../operator/src/test-support/control-plane.js';
import { kubeRequest, statusCode, waitFor } from '../../operator/src/test-support/kube.js';
import { createResource, getResource, patchResource } from '../../operator/src/test-support/operator.js';
import { chartCopy, helm } from './helm.js';
import { parse, stringify } from 'yaml';
import { CRDS_DIR, applyCrdDir, ensureNamespaces, kubectlOk } from './kube.js';

jest.setTimeout(60_000);

const CRD_NAMES = ['integrations.switchyard.io', 'mappings.switchyard.io', 'sources.switchyard.io'];
const CRD_API = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

let plane: ControlPlane;
let admin: KubeConfig;
let scratch: string;

beforeAll(async () => {
  [plane, scratch] = await Promise.all([startControlPlane({ crdDir: false, controllers: [] }), mkdtemp(path.join(os.tmpdir(), 'switchyard-chart-change-'))]);
  admin = plane.kubeConfig();
});

afterAll(async () => {
  await plane?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** helm against this file's control plane; fails the test with helm's stderr on a non-zero exit. */
async function helmOk(args: string[]): Promise<string> {
  const result = await helm([...args, '--kubeconfig', plane.kubeconfigPath]);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

type Crd = { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: { versions: Array<{ schema: { openAPIV3Schema: any }; additionalPrinterColumns?: Array<{ name: string }> }> } };

async function getCrd(name: string): Promise<Crd | undefined> {
  try {
    return await kubeRequest<Crd>(admin, 'GET', `${CRD_API}/${name}`);
  } catch (err) {
    if (statusCode(err) === 404) return undefined;
    throw err;
  }
}

async function deploymentNames(namespace: string): Promise<string[]> {
  const list = await kubeRequest<{ items: Array<{ metadata: { name: string } }> }>(admin, 'GET', `/apis/apps/v1/namespaces/${namespace}/deployments`);
  return list.items.map((d) => d.metadata.name).sort();
}

/** Our CRDs Established and their resources served (Helm installs without waiting for either). */
async function crdsServed(): Promise<void> {
  await kubectlOk(plane.kubeconfigPath, ['wait', '--for=condition=Established', '--timeout=30s', ...CRD_NAMES.map((n) => `crd/${n}`)]);
  for (const plural of ['sources', 'mappings', 'integrations']) {
    await waitFor(() => kubeRequest(admin, 'GET', `/apis/switchyard.io/v1alpha1/${plural}`).then(() => true), { what: `${plural} served` });
  }
}

/** Deletes our CRDs (and with them every resource of theirs) and waits until they are gone. */
async function deleteCrds(): Promise<void> {
  // A CRD deleted while the API server re-initializes its storage (just after it was changed) keeps
  // its cleanup finalizer until the finalizer controller's back-off retries, often past any timeout:
  // delete only once each CRD's resources are served again.
  for (const name of CRD_NAMES) {
    if (!(await getCrd(name))) continue;
    await waitFor(() => kubeRequest(admin, 'GET', `/apis/switchyard.io/v1alpha1/${name.split('.')[0]}`).then(() => true), { what: `${name} served before its deletion` });
  }
  try {
    await kubectlOk(plane.kubeconfigPath, ['delete', '--ignore-not-found', '--wait', '--timeout=60s', ...CRD_NAMES.map((n) => `crd/${n}`)]);
  } catch (err) {
    // The CRDs left, their finalizers and conditions say what the deletion waits for.
    const left = JSON.parse(await kubectlOk(plane.kubeconfigPath, ['get', 'crd', '-o', 'json'])) as { items: Array<{ metadata: { name: string; finalizers?: string[] }; status?: { conditions?: unknown[] } }> };
    const state = left.items.map((c) => ({ name: c.metadata.name, finalizers: c.metadata.finalizers, conditions: c.status?.conditions }));
    throw new Error(`${(err as Error).message}\n${JSON.stringify(state, null, 1)}`);
  }
}

/**
 * A copy of the chart whose Source CRD gains `spec.team` (a string) and a printer column Team, as a
 * new chart version's CRD template would.
 */
async function chartWithChangedSourceCrd(): Promise<string> {
  const dir = path.join(scratch, 'switchyard');
  await cp(await chartCopy(), dir, { recursive: true });
  const file = path.join(dir, 'templates/crds/switchyard.io_sources.yaml');
  const original = await readFile(file, 'utf8');
  const specProperties = /(\n {12}spec:\n(?: {14}.*\n)*? {14}properties:\n)/;
  const columns = /(\n {6}additionalPrinterColumns:\n)/;
  expect(original).toMatch(specProperties);
  expect(original).toMatch(columns);
  const changed = original
    .replace(specProperties, '$1                team:\n                  description: The team owning this Source.\n                  type: string\n')
    .replace(columns, '$1        - name: Team\n          type: string\n          jsonPath: .spec.team\n');
  await writeFile(file, changed);
  return dir;
}

const writeKeySecret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'web-write-key' }, stringData: { writeKey: 'wk_chart_test_web' } };
const source = { kind: 'Source', metadata: { name: 'web' }, spec: { writeKey: { secretKeyRef: { name: 'web-write-key', key: 'writeKey' } }, team: 'growth' } };
const mapping = { kind: 'Mapping', metadata: { name: 'orders' }, spec: { default: { fields: [{ to: 'event', from: '$name' }] } } };

test('install, upgrade with a changed CRD, uninstall: the CRD change is applied, and uninstall keeps the CRDs and their resources but removes the workloads', async () => {
  const release = 'sy';
  const namespace = 'sy-system';
  const workloads = 'shop';
  await helmOk(['install', release, await chartCopy(), '-n', namespace, '--create-namespace']);
  expect(await deploymentNames(namespace)).toEqual([`${release}-switchyard-ingestion`, `${release}-switchyard-operator`].sort());
  for (const name of CRD_NAMES) {
    const crd = await getCrd(name);
    expect(crd?.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
    expect(crd?.metadata.annotations).toMatchObject({ 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': namespace, 'helm.sh/resource-policy': 'keep' });
  }
  await crdsServed();

  await ensureNamespaces(plane.kubeconfigPath, [workloads]);
  await kubeRequest(admin, 'POST', `/api/v1/namespaces/${workloads}/secrets`, writeKeySecret);
  await createResource(admin, workloads, mapping);
  // The installed schema has no spec.team: the API server prunes it.
  const created = await createResource(admin, workloads, source);
  expect(created.spec.team).toBeUndefined();

  await helmOk(['upgrade', release, await chartWithChangedSourceCrd(), '-n', namespace]);
  const upgraded = (await getCrd('sources.switchyard.io'))!.spec.versions[0]!;
  expect(upgraded.schema.openAPIV3Schema.properties.spec.properties.team).toEqual({ description: 'The team owning this Source.', type: 'string' });
  expect(upgraded.additionalPrinterColumns?.map((c) => c.name)).toContain('Team');
  // The API server serves the new schema a moment after the update: the field is then kept.
  await waitFor(
    async () => {
      await patchResource(admin, 'sources', workloads, 'web', { spec: { team: 'growth' } });
      return (await getResource(admin, 'sources', workloads, 'web'))?.spec.team === 'growth';
    },
    { what: 'spec.team kept on the Source after the upgrade' },
  );

  const uninstall = await helmOk(['uninstall', release, '-n', namespace]);
  expect(uninstall).toMatch(/kept due to the resource policy/);
  expect(await deploymentNames(namespace)).toEqual([]);
  for (const name of CRD_NAMES) expect(await getCrd(name)).toBeDefined();
  expect((await getResource(admin, 'sources', workloads, 'web'))?.spec.team).toBe('growth');
  expect(await getResource(admin, 'mappings', workloads, 'orders')).toBeDefined();
  expect((await helmOk(['list', '-n', namespace, '-q'])).trim()).toBe('');

  // Installing the release again takes the kept CRDs back (their ownership annotations still name it).
  await helmOk(['install', release, await chartCopy(), '-n', namespace]);
  expect((await getCrd('sources.switchyard.io'))!.spec.versions[0]!.schema.openAPIV3Schema.properties.spec.properties.team).toBeUndefined();
  expect(await getResource(admin, 'sources', workloads, 'web')).toBeDefined();
  await helmOk(['uninstall', release, '-n', namespace]);
});

test('over CRDs created with kubectl, install is refused for their ownership, and works with crds.install=false or --take-ownership', async () => {
  await deleteCrds();
  await applyCrdDir(plane.kubeconfigPath, CRDS_DIR);
  const chart = await chartCopy();

  const refused = await helm(['install', 'taken', chart, '-n', 'taken-system', '--create-namespace', '--kubeconfig', plane.kubeconfigPath]);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toMatch(/CustomResourceDefinition "(integrations|mappings|sources)\.switchyard\.io" in namespace "" exists and cannot be imported into the current release: invalid ownership metadata/);
  // Refused before anything was stored: no release to clean up.
  expect((await helmOk(['list', '-A', '-q'])).trim()).toBe('');

  // The CRDs managed elsewhere (as values.yaml documents): the chart leaves them alone.
  await helmOk(['install', 'apart', chart, '-n', 'apart-system', '--create-namespace', '--set', 'crds.install=false']);
  for (const name of CRD_NAMES) expect((await getCrd(name))?.metadata.annotations?.['meta.helm.sh/release-name']).toBeUndefined();
  expect(await deploymentNames('apart-system')).toEqual(['apart-switchyard-ingestion', 'apart-switchyard-operator']);
  await helmOk(['uninstall', 'apart', '-n', 'apart-system']);
  for (const name of CRD_NAMES) expect(await getCrd(name)).toBeDefined();

  // Or the release adopts them.
  await helmOk(['install', 'owner', chart, '-n', 'owner-system', '--create-namespace', '--take-ownership']);
  for (const name of CRD_NAMES) {
    expect((await getCrd(name))?.metadata.annotations).toMatchObject({ 'meta.helm.sh/release-name': 'owner', 'meta.helm.sh/release-namespace': 'owner-system' });
  }
  await helmOk(['uninstall', 'owner', '-n', 'owner-system']);
});

test('over CRDs kubectl applied from another version, --take-ownership needs --force-conflicts (Helm 4 applies server-side)', async () => {
  await deleteCrds();
  // crds/ as a different Switchyard version would have it: one description differs.
  const older = path.join(scratch, 'older-crds');
  await mkdir(older, { recursive: true });
  const crd = parse(await readFile(path.join(CRDS_DIR, 'switchyard.io_sources.yaml'), 'utf8'));
  crd.spec.versions[0].schema.openAPIV3Schema.description = 'A Source, as an older version described it.';
  await writeFile(path.join(older, 'switchyard.io_sources.yaml'), stringify(crd));
  await applyCrdDir(plane.kubeconfigPath, older);
  const chart = await chartCopy();

  const conflict = await helm(['install', 'late', chart, '-n', 'late-system', '--create-namespace', '--take-ownership', '--kubeconfig', plane.kubeconfigPath]);
  expect(conflict.code).not.toBe(0);
  expect(conflict.stderr).toMatch(/sources\.switchyard\.io.*conflict with "switchyard-test": \.spec\.versions/);
  await helmOk(['uninstall', 'late', '-n', 'late-system']);

  await helmOk(['install', 'late', chart, '-n', 'late-system', '--take-ownership', '--force-conflicts']);
  const taken = (await getCrd('sources.switchyard.io'))!;
  expect(taken.metadata.annotations?.['meta.helm.sh/release-name']).toBe('late');
  expect(taken.spec.versions[0]!.schema.openAPIV3Schema.description).toBe('A place events come from, identified by its write key.');
  await helmOk(['uninstall', 'late', '-n', 'late-system']);
});
