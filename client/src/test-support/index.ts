// One hook set for a browser test file: Chromium, the ingestion on NATS, and the test site.
import { existsSync } from 'node:fs';
import type { IngestionSource } from '@switchyard/runtime';
import type { Page } from 'playwright-core';
import { useBrowser, type BrowserFixture } from './browser.js';
import { startTestIngestion, testSource, type SourceTag, type TestIngestion } from './ingestion.js';
import { startSite, TAG_BUNDLE_PATH, type TestSite } from './site.js';

export * from './browser.js';
export * from './ingestion.js';
export * from './site.js';

/** What {@link useTagHarness} gives a test file; fields are set in `beforeAll`. */
export interface TagHarness {
  browser: BrowserFixture;
  ingestion: TestIngestion;
  site: TestSite;
  /** A new Source (see {@link testSource}) served from now on; its events are this test's alone. */
  source(options?: { tag?: SourceTag; consent?: IngestionSource['consent'] }): IngestionSource;
}

/**
 * Registers the hooks of a browser test file: one Chromium, one ingestion (own streams) and one
 * site for the file; a fresh browser context per test (`harness.browser.newPage()`). An ingestion a
 * test stopped is started again after it.
 * @throws Error (in `beforeAll`) when the tag bundle is not built.
 */
export function useTagHarness(): TagHarness {
  const browser = useBrowser();
  const harness = { browser } as TagHarness;
  beforeAll(async () => {
    if (!existsSync(TAG_BUNDLE_PATH)) throw new Error(`${TAG_BUNDLE_PATH} is missing: build the tag first (node client/scripts/build-tag.mjs)`);
    harness.ingestion = await startTestIngestion();
    harness.site = await startSite(harness.ingestion.tagUrl);
  });
  afterEach(async () => {
    await harness.ingestion?.restart();
  });
  afterAll(async () => {
    await harness.site?.close();
    await harness.ingestion?.cleanup();
  });
  harness.source = (options = {}) => {
    const source = testSource(harness.site.port, options);
    harness.ingestion.addSources(source);
    return source;
  };
  return harness;
}

/**
 * Resolves once the tag on `page` is ready: loaded, the snippet's queue replayed, the identity
 * settled and the syncs run once (`analytics.ready`, which the snippet stubs, so it may be called
 * before the tag arrives).
 */
export async function tagReady(page: Page): Promise<void> {
  await page.evaluate('new Promise((resolve) => window.analytics.ready(() => resolve(true)))');
}
