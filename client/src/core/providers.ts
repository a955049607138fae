/**
 * Platform-free rules of the Sync Injector: reading vendors' cookie formats, building Meta's ids,
 * filling sync URLs and decorating cross-domain links. The browser tag applies them to
 * `document.cookie`, `location` and links; keeping them here lets both the browser and Node
 * type-checks, and node tests, cover them.
 */

/**
 * GA4's client id from the `_ga` cookie: `GA1.<domain depth>.<random>.<first visit, s>` →
 * `<random>.<first visit, s>` (the `client_id` Measurement Protocol takes).
 * @returns undefined for a value of another shape.
 */
export function gaClientId(cookie: string | undefined): string | undefined {
  return /^GA\d\.\d+\.(.+\..+)$/.exec(cookie ?? '')?.[1];
}

/**
 * GA4's session id from a `_ga_<stream>` cookie, in both formats gtag.js writes:
 * `GS1.1.<session>.<count>.…` (dot-positional) and, since May 2025,
 * `GS2.1.s<session>$o<count>$g…$t…` (`$`-separated, letter-prefixed, in no fixed order).
 * @returns the session id (seconds since epoch, as a string) or undefined.
 */
export function gaSessionId(cookie: string | undefined): string | undefined {
  const [version, , fields = ''] = (cookie ?? '').split('.');
  if (version === 'GS1') return /^\d+$/.exec(fields)?.[0];
  if (version === 'GS2') return /(?:^|\$)s(\d+)/.exec(fields)?.[1];
  return undefined;
}

/** The gclid in Google's conversion-linker cookie `_gcl_aw` (`GCL.<click time, s>.<gclid>`). */
export function gclidFromGclAw(cookie: string | undefined): string | undefined {
  return /^GCL\.\d+\.([^.]+)/.exec(cookie ?? '')?.[1];
}

/** The msclkid in Microsoft UET's `_uetmsclkid` cookie (`_uet<msclkid>`). */
export function msclkidFromUet(cookie: string | undefined): string | undefined {
  return /^_uet(.+)$/.exec(cookie ?? '')?.[1];
}

/**
 * The fbclid inside an fbc value `fb.<subdomain index>.<creation ms>.<fbclid>[.<appendix>]` (Meta,
 * "ClickID and the fbp and fbc parameters"; the appendix is what Meta's parameter builder adds).
 * fbclid is base64url, so it holds no dot.
 */
export function fbclidOf(fbc: string | undefined): string | undefined {
  return /^fb\.\d+\.\d+\.([^.]+)/.exec(fbc ?? '')?.[1];
}

/**
 * The `_fbc` value to keep after a page view: the stored one unless the landing URL carries a
 * different `fbclid`, which gives `fb.1.<nowMs>.<fbclid>` (subdomain index 1: the cookie sits on the
 * registrable domain). Meta asks not to change the creation time of a click id already stored, and
 * never to alter the fbclid (case included).
 * @param stored the current `_fbc` cookie, if any.
 * @param fbclid the `fbclid` URL parameter, if any (empty counts as absent).
 * @param nowMs time the parameter was seen, ms since epoch.
 */
export function nextFbc(stored: string | undefined, fbclid: string | null | undefined, nowMs: number): string | undefined {
  return !fbclid || fbclidOf(stored) === fbclid ? stored : `fb.1.${nowMs}.${fbclid}`;
}

/**
 * A new `_fbp` value, `fb.1.<creation ms>.<10 random digits>`, the shape Meta's pixel writes.
 * @param random a number in [0, 1); default `Math.random`.
 */
export function mintFbp(nowMs: number, random: () => number = Math.random): string {
  return `fb.1.${nowMs}.${1e9 + Math.floor(random() * 9e9)}`;
}

/**
 * The value at a dot path (`user.id`; array indexes as numbers, `items.0.id`) of a parsed JSON
 * value, as a string when it is a string, finite number or boolean (ids are kept as text).
 * @returns undefined when the path leads nowhere or to an object, array, null or empty string.
 */
export function valueAtPath(value: unknown, path: string | undefined): string | undefined {
  for (const key of path ? path.split('.') : []) {
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  }
  return typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && isFinite(value)) ? String(value) || undefined : undefined;
}

/**
 * Fills `{name}` placeholders of a sync URL with URL-encoded `values` (an unset value gives an empty
 * string); placeholders not in `values` stay as written.
 */
export function fillPlaceholders(template: string, values: Record<string, string | null | undefined>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? encodeURIComponent(values[name] ?? '') : whole));
}

/** Whether `host` is one of `domains` or a subdomain of one (case-insensitive). */
export function hostInDomains(host: string, domains: readonly string[]): boolean {
  host = host.toLowerCase();
  return domains.some((domain) => {
    domain = domain.toLowerCase();
    return host === domain || host.endsWith(`.${domain}`);
  });
}

/**
 * `href` with query parameter `name` set to `value` (URL-encoded): an existing `name` is replaced,
 * the rest of the query and the fragment are left byte for byte (re-serializing the whole query, as
 * `URLSearchParams` does, would change how other parameters are encoded).
 */
export function withUrlParameter(href: string, name: string, value: string): string {
  const hashAt = href.indexOf('#') + 1 || href.length + 1;
  const beforeHash = href.slice(0, hashAt - 1);
  const queryAt = beforeHash.indexOf('?') + 1 || hashAt;
  const kept = beforeHash.slice(queryAt).split('&').filter((pair) => pair && pair.split('=')[0] !== name);
  return `${href.slice(0, queryAt - 1)}?${[...kept, `${name}=${encodeURIComponent(value)}`].join('&')}${href.slice(hashAt - 1)}`;
}

/**
 * Seconds a cross-domain link parameter is honoured after the link was used, either way (clock
 * skew between the visitor's pages is nil: one browser). Like Google's linker, whose `_gl` lasts
 * two minutes: a copied or shared URL does not hand the id to whoever opens it later.
 */
export const LINKER_MAX_AGE_S = 120;

/** The `_syxid` value for `id` at `nowMs`: `<id>.<unix seconds>`. */
export function linkerValue(id: string, nowMs: number): string {
  return `${id}.${Math.floor(nowMs / 1000)}`;
}

/**
 * The id a `_syxid` value carries, when it is well formed (`<8–64 letters, digits, _ or ->.<unix
 * seconds>`) and at most {@link LINKER_MAX_AGE_S} old at `nowMs`; else undefined.
 */
export function linkerId(value: string | null | undefined, nowMs: number): string | undefined {
  const match = value ? /^([\w-]{8,64})\.(\d{1,12})$/.exec(value) : null;
  if (!match) return undefined;
  return Math.abs(nowMs / 1000 - Number(match[2])) <= LINKER_MAX_AGE_S ? match[1] : undefined;
}
