// The queue's decisions: what the next request carries, what is given up, retries and the tab lease.
import type { SegmentEvent } from './event.js';
import { claimLease, entryAfterFailure, leaseKey, parseEntry, planFlush, queuePrefix, type FlushLimits, type QueueEntry } from './queue.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const LIMITS: FlushLimits = { maxEvents: 3, maxBytes: 64000, maxAttempts: 5, maxAgeMs: 3600_000 };

function entry(id: string, fields: Partial<QueueEntry> = {}, ageMs = 1000, size = 0): [string, QueueEntry] {
  const e: SegmentEvent = { type: 'track', event: 'E', messageId: id, timestamp: new Date(NOW - ageMs).toISOString(), properties: size ? { pad: 'x'.repeat(size) } : {} };
  return [`${queuePrefix('wk')}${id}`, { e, n: 0, t: NOW, ...fields }];
}

describe('planFlush', () => {
  it('sends due entries oldest first, call order among equal timestamps, at most maxEvents', () => {
    const entries = [entry('c', {}, 1000), entry('a', {}, 3000), entry('b2', { s: 2 }, 2000), entry('b1', { s: 1 }, 2000), entry('d', {}, 500)];
    const plan = planFlush(entries, NOW, LIMITS, 'wk');
    expect(plan.send.map(([, x]) => x.e.messageId)).toEqual(['a', 'b1', 'b2']);
    expect(plan.drop).toEqual([]);
    // More are due: the next request may go at once.
    expect(plan.next).toBe(NOW);
  });

  it('stops where the body would pass maxBytes, but always takes one', () => {
    const entries = [entry('a', {}, 3000, 600), entry('b', {}, 2000, 600)];
    expect(planFlush(entries, NOW, { ...LIMITS, maxBytes: 1000 }, 'wk').send.map(([, x]) => x.e.messageId)).toEqual(['a']);
    expect(planFlush(entries, NOW, { ...LIMITS, maxBytes: 100 }, 'wk').send.map(([, x]) => x.e.messageId)).toEqual(['a']);
  });

  it('waits for entries not due, skips those in flight, and names the next due time', () => {
    const later = entry('later', { t: NOW + 500 });
    const soon = entry('soon', { t: NOW + 200 });
    const flying = entry('flying');
    const plan = planFlush([later, soon, flying], NOW, LIMITS, 'wk', new Set([flying[0]]));
    expect(plan.send).toEqual([]);
    expect(plan.next).toBe(NOW + 200);
  });

  it('lets new entries wait their flush interval, unless a request goes anyway, maxEvents wait, or the page is going away', () => {
    const waiting = [entry('w1', { t: NOW + 800 }), entry('w2', { t: NOW + 900 })];
    const ids = (plan: ReturnType<typeof planFlush>) => plan.send.map(([, x]) => x.e.messageId).sort();
    const quiet = planFlush(waiting, NOW, LIMITS, 'wk');
    expect({ send: ids(quiet), next: quiet.next }).toEqual({ send: [], next: NOW + 800 });
    expect(ids(planFlush(waiting, NOW, LIMITS, 'wk', new Set(), true))).toEqual(['w1', 'w2']);
    expect(ids(planFlush([...waiting, entry('due')], NOW, LIMITS, 'wk'))).toEqual(['due', 'w1', 'w2']);
    expect(ids(planFlush([...waiting, entry('w3', { t: NOW + 950 })], NOW, LIMITS, 'wk'))).toEqual(['w1', 'w2', 'w3']);
    // Entries named eager (left by earlier pages) go at once, and the others waiting join them.
    const left = entry('left', { t: NOW + 700 });
    expect(ids(planFlush([left, ...waiting], NOW, LIMITS, 'wk', new Set(), new Set([left[0]])))).toEqual(['left', 'w1', 'w2']);
    expect(ids(planFlush(waiting, NOW, LIMITS, 'wk', new Set(), new Set([left[0]])))).toEqual([]);
    // An entry waiting for its retry keeps its time, even when the page is going away.
    const retrying = entry('retry', { n: 1, t: NOW + 100 });
    expect(ids(planFlush([retrying, entry('due')], NOW, LIMITS, 'wk', new Set(), true))).toEqual(['due']);
  });

  it('drops entries out of attempts, too old, or unreadable', () => {
    const tired = entry('tired', { n: 5 });
    const old = entry('old', {}, 3600_001);
    const plan = planFlush([tired, old, ['sy_q:wk:junk', undefined], entry('ok')], NOW, LIMITS, 'wk');
    expect(plan.drop).toEqual([tired[0], old[0], 'sy_q:wk:junk']);
    expect(plan.send.map(([, x]) => x.e.messageId)).toEqual(['ok']);
  });
});

describe('entryAfterFailure', () => {
  const settings = { retryMinDelayMs: 1000, retryMaxDelayMs: 60_000, maxAttempts: 3 };

  it('counts the attempt and waits the back-off, or Retry-After when later', () => {
    const [, first] = entry('a', { s: 4 });
    const retried = entryAfterFailure(first, NOW, settings, undefined, () => 0)!;
    expect(retried).toEqual({ ...first, n: 1, t: NOW + 500 });
    expect(entryAfterFailure(retried, NOW, settings, 30_000, () => 0)).toEqual({ ...first, n: 2, t: NOW + 30_000 });
  });

  it('gives up after maxAttempts', () => {
    const [, twice] = entry('a', { n: 2 });
    expect(entryAfterFailure(twice, NOW, settings)).toBeUndefined();
  });
});

describe('claimLease', () => {
  it('takes a free or expired lease, renews its own, and leaves a live one alone', () => {
    expect(claimLease(undefined, 'me', NOW, 3000)).toEqual({ id: 'me', until: NOW + 3000 });
    expect(claimLease({ id: 'other', until: NOW }, 'me', NOW, 3000)).toEqual({ id: 'me', until: NOW + 3000 });
    expect(claimLease({ id: 'me', until: NOW + 10 }, 'me', NOW, 3000)).toEqual({ id: 'me', until: NOW + 3000 });
    expect(claimLease({ id: 'other', until: NOW + 1 }, 'me', NOW, 3000)).toBeUndefined();
  });
});

describe('storage names and entries', () => {
  it('keys entries and the lease by write key', () => {
    expect(queuePrefix('wk_1')).toBe('sy_q:wk_1:');
    expect(leaseKey('wk_1')).toBe('sy_owner:wk_1');
  });

  it('parses stored entries and refuses anything else', () => {
    const [, stored] = entry('a');
    expect(parseEntry(JSON.stringify(stored))).toEqual(stored);
    expect(parseEntry('{"e":null}')).toBeUndefined();
    expect(parseEntry('nope')).toBeUndefined();
    expect(parseEntry(null)).toBeUndefined();
  });
});
