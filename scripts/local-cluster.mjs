#!/usr/bin/env node
// `npm run cluster`: a throwaway Kubernetes control plane on loopback (etcd, kube-apiserver,
// kube-controller-manager; the test suite's own), a pinned nats-server with JetStream, and a fake
// node that runs pods as local processes (the runtime and operator images map onto this
// repository), so the operator, the Helm chart and the examples can be tried without a cluster.
// Ctrl-C stops everything.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsImport } from 'tsx/esm/api';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const load = (p) => tsImport(path.join(repoRoot, p), import.meta.url);

const { startControlPlane } = await load('operator/src/test-support/control-plane.ts');
const { startFakeNode } = await load('operator/src/test-support/fake-node.ts');
const { startNatsServer } = await load('runtime/src/local/nats-server.ts');
const { chartCopy } = await load('charts/test/helm.ts');
const { RUNTIME_VERSION } = await load('runtime/src/destinations/types.ts');

const cluster = await startControlPlane();
const nats = await startNatsServer();
const kc = cluster.kubeConfig();
const { CoreV1Api } = await import('@kubernetes/client-node');
const core = kc.makeApiClient(CoreV1Api);
await core.createNamespace({ body: { metadata: { name: 'switchyard-system' } } });
// examples/cluster/ingestion.yaml runs in the operator's default ingestion namespace and reads NATS from here.
await core.createNamespacedConfigMap({ namespace: 'switchyard-system', body: { metadata: { name: 'switchyard-nats' }, data: { url: nats.url } } });
// The chart's images (its appVersion is RUNTIME_VERSION), both the checkout.
const checkout = { root: repoRoot, prefix: '/app' };
const images = { [`ghcr.io/switchyard/runtime:${RUNTIME_VERSION}`]: checkout, [`ghcr.io/switchyard/operator:${RUNTIME_VERSION}`]: checkout };
const node = await startFakeNode({ kubeConfig: kc, images });
// `helm install` wants the chart's NATS dependency in its charts/ even when disabled, and
// `helm dependency build` fetches it from the internet: a copy with a stand-in does without.
const chart = await chartCopy();
const settings = path.join(cluster.dir, 'operator.yaml');
// ingestion.namespace stays the default (switchyard-system), as in a real installation.
await writeFile(settings, `# Operator settings for the local cluster\nnats:\n  servers: [${nats.url}]\nleaderElection:\n  namespace: switchyard-system\nmetricsPort: 8081\n`);

// The commands below name the pinned kubectl and helm by their full paths: another one on PATH may
// be too old for this API server, or be a wrapper bound to another cluster.
const { testBinary } = await load('charts/test/tools.ts');
/** Path of a pinned binary already built by scripts/test-binaries.sh, else undefined (any recent one works). */
function cachedBinary(name) {
  try {
    return testBinary(name);
  } catch {
    return undefined;
  }
}
const kubectl = cachedBinary('kubectl');
const helm = cachedBinary('helm');
const setK = kubectl ? `K=${kubectl}` : 'K=kubectl   # none built (scripts/test-binaries.sh kubectl builds the pinned one)';
const setH = helm ? `H=${helm}` : 'H=helm      # none built (scripts/test-binaries.sh helm builds the pinned one)';

process.stdout.write(`
local cluster ready
  API server   ${cluster.server}
  NATS         ${nats.url}
  kubectl      ${kubectl ?? '(not built: scripts/test-binaries.sh kubectl)'}
  helm         ${helm ?? '(not built: scripts/test-binaries.sh helm)'}
  chart        ${chart}  (a copy of charts/switchyard made now, with a stand-in for the NATS dependency)

Either run the operator from this checkout, in another terminal:
  export KUBECONFIG=${cluster.kubeconfigPath}
  npm run operator -- --settings ${settings}
and in a third:
  export KUBECONFIG=${cluster.kubeconfigPath}
  ${setK}
  $K apply -f examples/ -f examples/cluster/ingestion.yaml
  $K get integrations,sources,mappings,deployments,pods -A

or install the operator and the ingestion with the Helm chart, in another terminal:
  export KUBECONFIG=${cluster.kubeconfigPath}
  ${setK}
  ${setH}
  $H install switchyard ${chart} -n switchyard-system --set crds.install=false \\
    --set 'natsConnection.servers={${nats.url}}'
  $K apply -f examples/
  $K get integrations,sources,mappings,deployments,pods -A
(crds.install=false: the CRDs of crds/ are installed already.)

Pods run here as processes; their ports are printed below as they start. Ctrl-C stops everything.
`);

const announced = new Set();
const timer = setInterval(() => {
  for (const p of node.processes()) {
    for (const port of p.ports) {
      const key = `${p.namespace}/${p.pod}/${p.container}/${port.containerPort}`;
      if (p.state !== 'running' || announced.has(key)) continue;
      announced.add(key);
      process.stdout.write(`pod ${p.namespace}/${p.pod} ${p.container}: port ${port.containerPort} → http://127.0.0.1:${port.localPort}  (log ${p.logFile})\n`);
    }
  }
}, 1000);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  await node.stop();
  await nats.stop();
  await cluster.stop();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
