// The browser tag end to end in Chromium: the ingestion serves it (with the Source's config, at its
// own path and at Segment's CDN path), it replays the snippet's queued calls in order with the page
// context of call time, and every call type reaches the events stream with a full context.
// trackLink still navigates and its event arrives.
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { tagReady, useTagHarness, type Json } from '../test-support/index.js';

const CLIENT_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
const MESSAGE_ID = /^sy-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('browser tag', () => {
  const h = useTagHarness();

  it('replays the snippet calls in order; every call type arrives with a full context; live calls are stamped when made', async () => {
    const source = h.source();
    h.site.page('/spring-sale', {
      title: 'Spring sale',
      tag: { writeKey: source.writeKey },
      script: `
        window.before = Date.now();
        analytics.page('Landing', { section: 'sale' });
        analytics.identify('user-1', { plan: 'pro' });
        analytics.track('Product Viewed', { sku: 'A1' });
        analytics.group('org-1', { name: 'Acme' });
        analytics.alias('user-2');
        analytics.screen('Checkout');`,
    });
    const context = await h.browser.newContext({
      locale: 'de-DE',
      timezoneId: 'Europe/Berlin',
      viewport: { width: 1200, height: 700 },
      screen: { width: 1440, height: 900 },
      deviceScaleFactor: 2,
    });
    const page = await context.newPage();
    const search = '?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=shoes&utm_content=hero&utm_audience=vip';
    await page.goto(h.site.url(`/spring-sale${search}`), { referer: 'http://search.example/results?q=shoes' });
    await tagReady(page);
    // A call to the loaded tag: stamped when made, not when sent (flushInterval later).
    const live = (await page.evaluate(`(async () => {
      const before = Date.now();
      const event = await analytics.track('Added To Cart', { sku: 'A1' });
      return { before, after: Date.now(), messageId: event.messageId, stubCallsBefore: window.before, userAgent: navigator.userAgent, referrer: document.referrer };
    })()`)) as Json;

    const events = await h.ingestion.events.waitFor(source, 7);
    expect(events.map((e) => e.type)).toEqual(['page', 'identify', 'track', 'group', 'alias', 'screen', 'track']);
    const [pageEvent, identify, track, group, alias, screen, added] = events as [Json, Json, Json, Json, Json, Json, Json];
    expect(pageEvent).toMatchObject({ name: 'Landing', properties: { section: 'sale' } });
    expect(identify).toMatchObject({ userId: 'user-1', traits: { plan: 'pro' } });
    expect(track).toMatchObject({ event: 'Product Viewed', userId: 'user-1', properties: { sku: 'A1' } });
    expect(group).toMatchObject({ groupId: 'org-1', traits: { name: 'Acme' } });
    expect(alias).toMatchObject({ userId: 'user-2', previousId: 'user-1' });
    expect(screen).toMatchObject({ name: 'Checkout' });
    expect(added).toMatchObject({ event: 'Added To Cart', messageId: live.messageId });

    // originalTimestamp is the client's own timestamp (the stored timestamp is skew-corrected).
    const stamped = (event: Json) => Date.parse(event.originalTimestamp);
    expect(stamped(added)).toBeGreaterThanOrEqual(live.before);
    expect(stamped(added)).toBeLessThanOrEqual(live.after);
    for (const event of events.slice(0, 6)) {
      expect(stamped(event)).toBeGreaterThanOrEqual(live.stubCallsBefore);
      expect(stamped(event)).toBeLessThanOrEqual(live.before);
    }
    const anonymousId = pageEvent.anonymousId;
    expect(anonymousId).toEqual(expect.any(String));
    expect(new Set(events.map((e) => e.messageId)).size).toBe(7);
    for (const event of events) {
      expect(event.messageId).toMatch(MESSAGE_ID);
      expect(event.anonymousId).toBe(anonymousId);
      expect(event.context).toMatchObject({
        page: { path: '/spring-sale', search, title: 'Spring sale', url: h.site.url(`/spring-sale${search}`), referrer: live.referrer },
        userAgent: live.userAgent,
        locale: 'de-DE',
        timezone: 'Europe/Berlin',
        screen: { width: 1440, height: 900, density: 2 },
        campaign: { name: 'spring', source: 'newsletter', medium: 'email', term: 'shoes', content: 'hero', audience: 'vip' },
        library: { name: 'switchyard.js', version: CLIENT_VERSION },
      });
    }
    expect(live.referrer).toBe('http://search.example/results?q=shoes');
    // The snippet's page-context argument is used, not forwarded.
    expect(JSON.stringify(events)).not.toContain('__t');
  });

  it("uses the page context the snippet captured at call time, not the page's later state", async () => {
    const source = h.source();
    h.site.page('/old-path', {
      title: 'Before',
      tag: { writeKey: source.writeKey, manualLoad: true },
      script: `
        analytics.track('Queued');
        history.replaceState(null, '', '/new-path?y=2');
        document.title = 'After';`,
    });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/old-path?x=1'));
    await page.evaluate(`analytics.load(${JSON.stringify(source.writeKey)})`);
    await tagReady(page);
    await page.evaluate("analytics.track('Live')");

    const [queued, live] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(queued).toMatchObject({ event: 'Queued', context: { page: { path: '/old-path', search: '?x=1', title: 'Before', url: h.site.url('/old-path?x=1') } } });
    expect(live).toMatchObject({ event: 'Live', context: { page: { path: '/new-path', search: '?y=2', title: 'After', url: h.site.url('/new-path?y=2') } } });
    expect(queued.properties).toEqual({});
  });

  it("stamps calls queued by Switchyard's snippet with the time they were made, not the time the tag replays them", async () => {
    const source = h.source();
    h.site.page('/early', {
      tag: { writeKey: source.writeKey, snippet: 'switchyard' },
      // The tag cannot run before this script ends: it arrives at least 50 ms after the call.
      script: "analytics.track('Early'); window.afterCall = new Date().toISOString(); for (const end = Date.now() + 50; Date.now() < end; );",
    });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/early'));
    await tagReady(page);
    const afterCall = (await page.evaluate('window.afterCall')) as string;
    const events = (await h.ingestion.events.waitFor(source, 2)) as Json[];
    // The snippet's own page() call and the track, both queued before the tag arrived.
    expect(events.map((e) => e.type)).toEqual(['page', 'track']);
    for (const e of events) expect(Date.parse(e.originalTimestamp)).toBeLessThanOrEqual(Date.parse(afterCall));
  });

  it('is served by the ingestion with the Source config, at /tag/<writeKey>.js and at the Segment CDN path', async () => {
    const source = h.source({ tag: { cookie: { anonymousIdName: 'shop_aid' } } });
    const local = (url: string) => url.replace(h.ingestion.origin, h.ingestion.localOrigin);
    const ours = await request(local(h.ingestion.tagUrl(source.writeKey)));
    const body = await ours.body.text();
    expect(ours.statusCode).toBe(200);
    expect(ours.headers['content-type']).toMatch(/javascript/);
    expect(body.startsWith('(function(__sy_config){')).toBe(true);
    const served = JSON.parse(body.slice(body.lastIndexOf('})(') + 3, body.lastIndexOf(');')));
    expect(served).toMatchObject({ writeKey: source.writeKey, cookie: { anonymousIdName: 'shop_aid' } });
    const alias = await request(local(h.ingestion.tagUrl(source.writeKey, 'segment-path')));
    expect(alias.statusCode).toBe(200);
    expect(await alias.body.text()).toBe(body);
    const unknown = await request(local(h.ingestion.tagUrl('wk_no_such_source_0000')));
    await unknown.body.dump();
    expect(unknown.statusCode).toBe(404);

    // A site migrating from Segment changes only the host of its snippet; the served config applies
    // (cookie name) and events go to the origin the tag came from.
    h.site.page('/migrated', { tag: { writeKey: source.writeKey, from: 'segment-path' }, script: "analytics.track('Migrated')" });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/migrated'));
    const [event] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(event.event).toBe('Migrated');
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'shop_aid')).toMatchObject({ value: event.anonymousId, domain: '.shop.test' });
    expect(cookies.find((c) => c.name === 'ajs_anonymous_id')).toBeUndefined();
  });

  it("keeps analytics.js code running: on/once/off listeners, older method names, and Segment-only methods that only warn", async () => {
    const source = h.source();
    h.site.page('/legacy', { tag: { writeKey: source.writeKey } });
    const page = await h.browser.newPage();
    const warnings: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'warning') warnings.push(message.text());
    });
    await page.goto(h.site.url('/legacy'));
    await tagReady(page);
    const seen = await page.evaluate(`(async () => {
      const seen = [];
      const onTrack = (event, properties) => seen.push(['track', event, properties]);
      analytics.on('track', onTrack);
      analytics.once('page', (category, name) => seen.push(['page', name]));
      await analytics.track('Viewed', { sku: 'a1' });
      await analytics.page('Home');
      await analytics.pageview('/old-style');
      analytics.off('track', onTrack);
      await analytics.track('Unheard');
      analytics.debug(true).addSourceMiddleware(() => {});
      return seen;
    })()`);
    expect(seen).toEqual([
      ['track', 'Viewed', { sku: 'a1' }],
      ['page', 'Home'],
    ]);
    expect(warnings).toContain('switchyard: analytics.addSourceMiddleware is not supported');
    const events = (await h.ingestion.events.waitFor(source, 4)) as Json[];
    expect(events.map((e) => [e.type, e.event ?? e.name ?? e.properties.url])).toEqual([
      ['track', 'Viewed'],
      ['page', 'Home'],
      ['page', '/old-style'],
      ['track', 'Unheard'],
    ]);
  });

  it('trackLink lets the link navigate and its event arrives', async () => {
    const source = h.source();
    h.site.page('/catalog', {
      tag: { writeKey: source.writeKey },
      // Called after the link, as sites do (the stub records the element; the tag binds it on load).
      body: `<a id="product" href="/product/42">Product 42</a>
        <script>analytics.trackLink(document.getElementById('product'), 'Product Link Clicked', { position: 1 });</script>`,
    });
    // The next page has no tag: the event must leave from the catalog page.
    h.site.page('/product/42', { body: '<h1>Product 42</h1>' });
    const page = await h.browser.newPage();
    await page.goto(h.site.url('/catalog'));
    await tagReady(page);
    await page.click('#product');
    await page.waitForURL(h.site.url('/product/42'));
    const [event] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(event).toMatchObject({ type: 'track', event: 'Product Link Clicked', properties: { position: 1 }, context: { page: { path: '/catalog' } } });
  });
});
