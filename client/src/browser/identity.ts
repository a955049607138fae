import type { ResolvedTagConfig } from '../core/config.js';
import type { Fields } from '../core/args.js';
import { uuidv4 } from '../core/uuid.js';
import type { CookieJar } from './cookies.js';
import type { Store } from './storage.js';

/** The visitor's identity, persisted the analytics.js way. */
export interface Identity {
  /** The anonymous id, minted (uuid v4) and stored when there is none. */
  anonymousId(): string;
  /** Replaces the anonymous id (`null`: forget it; the next read mints one). */
  setAnonymousId(id: string | null): void;
  userId(): string | null;
  setUserId(id: string | null): void;
  traits(): Fields;
  setTraits(traits: Fields): void;
  groupId(): string | null;
  setGroupId(id: string | null): void;
  groupTraits(): Fields;
  setGroupTraits(traits: Fields): void;
  /**
   * Asks the ingestion to set the anonymous id cookie (`POST /v1/identity`) and adopts the id it
   * answers (its cookie wins, unless `replace`: then the page's id replaces the cookie's, as
   * setAnonymousId and reset need). Settles when it answered, failed or timed out; never rejects.
   */
  syncServer(replace?: boolean): Promise<void>;
  /** Settles when the last {@link syncServer} settled (at once without one). */
  ready(): Promise<void>;
}

const TRAITS = 'ajs_user_traits';
const GROUP_ID = 'ajs_group_id';
const GROUP_TRAITS = 'ajs_group_properties';

/** A stored id, raw or JSON-quoted (analytics.js classic wrote `"…"`, URL-encoded as `%22…%22`). */
function unquote(value: string | null | undefined): string | null {
  if (value && value[0] === '"') {
    try {
      value = String(JSON.parse(value));
    } catch {
      // Not JSON after all: keep it raw.
    }
  }
  return value || null;
}

/**
 * The identity of a page. Ids live in a cookie and in a localStorage mirror of the same name: the
 * cookie wins when both exist and differ (the mirror is rewritten), the mirror alone restores the
 * cookie. With `serverCookie`, only the ingestion writes the anonymous id cookie (a cookie written
 * by script would lose the longer lifetime browsers give server-set ones).
 * Traits and the group live in localStorage only (`ajs_user_traits`, `ajs_group_id`, `ajs_group_properties`).
 * @param adopted called when the server's answer replaced the anonymous id `from` by `to`.
 */
export function createIdentity(config: ResolvedTagConfig, cookies: CookieJar, store: Store, adopted: (from: string, to: string) => void): Identity {
  const { anonymousIdName, userIdName, maxAgeDays } = config.cookie;
  const scriptWrites = (name: string) => !(config.serverCookie && name === anonymousIdName);
  const read = (name: string) => {
    const cookie = unquote(cookies.get(name));
    const mirror = unquote(store.get(name));
    if (cookie) {
      if (mirror !== cookie) store.set(name, cookie);
      return cookie;
    }
    if (mirror && scriptWrites(name)) cookies.set(name, mirror, maxAgeDays * 86400);
    return mirror;
  };
  const write = (name: string, value: string | null) => {
    if (value === null) {
      cookies.remove(name);
      store.del(name);
    } else {
      if (scriptWrites(name)) cookies.set(name, value, maxAgeDays * 86400);
      store.set(name, value);
    }
  };
  const readJson = (key: string): Fields => {
    try {
      const value: unknown = JSON.parse(store.get(key) ?? '{}');
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Fields) : {};
    } catch {
      return {};
    }
  };
  let settled: Promise<void> = Promise.resolve();
  // An id set by setAnonymousId/reset that the server cookie does not hold yet: it wins over the
  // cookie (which may be HttpOnly, so the script cannot change it) until the server took it.
  let replacing: string | undefined;

  const identity: Identity = {
    anonymousId() {
      if (replacing) return replacing;
      let id = read(anonymousIdName);
      if (!id) write(anonymousIdName, (id = uuidv4()));
      return id;
    },
    setAnonymousId(id) {
      replacing = undefined;
      write(anonymousIdName, id);
      if (config.serverCookie) {
        replacing = identity.anonymousId();
        void identity.syncServer(true);
      }
    },
    userId: () => read(userIdName),
    setUserId: (id) => write(userIdName, id),
    traits: () => readJson(TRAITS),
    setTraits: (traits) => store.set(TRAITS, JSON.stringify(traits)),
    groupId: () => unquote(store.get(GROUP_ID)),
    setGroupId: (id) => (id === null ? store.del(GROUP_ID) : store.set(GROUP_ID, id)),
    groupTraits: () => readJson(GROUP_TRAITS),
    setGroupTraits: (traits) => store.set(GROUP_TRAITS, JSON.stringify(traits)),
    syncServer(replace) {
      const provisional = identity.anonymousId();
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), config.serverCookieTimeoutMs);
      return (settled = fetch(`${config.apiHost}/v1/identity`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ writeKey: config.writeKey, anonymousId: provisional, replace }),
        signal: abort.signal,
      })
        .then(async (response) => {
          const answer = (await response.json()) as { anonymousId?: unknown };
          const id = answer.anonymousId;
          if (response.ok && replacing === provisional) replacing = undefined;
          // A setAnonymousId() made meanwhile wins over the answer.
          if (response.ok && typeof id === 'string' && id && id !== provisional && identity.anonymousId() === provisional) {
            write(anonymousIdName, id);
            adopted(provisional, id);
          }
        })
        .catch(() => {
          // Unreachable, refused or too slow: the tag goes on with its own id.
        })
        .finally(() => clearTimeout(timer)));
    },
    ready: () => settled,
  };
  return identity;
}
