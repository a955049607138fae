import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { TagSpec } from '../api/source.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { resolveTag, type ResolvedTag } from './tag.js';

/**
 * A Source as the ingestion API needs it: its identity, the write key in clear (resolved from the
 * Secret by the caller), allowed browser origins and limits. See `SourceSpec` in api/source.ts.
 */
export interface IngestionSource {
  /** Kubernetes namespace of the Source. */
  namespace: string;
  /** Name of the Source. */
  name: string;
  /** The write key SDKs send (HTTP Basic user name, or `writeKey` in the body). */
  writeKey: string;
  /** Browser origins (`scheme://host[:port]`) allowed with CORS; `*` allows any. Empty: none. */
  allowedOrigins: string[];
  /** Consent policy: `missing: deny` marks the Source's events so Integrations needing a consent category skip events without a preference for it. Default: allow. */
  consent?: { missing: 'allow' | 'deny' };
  /**
   * The browser tag served for this Source (`GET /tag/<writeKey>.js`) and its server-set identity
   * cookie (`POST /v1/identity`): the Source's `spec.tag` with its defaults applied. Default: the
   * tag is served with every default (server cookie off).
   */
  tag?: TagSpec;
  limits: {
    /** Largest accepted call in bytes, as JSON after decompression; larger calls are rejected one by one. */
    maxEventBytes: number;
    /** Largest accepted request body in bytes after decompression; larger requests get 413. */
    maxBatchBytes: number;
    /** Sustained events per second (per ingestion process); above it requests get 429. */
    eventsPerSecond: number;
    /** Events that may arrive at once above the sustained rate. */
    burst: number;
  };
}

/** Outcome of taking `n` events from a Source's rate budget. */
export type RateDecision =
  | { ok: true }
  /** Over the budget now: retry after this many seconds (at least 1). */
  | { ok: false; retryAfterSeconds: number }
  /** More events in one request than the budget ever holds: retrying cannot help. */
  | { ok: false; tooMany: true; capacity: number };

/**
 * Per-Source event rate limit on a rate-limiter-flexible fixed window: the window holds
 * `eventsPerSecond + burst` points (one per event) and lasts `(eventsPerSecond + burst) /
 * eventsPerSecond` seconds, so the long-run rate is `eventsPerSecond` and up to `burst` events more
 * than one second's worth may arrive at once. A refused request gives its points back: nothing
 * of it is stored, so it should not eat the budget of the requests after it.
 */
export class SourceRateLimiter {
  readonly capacity: number;
  private readonly limiter: RateLimiterMemory;

  constructor(readonly limits: IngestionSource['limits']) {
    this.capacity = limits.eventsPerSecond + limits.burst;
    this.limiter = new RateLimiterMemory({ points: this.capacity, duration: this.capacity / limits.eventsPerSecond });
  }

  /** Takes `events` points; see {@link RateDecision}. */
  async take(events: number): Promise<RateDecision> {
    if (events <= 0) return { ok: true };
    if (events > this.capacity) return { ok: false, tooMany: true, capacity: this.capacity };
    try {
      await this.limiter.consume('events', events);
      return { ok: true };
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      await this.limiter.reward('events', events);
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(e.msBeforeNext / 1000)) };
    }
  }
}

/** A Source ready to serve: the spec, its log/metric key and its rate limiter. */
export interface ActiveSource {
  spec: IngestionSource;
  /** `namespace/name`: the metric label, the `Sy-Source` header and the log binding. */
  id: string;
  limiter: SourceRateLimiter;
  /** Origins as `URL.origin` strings; `any` when `*` is listed. */
  origins: { any: boolean; list: Set<string> };
  /** The tag's defaulted spec and served configuration. */
  tag: ResolvedTag;
}

/** `scheme://host[:port]` as browsers send it in `Origin` (default ports dropped, lower case), or undefined. */
export function normaliseOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.origin === 'null' ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

/** Whether a request `Origin` header value is allowed by a Source. */
export function originAllowed(source: ActiveSource, origin: string): boolean {
  if (source.origins.any) return true;
  const normal = normaliseOrigin(origin);
  return normal !== undefined && source.origins.list.has(normal);
}

/**
 * The Sources of one ingestion process, looked up by write key. Immutable: {@link SourceTable.replace}
 * builds a new table, keeping the rate limiter state of Sources whose limits did not change.
 */
export class SourceTable {
  private readonly byWriteKey = new Map<string, ActiveSource>();
  /** Largest maxBatchBytes of all Sources: the body limit while the Source is not yet known. */
  readonly maxBatchBytes: number;
  /** Every Source, for preflight checks. */
  readonly all: readonly ActiveSource[];

  private constructor(sources: ActiveSource[]) {
    for (const s of sources) this.byWriteKey.set(s.spec.writeKey, s);
    this.all = sources;
    this.maxBatchBytes = sources.reduce((max, s) => Math.max(max, s.spec.limits.maxBatchBytes), 0);
  }

  /**
   * Builds a table.
   * @throws SwitchyardError WRITE_KEY_CONFLICT when two Sources share a write key, or one is empty
   * (a key must name exactly one Source); INVALID_SETTINGS when a Source's `tag` breaks its schema.
   */
  static build(sources: IngestionSource[], previous?: SourceTable): SourceTable {
    const seen = new Map<string, string>();
    const active: ActiveSource[] = [];
    for (const spec of sources) {
      const id = `${spec.namespace}/${spec.name}`;
      if (!spec.writeKey) throw new SwitchyardError(ErrorCodes.WRITE_KEY_CONFLICT, `Source ${id} has an empty write key`);
      const other = seen.get(spec.writeKey);
      if (other !== undefined) throw new SwitchyardError(ErrorCodes.WRITE_KEY_CONFLICT, `Sources ${other} and ${id} have the same write key`);
      seen.set(spec.writeKey, id);
      const before = previous?.all.find((s) => s.id === id);
      const sameLimits = before && JSON.stringify(before.limiter.limits) === JSON.stringify(spec.limits);
      const list = new Set(spec.allowedOrigins.map(normaliseOrigin).filter((o): o is string => o !== undefined));
      active.push({
        spec: structuredClone(spec),
        id,
        limiter: sameLimits ? before.limiter : new SourceRateLimiter({ ...spec.limits }),
        origins: { any: spec.allowedOrigins.includes('*'), list },
        tag: resolveTag(spec),
      });
    }
    return new SourceTable(active);
  }

  /** The Source of a write key, or undefined. */
  lookup(writeKey: string): ActiveSource | undefined {
    return this.byWriteKey.get(writeKey);
  }

  /** Whether any Source allows `origin` (preflight requests carry no credentials, so the Source is unknown). */
  anyAllows(origin: string): boolean {
    return this.all.some((s) => originAllowed(s, origin));
  }
}
