// What the benches share: the bench event, figures of their processes read from /proc (Linux), and readiness polling.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Peak resident set size (VmHWM) of a process in MB, from /proc; NaN when unreadable. */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** The `p`th percentile (0–100) of ascending `sorted` values (nearest rank); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Polls `url` every 100 ms until it answers 2xx.
 * @throws Error when `child` exits first or after 20 s.
 */
export async function waitForHttp(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

/** Track event number `i` of a bench run: an Order Completed of 608 bytes or so, one of 5000 users. */
export function benchEvent(i: number) {
  return {
    type: 'track' as const,
    event: 'Order Completed',
    userId: `user-${i % 5000}`,
    anonymousId: 'a6f1c0de-5b7e-4a53-9d0e-2f8b6c1d9e47',
    messageId: `bench-${i}`,
    timestamp: new Date().toISOString(),
    properties: { order_id: `o-${i}`, revenue: 25.5, currency: 'USD', products: [{ product_id: 'p1', sku: 'sku-1', name: 'Monopoly', price: 18.99, quantity: 1 }] },
    context: { ip: '203.0.113.24', userAgent: 'Mozilla/5.0 (bench)', library: { name: 'bench', version: '1' } },
  };
}
