// The Argo CD health check (charts/switchyard/argocd/health.lua) run by gopher-lua, the Lua VM Argo
// CD runs health checks with, on Switchyard resources as the real operator left them in the suite's
// API server; and the examples/argocd files that install it.
import { jest } from '@jest/globals';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import type { Operator } from '../../operator/src/controller.js';
import { createTestNamespace, deleteTestNamespace, testKubeConfig, waitFor } from '../../operator/src/test-support/kube.js';
import { condition, createResource, getResource, patchResource, startTestOperator, testOperatorSettings } from '../../operator/src/test-support/operator.js';
import { useNatsFixture } from '../../runtime/src/test-support/nats.js';
import { CHART_DIR, renderChart } from './helm.js';
import { runTool, testBinary } from './tools.js';

jest.setTimeout(90_000);

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HEALTH_LUA = path.join(CHART_DIR, 'argocd/health.lua');
const KINDS = ['Integration', 'Source', 'Mapping'] as const;
const HEALTH_STATUSES = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing'];

/** A Lua string literal of `s`: printable ASCII as is, every other byte (and `"`, `\`) as a decimal escape. */
function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${out}"`;
}

/**
 * A JSON value as a Lua table constructor, the shape Argo CD hands a health script: objects become
 * tables keyed by string, arrays sequences from index 1, null nil (so the key is absent).
 * @throws Error for numbers JSON cannot hold (NaN, Infinity).
 */
function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`not a JSON number: ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined);
  return `{${entries.map(([k, v]) => `[${luaString(k)}] = ${luaLiteral(v)}`).join(', ')}}`;
}

let scratch: string;
let healthScript: string;
let glua: string;
let runs = 0;

/** Argo CD's verdict on one object: `hs.status` and `hs.message` of health.lua. */
interface Health {
  status: string;
  message: string;
}

/**
 * Runs health.lua with glua on `obj` the way Argo CD does: `obj` a global table, the script's
 * returned table read back. Resolves to its status and message.
 * @throws Error with glua's output when the script fails or returns no status.
 */
async function health(obj: Record<string, unknown>): Promise<Health> {
  const file = path.join(scratch, `case-${runs++}.lua`);
  // Wrapped in a function because the script ends in a top-level `return`, as Argo CD expects.
  await writeFile(file, `obj = ${luaLiteral(obj)}\nlocal hs = (function()\n${healthScript}\nend)()\nio.write(tostring(hs.status), "\\n", tostring(hs.message))\n`);
  const { stdout, stderr, code } = await runTool(glua, [file]);
  if (code !== 0) throw new Error(`glua exited ${code}: ${stderr.trim() || stdout.trim()}`);
  const newline = stdout.indexOf('\n');
  const result = { status: stdout.slice(0, newline), message: stdout.slice(newline + 1) };
  if (!HEALTH_STATUSES.includes(result.status)) throw new Error(`health.lua returned status ${JSON.stringify(result.status)} (message ${JSON.stringify(result.message)})`);
  return result;
}

const nats = useNatsFixture();
let kc: KubeConfig;
let ns: string;
let operator: Operator | undefined;
/** Objects as the API server answered their creation, before the operator ran. */
const beforeOperator: Record<string, Record<string, any>> = {};

const orders = { kind: 'Mapping', metadata: { name: 'orders' }, spec: { default: { fields: [{ to: 'event', from: '$name' }] } } };
// Admission cannot check this index bound; the Mapping compiler refuses it, naming the rule.
const broken = { kind: 'Mapping', metadata: { name: 'broken' }, spec: { default: { fields: [{ to: 'items[99999999]', from: 'b' }] } } };
const integration = (name: string, spec: Record<string, unknown> = {}) => ({
  kind: 'Integration',
  metadata: { name },
  spec: { sourceRefs: [{ name: 'web' }], mappingRef: { name: 'orders' }, destination: { type: 'webhook', webhook: { url: 'http://127.0.0.1:9/hook' } }, ...spec },
});
const source = (name: string, secret: string) => ({ kind: 'Source', metadata: { name }, spec: { writeKey: { secretKeyRef: { name: secret, key: 'writeKey' } } } });

beforeAll(async () => {
  glua = testBinary('glua');
  healthScript = await readFile(HEALTH_LUA, 'utf8');
  scratch = await mkdtemp(path.join(os.tmpdir(), 'switchyard-health-'));
  kc = testKubeConfig();
  ns = await createTestNamespace(kc, 'argocd');
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'web-write-key' }, stringData: { writeKey: 'wk_argocd_web' } } });
  for (const body of [orders, broken, integration('rolling'), integration('no-mapping', { mappingRef: { name: 'absent' } }), integration('paused', { paused: true }), source('web', 'web-write-key'), source('keyless', 'absent')]) {
    beforeOperator[`${body.kind}/${body.metadata.name}`] = await createResource(kc, ns, body);
  }
  operator = await startTestOperator(kc, testOperatorSettings(ns, nats.fx.nats, nats.fx.streams));
});

afterAll(async () => {
  await operator?.stop();
  if (kc && ns) await deleteTestNamespace(kc, ns);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The resource once the operator has written a Ready condition for its current generation. */
async function reconciled(plural: string, name: string, until: (r: Record<string, any>) => boolean = () => true): Promise<Record<string, any>> {
  return waitFor(async () => {
    const r = await getResource(kc, plural, ns, name);
    return r && r.status?.observedGeneration === r.metadata.generation && condition(r, 'Ready') && until(r) ? r : undefined;
  }, { what: `${plural}/${name} reconciled` });
}

describe('health.lua on resources the operator reconciled', () => {
  test('a resource without status yet is Progressing', async () => {
    for (const kind of KINDS) {
      const created = Object.entries(beforeOperator).find(([key]) => key.startsWith(`${kind}/`))![1];
      expect(created.status).toBeUndefined();
      expect(await health(created)).toEqual({ status: 'Progressing', message: 'waiting for the operator to report a status' });
    }
  });

  test('a Mapping that compiles is Healthy; an invalid one is Degraded naming the rule', async () => {
    const good = await health(await reconciled('mappings', 'orders'));
    expect(good.status).toBe('Healthy');
    expect(good.message).toMatch(/^Compiled: compiled; used by \d+ Integrations?$/);
    const bad = await health(await reconciled('mappings', 'broken'));
    expect(bad.status).toBe('Degraded');
    expect(bad.message).toMatch(/^MappingInvalid: /);
    expect(bad.message).toContain('/default/fields/0/to');
  });

  test('a Source with its write key is Healthy; one whose Secret is missing is Degraded', async () => {
    expect(await health(await reconciled('sources', 'web'))).toEqual({ status: 'Healthy', message: "Ready: the write key is in the ingestion's sources Secret" });
    const keyless = await health(await reconciled('sources', 'keyless'));
    expect(keyless.status).toBe('Degraded');
    expect(keyless.message).toMatch(/^SecretNotFound: /);
  });

  test('an Integration whose Mapping is missing is Degraded until the Mapping arrives', async () => {
    const missing = await health(await reconciled('integrations', 'no-mapping'));
    expect(missing.status).toBe('Degraded');
    expect(missing.message).toContain(`MappingNotFound: MappingResolved: Mapping absent not found in namespace ${ns}`);
    await createResource(kc, ns, { ...orders, metadata: { name: 'absent' } });
    const resolved = await reconciled('integrations', 'no-mapping', (r) => condition(r, 'MappingResolved')?.status === 'True');
    expect(await health(resolved)).toMatchObject({ status: 'Progressing', message: expect.stringMatching(/^RolloutInProgress: /) });
  });

  test('an Integration whose forwarder pods are rolling out is Progressing, with its backlog', async () => {
    // No kubelet in the suite's cluster: the forwarder pods never become available.
    const rolling = await reconciled('integrations', 'rolling', (r) => condition(r, 'ConsumerReady')?.status === 'True' && r.status.backlog !== undefined);
    expect(condition(rolling, 'Ready')).toMatchObject({ status: 'False', reason: 'RolloutInProgress' });
    const verdict = await health(rolling);
    expect(verdict.status).toBe('Progressing');
    expect(verdict.message).toMatch(/^RolloutInProgress: DeploymentAvailable: .* \(backlog 0\)$/);
  });

  test('a paused Integration is Suspended', async () => {
    const paused = await reconciled('integrations', 'paused', (r) => condition(r, 'Ready')?.reason === 'Paused');
    const verdict = await health(paused);
    expect(verdict.status).toBe('Suspended');
    expect(verdict.message).toMatch(/^Paused: delivery paused; events wait in the stream/);
  });

  test('conditions the suite cannot provoke, on a real Integration: Unknown, stale, deleting, NATS down', async () => {
    const base = await reconciled('integrations', 'rolling');
    const generation = base.metadata.generation as number;
    const withReady = (ready: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({
      ...base,
      metadata: { ...base.metadata, ...metadata },
      status: { ...base.status, conditions: base.status.conditions.map((c: { type: string }) => (c.type === 'Ready' ? { ...c, ...ready } : c)) },
    });
    expect(await health(withReady({ status: 'True', reason: 'Ready', message: 'all conditions are met' }))).toEqual({ status: 'Healthy', message: 'Ready: all conditions are met (backlog 0)' });
    expect((await health(withReady({ status: 'Unknown', reason: 'Reconciling', message: 'starting' }))).status).toBe('Progressing');
    expect(await health(withReady({ observedGeneration: generation - 1 }, { generation }))).toMatchObject({ status: 'Progressing', message: `Ready is from generation ${generation - 1}; waiting for generation ${generation}` });
    expect(await health(withReady({ status: 'False', reason: 'NatsUnavailable', message: 'ConsumerReady: connection refused' }))).toMatchObject({ status: 'Degraded' });
    expect(await health(withReady({ status: 'False', reason: 'ProgressDeadlineExceeded', message: 'stuck' }))).toMatchObject({ status: 'Degraded' });
    // A condition without a message shows its reason alone.
    expect(await health(withReady({ status: 'False', reason: 'RolloutInProgress', message: '' }))).toEqual({ status: 'Progressing', message: 'RolloutInProgress (backlog 0)' });
    expect((await health(withReady({ status: 'True', reason: 'Ready' }, { deletionTimestamp: '2026-01-01T00:00:00Z' }))).message).toMatch(/^deleting; /);
    const withoutReady = { ...base, status: { ...base.status, conditions: base.status.conditions.filter((c: { type: string }) => c.type !== 'Ready') } };
    expect(await health(withoutReady)).toEqual({ status: 'Progressing', message: 'waiting for the Ready condition' });
  });

  // Last: it stops the operator.
  test('a resource just changed, whose status is from the previous generation, is Progressing', async () => {
    const before = await reconciled('mappings', 'orders');
    expect((await health(before)).status).toBe('Healthy');
    await operator!.stop();
    operator = undefined;
    const changed = await patchResource(kc, 'mappings', ns, 'orders', { spec: { default: { fields: [{ to: 'name', from: '$name' }] } } });
    expect(changed.metadata.generation).toBe(before.metadata.generation + 1);
    expect(changed.status.observedGeneration).toBe(before.metadata.generation);
    expect(await health(changed)).toEqual({ status: 'Progressing', message: `waiting for the operator to see generation ${changed.metadata.generation}` });
  });
});

describe('examples/argocd', () => {
  const example = (file: string) => readFile(path.join(repoRoot, 'examples/argocd', file), 'utf8');

  test('argocd-cm.yaml holds health.lua, unchanged, for each Switchyard kind', async () => {
    const cm = parse(await example('argocd-cm.yaml')) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    expect(cm).toMatchObject({ kind: 'ConfigMap', metadata: { name: 'argocd-cm' } });
    const script = await readFile(HEALTH_LUA, 'utf8');
    for (const kind of KINDS) {
      // On a difference: copy charts/switchyard/argocd/health.lua into the key, indented by 4 spaces.
      expect(cm.data[`resource.customizations.health.switchyard.io_${kind}`]).toBe(script);
    }
  });

  test('application.yaml installs the chart with server-side apply, and the resources after it', async () => {
    const apps = parseAllDocuments(await example('application.yaml')).map((d) => d.toJS() as Record<string, any>);
    expect(apps.map((a) => a.kind)).toEqual(['Application', 'Application']);
    const [chart, resources] = apps as [Record<string, any>, Record<string, any>];
    expect(chart.spec.source.path).toBe('charts/switchyard');
    expect(resources.spec.source.path).toBe('examples');
    for (const app of apps) expect(app.spec.syncPolicy.syncOptions).toEqual(expect.arrayContaining(['ServerSideApply=true', 'CreateNamespace=true']));
    expect(Number(chart.metadata.annotations['argocd.argoproj.io/sync-wave'])).toBeLessThan(Number(resources.metadata.annotations['argocd.argoproj.io/sync-wave']));
    // The values it sets are the chart's: the schema refuses unknown keys.
    const { objects } = await renderChart({ values: [chart.spec.source.helm.valuesObject], apiVersions: ['monitoring.coreos.com/v1'] });
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['Ingress', 'ServiceMonitor', 'PodMonitor']) expect(kinds).toContain(kind);
  });
});
