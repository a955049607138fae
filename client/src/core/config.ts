/**
 * The tag's configuration: what the ingestion serves with the tag (`GET /tag/<writeKey>.js`, built
 * from the Source's `spec.tag`) and what a site may override with `analytics.load(writeKey, options)`.
 * Plain JSON (durations in milliseconds), so the same object travels from the Source to the browser.
 * Every field's doc states its default; {@link resolveTagConfig} fills them.
 */

/** Consent categories opted in (`true`) or out (`false`), Segment's `context.consent.categoryPreferences`. */
export type CategoryPreferences = Record<string, boolean>;

/** Where the tag reads the visitor's consent besides `analytics.setConsent(...)`. */
export interface ConsentConfig {
  /**
   * What a sync does for a category with no stated preference: `allow` runs it (opt-out regimes),
   * `deny` skips it (opt-in regimes). Default: the Source's `spec.consent.missing` (`allow`).
   */
  missing?: 'allow' | 'deny';
  /**
   * A consent platform's cookie read on every event. `format`: `onetrust` (`OptanonConsent`,
   * `groups=C0001:1,C0004:0`), `cookiebot` (`CookieConsent`, `{necessary:true,marketing:false,…}`)
   * or `json` (a URL-encoded JSON object category → boolean). `categories` renames the platform's
   * names to ours (e.g. `{"C0004": "Advertising"}`); unnamed ones keep their own. Default: none.
   */
  cookie?: { name: string; format: 'onetrust' | 'cookiebot' | 'json'; categories?: Record<string, string> };
  /** Preferences assumed until the site or the platform states one. Default: `{}`. */
  defaults?: CategoryPreferences;
}

/** Cookie names and lifetime of the tag's identity (analytics.js-compatible by default). */
export interface CookieConfig {
  /** Cookie domain. Default: the registrable domain, found by probing (the shortest parent domain that takes a cookie). */
  domain?: string;
  /** Default `ajs_anonymous_id` (analytics.js). */
  anonymousIdName?: string;
  /** Default `ajs_user_id` (analytics.js). */
  userIdName?: string;
  /** Lifetime of identity cookies in days. Default 365. */
  maxAgeDays?: number;
  /** Default `Lax`. `Secure` is added on https pages. */
  sameSite?: 'Lax' | 'Strict' | 'None';
}

/** A built-in vendor sync (see reference: `context.providers`). */
export interface BuiltinSyncConfig {
  /** Default true. */
  enabled?: boolean;
  /** Consent category this sync needs; see {@link BUILTIN_SYNC_DEFAULTS} for each default. */
  category?: string;
  /** Lifetime of click ids it stores, in days. Default 90 (Pinterest's epik: 365). */
  lifetimeDays?: number;
}

/** The built-in syncs, each keyed by vendor. */
export interface BuiltinSyncs {
  /** `facebookTag`: `_fbp` (minted when missing), `_fbc` (from `fbclid`). */
  meta?: BuiltinSyncConfig;
  /** `googleGtag.data`: `client_id` (`_ga`), `session_id` (`_ga_<stream>`), `gclid`, `gbraid`, `wbraid`, `dclid`. `measurementId` picks the `_ga_<stream>` cookie (default: the first one found). */
  google?: BuiltinSyncConfig & { measurementId?: string };
  /** `tiktok`: `ttclid`, `ttp` (`_ttp`). */
  tiktok?: BuiltinSyncConfig;
  /** `microsoft`: `msclkid` (`_uetmsclkid`). */
  microsoft?: BuiltinSyncConfig;
  /** `pinterest`: `epik` (`_epik`). */
  pinterest?: BuiltinSyncConfig;
  /** `snapchat`: `sccid` (`ScCid`), `scid` (`_scid`). */
  snapchat?: BuiltinSyncConfig;
  /**
   * `crossDomain`: our own id shared across a customer's domains: kept in a first-party cookie,
   * carried by the `_syxid` URL parameter on links to `domains` (and adopted from it on landing).
   */
  crossDomain?: BuiltinSyncConfig & { domains?: string[] };
}

/** Fields every configurable sync has. */
interface SyncBase {
  /** Key under `context.providers` (letters, digits, `_`, `-`). */
  name: string;
  /** Field of `context.providers.<name>` the id is written to. Default `id`. */
  field?: string;
  /** Consent category the sync needs. Default: none (always runs). */
  category?: string;
  /** Days the collected id (or the pixel's firing) is kept in our first-party cookie. Default 90. */
  lifetimeDays?: number;
}

/**
 * A configurable sync, one of five kinds. URLs may hold `{anonymousId}`, `{userId}`,
 * `{crossDomainId}` and `{random}` placeholders (URL-encoded when filled in).
 */
export type SyncConfig =
  /** The id from a URL parameter of the landing page (a newer value replaces the stored one). */
  | (SyncBase & { kind: 'urlParameter'; parameter: string })
  /** The id from a cookie; `pattern` (a regular expression) takes its first capture group. */
  | (SyncBase & { kind: 'cookie'; cookie: string; pattern?: string })
  /** The id from a localStorage key; `path` (dot path, e.g. `user.id`) when the value is JSON. */
  | (SyncBase & { kind: 'localStorage'; key: string; path?: string })
  /** The id from a JSON answer of a sync endpoint (`GET url`, `credentials` default `include`), at `path` (dot path). Fetched once per lifetime. */
  | (SyncBase & { kind: 'fetch'; url: string; path: string; credentials?: 'include' | 'omit' | 'same-origin' })
  /** A match pixel (an image request to `url`) fired once per lifetime; attaches `{ [field]: <ISO time it fired> }`, field default `syncedAt`. */
  | (SyncBase & { kind: 'pixel'; url: string });

/** Batching and retry of the tag's transport. */
export interface TransportConfig {
  /** Events per request at most. Default 20. */
  maxEvents?: number;
  /** Bytes per request body at most. Default 64000 (what a page may have in flight with keepalive). */
  maxBytes?: number;
  /** Wait before a queued event is sent, in ms (more events may join the batch). Default 1000. */
  flushIntervalMs?: number;
  /** First retry delay in ms; doubles per attempt with ±50% jitter. Default 1000. */
  retryMinDelayMs?: number;
  /** Longest retry delay in ms. Default 60000. */
  retryMaxDelayMs?: number;
  /** Attempts before an event is dropped. Default 10. */
  maxAttempts?: number;
  /** Age after which a queued event is dropped, in ms. Default 7 days (the ingestion's duplicate window does not cover resends after it, vendors' event_id does). */
  maxAgeMs?: number;
  /** How long a tab owns the queue without renewing, in ms; the owner renews every third of it. Default 3000. */
  leaseMs?: number;
}

/** The tag's whole configuration. */
export interface TagConfig {
  /** The Source's write key (HTTP Basic user name on every request). Required. */
  writeKey: string;
  /** Base URL of the ingestion API. Default: the origin the tag itself was loaded from. */
  apiHost?: string;
  /** Identity cookies. */
  cookie?: CookieConfig;
  /**
   * Ask the ingestion to set the anonymousId cookie itself (`POST /v1/identity`, with credentials):
   * server-set cookies outlive script-set ones in browsers that cap the latter (Safari: 7 days).
   * The cookie the server holds wins. Default false (the Source's `spec.tag.serverCookie.enabled`).
   */
  serverCookie?: boolean;
  /** How long the tag holds sending while it waits for `POST /v1/identity`, in ms; then it goes on with its own id. Default 2000. */
  serverCookieTimeoutMs?: number;
  /** Batching and retries. */
  transport?: TransportConfig;
  /** Consent sources and policy. */
  consent?: ConsentConfig;
  /** Built-in vendor syncs; each is on unless `enabled: false`. */
  builtinSyncs?: BuiltinSyncs;
  /** Configurable syncs. Default none. */
  syncs?: SyncConfig[];
}

/** Default consent category of each built-in sync (Segment's category names, as Integrations' `consent.categories` use them). */
export const BUILTIN_SYNC_DEFAULTS = {
  meta: { category: 'Advertising', lifetimeDays: 90 },
  google: { category: 'Advertising', lifetimeDays: 90 },
  tiktok: { category: 'Advertising', lifetimeDays: 90 },
  microsoft: { category: 'Advertising', lifetimeDays: 90 },
  pinterest: { category: 'Advertising', lifetimeDays: 365 },
  snapchat: { category: 'Advertising', lifetimeDays: 90 },
  crossDomain: { category: undefined as string | undefined, lifetimeDays: 365 },
} as const;

/** Transport defaults (see {@link TransportConfig}). */
export const TRANSPORT_DEFAULTS: Required<TransportConfig> = {
  maxEvents: 20,
  maxBytes: 64_000,
  flushIntervalMs: 1000,
  retryMinDelayMs: 1000,
  retryMaxDelayMs: 60_000,
  maxAttempts: 10,
  maxAgeMs: 7 * 24 * 3600 * 1000,
  leaseMs: 3000,
};

/** Cookie defaults (see {@link CookieConfig}); `domain` stays unset (probed). */
export const COOKIE_DEFAULTS = {
  anonymousIdName: 'ajs_anonymous_id',
  userIdName: 'ajs_user_id',
  maxAgeDays: 365,
  sameSite: 'Lax',
} as const;

/** Default of {@link TagConfig.serverCookieTimeoutMs}. */
export const SERVER_COOKIE_TIMEOUT_MS = 2000;

/** A {@link TagConfig} with every default filled in (`apiHost` and `cookie.domain` stay optional: the page decides them). */
export interface ResolvedTagConfig extends TagConfig {
  cookie: CookieConfig & Required<Omit<CookieConfig, 'domain'>>;
  serverCookie: boolean;
  serverCookieTimeoutMs: number;
  transport: Required<TransportConfig>;
  consent: ConsentConfig & { missing: 'allow' | 'deny'; defaults: CategoryPreferences };
  builtinSyncs: BuiltinSyncs;
  syncs: SyncConfig[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `base` with `override` laid over it, recursively for plain objects; arrays and other values in
 * `override` replace those of `base`, `undefined` ones are ignored. Neither argument is modified.
 * Used for `analytics.load(writeKey, options)` over the configuration the ingestion served.
 */
export function mergeTagConfig<T extends object>(base: T, override: object | undefined): T {
  const out = { ...base } as Record<string, unknown>;
  if (!override) return out as T;
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlainObject(value) && isPlainObject(current) ? mergeTagConfig(current, value) : value;
  }
  return out as T;
}

/**
 * Fills the defaults of every field of a {@link TagConfig} (each field's doc names its default);
 * `apiHost` loses trailing slashes. The given object is not modified.
 */
export function resolveTagConfig(config: TagConfig): ResolvedTagConfig {
  return {
    ...config,
    ...(config.apiHost ? { apiHost: config.apiHost.replace(/\/+$/, '') } : {}),
    cookie: { ...COOKIE_DEFAULTS, ...config.cookie },
    serverCookie: config.serverCookie ?? false,
    serverCookieTimeoutMs: config.serverCookieTimeoutMs ?? SERVER_COOKIE_TIMEOUT_MS,
    transport: { ...TRANSPORT_DEFAULTS, ...config.transport },
    consent: { missing: 'allow', defaults: {}, ...config.consent },
    builtinSyncs: config.builtinSyncs ?? {},
    syncs: config.syncs ?? [],
  };
}
