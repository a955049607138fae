import type { CategoryPreferences, ResolvedTagConfig } from '../core/config.js';
import { consentAllows, parseConsentCookie } from '../core/consent.js';
import type { CookieJar } from './cookies.js';

/** Cookie holding the preferences stated with `analytics.setConsent(...)`, as JSON. */
export const CONSENT_COOKIE = 'sy_consent';
const CONSENT_MAX_AGE_S = 365 * 86400;

/** The visitor's consent, from three sources. */
export interface Consent {
  /**
   * The preferences now: `setConsent` ones over the consent platform's cookie (read on each call)
   * over the configured defaults.
   */
  preferences(): CategoryPreferences;
  /** Merges `preferences` into the stated ones (cookie `sy_consent`, 365 days); non-boolean values are ignored. */
  state(preferences: Record<string, unknown>): void;
  /** Whether `preferences` permit a category (see `consent.missing`). */
  allows(preferences: CategoryPreferences): (category: string | undefined) => boolean;
}

/** The consent of a page. */
export function createConsent(config: ResolvedTagConfig, cookies: CookieJar): Consent {
  const { defaults, cookie: platform, missing } = config.consent;
  const stated = (): CategoryPreferences => parseConsentCookie(cookies.get(CONSENT_COOKIE), 'json');
  return {
    preferences: () => ({ ...defaults, ...(platform ? parseConsentCookie(cookies.get(platform.name), platform.format, platform.categories) : {}), ...stated() }),
    state(preferences) {
      const merged = stated();
      for (const [category, allowed] of Object.entries(preferences)) if (typeof allowed === 'boolean') merged[category] = allowed;
      cookies.set(CONSENT_COOKIE, JSON.stringify(merged), CONSENT_MAX_AGE_S);
    },
    allows: (preferences) => (category) => consentAllows(preferences, missing, category),
  };
}
