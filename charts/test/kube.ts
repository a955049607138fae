import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { runTool, testBinary, type ToolResult } from './tools.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The repository's generated CRDs, crds/ (the same as the chart's templates/crds, without Helm). */
export const CRDS_DIR = path.join(repoRoot, 'crds');

/** Path of the pinned kubectl (v1.36.3). @throws Error when it is not built yet. */
export function kubectlPath(): string {
  return testBinary('kubectl');
}

/**
 * Folder holding the prometheus-operator CRDs monitoring.coreos.com_servicemonitors.yaml and
 * monitoring.coreos.com_podmonitors.yaml (scripts/test-binaries.sh monitoring-crds).
 * @throws Error when they are not generated yet.
 */
export function monitoringCrdsDir(): string {
  return testBinary('monitoring-crds');
}

/**
 * Runs kubectl with `args` against the cluster of the kubeconfig file `kubeconfig`, writing
 * `input` (e.g. a YAML stream for `-f -`) to its stdin. Resolves with the exit code and output,
 * never rejecting on a non-zero exit (`kubectl diff` exits 1 when it found differences).
 * @throws Error when kubectl cannot be started at all.
 */
export function kubectl(kubeconfig: string, args: string[], input?: string): Promise<ToolResult> {
  return runTool(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], { input });
}

/**
 * Like {@link kubectl}, but resolves to stdout only.
 * @throws Error with the command line and kubectl's stderr when it exits non-zero.
 */
export async function kubectlOk(kubeconfig: string, args: string[], input?: string): Promise<string> {
  const result = await kubectl(kubeconfig, args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout;
}

/** Objects as one multi-document YAML stream, for `kubectl … -f -`. */
export function yamlStream(objects: ReadonlyArray<Record<string, unknown>>): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

/** Identity of an object as `Kind namespace/name`, or `Kind name` without metadata.namespace. */
export function objectKey(o: Record<string, any>): string {
  const ns = o.metadata?.namespace;
  return ns ? `${o.kind} ${ns}/${o.metadata.name}` : `${o.kind} ${o.metadata.name}`;
}

/**
 * The kinds the cluster of `kubeconfig` serves as cluster-scoped (`kubectl api-resources
 * --namespaced=false`), CRDs' kinds included.
 * @throws Error when kubectl fails.
 */
export async function clusterScopedKinds(kubeconfig: string): Promise<Set<string>> {
  const out = await kubectlOk(kubeconfig, ['api-resources', '--namespaced=false', '--no-headers']);
  // Columns: NAME [SHORTNAMES] APIVERSION NAMESPACED KIND; the short names may be missing.
  return new Set(out.split('\n').filter((l) => l.trim()).map((l) => l.trim().split(/\s+/).pop()!));
}

/**
 * The objects with metadata.namespace set to `namespace` where a namespaced one has none, as Helm
 * and Argo CD do when they apply a release (kubectl refuses a mix of namespaces with `-n`).
 * Cluster-scoped kinds are the ones `clusterScoped` names (see {@link clusterScopedKinds}).
 */
export function inNamespace(objects: ReadonlyArray<Record<string, any>>, namespace: string, clusterScoped: ReadonlySet<string>): Array<Record<string, any>> {
  return objects.map((o) => (clusterScoped.has(o.kind) || o.metadata?.namespace ? o : { ...o, metadata: { ...o.metadata, namespace } }));
}

/**
 * Every namespace the objects live in or name: metadata.namespace, the subjects of
 * (Cluster)RoleBindings, plus `releaseNamespace`. Sorted, without duplicates.
 */
export function namespacesReferenced(objects: ReadonlyArray<Record<string, any>>, releaseNamespace: string): string[] {
  const names = new Set<string>([releaseNamespace]);
  for (const o of objects) {
    if (o.metadata?.namespace) names.add(o.metadata.namespace);
    for (const s of (o.subjects as Array<{ namespace?: string }> | undefined) ?? []) if (s.namespace) names.add(s.namespace);
  }
  return [...names].sort();
}

/**
 * Creates each namespace that does not exist yet (server-side apply, so existing ones are fine).
 * @throws Error when kubectl fails.
 */
export async function ensureNamespaces(kubeconfig: string, names: readonly string[]): Promise<void> {
  const docs = names.map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  await kubectlOk(kubeconfig, ['apply', '--server-side', '--field-manager=switchyard-test', '-f', '-'], yamlStream(docs));
}

/**
 * Server-side applies every YAML file of `dir` (CRDs, say) and waits until each
 * CustomResourceDefinition among them is Established (kubectl wait, 30 s).
 * @throws Error when kubectl refuses a file or the wait times out.
 */
export async function applyCrdDir(kubeconfig: string, dir: string): Promise<void> {
  const applied = await kubectlOk(kubeconfig, ['apply', '--server-side', '--field-manager=switchyard-test', '-f', dir, '-o', 'name']);
  const crds = applied.split('\n').filter((l) => l.startsWith('customresourcedefinition'));
  if (crds.length > 0) await kubectlOk(kubeconfig, ['wait', '--for=condition=Established', '--timeout=30s', ...crds]);
}

/**
 * metadata.resourceVersion of each object in `objects` as the cluster has it now, keyed by
 * {@link objectKey} (one `kubectl get -f - -o json`).
 * @throws Error when one of them does not exist.
 */
export async function resourceVersions(kubeconfig: string, objects: ReadonlyArray<Record<string, any>>): Promise<Map<string, string>> {
  const out = await kubectlOk(kubeconfig, ['get', '-f', '-', '-o', 'json'], yamlStream(objects));
  const parsed = JSON.parse(out) as { kind: string; items?: Array<Record<string, any>> } & Record<string, any>;
  const items = parsed.kind === 'List' ? (parsed.items ?? []) : [parsed];
  return new Map(items.map((o) => [objectKey(o), o.metadata.resourceVersion as string]));
}

/**
 * A KubeConfig that authenticates as ServiceAccount `namespace/name` of the cluster `admin` points
 * at: a token minted by the TokenRequest API (valid `expirationSeconds`, default one hour), the
 * admin's cluster entry (server and CA) kept.
 * @throws Error when the ServiceAccount does not exist or the API server refuses the request.
 */
export async function serviceAccountKubeConfig(admin: KubeConfig, namespace: string, name: string, expirationSeconds = 3600): Promise<KubeConfig> {
  const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({ name, namespace, body: { spec: { audiences: [], expirationSeconds } } });
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the admin kubeconfig has no current cluster');
  const user = `system:serviceaccount:${namespace}:${name}`;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token: token.status!.token }],
    contexts: [{ name: user, cluster: cluster.name, user, namespace }],
    currentContext: user,
  });
  return kc;
}

/**
 * `kubectl auth can-i VERB RESOURCE` for ServiceAccount `namespace/name` (impersonated by the
 * admin of `kubeconfig`) in namespace `where` (`'*'`: across all namespaces). Resolves true for
 * "yes", false for "no".
 * @throws Error when kubectl answers neither (exit code above 1).
 */
export async function serviceAccountCan(kubeconfig: string, sa: { namespace: string; name: string }, verb: string, resource: string, where: string): Promise<boolean> {
  const scope = where === '*' ? ['--all-namespaces'] : ['-n', where];
  const result = await kubectl(kubeconfig, ['auth', 'can-i', verb, resource, ...scope, `--as=system:serviceaccount:${sa.namespace}:${sa.name}`]);
  if (result.code > 1) throw new Error(`kubectl auth can-i ${verb} ${resource} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout.trim() === 'yes';
}

/**
 * Where `live` (an object as the API server returns it) does not hold what `desired` (the applied
 * manifest) says, as JSON-pointer-like paths with both values: every map key of `desired` must be
 * present in `live` with an equal value, lists must have the same length and match item by item;
 * fields only `live` has (defaults, status, managedFields) are fine. A manifest field the API
 * server drops or rewrites (e.g. an empty map, a quantity like `0.5`) shows up here: GitOps tools
 * comparing manifest and live object report it as a difference on every sync.
 */
export function manifestDrift(desired: unknown, live: unknown, at = ''): string[] {
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return [`${at}: ${brief(desired)} is ${brief(live)} live`];
    return desired.flatMap((item, i) => manifestDrift(item, live[i], `${at}/${i}`));
  }
  if (desired !== null && typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return [`${at}: ${brief(desired)} is ${brief(live)} live`];
    return Object.entries(desired).flatMap(([key, value]) => manifestDrift(value, (live as Record<string, unknown>)[key], `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`));
  }
  return desired === live ? [] : [`${at}: ${brief(desired)} is ${brief(live)} live`];
}

function brief(value: unknown): string {
  if (value === undefined) return 'absent';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
