// Jest global setup: starts the suite's services, which every test file reaches through the
// environment: a nats-server (pinned build, free port, temporary store) as NATS_URL, and a
// Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager; see
// operator/src/test-support/control-plane.ts) as the kubeconfig file KUBECONFIG. Plain ESM so Jest
// loads it without a transform; the TypeScript helpers are loaded with tsx.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export default async function globalSetup(globalConfig) {
  const starting = [
    tsImport('../local/nats-server.ts', import.meta.url).then((m) => m.startNatsServer()),
    needsControlPlane(globalConfig)
      ? tsImport('../../../operator/src/test-support/control-plane.ts', import.meta.url).then((m) => m.startControlPlane())
      : Promise.resolve(undefined),
  ];
  const [nats, kube] = await Promise.allSettled(starting);
  if (nats.status === 'rejected' || kube.status === 'rejected') {
    // One failed: stop the other before reporting, so nothing outlives the run.
    for (const r of [nats, kube]) if (r.status === 'fulfilled') await r.value?.stop();
    throw nats.status === 'rejected' ? nats.reason : kube.reason;
  }
  globalThis.__SWITCHYARD_NATS__ = nats.value;
  process.env.NATS_URL = nats.value.url;
  if (kube.value) {
    globalThis.__SWITCHYARD_KUBE__ = kube.value;
    process.env.KUBECONFIG = kube.value.kubeconfigPath;
  }
}

/**
 * The control plane costs a few seconds and ~350 MB: it is started unless the run names test paths
 * none of which selects a test file under operator/ or charts/test/ (e.g. `jest runtime/src/mapping`).
 * SWITCHYARD_TEST_KUBE=1 or 0 forces the choice.
 */
function needsControlPlane(globalConfig) {
  if (process.env.SWITCHYARD_TEST_KUBE === '1') return true;
  if (process.env.SWITCHYARD_TEST_KUBE === '0') return false;
  try {
    const patterns = globalConfig.testPathPatterns;
    if (!patterns?.isSet()) return true;
    const executor = patterns.toExecutor({ rootDir: globalConfig.rootDir });
    return ['operator/src', 'charts/test'].flatMap((dir) => testFiles(path.join(repoRoot, dir))).some((f) => executor.isMatch(f));
  } catch {
    return true;
  }
}

/** Every `*.test.ts` file under `dir`, as absolute paths. */
function testFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}
