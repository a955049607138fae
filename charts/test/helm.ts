import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { runTool, testBinary, type ToolResult } from './tools.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The chart's source folder, charts/switchyard. */
export const CHART_DIR = path.join(repoRoot, 'charts/switchyard');

/** charts/switchyard/ci/full-values.yaml: every optional feature on. */
export const FULL_VALUES = path.join(CHART_DIR, 'ci/full-values.yaml');

/**
 * Path of the pinned helm (scripts/test-binaries.sh --cached helm).
 * @throws Error naming the build command when helm is not built yet.
 */
export function helmPath(): string {
  return testBinary('helm');
}

let workDir: Promise<string> | undefined;

/**
 * Removes the temp folders of processes that are gone (a killed test worker never runs its exit
 * handler), recognised by the pid in their name.
 */
async function removeOrphans(): Promise<void> {
  const names = await readdir(os.tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(/^switchyard-chart-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') await rm(path.join(os.tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

/** A per-process temp folder holding the chart copy and Helm's home folders; removed at exit. */
function tempRoot(): Promise<string> {
  workDir ??= removeOrphans().then(() => mkdtemp(path.join(os.tmpdir(), `switchyard-chart-${process.pid}-`))).then((dir) => {
    process.once('exit', () => {
      // Synchronous on purpose: async work does not run in an exit handler.
      try {
        execFileSync('rm', ['-rf', dir]);
      } catch {
        // Leaving a temp folder behind is harmless.
      }
    });
    return dir;
  });
  return workDir;
}

let copy: Promise<string> | undefined;

/**
 * A temp copy of charts/switchyard with a stand-in `charts/nats` (Chart.yaml only: name nats, the
 * pinned version, apiVersion v2), made once per process. Helm refuses a chart whose declared
 * dependency is missing from charts/, even when disabled, and `helm dependency build` would need
 * the internet. Resolves to the copy's folder (named `switchyard`, as Helm expects).
 */
export function chartCopy(): Promise<string> {
  copy ??= (async () => {
    const root = await tempRoot();
    const dir = path.join(root, 'switchyard');
    await rm(dir, { recursive: true, force: true });
    // The real subchart, when `helm dependency build` fetched one, is replaced by the stand-in.
    await cp(CHART_DIR, dir, { recursive: true, filter: (src) => !src.startsWith(path.join(CHART_DIR, 'charts') + path.sep) && !src.endsWith('Chart.lock') });
    await mkdir(path.join(dir, 'charts/nats'), { recursive: true });
    const pinned = (parse(await readFile(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { dependencies: { name: string; version: string }[] }).dependencies.find((d) => d.name === 'nats')!.version;
    await writeFile(path.join(dir, 'charts/nats/Chart.yaml'), `apiVersion: v2\nname: nats\nversion: ${pinned}\ndescription: stand-in for the NATS chart in tests\n`);
    return dir;
  })();
  return copy;
}

/** Environment isolating Helm from the user's config, cache and plugins (all in the temp root). */
async function helmEnv(extra?: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const root = await tempRoot();
  return {
    ...process.env,
    HELM_CACHE_HOME: path.join(root, 'helm/cache'),
    HELM_CONFIG_HOME: path.join(root, 'helm/config'),
    HELM_DATA_HOME: path.join(root, 'helm/data'),
    ...extra,
  };
}

/**
 * Runs helm with `args`; resolves with its exit code and output, never rejecting on a non-zero exit.
 * Helm's config, cache and data folders are in a temp folder, so ~/.config/helm is never touched.
 */
export async function helm(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ToolResult> {
  return runTool(helmPath(), args, { env: await helmEnv(opts.env), cwd: opts.cwd });
}

let valuesCounter = 0;

/**
 * `helm template` of the chart copy. `values` objects are written to temp files and passed with
 * `-f` after `valuesFiles`, in order (later ones win). Release defaults to `sy`, namespace to
 * `switchyard-system`. Resolves to the rendered text and its parsed objects (empty documents left out).
 * @throws Error carrying helm's stderr when helm fails (schema violations, `fail`, template errors).
 */
export async function renderChart(
  opts: { values?: Record<string, unknown>[]; valuesFiles?: string[]; release?: string; namespace?: string; apiVersions?: string[]; kubeVersion?: string } = {},
): Promise<{ text: string; objects: Array<Record<string, any>> }> {
  const chart = await chartCopy();
  const root = await tempRoot();
  const args = ['template', opts.release ?? 'sy', chart, '--namespace', opts.namespace ?? 'switchyard-system'];
  for (const file of opts.valuesFiles ?? []) args.push('-f', file);
  for (const values of opts.values ?? []) {
    const file = path.join(root, `values-${process.pid}-${valuesCounter++}.json`);
    await writeFile(file, JSON.stringify(values));
    args.push('-f', file);
  }
  for (const api of opts.apiVersions ?? []) args.push('--api-versions', api);
  if (opts.kubeVersion) args.push('--kube-version', opts.kubeVersion);
  const result = await helm(args);
  if (result.code !== 0) throw new Error(`helm template failed (exit ${result.code}): ${result.stderr.trim()}`);
  const objects = parseAllDocuments(result.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`helm template printed invalid YAML: ${doc.errors[0]!.message}`);
      return doc.toJSON() as Record<string, any> | null;
    })
    .filter((o): o is Record<string, any> => o !== null && typeof o === 'object');
  return { text: result.stdout, objects };
}
