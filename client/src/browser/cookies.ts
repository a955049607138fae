/** First-party cookies of the tag, on the registrable domain unless configured otherwise. */
export interface CookieJar {
  /** The Domain attribute used, or undefined for host-only cookies (IP addresses, `localhost`). */
  readonly domain: string | undefined;
  /** The decoded value, or undefined. */
  get(name: string): string | undefined;
  /** Every cookie visible to the page, decoded, name → value (first wins). */
  all(): Record<string, string>;
  /** Sets `name` for `maxAgeSeconds` (URL-encoded value, Path=/, SameSite, Secure on https). */
  set(name: string, value: string, maxAgeSeconds: number): void;
  /** Deletes `name` (on our domain and host-only, whichever holds it). */
  remove(name: string): void;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `document.cookie`, or '' where reading it throws (sandboxed frames without same-origin). */
function readCookies(doc: Document): string {
  try {
    return doc.cookie;
  } catch {
    return '';
  }
}

/** Sets a cookie; a frame where that throws simply keeps none. */
function writeCookie(doc: Document, cookie: string): void {
  try {
    doc.cookie = cookie;
  } catch {
    // No cookies here: the localStorage mirror (or memory) carries the ids.
  }
}

/** Parses `document.cookie` (name=value; …). */
function parse(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of header.split(/;\s*/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!(name in out)) out[name] = decode(part.slice(eq + 1));
  }
  return out;
}

/**
 * The registrable domain of `hostname`, found the way analytics.js does without the Public Suffix
 * List (too large for the tag): try a cookie on each parent domain from the shortest (`b.c`, then
 * `a.b.c`, …); the first the browser keeps is it, since browsers refuse cookies on public suffixes.
 * @returns undefined for IP addresses and single-label hosts (`localhost`): host-only cookies.
 */
export function registrableDomain(hostname: string, doc: Document = document): string | undefined {
  if (/^[\d.]+$/.test(hostname) || hostname.includes(':') || !hostname.includes('.')) return undefined;
  const labels = hostname.split('.');
  for (let i = labels.length - 2; i >= 0; i--) {
    const candidate = labels.slice(i).join('.');
    const probe = `sy_probe_${Math.random().toString(36).slice(2)}`;
    writeCookie(doc, `${probe}=1; Domain=${candidate}; Path=/`);
    if (readCookies(doc).includes(`${probe}=1`)) {
      writeCookie(doc, `${probe}=; Domain=${candidate}; Path=/; Max-Age=0`);
      return candidate;
    }
  }
  return undefined;
}

/**
 * The tag's cookie jar.
 * @param options.domain Domain attribute; default {@link registrableDomain} of the page's host.
 * @param options.sameSite default `Lax`.
 */
export function cookieJar(options: { domain?: string; sameSite?: 'Lax' | 'Strict' | 'None' } = {}, doc: Document = document): CookieJar {
  const domain = options.domain ?? registrableDomain(location.hostname, doc);
  const secure = location.protocol === 'https:';
  const attributes = `; Path=/${domain ? `; Domain=${domain}` : ''}; SameSite=${options.sameSite ?? 'Lax'}${secure || options.sameSite === 'None' ? '; Secure' : ''}`;
  return {
    domain,
    get: (name) => parse(readCookies(doc))[name],
    all: () => parse(readCookies(doc)),
    set(name, value, maxAgeSeconds) {
      writeCookie(doc, `${name}=${encodeURIComponent(value)}; Max-Age=${Math.round(maxAgeSeconds)}${attributes}`);
    },
    remove(name) {
      writeCookie(doc, `${name}=; Max-Age=0${attributes}`);
      writeCookie(doc, `${name}=; Max-Age=0; Path=/`);
    },
  };
}
