/**
 * The Sync Injector: collects vendors' browser ids and click ids (and a customer's own, through
 * configurable syncs) into first-party storage, and attaches them to every event as
 * `context.providers` (keys and fields: see this folder's README).
 */
import type { CookieJar } from '../cookies.js';
import { BUILTIN_SYNC_DEFAULTS, type BuiltinSyncConfig, type BuiltinSyncs, type SyncConfig, type TagConfig } from '../../core/config.js';
import { uuidv4 } from '../../core/uuid.js';
import { fillPlaceholders, gaClientId, gaSessionId, gclidFromGclAw, hostInDomains, linkerId, linkerValue, mintFbp, msclkidFromUet, nextFbc, valueAtPath, withUrlParameter } from '../../core/providers.js';

/** What the Sync Injector needs from the page. */
export interface SyncEnvironment {
  /** First-party cookies on the registrable domain. */
  cookies: CookieJar;
  /** Current time, ms since epoch. */
  now(): number;
  /** The visitor's current identity (for `{anonymousId}` and `{userId}` in sync URLs). */
  identity(): { anonymousId: string; userId?: string | null };
  /** The page URL (`location.href`). */
  url(): URL;
  /** Settles once the anonymous id is final (the server cookie's answer, when there is one): fetch and pixel syncs send it, so they wait. */
  ready(): Promise<void>;
}

/** Whether the visitor's consent permits a category (`undefined`: the sync states none). */
export type ConsentCheck = (category: string | undefined) => boolean;

/** The Sync Injector of one page. */
export interface SyncInjector {
  /**
   * Runs the syncs `allowed` permits: reads URL parameters and cookies into storage, mints ids,
   * fires fetch and pixel syncs due. Safe to call again (after consent changes): what is stored is
   * kept, nothing is fetched or fired twice. The synchronous part is done when it returns.
   * @returns a promise resolved when the fetch syncs it started settled (each times out after 3 s;
   * failures are logged with console.debug, never thrown, and retried on the next page load).
   */
  run(allowed: ConsentCheck): Promise<void>;
  /** The ids to attach to an event now (`context.providers`), from the syncs `allowed` permits. */
  providers(allowed: ConsentCheck): Record<string, Record<string, unknown>>;
  /** Deletes our stored ids (`sy_*` cookies) of the syncs `allowed` no longer permits; vendors' own cookies are left alone. */
  forget(allowed: ConsentCheck): void;
}

/** One sync, built-in or configured, reduced to what the injector does with it. */
interface Unit {
  /** Key under `context.providers`. */
  key: string;
  /** Consent category it needs (undefined: none stated). */
  category: string | undefined;
  /** Our cookies holding its ids (deleted by forget()). */
  stored: string[];
  /** Collects its ids; the promise (fetch syncs) settles without rejecting. */
  run(): Promise<void> | void;
  /** Its fields for `context.providers`, undefined when it has none. */
  read(): Record<string, unknown> | undefined;
}

const DAY_S = 86_400;
const FETCH_TIMEOUT_MS = 3000;
const CROSS_DOMAIN_COOKIE = 'sy_crossDomain_id';
const CROSS_DOMAIN_PARAMETER = '_syxid';

/**
 * Creates the Sync Injector of a page; nothing runs until {@link SyncInjector.run}.
 * @param config the tag's configuration: `builtinSyncs` (each on unless `enabled: false`) and `syncs`.
 * A configured sync with an invalid `name` (letters, digits, `_`, `-`) or `pattern` is skipped
 * (console.debug).
 */
export function createSyncInjector(config: TagConfig, env: SyncEnvironment): SyncInjector {
  const jar = env.cookies;
  // The landing URL too: consent may come after a single-page app dropped the click ids from the address.
  const landing = env.url();
  const parameter = (names: string[]) => {
    for (const url of [env.url(), landing]) for (const name of names) if (url.searchParams.get(name)) return url.searchParams.get(name)!;
    return undefined;
  };
  /** Keeps a newer value with a fresh lifetime; the same value seen again keeps its cookie as it is. */
  const store = (name: string, value: string | undefined, days: number) => {
    if (value && value !== jar.get(name)) jar.set(name, value, days * DAY_S);
  };
  const context: Context = { jar, env, parameter, store, lastAllowed: () => true };
  const units: Unit[] = [];
  const builtins = config.builtinSyncs ?? {};
  for (const [name, make] of BUILTINS) {
    const settings: BuiltinSyncConfig = builtins[name] ?? {};
    if (settings.enabled === false) continue;
    const days = settings.lifetimeDays ?? BUILTIN_SYNC_DEFAULTS[name].lifetimeDays;
    units.push({ category: settings.category ?? BUILTIN_SYNC_DEFAULTS[name].category, ...make(context, settings, days) });
  }
  for (const sync of config.syncs ?? []) {
    try {
      units.push(configuredSync(context, sync));
    } catch (error) {
      console.debug('switchyard: sync skipped', sync.name, error);
    }
  }

  return {
    async run(allowed) {
      context.lastAllowed = allowed;
      await Promise.all(units.filter((unit) => allowed(unit.category)).map((unit) => unit.run()));
    },
    providers(allowed) {
      const out: Record<string, Record<string, unknown>> = {};
      for (const unit of units) {
        const fields = allowed(unit.category) ? unit.read() : undefined;
        if (fields) out[unit.key] = { ...out[unit.key], ...fields };
      }
      return out;
    },
    forget(allowed) {
      context.lastAllowed = allowed;
      for (const unit of units) if (!allowed(unit.category)) for (const name of unit.stored) jar.remove(name);
    },
  };
}

/** What the syncs share within one injector. */
interface Context {
  jar: CookieJar;
  env: SyncEnvironment;
  /** The first non-empty of URL parameters `names`, in the current URL, else in the landing URL. */
  parameter(names: string[]): string | undefined;
  /** Writes a cookie for `days` unless it already holds `value` (or `value` is empty). */
  store(name: string, value: string | undefined, days: number): void;
  /** The consent check last given to run() or forget(). */
  lastAllowed: ConsentCheck;
}

/** `fields` without its undefined entries, or undefined when none is left. */
function present(fields: Record<string, unknown>): Record<string, unknown> | undefined {
  for (const key in fields) if (fields[key] === undefined) delete fields[key];
  return Object.keys(fields).length ? fields : undefined;
}

/**
 * A sync made of fields: a field with URL `parameters` keeps the newest value in
 * `sy_<key>_<field>`; otherwise, or while none was seen, it is read from a vendor `cookie` (its
 * name, or a function finding it) through `parse`.
 */
interface Field {
  field: string;
  parameters?: string[];
  cookie?: string | (() => string | undefined);
  parse?: (value: string | undefined) => string | undefined;
}

/** A built-in made of {@link Field}s, under `context.providers.<key>`, its click ids kept `days`. */
function fieldsSync({ jar, parameter, store }: Context, key: string, fields: Field[], days: number): Omit<Unit, 'category'> {
  const stored = (f: Field) => `sy_${key}_${f.field}`;
  return {
    key,
    stored: fields.filter((f) => f.parameters).map(stored),
    run() {
      for (const f of fields) if (f.parameters) store(stored(f), parameter(f.parameters), days);
    },
    read() {
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        const cookie = typeof f.cookie === 'function' ? f.cookie() : f.cookie;
        out[f.field] = (f.parameters && jar.get(stored(f))) || (cookie && (f.parse ?? ((value) => value))(jar.get(cookie))) || undefined;
      }
      return present(out);
    },
  };
}

/** Makes a built-in from its settings (any built-in's: they only add fields) and its lifetime in days. */
type Builtin = (context: Context, settings: NonNullable<BuiltinSyncs['google']> & NonNullable<BuiltinSyncs['crossDomain']>, days: number) => Omit<Unit, 'category'>;

/** The built-ins by config key, crossDomain first (other syncs' URLs may use `{crossDomainId}`). */
const BUILTINS: Array<[keyof BuiltinSyncs, Builtin]> = [
  [
    'crossDomain',
    ({ jar, env, parameter, store }, { domains = [] }, days) => {
      let decorating = false;
      const decorate = (event: Event) => {
        if (event.type === 'keydown' && (event as KeyboardEvent).key !== 'Enter') return;
        const link = (event.target as Element | null)?.closest?.('a[href],area[href]') as HTMLAnchorElement | null;
        const id = jar.get(CROSS_DOMAIN_COOKIE);
        if (!link || !id || !/^https?:$/.test(link.protocol) || !hostInDomains(link.hostname, domains)) return;
        // Hosts sharing our cookie domain (or this very host) see the id already.
        if (jar.domain ? hostInDomains(link.hostname, [jar.domain]) : link.hostname === env.url().hostname) return;
        link.href = withUrlParameter(link.href, CROSS_DOMAIN_PARAMETER, linkerValue(id, env.now()));
      };
      return {
        key: 'crossDomain',
        stored: [CROSS_DOMAIN_COOKIE],
        run() {
          // An id carried from another of the site's domains wins: it is the same visitor.
          const carried = linkerId(parameter([CROSS_DOMAIN_PARAMETER]), env.now());
          store(CROSS_DOMAIN_COOKIE, carried || jar.get(CROSS_DOMAIN_COOKIE) || uuidv4(), days);
          if (domains.length && !decorating) {
            decorating = true;
            // Like Google's linker, links are decorated when used (the id is current, markup is never
            // rewritten ahead); in the capture phase, before pages' own handlers navigate.
            for (const type of ['mousedown', 'keydown', 'click']) document.addEventListener(type, decorate, true);
          }
        },
        read: () => present({ id: jar.get(CROSS_DOMAIN_COOKIE) }),
      };
    },
  ],
  [
    'meta',
    ({ jar, env, parameter, store }, _settings, days) => ({
      key: 'facebookTag',
      // _fbp and _fbc are Meta's own cookies (its pixel may have set them): forget() leaves them.
      stored: [],
      run() {
        if (!jar.get('_fbp')) jar.set('_fbp', mintFbp(env.now()), 90 * DAY_S);
        store('_fbc', nextFbc(jar.get('_fbc'), parameter(['fbclid']), env.now()), days);
      },
      read: () => present({ fbp: jar.get('_fbp'), fbc: jar.get('_fbc') }),
    }),
  ],
  [
    'google',
    (context, { measurementId }, days) => {
      const sessionCookie = () =>
        measurementId ? `_ga_${measurementId.replace(/^G-/, '')}` : Object.keys(context.jar.all()).find((name) => name.startsWith('_ga_'));
      const sync = fieldsSync(
        context,
        'googleGtag',
        [
          { field: 'client_id', cookie: '_ga', parse: gaClientId },
          { field: 'session_id', cookie: sessionCookie, parse: gaSessionId },
          { field: 'gclid', parameters: ['gclid'], cookie: '_gcl_aw', parse: gclidFromGclAw },
          ...['gbraid', 'wbraid', 'dclid'].map((field) => ({ field, parameters: [field] })),
        ],
        days,
      );
      return { ...sync, read: () => ((data) => data && { data })(sync.read()) };
    },
  ],
  ['tiktok', (context, _settings, days) => fieldsSync(context, 'tiktok', [{ field: 'ttclid', parameters: ['ttclid'] }, { field: 'ttp', cookie: '_ttp' }], days)],
  ['microsoft', (context, _settings, days) => fieldsSync(context, 'microsoft', [{ field: 'msclkid', parameters: ['msclkid'], cookie: '_uetmsclkid', parse: msclkidFromUet }], days)],
  ['pinterest', (context, _settings, days) => fieldsSync(context, 'pinterest', [{ field: 'epik', parameters: ['epik'], cookie: '_epik' }], days)],
  ['snapchat', (context, _settings, days) => fieldsSync(context, 'snapchat', [{ field: 'sccid', parameters: ['ScCid', 'sccid'] }, { field: 'scid', cookie: '_scid' }], days)],
];

/**
 * A configured sync (see `SyncConfig`). urlParameter, fetch and pixel keep what they got in
 * `sy_<name>_<field>` for `lifetimeDays`; cookie and localStorage read their source live.
 * @throws Error when `name` is not letters, digits, `_`, `-`, or `pattern` is no regular expression.
 */
function configuredSync(context: Context, sync: SyncConfig): Unit {
  const { jar, env, parameter, store } = context;
  if (!/^[\w-]+$/.test(sync.name)) throw new Error(`invalid sync name ${JSON.stringify(sync.name)}`);
  const field = sync.field ?? (sync.kind === 'pixel' ? 'syncedAt' : 'id');
  const cookieName = `sy_${sync.name}_${field}`;
  const days = sync.lifetimeDays ?? 90;
  const unit = (run: () => Promise<void> | void, read = () => jar.get(cookieName)): Unit => ({
    key: sync.name,
    category: sync.category,
    stored: sync.kind === 'cookie' || sync.kind === 'localStorage' ? [] : [cookieName],
    run,
    read: () => present({ [field]: read() || undefined }),
  });
  const url = (template: string) => {
    const { anonymousId, userId } = env.identity();
    return fillPlaceholders(template, { anonymousId, userId, crossDomainId: jar.get(CROSS_DOMAIN_COOKIE), random: String(Math.random()).slice(2) });
  };
  switch (sync.kind) {
    case 'urlParameter':
      return unit(() => store(cookieName, parameter([sync.parameter]), days));
    case 'cookie': {
      const pattern = sync.pattern === undefined ? undefined : new RegExp(sync.pattern);
      return unit(
        () => {},
        () => {
          const value = jar.get(sync.cookie);
          return pattern && value ? pattern.exec(value)?.[1] : value;
        },
      );
    }
    case 'localStorage':
      return unit(
        () => {},
        () => {
          try {
            const value = localStorage.getItem(sync.key) ?? undefined;
            return sync.path ? valueAtPath(JSON.parse(value ?? 'null'), sync.path) : value;
          } catch {
            return undefined; // storage blocked, or not JSON
          }
        },
      );
    case 'pixel': {
      let started: Promise<void> | undefined;
      return unit(() => {
        if (started || jar.get(cookieName)) return started;
        return (started = env.ready().then(() => {
          started = undefined;
          if (jar.get(cookieName) || !context.lastAllowed(sync.category)) return;
          new Image().src = url(sync.url);
          store(cookieName, new Date(env.now()).toISOString(), days);
        }));
      });
    }
    case 'fetch': {
      // Once per page at most: a failure waits for the next page load.
      let started: Promise<void> | undefined;
      return unit(() => {
        if (started || jar.get(cookieName)) return started;
        const abort = new AbortController();
        let timer: ReturnType<typeof setTimeout> | undefined;
        return (started = env
          .ready()
          .then(() => {
            timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
            return fetch(url(sync.url), { credentials: sync.credentials ?? 'include', signal: abort.signal });
          })
          .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`HTTP ${response.status}`))))
          .then((body: unknown) => {
            // Consent may have been withdrawn while the request was out.
            if (context.lastAllowed(sync.category)) store(cookieName, valueAtPath(body, sync.path), days);
          })
          .catch((error: unknown) => console.debug('switchyard: sync failed', sync.name, error))
          .finally(() => clearTimeout(timer)));
      });
    }
  }
}
