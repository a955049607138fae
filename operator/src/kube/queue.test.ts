import { WorkQueue } from './queue.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('a key waits once however often it is added, and never runs twice at once', async () => {
  const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100 });
  const running = new Set<string>();
  const runs: string[] = [];
  let overlap = false;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  queue.start(4, async (key) => {
    if (running.has(key)) overlap = true;
    running.add(key);
    runs.push(key);
    if (runs.length === 1) await gate;
    running.delete(key);
  }, () => undefined);
  queue.add('a');
  await tick();
  // 'a' is being reconciled: adds meanwhile queue it exactly once more, for afterwards.
  queue.add('a');
  queue.add('a');
  queue.add('b');
  queue.add('b');
  await tick();
  release();
  await tick(20);
  await queue.shutdown();
  expect(overlap).toBe(false);
  expect(runs.sort()).toEqual(['a', 'a', 'b']);
});

test('failures come back with doubling delays capped at maxDelay; success resets them', async () => {
  const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 40 });
  expect([queue.addRateLimited('k'), queue.addRateLimited('k'), queue.addRateLimited('k'), queue.addRateLimited('k')]).toEqual([10, 20, 40, 40]);
  queue.forget('k');
  expect(queue.addRateLimited('k')).toBe(10);
  await queue.shutdown();
});

test('a failing reconcile is retried and reported; requeueAfter brings a key back', async () => {
  const outcomes: string[] = [];
  const queue = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 5, onResult: (key, outcome) => outcomes.push(`${key}:${outcome}`) });
  let attempts = 0;
  const errors: unknown[] = [];
  queue.start(1, async (key) => {
    if (key === 'flaky' && ++attempts < 3) throw new Error('not yet');
    if (key === 'again' && !outcomes.includes('again:requeue')) return { requeueAfterMs: 5 };
    return undefined;
  }, (_k, e) => errors.push(e));
  queue.add('flaky');
  queue.add('again');
  for (let i = 0; i < 100 && outcomes.filter((o) => o.endsWith('success')).length < 2; i++) await tick();
  await queue.shutdown();
  expect(errors).toHaveLength(2);
  expect(outcomes).toEqual(expect.arrayContaining(['flaky:error', 'flaky:success', 'again:requeue', 'again:success']));
});

test('a reconcile that hangs past timeoutMs counts as failed and is retried', async () => {
  const outcomes: string[] = [];
  const queue = new WorkQueue({ baseDelayMs: 5, maxDelayMs: 5, timeoutMs: 30, onResult: (_k, outcome) => outcomes.push(outcome) });
  let calls = 0;
  const errors: string[] = [];
  queue.start(1, async () => {
    if (++calls === 1) await new Promise(() => undefined); // never settles
  }, (_k, e) => errors.push((e as Error).message));
  queue.add('stuck');
  for (let i = 0; i < 100 && !outcomes.includes('success'); i++) await tick();
  await queue.shutdown();
  expect(outcomes).toEqual(['error', 'success']);
  expect(errors[0]).toContain('took longer than 30 ms');
});
