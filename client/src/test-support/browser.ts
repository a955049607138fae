// Real Chromium for the browser tests, driven by playwright-core (which never downloads a browser:
// it drives the distribution's Chromium at /usr/bin/chromium).
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page, type Request } from 'playwright-core';

/** The Chromium the tests drive (Debian/Ubuntu package `chromium`). */
export const CHROMIUM_EXECUTABLE = '/usr/bin/chromium';

/** Registrable domain of the test site; Chromium resolves every `*.shop.test` to loopback. */
export const SITE_DOMAIN = 'shop.test';

/** A second registrable domain of the same customer (cross-domain identity), also resolved to loopback. */
export const OTHER_SITE_DOMAIN = 'checkout.test';

/**
 * Chromium flags: no sandbox (containers lack user namespaces), no GPU, no QUIC, no background
 * traffic, and every `*.shop.test` name resolved to 127.0.0.1 so pages on `www.shop.test`,
 * `blog.shop.test` and `data.shop.test` share the registrable domain `shop.test` as on a real site
 * (`*.checkout.test` likewise, the customer's other domain).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  `--host-resolver-rules=MAP *.${SITE_DOMAIN} 127.0.0.1,MAP *.${OTHER_SITE_DOMAIN} 127.0.0.1`,
];

/**
 * Launches headless Chromium from {@link CHROMIUM_EXECUTABLE} with {@link CHROMIUM_ARGS}.
 * @throws Error (code `CHROMIUM_MISSING`) naming the package to install when the executable is absent.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_EXECUTABLE)) {
    throw Object.assign(new Error(`${CHROMIUM_EXECUTABLE} not found: the browser tests drive the system Chromium; install it with \`apt-get install chromium\``), {
      name: 'ChromiumMissingError',
      code: 'CHROMIUM_MISSING',
    });
  }
  return chromium.launch({ executablePath: CHROMIUM_EXECUTABLE, args: [...CHROMIUM_ARGS] });
}

/** What {@link useBrowser} gives a test file. */
export interface BrowserFixture {
  /** The file's browser (set in `beforeAll`). */
  readonly browser: Browser;
  /** A fresh context (own cookies and storage), closed after the test. */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  /** A page of a fresh context. */
  newPage(options?: BrowserContextOptions): Promise<Page>;
  /** Uncaught errors of the pages opened through this fixture during the current test, as `url: message`. */
  readonly pageErrors: string[];
}

/**
 * Registers the hooks of a test file sharing one browser: launched in `beforeAll`, closed in
 * `afterAll`; the contexts a test opened are closed after it, and the test fails when one of their
 * pages threw an uncaught error (a tag must never break the site's page).
 */
export function useBrowser(): BrowserFixture {
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const pageErrors: string[] = [];
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close().catch(() => undefined)));
    const errors = pageErrors.splice(0);
    if (errors.length) throw new Error(`uncaught errors in test pages:\n${errors.join('\n')}`);
  });
  afterAll(async () => {
    await browser?.close();
  });
  const fixture: BrowserFixture = {
    get browser() {
      if (!browser) throw new Error('the browser is launched in beforeAll');
      return browser;
    },
    async newContext(options) {
      const context = await fixture.browser.newContext(options);
      contexts.push(context);
      context.on('page', (page) => page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`)));
      return context;
    },
    async newPage(options) {
      return (await fixture.newContext(options)).newPage();
    },
    pageErrors,
  };
  return fixture;
}

/** A request a page made, as {@link recordRequests} keeps it. */
export interface RecordedBrowserRequest {
  url: string;
  method: string;
  /** Request body as text, or undefined (GET, or a body Chromium did not report). */
  body: string | undefined;
  /** Body size in bytes (UTF-8). */
  bodyBytes: number;
  /** The page that made it (undefined for service workers). */
  page: Page | undefined;
  request: Request;
}

/**
 * Records the requests of every page of `context` whose URL `match`es, as Chromium reports them.
 * Requests a page sends while it is being left (keepalive at pagehide) are not reported: read
 * those at the server (`TestIngestion.requests`).
 */
export function recordRequests(context: BrowserContext, match: (url: URL) => boolean): RecordedBrowserRequest[] {
  const seen: RecordedBrowserRequest[] = [];
  context.on('request', (request) => {
    if (!match(new URL(request.url()))) return;
    const body = request.postData() ?? undefined;
    let page: Page | undefined;
    try {
      page = request.frame().page();
    } catch {
      page = undefined;
    }
    seen.push({ url: request.url(), method: request.method(), body, bodyBytes: body === undefined ? 0 : Buffer.byteLength(body), page, request });
  });
  return seen;
}
