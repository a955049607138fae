// A customer's web site for the browser tests: pages with the Segment-style snippet loading the tag,
// the tag bundle as a plain file, and the endpoints configurable syncs call (JSON id endpoint, match
// pixel), which record their requests. Served for any Host (www.shop.test, blog.shop.test, …).
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { snippet as switchyardSnippet } from '../core/snippet.js';

/** The built tag (`node client/scripts/build-tag.mjs`). */
export const TAG_BUNDLE_PATH = fileURLToPath(new URL('../../dist/tag/switchyard.min.js', import.meta.url));

/** Where a page loads the tag from. */
export type TagLocation =
  /** The ingestion's `GET /tag/<writeKey>.js` (config served with it). */
  | 'ingestion'
  /** The ingestion's Segment CDN alias `GET /analytics.js/v1/<writeKey>/analytics.min.js`. */
  | 'segment-path'
  /** The site's own copy of the bundle (`/js/switchyard.min.js`): config only from `analytics.load(key, options)`. */
  | 'file';

/** One test page. */
export interface SitePage {
  /** `<title>`; default `Shop`. */
  title?: string;
  /** HTML of `<body>`. */
  body?: string;
  /**
   * The tag: write key, where it is loaded from (default `ingestion`), `analytics.load` options, and
   * whether the snippet calls `analytics.load` itself (default) or leaves it to the test (`manualLoad`:
   * the page can change for sure before the tag arrives). Omitted: no snippet at all. `snippet`:
   * Segment's 5.x snippet (default) or Switchyard's own (`snippet()` of the client core: loads from
   * the ingestion, calls `page()`, stamps each call's time; `from`, `loadOptions` and `manualLoad`
   * do not apply).
   */
  tag?: { writeKey: string; from?: TagLocation; loadOptions?: Record<string, unknown>; manualLoad?: boolean; snippet?: 'segment' | 'switchyard' };
  /** JavaScript run right after the snippet's `analytics.load(...)`, in the same script: its calls are queued in the stub. */
  script?: string;
}

/** A request to a sync endpoint, as the site recorded it. */
export interface SyncRequest {
  /** Path, e.g. `/sync/partner.json`. */
  path: string;
  query: Record<string, string>;
  host: string;
  cookie: string | undefined;
  origin: string | undefined;
}

/** What {@link startSite} resolves to. */
export interface TestSite {
  readonly port: number;
  /** `http://<host>:<port><path>`; `host` default `www.shop.test`. */
  url(path: string, host?: string): string;
  /** Registers (or replaces) the page served at `path` (query ignored). */
  page(path: string, page: SitePage): void;
  /** Sets the JSON the fetch sync endpoint `/sync/<name>.json` answers (with CORS for the page's origin, credentials allowed). */
  syncJson(name: string, body: unknown): void;
  /** Requests to `/sync/…` (JSON endpoints and pixels `/sync/<name>.gif`), oldest first. */
  readonly syncRequests: SyncRequest[];
  close(): Promise<void>;
}

/** Methods the snippet stubs (analytics.js's, as the tag replays them). */
const STUB_METHODS = ['page', 'track', 'identify', 'group', 'alias', 'screen', 'reset', 'ready', 'setAnonymousId', 'trackLink', 'trackForm', 'setConsent'];

/**
 * Segment's snippet (5.x form, readable): an array stub queuing `[method, ...args]`; page-context
 * calls get a trailing `{__t:'bpc', …}` captured at call time; `load` inserts the tag script and
 * keeps the options in `_loadOptions`.
 */
function snippet(writeKey: string, tagUrl: string, loadOptions: Record<string, unknown> | undefined, load: boolean): string {
  return `(function () {
  var analytics = (window.analytics = window.analytics || []);
  if (analytics.initialize) return;
  if (analytics.invoked) { console.error('Segment snippet included twice.'); return; }
  analytics.invoked = true;
  analytics.methods = ${JSON.stringify(STUB_METHODS)};
  analytics.factory = function (method) {
    return function () {
      if (window.analytics.initialized) return window.analytics[method].apply(window.analytics, arguments);
      var args = Array.prototype.slice.call(arguments);
      if (['track', 'screen', 'alias', 'group', 'page', 'identify'].indexOf(method) > -1) {
        var canonical = document.querySelector("link[rel='canonical']");
        args.push({ __t: 'bpc', c: (canonical && canonical.getAttribute('href')) || undefined, p: location.pathname, u: location.href, s: location.search, t: document.title, r: document.referrer });
      }
      args.unshift(method);
      analytics.push(args);
      return analytics;
    };
  };
  for (var i = 0; i < analytics.methods.length; i++) {
    var key = analytics.methods[i];
    analytics[key] = analytics.factory(key);
  }
  analytics.load = function (key, options) {
    var script = document.createElement('script');
    script.type = 'text/javascript';
    script.async = true;
    script.src = ${JSON.stringify(tagUrl)};
    var first = document.getElementsByTagName('script')[0];
    first.parentNode.insertBefore(script, first);
    analytics._loadOptions = options;
  };
  analytics._writeKey = ${JSON.stringify(writeKey)};
  analytics.SNIPPET_VERSION = '5.2.0';
  ${load ? `analytics.load(${JSON.stringify(writeKey)}${loadOptions ? `, ${JSON.stringify(loadOptions)}` : ''});` : ''}
})();`;
}

const PIXEL_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

/**
 * Starts the site on a free port, all interfaces.
 * @param tagUrl URL of the tag for a write key on the ingestion (see `TestIngestion.tagUrl`).
 */
export async function startSite(tagUrl: (writeKey: string, from: Exclude<TagLocation, 'file'>) => string): Promise<TestSite> {
  const pages = new Map<string, SitePage>();
  const json = new Map<string, unknown>();
  const syncRequests: SyncRequest[] = [];

  function html(page: SitePage): string {
    const { tag } = page;
    let script = '';
    if (tag) {
      const from = tag.from ?? 'ingestion';
      const src = from === 'file' ? '/js/switchyard.min.js' : tagUrl(tag.writeKey, from);
      const code = tag.snippet === 'switchyard' ? switchyardSnippet(new URL(tagUrl(tag.writeKey, 'ingestion')).origin, tag.writeKey) : snippet(tag.writeKey, src, tag.loadOptions, !tag.manualLoad);
      script = `<script>\n${code}\n${page.script ?? ''}\n</script>`;
    } else if (page.script) {
      script = `<script>\n${page.script}\n</script>`;
    }
    return `<!doctype html>
<html><head><meta charset="utf-8"><title>${page.title ?? 'Shop'}</title>
${script}
</head><body>${page.body ?? '<h1>Shop</h1>'}</body></html>`;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    if (url.pathname.startsWith('/sync/')) {
      syncRequests.push({
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        host: req.headers.host ?? '',
        cookie: req.headers.cookie,
        origin: req.headers.origin,
      });
      if (url.pathname.endsWith('.gif')) {
        res.writeHead(200, { 'content-type': 'image/gif', 'cache-control': 'no-store' }).end(PIXEL_GIF);
        return;
      }
      const name = url.pathname.slice('/sync/'.length).replace(/\.json$/, '');
      const cors = req.headers.origin ? { 'access-control-allow-origin': req.headers.origin, 'access-control-allow-credentials': 'true', vary: 'Origin' } : {};
      if (!json.has(name)) {
        res.writeHead(404, cors).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', ...cors }).end(JSON.stringify(json.get(name)));
      return;
    }
    if (url.pathname === '/js/switchyard.min.js') {
      let bundle: Buffer;
      try {
        bundle = readFileSync(TAG_BUNDLE_PATH);
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('tag not built: run node client/scripts/build-tag.mjs');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' }).end(bundle);
      return;
    }
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    const page = pages.get(url.pathname);
    if (!page) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no test page at ${url.pathname}`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html(page));
  }

  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path, host = 'www.shop.test') => `http://${host}:${port}${path}`,
    page: (path, page) => void pages.set(path, page),
    syncJson: (name, body) => void json.set(name, body),
    syncRequests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
