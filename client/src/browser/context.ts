import type { Library } from '../core/event.js';
import type { CapturedPage } from '../core/page.js';

/** Replaced by the build with the client package's version. */
declare const __SY_VERSION__: string;

/** `context.library` of the tag's events. */
export const LIBRARY: Library = { name: 'switchyard.js', version: __SY_VERSION__ };

/** The page as it is now, in the shape Segment's snippet captures it. */
export function capturePage(): CapturedPage {
  return {
    __t: 'bpc',
    c: document.querySelector("link[rel='canonical']")?.getAttribute('href') ?? undefined,
    p: location.pathname,
    u: location.href,
    s: location.search,
    t: document.title,
    r: document.referrer,
  };
}

/** The context fields that do not change during a page's life: `userAgent`, `locale`, `timezone`, `screen`. */
export function deviceContext(): Record<string, unknown> {
  let timezone: string | undefined;
  try {
    timezone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch {
    // Old engines without Intl time zones.
  }
  return {
    userAgent: navigator.userAgent,
    locale: navigator.language,
    timezone,
    screen: { width: screen.width, height: screen.height, density: window.devicePixelRatio },
  };
}
