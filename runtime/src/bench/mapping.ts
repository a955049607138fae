// `npm run bench`: the GA4 example Mapping (examples/mappings/ga4-ecommerce.yaml) applied to the
// test fixture events (runtime/src/test-support/fixtures/events/*.json) on one thread, with no I/O.
// Compiles once, warms up, then times batches of BENCH_MAPPING_BATCH applies of one fixture at a
// time, round-robin over the fixtures, for BENCH_MAPPING_SECONDS. Prints events/s on one core (the
// fixtures weighted equally, per wall second and per CPU second of this thread, which is steadier
// on a busy machine; and the mapped fixtures only), ns/event p50/p99 per fixture (from the batch
// times), heap and RSS after the run, and the compile time. Goal: > 200,000 events/s per core for
// the whole mapping. Not part of the tests.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Mapping } from '../api/index.js';
import { formatResourceProblems, loadResources } from '../api/resources.js';
import { compileMapping, type MappingResult, type SegmentEvent } from '../mapping/index.js';

const SECONDS = Number(process.env.BENCH_MAPPING_SECONDS ?? 2);
const BATCH = Number(process.env.BENCH_MAPPING_BATCH ?? 1000);
const WARMUP_APPLIES = Number(process.env.BENCH_MAPPING_WARMUP ?? 20_000);
const COMPILE_RUNS = 20;

// src/bench and dist/bench sit at the same depth under runtime/, so these resolve from both.
const here = path.dirname(fileURLToPath(import.meta.url));
const mappingFile = path.resolve(here, '../../../examples/mappings/ga4-ecommerce.yaml');
const fixturesDir = path.resolve(here, '../../src/test-support/fixtures/events');

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** What a result is, for the report: the output name, `dropped: <reason>` or `failed: <field>`. */
function outcome(result: MappingResult): string {
  if (result.ok) return result.name;
  return result.dropped ? `dropped: ${result.dropped}` : `failed: ${result.failed!.field}`;
}

const loaded = await loadResources([mappingFile]);
if (loaded.problems.length > 0) throw new Error(`${mappingFile}:\n${formatResourceProblems(loaded.problems)}`);
const spec = (loaded.resources[0]!.resource as Mapping).spec;

// The first compile also builds the spec validator and the CEL environment; later ones do not.
let t0 = process.hrtime.bigint();
let mapping = compileMapping(spec);
const firstCompileMs = Number(process.hrtime.bigint() - t0) / 1e6;
const compileMs: number[] = [];
for (let i = 0; i < COMPILE_RUNS; i++) {
  t0 = process.hrtime.bigint();
  mapping = compileMapping(spec);
  compileMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
compileMs.sort((a, b) => a - b);

const fixtures = readdirSync(fixturesDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const event = JSON.parse(readFileSync(path.join(fixturesDir, f), 'utf8')) as SegmentEvent;
    return { name: f.replace(/\.json$/, ''), event, outcome: outcome(mapping.apply(event)), batchNs: [] as number[], cpuNs: 0, applies: 0 };
  });

// Results go into a sink so the optimizer cannot drop the work.
let sink = 0;
for (let i = 0; i < WARMUP_APPLIES; i++) sink += mapping.apply(fixtures[i % fixtures.length]!.event).ok ? 1 : 0;

const heapBefore = process.memoryUsage().heapUsed;
sink = 0;
let applies = 0;
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
const deadline = started + BigInt(Math.round(SECONDS * 1e9));
while (process.hrtime.bigint() < deadline) {
  for (const f of fixtures) {
    const event = f.event;
    const c0 = process.cpuUsage();
    const b0 = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) sink += mapping.apply(event).ok ? 1 : 0;
    f.batchNs.push(Number(process.hrtime.bigint() - b0) / BATCH);
    const c = process.cpuUsage(c0);
    f.cpuNs += (c.user + c.system) * 1000;
    f.applies += BATCH;
    applies += BATCH;
  }
}
const elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
// CPU time is what this thread really got; on a busy machine it is less than the wall time.
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const memory = process.memoryUsage();

const mapped = fixtures.filter((f) => !f.outcome.startsWith('dropped'));
/** Mean ns per event over fixtures weighted equally: wall time, or CPU time. */
const meanNs = (list: typeof fixtures) => list.reduce((sum, f) => sum + f.batchNs.reduce((a, b) => a + b, 0) / f.batchNs.length, 0) / list.length;
const meanCpuNs = (list: typeof fixtures) => list.reduce((sum, f) => sum + f.cpuNs / f.applies, 0) / list.length;
const figures = {
  mapping: path.relative(process.cwd(), mappingFile),
  fixtures: fixtures.length,
  seconds: Number(elapsedSeconds.toFixed(2)),
  batch: BATCH,
  applies,
  mappedApplies: sink,
  cpuSeconds: Number(cpuSeconds.toFixed(2)),
  eventsPerSecondPerCore: Math.round(applies / elapsedSeconds),
  eventsPerCpuSecond: Math.round(applies / cpuSeconds),
  mappedEventsPerSecondPerCore: Math.round(1e9 / meanNs(mapped)),
  mappedEventsPerCpuSecond: Math.round(1e9 / meanCpuNs(mapped)),
  perFixture: Object.fromEntries(
    fixtures.map((f) => {
      const sorted = [...f.batchNs].sort((a, b) => a - b);
      return [f.name, { outcome: f.outcome, p50Ns: Math.round(percentile(sorted, 50)), p99Ns: Math.round(percentile(sorted, 99)), cpuNs: Math.round(f.cpuNs / f.applies) }];
    }),
  ),
  compileMs: { first: Number(firstCompileMs.toFixed(2)), p50: Number(percentile(compileMs, 50).toFixed(2)) },
  heapUsedMb: Number((memory.heapUsed / 1048576).toFixed(1)),
  heapGrowthMb: Number(((memory.heapUsed - heapBefore) / 1048576).toFixed(1)),
  rssMb: Number((memory.rss / 1048576).toFixed(1)),
};
console.log(JSON.stringify(figures, null, 2));
