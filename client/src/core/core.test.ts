// Retry timing, request sizing, ids and event building shared by the tag and the Node SDK.
import { isRetryableStatus, retryAfterMs, retryDelay } from './backoff.js';
import { batchCount, ENVELOPE_BYTES, utf8Bytes } from './batch.js';
import { buildEvent } from './event.js';
import { uuidv4 } from './uuid.js';

describe('retryDelay', () => {
  const delays = { retryMinDelayMs: 1000, retryMaxDelayMs: 5000 };

  it('doubles per attempt up to the cap, with equal jitter', () => {
    expect([1, 2, 3, 4].map((n) => retryDelay(n, delays, () => 0))).toEqual([500, 1000, 2000, 2500]);
    expect([1, 2, 3, 4].map((n) => retryDelay(n, delays, () => 0.999999))).toEqual([1000, 2000, 4000, 5000]);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');

  it('reads delay-seconds and HTTP dates, never negative', () => {
    expect(retryAfterMs('30', now)).toBe(30_000);
    expect(retryAfterMs('Sun, 01 Mar 2026 12:00:10 GMT', now)).toBe(10_000);
    expect(retryAfterMs('Sun, 01 Mar 2026 11:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('refuses numbers that are not delay-seconds, which Date.parse would read as dates', () => {
    expect(retryAfterMs('1.5', now)).toBeUndefined();
    expect(retryAfterMs('-3', now)).toBeUndefined();
  });
});

describe('isRetryableStatus', () => {
  it('retries network failures, 408, 429 and 5xx only', () => {
    expect([undefined, 408, 429, 500, 503].map(isRetryableStatus)).toEqual([true, true, true, true, true]);
    expect([200, 207, 400, 401, 403, 413].map(isRetryableStatus)).toEqual([false, false, false, false, false, false]);
  });
});

describe('batchCount', () => {
  it('counts events that fit maxEvents and maxBytes with commas and the envelope', () => {
    expect(batchCount([10, 10, 10], { maxEvents: 2, maxBytes: 1000 })).toBe(2);
    // 64 + 10 + 1 + 10 = 85 fits, + 1 + 10 = 96 does not.
    expect(batchCount([10, 10, 10], { maxEvents: 10, maxBytes: 95 })).toBe(2);
    expect(batchCount([500], { maxEvents: 10, maxBytes: 100 })).toBe(1);
    expect(batchCount([], { maxEvents: 10, maxBytes: 100 })).toBe(0);
  });

  it('matches the real envelope size', () => {
    const envelope = JSON.stringify({ batch: [], sentAt: new Date().toISOString(), writeKey: '' });
    expect(utf8Bytes(envelope)).toBeLessThanOrEqual(ENVELOPE_BYTES);
  });
});

describe('utf8Bytes', () => {
  it('counts like Buffer.byteLength', () => {
    for (const text of ['abc', 'é', '€', '😀', 'a😀é€']) expect(utf8Bytes(text)).toBe(Buffer.byteLength(text));
  });
});

describe('uuidv4', () => {
  it('makes distinct RFC 9562 version 4 ids', () => {
    const ids = new Set(Array.from({ length: 100 }, uuidv4));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('buildEvent', () => {
  const library = { name: 'switchyard.js', version: '1.2.3' };
  const now = new Date('2026-03-01T12:00:00.000Z');

  it('adds type, a prefixed messageId, the timestamp and the library', () => {
    const event = buildEvent('track', { event: 'E', context: { library: { name: 'other' }, ip: '1.2.3.4' } }, { now, library, messageIdPrefix: 'sy-' });
    expect(event).toMatchObject({ type: 'track', event: 'E', timestamp: '2026-03-01T12:00:00.000Z', context: { ip: '1.2.3.4', library } });
    expect(event.messageId).toMatch(/^sy-[0-9a-f-]{36}$/);
  });

  it("keeps the caller's messageId and timestamp", () => {
    const event = buildEvent('page', { messageId: 'm1', timestamp: new Date(0) as unknown as string }, { now, library });
    expect(event).toMatchObject({ messageId: 'm1', timestamp: '1970-01-01T00:00:00.000Z' });
  });
});
