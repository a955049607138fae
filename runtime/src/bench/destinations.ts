// `npm run bench` (last part): the CPU cost of each vendor destination on one thread, with no I/O.
// For every destination type with a starter Mapping, the starter is compiled and applied to the
// project's fixture events (runtime/src/test-support/fixtures/events/*.json); the mapped payloads
// fill sends of the type's default batch size, and each send is checked against the output schema
// and built into vendor requests (URL, headers, JSON body) with the clock pinned after the
// fixtures' timestamps. Prints, per type, mapped events/s and built events/s on one core,
// µs per send (p50, p99), requests per send and body bytes per event. Not part of the tests.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Integration, Mapping } from '../api/index.js';
import { DEFINITIONS, settingsOf, type DestinationDefinition, type RequestContext } from '../destinations/index.js';
import { compileIntegrationRoute } from '../forward/route.js';
import type { SegmentEvent } from '../mapping/index.js';

const SECONDS = Number(process.env.BENCH_DESTINATIONS_SECONDS ?? 1);
const NOW = Date.parse('2026-11-20T15:10:00.000Z');

// src/bench and dist/bench sit at the same depth under runtime/, so this resolves from both.
const here = path.dirname(fileURLToPath(import.meta.url));
const fixturesDir = path.resolve(here, '../../src/test-support/fixtures/events');
const events = readdirSync(fixturesDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(path.join(fixturesDir, f), 'utf8')) as SegmentEvent);

/** Settings that make each type's requests buildable (ids in the vendors' formats). */
const SETTINGS: Record<string, Record<string, unknown>> = {
  ga4: { measurementId: 'G-BENCH12345' },
  'meta-capi': { pixelId: '1234567890123456' },
  tiktok: { pixelCode: 'CBENCH0123456789ABCD' },
  'google-ads': { customerId: '1234567890', conversionActions: { purchase: '987654321' } },
  pinterest: { adAccountId: '549755885175' },
  snapchat: { pixelId: '0f3d5b8e-1c2a-4e6b-9d7f-3a5c7e9b1d2f' },
  amplitude: {},
};
const CREDENTIALS: Record<string, Record<string, string>> = {
  ga4: { api_secret: 'bench' },
  'meta-capi': { access_token: 'bench' },
  tiktok: { access_token: 'bench' },
  'google-ads': { developer_token: 'bench', access_token: 'bench' },
  pinterest: { access_token: 'bench' },
  snapchat: { access_token: 'bench' },
  amplitude: { api_key: 'bench' },
};

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function bench(definition: DestinationDefinition): Promise<Record<string, unknown>> {
  const mapping = parse(readFileSync(definition.starterMapping!, 'utf8')) as Mapping;
  const integration = {
    apiVersion: 'switchyard.io/v1alpha1',
    kind: 'Integration',
    metadata: { name: 'bench', namespace: 'default' },
    spec: {
      sourceRefs: [{ name: 'web' }],
      mappingRef: { name: mapping.metadata.name },
      destination: { type: definition.type, [definition.settingsField]: SETTINGS[definition.type] },
      events: { types: ['track', 'page', 'screen', 'identify', 'group', 'alias'] },
      consent: { categories: [] },
      delivery: { concurrency: 1, timeout: '10s', retrySchedule: [], circuitBreaker: { failures: 0, halfOpenAfter: '1s' } },
      forwarder: { replicas: 1 },
      paused: false,
    },
  } as unknown as Integration;
  const route = compileIntegrationRoute(integration, mapping);
  const mapped = events.map((e) => route.mapping.apply(e)).filter((r) => r.ok);
  if (mapped.length === 0) return { mappedFixtures: 0 };
  const batchSize = definition.batch.default;
  const send = Array.from({ length: batchSize }, (_, i) => mapped[i % mapped.length]!.payload);
  const ctx: RequestContext<unknown> = {
    settings: settingsOf(definition, integration.spec.destination[definition.settingsField as keyof Integration['spec']['destination']], 'bench'),
    credentials: CREDENTIALS[definition.type] ?? {},
    now: NOW,
    integration: 'default/bench',
    batchSize,
    cache: new Map(),
    fetch: () => Promise.reject(new Error('no I/O in the benchmark')),
  };

  // Map: every fixture, the dropped ones included, as the forwarder does.
  let mappedCount = 0;
  let start = process.hrtime.bigint();
  let applies = 0;
  const mapDeadline = start + BigInt(Math.round(SECONDS * 1e9));
  while (process.hrtime.bigint() < mapDeadline) {
    for (const e of events) {
      const r = route.mapping.apply(e);
      if (r.ok && !route.validateOutput?.(r.payload)) mappedCount++;
      applies++;
    }
  }
  const mapSeconds = Number(process.hrtime.bigint() - start) / 1e9;

  // Build: sends of the default batch size.
  const sendUs: number[] = [];
  let built = 0;
  let requests = 0;
  let bytes = 0;
  start = process.hrtime.bigint();
  const buildDeadline = start + BigInt(Math.round(SECONDS * 1e9));
  while (process.hrtime.bigint() < buildDeadline) {
    const t0 = process.hrtime.bigint();
    for (const p of send) definition.refuse?.(p, ctx);
    const out = await definition.buildRequests(send, ctx);
    sendUs.push(Number(process.hrtime.bigint() - t0) / 1000);
    built += send.length;
    requests += out.length;
    bytes += out.reduce((n, r) => n + Buffer.byteLength(r.body), 0);
  }
  const buildSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  sendUs.sort((a, b) => a - b);
  return {
    mappedFixtures: `${mapped.length}/${events.length}`,
    mapEventsPerSecond: Math.round(applies / mapSeconds),
    mappedValidEvents: mappedCount > 0,
    batchSize,
    buildEventsPerSecond: Math.round(built / buildSeconds),
    sendUsP50: Number(percentile(sendUs, 50).toFixed(1)),
    sendUsP99: Number(percentile(sendUs, 99).toFixed(1)),
    requestsPerSend: Number((requests / sendUs.length).toFixed(2)),
    bodyBytesPerEvent: Math.round(bytes / built),
  };
}

const figures: Record<string, unknown> = {};
for (const definition of Object.values(DEFINITIONS)) {
  if (!definition.starterMapping) continue;
  figures[definition.type] = await bench(definition);
}
const memory = process.memoryUsage();
console.log(JSON.stringify({ destinations: figures, seconds: SECONDS, heapUsedMb: Number((memory.heapUsed / 1048576).toFixed(1)), rssMb: Number((memory.rss / 1048576).toFixed(1)) }, null, 2));
