// The tag's transport in Chromium against the real ingestion: events tracked while the ingestion is
// down survive a reload and arrive once, with their original messageId and timestamp; the queue is
// sent when the page goes away (keepalive), never more than 64 KB in flight then; of two tabs of a
// site only the one holding the queue lease sends.
import { FAST_TAG_TRANSPORT, recordRequests, tagReady, testSource, useTagHarness, type Json } from '../test-support/index.js';
import { eventually } from '../../../runtime/src/test-support/http-receiver.js';

const isBatch = (url: URL) => url.pathname === '/v1/batch';

describe('tag transport', () => {
  const h = useTagHarness();

  beforeAll(() => h.site.page('/plain', { body: '<h1>No tag here</h1>' }));

  it('retries across a reload while the ingestion is down; each event arrives once with its original messageId and timestamp', async () => {
    const source = h.source();
    // The site's own copy of the tag, so that pages load while the ingestion is down.
    h.site.page('/cart', { tag: { writeKey: source.writeKey, from: 'file', loadOptions: { apiHost: h.ingestion.origin, transport: FAST_TAG_TRANSPORT } } });
    const context = await h.browser.newContext();
    const failed: string[] = [];
    context.on('requestfailed', (request) => {
      if (isBatch(new URL(request.url()))) failed.push(request.url());
    });
    const page = await context.newPage();
    await page.goto(h.site.url('/cart'));
    await tagReady(page);

    await h.ingestion.stop();
    const tracked = (await page.evaluate(`Promise.all(['Down 1', 'Down 2', 'Down 3'].map((name) => analytics.track(name)))
      .then((events) => events.map(({ event, messageId, timestamp }) => ({ event, messageId, timestamp })))`)) as Json[];
    await eventually(() => failed.length > 0, 10_000, 'a failed attempt before the reload');
    await page.reload();
    await tagReady(page);
    const failedBeforeReload = failed.length;
    await eventually(() => failed.length > failedBeforeReload, 10_000, 'the reloaded page retrying');
    await h.ingestion.restart();

    // Retries are due at jittered times: the order among them is not kept.
    const arrived = await h.ingestion.events.waitFor(source, 3);
    const byName = (a: Json, b: Json) => a.event.localeCompare(b.event);
    expect(arrived.map(({ event, messageId, originalTimestamp }) => ({ event, messageId, timestamp: originalTimestamp })).sort(byName)).toEqual(tracked.sort(byName));
    // Nothing else comes after them (a rebuilt event would have a new messageId).
    await page.evaluate("analytics.track('After Recovery')");
    const all = await h.ingestion.events.waitFor(source, 4);
    expect(all.map((e) => e.event).sort()).toEqual(['After Recovery', 'Down 1', 'Down 2', 'Down 3']);
  });

  it('sends the queue when the page goes away, long before the flush interval', async () => {
    // Flush interval and lease (whose renewals also flush) far beyond the test.
    const source = h.source({ tag: { transport: { flushInterval: '1h', lease: '1h' } } });
    h.site.page('/leaving', { tag: { writeKey: source.writeKey } });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/leaving'));
    await tagReady(page);
    await page.evaluate("Promise.all([analytics.track('Viewed Offer'), analytics.track('Left Page')])");
    await page.goto(h.site.url('/plain'));
    const events = await h.ingestion.events.waitFor(source, 2);
    expect(events.map((e) => e.event)).toEqual(['Viewed Offer', 'Left Page']);
  });

  it('lets calls made within the flush interval share one request', async () => {
    // The lease is renewed every 50 ms; that must not send events before their interval is over.
    const source = h.source({ tag: { transport: { flushInterval: '1s', lease: '150ms' } } });
    h.site.page('/browse', { tag: { writeKey: source.writeKey }, script: "analytics.track('Landed')" });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/browse'));
    await h.ingestion.events.waitFor(source, 1);
    const seen = h.ingestion.requests.length;
    await page.evaluate(`(async () => {
      const pause = () => new Promise((resolve) => setTimeout(resolve, 150));
      analytics.track('Viewed A'); await pause();
      analytics.track('Viewed B'); await pause();
      analytics.track('Viewed C');
    })()`);
    const events = await h.ingestion.events.waitFor(source, 4);
    expect(events.map((e) => e.event)).toEqual(['Landed', 'Viewed A', 'Viewed B', 'Viewed C']);
    expect(h.ingestion.requests.slice(seen).filter((r) => r.url === '/v1/batch')).toHaveLength(1);
  });

  it('drops the events of an origin the Source does not allow after one refused request, with a warning', async () => {
    const source = { ...testSource(h.site.port), allowedOrigins: [`http://www.shop.test:${h.site.port}`] };
    h.ingestion.addSources(source);
    h.site.page('/elsewhere', { tag: { writeKey: source.writeKey }, script: "analytics.track('Refused')" });
    const page = await h.browser.newPage();
    const warnings: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'warning') warnings.push(message.text());
    });
    const seen = h.ingestion.requests.length;
    await page.goto(h.site.url('/elsewhere', 'blog.shop.test'));
    await tagReady(page);
    await eventually(async () => (await page.evaluate('analytics._queue().length')) === 0, 10_000, 'the refused events dropped from the queue');
    expect(h.ingestion.requests.slice(seen).filter((r) => r.url === '/v1/batch')).toHaveLength(1);
    expect(warnings.join('\n')).toContain('403');
    expect(await h.ingestion.events.of(source)).toEqual([]);
  });

  it('releases the queue lease when the page goes away: the next page sends at once', async () => {
    // A lease far beyond the test: only its release lets the next page send.
    const source = h.source({ tag: { transport: { lease: '1h' } } });
    h.site.page('/step-1', { tag: { writeKey: source.writeKey }, script: "analytics.track('Step 1')" });
    h.site.page('/step-2', { tag: { writeKey: source.writeKey }, script: "analytics.track('Step 2')" });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/step-1'));
    await h.ingestion.events.waitFor(source, 1);
    await page.goto(h.site.url('/step-2'));
    const events = await h.ingestion.events.waitFor(source, 2);
    expect(events.map((e) => e.event)).toEqual(['Step 1', 'Step 2']);
  });

  it('has at most 64 KB in flight when the page goes away; the rest is sent by the next page', async () => {
    const source = h.source({ tag: { transport: { flushInterval: '1h', lease: '1h', maxEvents: 500 } } });
    h.site.page('/big', { tag: { writeKey: source.writeKey } });
    const seenBefore = h.ingestion.requests.length;
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/big'));
    await tagReady(page);
    // 100 events of ~1.2 KB: about 120 KB queued.
    await page.evaluate("Promise.all(Array.from({ length: 100 }, (_, i) => analytics.track('Viewed Product', { index: i, description: 'x'.repeat(1000) })))");
    const batches = () => h.ingestion.requests.slice(seenBefore).filter((r) => r.url === '/v1/batch');
    expect(batches()).toHaveLength(0);

    // The ingestion sees the keepalive requests (the DevTools protocol does not report those of a page being left).
    await page.goto(h.site.url('/plain'));
    await h.ingestion.events.waitFor(source, 1);
    const sentAtPagehide = batches().map((r) => r.bodyBytes);
    expect(sentAtPagehide.length).toBeGreaterThan(0);
    expect(sentAtPagehide.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(64 * 1024);
    const arrivedFirst = (await h.ingestion.events.of(source)).length;
    expect(arrivedFirst).toBeLessThan(100);

    await page.goto(h.site.url('/big'));
    const events = await h.ingestion.events.waitFor(source, 100);
    expect(events).toHaveLength(100);
    expect(new Set(events.map((e) => e.properties.index)).size).toBe(100);
  });

  it('of two tabs, only the lease holder sends; every event arrives once', async () => {
    const source = h.source({ tag: { transport: { lease: '3s' } } });
    h.site.page('/tabs', { tag: { writeKey: source.writeKey } });
    const context = await h.browser.newContext();
    const requests = recordRequests(context, isBatch);
    const first = await context.newPage();
    await first.goto(h.site.url('/tabs'));
    await tagReady(first);
    const second = await context.newPage();
    await second.goto(h.site.url('/tabs'));
    await tagReady(second);
    for (let i = 0; i < 3; i++) {
      await first.evaluate(`analytics.track('From First', { i: ${i} })`);
      await second.evaluate(`analytics.track('From Second', { i: ${i} })`);
    }
    const events = await h.ingestion.events.waitFor(source, 6);
    expect(events).toHaveLength(6);
    expect(events.map((e) => `${e.event} ${e.properties.i}`).sort()).toEqual(['From First 0', 'From First 1', 'From First 2', 'From Second 0', 'From Second 1', 'From Second 2']);
    const senders = new Set(requests.map((r) => r.page));
    expect(senders).toEqual(new Set([first]));
  });
});
