// `npm run bench`, the clients: (1) the Node SDK (`@switchyard/client`, in this process) sending
// track events to a real `switchyard ingest` and nats-server (child processes, as in pipeline.ts):
// events/s, CPU seconds and peak RSS of each process, and the count stored in the events stream;
// (2) `GET /tag/<writeKey>.js` (brotli) from 16 connections: requests/s, p50/p99, and the tag's
// minified and gzipped size. Prints figures only. Not part of the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Analytics, ANALYTICS_DEFAULTS, type Callback } from '@switchyard/client';
import { Pool } from 'undici';
import { freePort, startNatsServer } from '../local/nats-server.js';
import { benchEvent, cpuSeconds, peakRssMb, percentile, waitForHttp } from './shared.js';

const SDK_EVENTS = Number(process.env.BENCH_SDK_EVENTS ?? 100_000);
const FLUSH_AT = 100;
// The SDK's maxInFlight (default 1: call order kept).
const IN_FLIGHT = Number(process.env.BENCH_SDK_IN_FLIGHT ?? 1);
const TAG_REQUESTS = Number(process.env.BENCH_TAG_REQUESTS ?? 20_000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WRITE_KEY = 'wk_bench_0000000001';
const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/switchyard.js');

const ownCpuSeconds = () => (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
const round2 = (n: number) => Number(n.toFixed(2));

const tmp = await mkdtemp(path.join(os.tmpdir(), 'switchyard-bench-'));
const nats = await startNatsServer();
let ingest: ChildProcess | undefined;
try {
  const settingsFile = path.join(tmp, 'settings.json');
  await writeFile(settingsFile, JSON.stringify({ nats: { servers: [nats.url] }, streams: { events: { duplicateWindow: '2m' } } }));
  const sourcesFile = path.join(tmp, 'sources.json');
  const limits = { eventsPerSecond: 10_000_000, burst: 100_000_000, maxEventBytes: 32768, maxBatchBytes: 512000 };
  await writeFile(sourcesFile, JSON.stringify({ sources: [{ namespace: 'bench', name: 'web', writeKey: WRITE_KEY, allowedOrigins: [], limits }] }));
  const port = await freePort();
  const host = `http://127.0.0.1:${port}`;
  ingest = spawn(process.execPath, [cli, 'ingest', '--sources', sourcesFile, '--settings', settingsFile, '--port', String(port), '--host', '127.0.0.1'], { env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: 'inherit' });
  await waitForHttp(`${host}/readyz`, ingest);

  // 1. Node SDK → ingestion. The SDK refuses calls beyond maxQueueSize (10000) held events, so the
  // loop waits for callbacks when that many (less one batch, still counted in flight) are unsettled.
  const ingestCpu0 = cpuSeconds(ingest.pid!);
  const natsCpu0 = cpuSeconds(nats.process.pid!);
  const ownCpu0 = ownCpuSeconds();
  const analytics = new Analytics({ writeKey: WRITE_KEY, host, flushAt: FLUSH_AT, maxInFlight: IN_FLIGHT });
  let settled = 0;
  let failed = 0;
  let wake: (() => void) | undefined;
  const callback: Callback = (error) => {
    settled++;
    if (error) failed++;
    wake?.();
    wake = undefined;
  };
  analytics.on('error', () => undefined); // counted by the callbacks
  const started = performance.now();
  for (let i = 0; i < SDK_EVENTS; i++) {
    while (i - settled >= ANALYTICS_DEFAULTS.maxQueueSize - FLUSH_AT) await new Promise<void>((r) => (wake = r));
    // The SDK sets type and context.library itself.
    const { type: _type, ...call } = benchEvent(i);
    analytics.track(call, callback);
  }
  const { undelivered } = await analytics.closeAndFlush({ timeout: 120_000 });
  const sdkSeconds = (performance.now() - started) / 1000;
  const sdkCpu = ownCpuSeconds() - ownCpu0;
  const sdkRss = process.resourceUsage().maxRSS / 1024;
  const ingestCpu = cpuSeconds(ingest.pid!) - ingestCpu0;
  const natsCpu = cpuSeconds(nats.process.pid!) - natsCpu0;
  const nc = await connect({ servers: nats.url });
  const stored = (await (await jetstreamManager(nc)).streams.info('EVENTS')).state.messages;
  await nc.close();

  // 2. The tag, as browsers fetch it (brotli); the first request renders and compresses it, untimed.
  const tagPath = `/tag/${WRITE_KEY}.js`;
  const pool = new Pool(host, { connections: CONNECTIONS, pipelining: 1 });
  const get = () => pool.request({ method: 'GET', path: tagPath, headers: { 'accept-encoding': 'br' } });
  const first = await get();
  const servedBrBytes = (await first.body.arrayBuffer()).byteLength;
  if (first.statusCode !== 200 || first.headers['content-encoding'] !== 'br') throw new Error(`${tagPath} answered ${first.statusCode} (${String(first.headers['content-encoding'])})`);
  const tagIngestCpu0 = cpuSeconds(ingest.pid!);
  const latencies: number[] = [];
  let next = 0;
  const tagStarted = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (next++ < TAG_REQUESTS) {
        const t0 = performance.now();
        const res = await get();
        await res.body.arrayBuffer();
        if (res.statusCode !== 200) throw new Error(`${tagPath} answered ${res.statusCode}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const tagSeconds = (performance.now() - tagStarted) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const minified = readFileSync(createRequire(import.meta.url).resolve('@switchyard/client/tag'));

  const figures = {
    sdk: {
      events: SDK_EVENTS,
      flushAt: FLUSH_AT,
      maxInFlight: IN_FLIGHT,
      eventsPerSecond: Math.round(SDK_EVENTS / sdkSeconds),
      seconds: round2(sdkSeconds),
      failedCallbacks: failed,
      undelivered: undelivered.length,
      storedInStream: stored,
      allStored: stored === SDK_EVENTS && failed === 0 && undelivered.length === 0,
      cpuSeconds: { sdkProcess: round2(sdkCpu), ingest: round2(ingestCpu), natsServer: round2(natsCpu) },
      peakRssMb: { sdkProcess: Number(sdkRss.toFixed(1)), ingest: Number(peakRssMb(ingest.pid!).toFixed(1)), natsServer: Number(peakRssMb(nats.process.pid!).toFixed(1)) },
    },
    tag: {
      requests: TAG_REQUESTS,
      connections: CONNECTIONS,
      requestsPerSecond: Math.round(TAG_REQUESTS / tagSeconds),
      p50Ms: round2(percentile(latencies, 50)),
      p99Ms: round2(percentile(latencies, 99)),
      ingestCpuSeconds: round2(cpuSeconds(ingest.pid!) - tagIngestCpu0),
      servedBrotliBytes: servedBrBytes,
      minifiedBytes: minified.length,
      gzip9Bytes: gzipSync(minified, { level: 9 }).length,
    },
  };
  console.log(JSON.stringify(figures, null, 2));
  if (!figures.sdk.allStored) process.exitCode = 1;
} finally {
  if (ingest && ingest.exitCode === null) {
    const exited = new Promise((r) => ingest!.once('exit', r));
    ingest.kill('SIGTERM');
    await exited;
  }
  await nats.stop();
  await rm(tmp, { recursive: true, force: true });
}
