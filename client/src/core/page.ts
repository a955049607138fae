/**
 * The page part of an event's context, by analytics.js's rules (Segment analytics-next
 * `pageDefaults`): a `<link rel="canonical">` URL, when the page has one, gives `url` and `path`.
 */

/** What Segment's snippet (5.x) captures when a call is made before the tag loaded: its trailing argument. */
export interface CapturedPage {
  __t: 'bpc';
  /** `href` of `<link rel="canonical">`, if any. */
  c?: string | undefined;
  /** `location.pathname`. */
  p: string;
  /** `location.href`. */
  u: string;
  /** `location.search`. */
  s: string;
  /** `document.title`. */
  t: string;
  /** `document.referrer`. */
  r: string;
  /** When the call was made (ISO 8601): the event's `timestamp`. Switchyard's snippet adds it; Segment's does not (the tag then stamps the call when it replays it). */
  d?: string;
}

/** `context.page` of an event (and the default properties of a `page` event). */
export interface PageContext {
  path: string;
  referrer: string;
  search: string;
  title: string;
  url: string;
}

/** Whether a call's argument is the page context a snippet added (`{__t: 'bpc', …}`). */
export function isCapturedPage(value: unknown): value is CapturedPage {
  return typeof value === 'object' && value !== null && (value as { __t?: unknown }).__t === 'bpc';
}

/**
 * The page context from what was captured: `url` is the canonical URL (resolved against the page,
 * the page's search appended when it has none), else the page URL without its fragment; `path` the
 * canonical URL's path, else the page's.
 */
export function pageContext(page: CapturedPage): PageContext {
  let url = page.u.split('#')[0]!;
  let path = page.p;
  if (page.c) {
    try {
      const canonical = new URL(page.c, page.u);
      path = canonical.pathname;
      url = canonical.search ? canonical.href : canonical.href + page.s;
    } catch {
      // An unreadable canonical link: the page's own URL stands.
    }
  }
  return { path, referrer: page.r, search: page.s, title: page.t, url };
}

/**
 * `context.campaign` from a URL's search string: `utm_campaign` → `name`, every other `utm_<x>`
 * → `<x>` (`source`, `medium`, `term`, `content`, …), as analytics.js does.
 * @returns undefined when there is no `utm_` parameter.
 */
export function campaignFromSearch(search: string): Record<string, string> | undefined {
  const campaign: Record<string, string> = {};
  let found = false;
  new URLSearchParams(search).forEach((value, key) => {
    if (key.startsWith('utm_') && key.length > 4) {
      campaign[key === 'utm_campaign' ? 'name' : key.slice(4)] = value;
      found = true;
    }
  });
  return found ? campaign : undefined;
}
