import { isRetryableStatus, retryAfterMs } from '../core/backoff.js';
import { utf8Bytes } from '../core/batch.js';
import type { ResolvedTagConfig } from '../core/config.js';
import type { SegmentEvent } from '../core/event.js';
import { claimLease, entryAfterFailure, leaseKey, parseEntry, planFlush, queuePrefix, type Lease, type QueueEntry } from '../core/queue.js';
import { uuidv4 } from '../core/uuid.js';
import type { Store } from './storage.js';
import { KEEPALIVE_BYTES, post, type Answer } from './transport.js';

/** The event queue of a page, shared through storage with the site's other tabs. */
export interface Queue {
  /** Stores an event (`sy_q:<writeKey>:<messageId>`); it is sent after `flushIntervalMs`, or at once when `maxEvents` are waiting. */
  add(event: SegmentEvent): void;
  /** Sends what is due, one request at a time, when this tab owns the queue. Resolves when nothing due is left or a request failed. */
  flush(): Promise<void>;
  /** The stored entries, every tab's. */
  entries(): QueueEntry[];
  /** Gives the queued events of anonymous id `from` the anonymous id `to`. */
  adopt(from: string, to: string): void;
}

/**
 * Starts the queue of a page. One tab owns sending (lease `sy_owner:<writeKey>`, renewed every
 * `leaseMs / 3`, taken over once expired, released on `pagehide`); the others only store entries.
 * When the page is hidden or left, the owner sends what is due at once with `keepalive` (at most
 * {@link KEEPALIVE_BYTES} in flight in all); entries stay stored until an answer says they are done,
 * so those whose answer never came are sent again by a later page (the ingestion drops duplicate
 * messageIds). Events wait `flushIntervalMs` for others to join a request, unless `maxEvents` wait;
 * what earlier pages left is sent at once.
 * @param gate resolves when sending may start (the identity is settled); not awaited when the page goes away.
 */
export function createQueue(config: ResolvedTagConfig, store: Store, gate: () => Promise<void>): Queue {
  const { writeKey, transport } = config;
  const url = `${config.apiHost}/v1/batch`;
  const prefix = queuePrefix(writeKey);
  const leaseName = leaseKey(writeKey);
  const tab = uuidv4();
  const inFlight = new Set<string>();
  // Sent by sendBeacon: no answer will come; sent again once the page is visible again.
  const beaconed = new Set<string>();
  let keepaliveBytes = 0;
  let flushing: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = Infinity;
  let calls = 0;
  // Set on pagehide: the visibilitychange that follows must not claim the lease back for a page that is gone.
  let leaving = false;
  // What earlier pages left is sent at once (it waited long enough), not after a flush interval.
  const leftovers = new Set(store.keys(prefix));

  const read = () => store.keys(prefix).map((key): [string, QueueEntry | undefined] => [key, parseEntry(store.get(key))]);
  const lease = (): Lease | undefined => {
    try {
      return JSON.parse(store.get(leaseName) ?? 'null') ?? undefined;
    } catch {
      return undefined;
    }
  };
  const own = () => {
    if (leaving) return false;
    const claimed = claimLease(lease(), tab, Date.now(), transport.leaseMs);
    if (claimed) store.set(leaseName, JSON.stringify(claimed));
    return !!claimed;
  };
  const schedule = (at: number | undefined) => {
    if (at === undefined || at >= timerAt) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timerAt = Infinity;
      void queue.flush();
    }, Math.max(0, at - Date.now()));
  };

  /** Applies an answer to the entries it was about. @returns the earliest retry time, if any. */
  const settle = (batch: Array<[string, QueueEntry]>, answer: Answer): number | undefined => {
    const now = Date.now();
    let retryAt: number | undefined;
    for (const [key, entry] of batch) {
      inFlight.delete(key);
      if (!isRetryableStatus(answer.status)) store.del(key);
      else if (store.get(key) !== null) {
        const next = entryAfterFailure(entry, now, transport, retryAfterMs(answer.retryAfter, now));
        if (next) {
          store.set(key, JSON.stringify(next));
          retryAt = Math.min(retryAt ?? next.t, next.t);
        } else store.del(key);
      }
    }
    if (answer.text !== undefined) console.warn(`switchyard: ${url} answered ${answer.status}`, answer.text);
    return retryAt;
  };

  /** Sends one batch. @returns the promise of its answer; undefined when it went by beacon, false when it does not fit the keepalive budget while unloading. */
  const dispatch = (batch: Array<[string, QueueEntry]>, unloading: boolean): Promise<number | undefined> | undefined | false => {
    const body = JSON.stringify({ batch: batch.map(([, entry]) => entry.e), sentAt: new Date().toISOString(), writeKey });
    const bytes = utf8Bytes(body);
    const keepalive = keepaliveBytes + bytes <= KEEPALIVE_BYTES;
    if (unloading && !keepalive) return false;
    for (const [key] of batch) inFlight.add(key);
    const request = post(url, body, keepalive, unloading);
    if (!request) {
      for (const [key] of batch) beaconed.add(key);
      return undefined;
    }
    if (keepalive) keepaliveBytes += bytes;
    return request.then((answer) => {
      if (keepalive) keepaliveBytes -= bytes;
      return settle(batch, answer);
    });
  };

  /** The page is hidden or going away: send what is due now, within the keepalive budget. */
  const unload = () => {
    if (!own()) return;
    for (;;) {
      const room = KEEPALIVE_BYTES - keepaliveBytes;
      const plan = planFlush(read(), Date.now(), { ...transport, maxBytes: Math.min(transport.maxBytes, room) }, writeKey, inFlight, true);
      for (const key of plan.drop) store.del(key);
      if (!plan.send.length || dispatch(plan.send, true) === false) return;
    }
  };

  const queue: Queue = {
    add(event) {
      const due = Date.now() + transport.flushIntervalMs;
      store.set(prefix + event.messageId, JSON.stringify({ e: event, n: 0, t: due, s: ++calls } satisfies QueueEntry));
      schedule(store.keys(prefix).length >= transport.maxEvents ? Date.now() : due);
    },
    flush: () =>
      (flushing ??= (async () => {
        try {
          await gate();
          while (own()) {
            const plan = planFlush(read(), Date.now(), transport, writeKey, inFlight, leftovers);
            for (const [key] of plan.send) leftovers.delete(key);
            for (const key of plan.drop) store.del(key);
            if (!plan.send.length) {
              schedule(plan.next);
              return;
            }
            const retryAt = await dispatch(plan.send, false);
            if (typeof retryAt === 'number') {
              // Failed: everything waits for the retry time rather than hammering a failing server.
              schedule(retryAt);
              return;
            }
          }
        } finally {
          flushing = undefined;
        }
      })()),
    entries: () => read().flatMap(([, entry]) => (entry ? [entry] : [])),
    adopt(from, to) {
      for (const [key, entry] of read()) {
        if (entry?.e.anonymousId === from) {
          entry.e.anonymousId = to;
          store.set(key, JSON.stringify(entry));
        }
      }
    },
  };

  const tick = () => {
    if (own()) void queue.flush();
  };
  setInterval(tick, transport.leaseMs / 3);
  tick();
  addEventListener('storage', (event) => {
    if (event.key?.startsWith(prefix) && event.newValue) schedule(Date.now() + transport.flushIntervalMs);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') unload();
    else {
      for (const key of beaconed) inFlight.delete(key);
      beaconed.clear();
    }
  });
  addEventListener('pagehide', () => {
    unload();
    leaving = true;
    if (lease()?.id === tab) store.del(leaseName);
  });
  // Back from the back/forward cache: the page lives again and may own the queue.
  addEventListener('pageshow', (event) => {
    if (event.persisted) {
      leaving = false;
      tick();
    }
  });
  return queue;
}
