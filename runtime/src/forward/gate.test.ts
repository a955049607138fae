import type { SendResult } from '../destinations/index.js';
import { DeliveryGate, breakerCountsFailure } from './gate.js';

const ok: SendResult = { outcome: 'success', durationMs: 1 };
const down: SendResult = { outcome: 'retryable', error: 'network error: ECONNREFUSED', durationMs: 1 };
const throttled = (retryAfterMs?: number): SendResult => ({ outcome: 'retryable', throttled: true, status: 429, durationMs: 1, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });

function gate(options: Partial<ConstructorParameters<typeof DeliveryGate>[0]> = {}, now = { t: 1_000_000 }) {
  return new DeliveryGate({ replicas: 1, breakerFailures: 0, halfOpenAfterMs: 1000, clock: { now: () => now.t }, ...options });
}

describe('breakerCountsFailure', () => {
  it('counts unreachable or failing vendors, not throttling, refusals or success', () => {
    expect(breakerCountsFailure(down)).toBe(true);
    expect(breakerCountsFailure(throttled())).toBe(false);
    expect(breakerCountsFailure({ outcome: 'permanent', status: 400, durationMs: 1 })).toBe(false);
    expect(breakerCountsFailure(ok)).toBe(false);
  });
});

describe('DeliveryGate rate limit', () => {
  it('lets the events budget through, then makes the next send wait', async () => {
    const g = gate({ rateLimit: { eventsPerSecond: 10 } });
    expect(await g.waitMs(6)).toBe(0);
    expect(await g.waitMs(4)).toBe(0);
    const wait = await g.waitMs(1);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(1000);
  });

  it('gives each replica its share and caps a send at one window', async () => {
    const g = gate({ rateLimit: { eventsPerSecond: 100 }, replicas: 4 });
    expect(g.maxEventsPerSend).toBe(25);
    expect(await g.waitMs(1000)).toBe(0); // capped to the 25 a window holds
    expect(await g.waitMs(1)).toBeGreaterThan(0);
  });

  it('limits requests per second and gives the request back when the events budget refuses', async () => {
    const g = gate({ rateLimit: { requestsPerSecond: 2, eventsPerSecond: 5 } });
    expect(await g.waitMs(5)).toBe(0);
    expect(await g.waitMs(1)).toBeGreaterThan(0); // events spent; the request point was returned
    const r = gate({ rateLimit: { requestsPerSecond: 2 } });
    expect(await r.waitMs(1)).toBe(0);
    expect(await r.waitMs(1)).toBe(0);
    expect(await r.waitMs(1)).toBeGreaterThan(0);
  });

  it('handles rates under one per second', async () => {
    const g = gate({ rateLimit: { eventsPerSecond: 0.5 } });
    expect(g.maxEventsPerSend).toBe(1);
    expect(await g.waitMs(3)).toBe(0);
    const wait = await g.waitMs(1);
    expect(wait).toBeGreaterThan(1000);
    expect(wait).toBeLessThanOrEqual(2000);
  });

  it('has no limit by default', async () => {
    const g = gate();
    expect(g.maxEventsPerSend).toBe(Infinity);
    for (let i = 0; i < 100; i++) expect(await g.waitMs(1000)).toBe(0);
  });
});

describe('DeliveryGate throttling', () => {
  it('pauses for the Retry-After on the injected clock', async () => {
    const now = { t: 5_000_000 };
    const g = gate({}, now);
    await g.send(async () => throttled(30_000));
    expect(await g.waitMs(1)).toBe(30_000);
    now.t += 29_000;
    expect(await g.waitMs(1)).toBe(1000);
    now.t += 1000;
    expect(await g.waitMs(1)).toBe(0);
  });

  it('without Retry-After backs off exponentially up to the maximum, and resets on success', async () => {
    const now = { t: 0 };
    const g = gate({ throttleBackoff: { initialMs: 1000, maxMs: 8000 } }, now);
    const pauses: number[] = [];
    for (let i = 0; i < 6; i++) {
      await g.send(async () => throttled());
      const p = await g.waitMs(1);
      pauses.push(p);
      now.t += p;
    }
    expect(pauses).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
    // Seven rounds with the defaults (1 s doubling to 60 s) outlast a per-minute window.
    await g.send(async () => ok);
    await g.send(async () => throttled());
    expect(await g.waitMs(1)).toBe(1000);
  });
});

describe('DeliveryGate circuit breaker', () => {
  it('opens after consecutive failures, sends nothing while open, probes once, closes on success', async () => {
    const g = gate({ breakerFailures: 3, halfOpenAfterMs: 300 });
    let calls = 0;
    const failing = async () => {
      calls++;
      return down;
    };
    for (let i = 0; i < 3; i++) expect(await g.send(failing)).toBe(down);
    expect(g.circuit).toBe('open');
    expect(await g.send(failing)).toBeUndefined(); // refused without calling the vendor
    expect(calls).toBe(3);
    const wait = await g.waitMs(1);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(300);
    await new Promise((r) => setTimeout(r, wait + 20));
    expect(await g.waitMs(1)).toBe(0);
    // The probe is in flight: other sends wait for its verdict instead of calling the vendor.
    let release!: () => void;
    const probe = g.send(() => new Promise<SendResult>((r) => (release = () => r(ok))));
    expect(g.circuit).toBe('half-open');
    expect(await g.waitMs(1)).toBeGreaterThan(0);
    release();
    expect(await probe).toBe(ok);
    expect(g.circuit).toBe('closed');
    expect(await g.waitMs(1)).toBe(0);
  });

  it('a failed probe keeps it open for another period', async () => {
    const g = gate({ breakerFailures: 1, halfOpenAfterMs: 100 });
    await g.send(async () => down);
    expect(g.circuit).toBe('open');
    await new Promise((r) => setTimeout(r, 120));
    await g.send(async () => down);
    expect(g.circuit).toBe('open');
    expect(await g.waitMs(1)).toBeGreaterThan(0);
  });

  it('does not count throttling or refusals as failures', async () => {
    const g = gate({ breakerFailures: 2 });
    for (let i = 0; i < 5; i++) await g.send(async () => ({ outcome: 'permanent', status: 400, durationMs: 1 }));
    for (let i = 0; i < 5; i++) await g.send(async () => throttled(1));
    expect(g.circuit).toBe('closed');
  });
});
