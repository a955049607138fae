// `npm run bench`: the whole pipeline on loopback, in separate processes as in a cluster:
// nats-server (pinned build), `switchyard ingest`, `switchyard forward`, and this process as load
// generator and webhook receiver (answers at once). Prints events/s end to end, ingest latency
// p50/p99 per batch request, and CPU seconds and peak RSS per process. Not part of the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { freePort, startNatsServer } from '../local/nats-server.js';
import { benchEvent, cpuSeconds, peakRssMb, percentile, waitForHttp } from './shared.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const BATCH = 100;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WRITE_KEY = 'wk_bench_0000000001';
// Extra node flags for the ingest and forward processes, e.g. BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
const NODE_ARGS = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const cli = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/switchyard.js');

const tmp = await mkdtemp(path.join(os.tmpdir(), 'switchyard-bench-'));
const nats = await startNatsServer();
const children: ChildProcess[] = [];
try {
  let received = 0;
  let allReceived!: () => void;
  const done = new Promise<void>((r) => (allReceived = r));
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { batch?: unknown[] };
      received += body.batch?.length ?? 1;
      res.writeHead(200).end();
      if (received >= EVENTS) allReceived();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverPort = (receiver.address() as { port: number }).port;

  const settingsFile = path.join(tmp, 'settings.json');
  await writeFile(settingsFile, JSON.stringify({ nats: { servers: [nats.url] }, streams: { events: { duplicateWindow: '2m' } } }));
  const sourcesFile = path.join(tmp, 'sources.json');
  await writeFile(
    sourcesFile,
    JSON.stringify({ sources: [{ namespace: 'bench', name: 'web', writeKey: WRITE_KEY, allowedOrigins: [], limits: { eventsPerSecond: 10_000_000, burst: 100_000_000, maxEventBytes: 32768, maxBatchBytes: 512000 } }] }),
  );
  const forwarderFile = path.join(tmp, 'forwarder.json');
  await writeFile(
    forwarderFile,
    JSON.stringify({
      integration: {
        apiVersion: 'switchyard.io/v1alpha1',
        kind: 'Integration',
        metadata: { name: 'bench-webhook', namespace: 'bench' },
        spec: {
          sourceRefs: [{ name: 'web' }],
          mappingRef: { name: 'bench' },
          destination: { type: 'webhook', webhook: { url: `http://127.0.0.1:${receiverPort}/hook` } },
          delivery: { batchSize: BATCH, concurrency: 16 },
        },
      },
      mapping: {
        apiVersion: 'switchyard.io/v1alpha1',
        kind: 'Mapping',
        metadata: { name: 'bench', namespace: 'bench' },
        spec: {
          global: { fields: [{ to: 'event', from: '$name' }, { to: 'user_id', from: 'userId' }, { to: 'message_id', from: 'messageId' }] },
          eventSpecific: {
            'Order Completed': {
              rename: 'purchase',
              fields: [
                { to: 'value', from: 'properties.revenue' },
                { to: 'currency', from: 'properties.currency' },
                { to: 'items', from: 'properties.products', each: [{ to: 'id', from: 'product_id' }, { to: 'price', from: 'price' }] },
              ],
            },
          },
        },
      },
    }),
  );

  const ingestPort = await freePort();
  const metricsPort = await freePort();
  const env = { ...process.env, LOG_LEVEL: 'warn' };
  const ingest = spawn(process.execPath, [...NODE_ARGS, cli, 'ingest', '--sources', sourcesFile, '--settings', settingsFile, '--port', String(ingestPort), '--host', '127.0.0.1'], { env, stdio: 'inherit' });
  children.push(ingest);
  await waitForHttp(`http://127.0.0.1:${ingestPort}/readyz`, ingest);
  const forward = spawn(process.execPath, [...NODE_ARGS, cli, 'forward', '--config', forwarderFile, '--settings', settingsFile, '--create-consumer', '--metrics-port', String(metricsPort)], { env, stdio: 'inherit' });
  children.push(forward);
  await waitForHttp(`http://127.0.0.1:${metricsPort}/readyz`, forward);

  const pool = new Pool(`http://127.0.0.1:${ingestPort}`, { connections: CONNECTIONS, pipelining: 1 });
  const auth = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < EVENTS) {
      const from = next;
      next += BATCH;
      const batch = Array.from({ length: Math.min(BATCH, EVENTS - from) }, (_, k) => benchEvent(from + k));
      const body = JSON.stringify({ batch, sentAt: new Date().toISOString() });
      const t0 = performance.now();
      const res = await pool.request({ method: 'POST', path: '/v1/batch', headers: { authorization: auth, 'content-type': 'application/json' }, body });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}`);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const ingested = performance.now();
  await done;
  const finished = performance.now();
  latencies.sort((a, b) => a - b);

  const figures = {
    events: EVENTS,
    batchSize: BATCH,
    connections: CONNECTIONS,
    ingestEventsPerSecond: Math.round(EVENTS / ((ingested - started) / 1000)),
    endToEndEventsPerSecond: Math.round(EVENTS / ((finished - started) / 1000)),
    ingestP50Ms: Number(percentile(latencies, 50).toFixed(2)),
    ingestP99Ms: Number(percentile(latencies, 99).toFixed(2)),
    cpuSeconds: {
      ingest: cpuSeconds(ingest.pid!),
      forward: cpuSeconds(forward.pid!),
      natsServer: cpuSeconds(nats.process.pid!),
      loadGeneratorAndReceiver: Number(((process.cpuUsage().user + process.cpuUsage().system) / 1e6).toFixed(2)),
    },
    peakRssMb: {
      ingest: Number(peakRssMb(ingest.pid!).toFixed(1)),
      forward: Number(peakRssMb(forward.pid!).toFixed(1)),
      natsServer: Number(peakRssMb(nats.process.pid!).toFixed(1)),
      loadGeneratorAndReceiver: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
    },
  };
  console.log(JSON.stringify(figures, null, 2));
  await pool.close();
  receiver.close();
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)));
  await nats.stop();
  await rm(tmp, { recursive: true, force: true });
}
