/**
 * The browser tag's entry: replaces the snippet's stub `window.analytics` with the real object,
 * starts it with the configuration the ingestion served around the bundle (`__sy_config`) or the
 * write key the snippet's `analytics.load(writeKey, options)` recorded, and replays the calls the
 * stub recorded, in order.
 */
import type { TagConfig } from '../core/config.js';
import { isCapturedPage } from '../core/page.js';
import { createAnalytics, type Analytics } from './analytics.js';

/** Set by the ingestion: `(function(__sy_config){<bundle>})(<config>)`; absent when the tag is loaded as a plain file. */
declare const __sy_config: TagConfig | undefined;

/** The snippet's stub: recorded calls, and what its `load` noted. */
type Stub = unknown[][] & { _writeKey?: string; _loadOptions?: Partial<TagConfig>; initialized?: boolean };

/** Origin of the tag's own URL: the ingestion serving it (the default apiHost). */
function tagOrigin(): string {
  const own = document.currentScript as HTMLScriptElement | null;
  const src = own?.src || Array.from(document.scripts).find((script) => /\/tag\/|\/analytics\.js\//.test(script.src))?.src;
  try {
    return new URL(src!).origin;
  } catch {
    return location.origin;
  }
}

const host = window as unknown as { analytics?: Stub | Analytics };
const stub = host.analytics as Stub | undefined;
// Loaded twice: the first copy stays.
if (!stub?.initialized) {
  const served = typeof __sy_config !== 'undefined' ? __sy_config : undefined;
  const analytics = createAnalytics(served, tagOrigin());
  host.analytics = analytics;
  for (const call of Array.isArray(stub) ? stub : []) {
    const [method, ...args] = call;
    const page = args[args.length - 1];
    if (isCapturedPage(page)) args.pop();
    const run = analytics[method as string];
    if (typeof run !== 'function') {
      console.warn(`switchyard: analytics.${String(method)} is not supported`);
      continue;
    }
    analytics._captured = isCapturedPage(page) ? page : undefined;
    try {
      run(...args);
    } finally {
      analytics._captured = undefined;
    }
  }
  const writeKey = served?.writeKey ?? stub?._writeKey;
  if (writeKey) analytics.load(writeKey, stub?._loadOptions);
}
