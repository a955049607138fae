import type { CategoryPreferences, ConsentConfig } from './config.js';

/** The consent platforms' cookie formats the tag reads (see {@link parseConsentCookie}). */
export type PlatformFormat = NonNullable<ConsentConfig['cookie']>['format'];

/**
 * Reads a consent platform's cookie value (already URL-decoded once, as `document.cookie` parsers
 * give it) into category preferences:
 * - `onetrust`: `OptanonConsent`, a query string whose `groups` is `C0001:1,C0004:0` (1 = opted in);
 * - `cookiebot`: `CookieConsent`, a JavaScript object literal `{stamp:'…',necessary:true,marketing:false,…}`
 *   (the value `-1`, "no consent needed in this region", states nothing);
 * - `json`: a JSON object category → boolean (other values are ignored).
 * `categories` renames the platform's names to ours; unnamed ones keep their own.
 * @returns `{}` when the value is missing or unreadable.
 */
export function parseConsentCookie(value: string | undefined, format: PlatformFormat, categories: Record<string, string> = {}): CategoryPreferences {
  const out: CategoryPreferences = {};
  if (!value) return out;
  const put = (name: string, allowed: boolean) => {
    out[categories[name] ?? name] = allowed;
  };
  if (format === 'onetrust') {
    const groups = /(?:^|&)groups=([^&]*)/.exec(value)?.[1];
    if (groups) {
      for (const group of safeDecode(groups).split(',')) {
        const [name, state] = group.split(':');
        if (name && (state === '0' || state === '1')) put(name, state === '1');
      }
    }
  } else if (format === 'cookiebot') {
    for (const match of safeDecode(value).matchAll(/(\w+):(true|false)/g)) {
      if (match[1] !== 'stamp' && match[1] !== 'method') put(match[1]!, match[2] === 'true');
    }
  } else {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'object' && parsed !== null) {
        for (const [name, allowed] of Object.entries(parsed)) if (typeof allowed === 'boolean') put(name, allowed);
      }
    } catch {
      // Not JSON: no stated preference.
    }
  }
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Whether `preferences` permit a category: no category → yes; a stated preference decides; an
 * unstated one follows `missing` (`allow` in opt-out regimes, `deny` in opt-in ones).
 */
export function consentAllows(preferences: CategoryPreferences, missing: 'allow' | 'deny', category: string | undefined): boolean {
  if (category === undefined) return true;
  const stated = preferences[category];
  return stated === undefined ? missing !== 'deny' : stated;
}
