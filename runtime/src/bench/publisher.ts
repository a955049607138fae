// Stores 608-byte events in a file-backed stream on a fresh nats-server two ways and prints
// msg/s: BatchPublisher (one promise per batch of 100, 8 batches in flight) and one awaited js.publish per message in
// 100 concurrent chains, the ceiling BatchPublisher is designed to lift. Not part of the tests.
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNatsServer } from '../local/nats-server.js';
import { ensureStreams } from '../nats/streams.js';
import { BatchPublisher } from '../nats/publisher.js';
import { streamSettings } from '../settings.js';

const N = Number(process.env.BENCH_PUBLISH_EVENTS ?? 100_000);
const payload = new Uint8Array(608).fill(120);
const server = await startNatsServer();
try {
  const nc = await connect({ servers: server.url });
  const streams = streamSettings({});
  await ensureStreams(await jetstreamManager(nc), streams);
  const subject = 'sy.events.bench.web.track';

  const publisher = new BatchPublisher(nc, { stream: streams.events.name });
  let t0 = performance.now();
  let nextBatch = 0;
  // 8 batches in flight, as concurrent ingestion requests would have.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (nextBatch < N) {
        const i = nextBatch;
        nextBatch += 100;
        const batch = Array.from({ length: Math.min(100, N - i) }, (_, k) => ({ subject, data: payload, msgId: `b-${i + k}` }));
        if (!(await publisher.publish(batch)).every((o) => o.ok)) throw new Error('publish failed');
      }
    }),
  );
  const batchRate = Math.round(N / ((performance.now() - t0) / 1000));
  publisher.close();

  const js = jetstream(nc);
  t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < N) {
        const i = next++;
        await js.publish(subject, payload, { msgID: `p-${i}` });
      }
    }),
  );
  const perMessageRate = Math.round(N / ((performance.now() - t0) / 1000));
  console.log(JSON.stringify({ events: N, eventBytes: payload.length, batchPublisherMsgPerSecond: batchRate, awaitedJsPublishMsgPerSecond: perMessageRate }, null, 2));
  await nc.close();
} finally {
  await server.stop();
}
