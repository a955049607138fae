// The Sync Injector in Chromium: every built-in vendor sync from real-looking landing URLs and
// vendor cookies, under the exact context.providers keys destinations read; Meta's fbc format and
// its stability; newer click ids replacing stored ones; the cross-domain id carried by links and
// adopted on landing; and the five configurable sync kinds (urlParameter, cookie with pattern,
// localStorage with path, fetch with a dot path, pixel once per lifetime).
import type { BrowserContext, Cookie, Page } from 'playwright-core';
import { tagReady, useTagHarness, type Json } from '../test-support/index.js';

// `context.providers` keys and fields (docs: the identity reference, "Vendor identifiers on events").
const CLICK_IDS = {
  fbclid: 'IwAR2xyzAbC3dEfGhIjKlMnOpQ',
  gclid: 'Cj0KCQiAhbi8BhDIARIsAJLOlucyP0n-VbY',
  gbraid: '0AAAAADpjeP7Q2x',
  wbraid: 'CjkKCAiA2JG9BhAuEikAkb2hl',
  ttclid: 'E.C.P.CqgBqZ9mEGwV1Jx',
  msclkid: '5a8e2b3c4d5e6f708192a3b4c5d6e7f8',
  epik: 'dj0yJnU9WDhZbEtPQ2Z2',
  ScCid: '8b5e2c4f-1a2b-4c3d-9e8f-0a1b2c3d4e5f',
};
const VENDOR_COOKIES = {
  _ga: 'GA1.1.1234567890.1700000000',
  _ga_ABC123: 'GS1.1.1700000100.3.1.1700000200.0.0.0',
  _ttp: '2Hq3xLmN9pQrStUvWxYz1AbCdEf',
  _scid: '6f1e3a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b',
  _fbp: 'fb.1.1700000000000.1234567890',
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DAY_S = 24 * 3600;

function lifetimeDays(cookie: Cookie | undefined): number {
  return Math.round(((cookie?.expires ?? 0) - Date.now() / 1000) / DAY_S);
}

/** The cookie `name` that pages of `url` get. */
async function cookieOf(context: BrowserContext, url: string, name: string): Promise<Cookie | undefined> {
  return (await context.cookies(url)).find((c) => c.name === name);
}

/** Tracks `name` once the tag is ready (its syncs ran), returning the event's messageId. */
async function trackWhenReady(page: Page, name: string): Promise<string> {
  await tagReady(page);
  return (await page.evaluate(`analytics.track(${JSON.stringify(name)}).then((e) => e.messageId)`)) as string;
}

describe('Sync Injector', () => {
  const h = useTagHarness();
  /** The cookie `name` of the www.shop.test pages. */
  const cookie = (context: BrowserContext, name: string) => cookieOf(context, h.site.url('/'), name);

  it('collects every built-in vendor id from the landing URL and vendor cookies, and keeps the click ids', async () => {
    const source = h.source();
    h.site.page('/landing', { tag: { writeKey: source.writeKey } });
    const context = await h.browser.newContext();
    await context.addCookies(Object.entries(VENDOR_COOKIES).map(([name, value]) => ({ name, value, domain: '.shop.test', path: '/' })));
    const page = await context.newPage();
    const before = Date.now();
    await page.goto(h.site.url(`/landing?utm_source=ads&${new URLSearchParams(CLICK_IDS)}`));
    await trackWhenReady(page, 'Landed');
    const after = Date.now();
    const [landed] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    const providers = landed.context.providers;
    expect(providers).toEqual({
      facebookTag: { fbp: VENDOR_COOKIES._fbp, fbc: expect.stringMatching(new RegExp(`^fb\\.1\\.\\d{13}\\.${CLICK_IDS.fbclid}$`)) },
      googleGtag: { data: { client_id: '1234567890.1700000000', session_id: '1700000100', gclid: CLICK_IDS.gclid, gbraid: CLICK_IDS.gbraid, wbraid: CLICK_IDS.wbraid } },
      tiktok: { ttclid: CLICK_IDS.ttclid, ttp: VENDOR_COOKIES._ttp },
      microsoft: { msclkid: CLICK_IDS.msclkid },
      pinterest: { epik: CLICK_IDS.epik },
      snapchat: { sccid: CLICK_IDS.ScCid, scid: VENDOR_COOKIES._scid },
      crossDomain: { id: expect.stringMatching(UUID) },
    });
    // fbc: fb.<subdomain index 1>.<ms the fbclid was seen>.<fbclid> (Meta's parameter format).
    const seenAt = Number(providers.facebookTag.fbc.split('.')[2]);
    expect(seenAt).toBeGreaterThanOrEqual(before);
    expect(seenAt).toBeLessThanOrEqual(after);

    // Our first-party copies: raw values on the registrable domain, each with its lifetime.
    const stored: [string, string, number][] = [
      ['_fbc', providers.facebookTag.fbc, 90],
      ['sy_googleGtag_gclid', CLICK_IDS.gclid, 90],
      ['sy_googleGtag_gbraid', CLICK_IDS.gbraid, 90],
      ['sy_googleGtag_wbraid', CLICK_IDS.wbraid, 90],
      ['sy_tiktok_ttclid', CLICK_IDS.ttclid, 90],
      ['sy_microsoft_msclkid', CLICK_IDS.msclkid, 90],
      ['sy_pinterest_epik', CLICK_IDS.epik, 365],
      ['sy_snapchat_sccid', CLICK_IDS.ScCid, 90],
      ['sy_crossDomain_id', providers.crossDomain.id, 365],
    ];
    for (const [name, value, days] of stored) {
      const found = await cookie(context, name);
      expect({ name, value: found?.value, domain: found?.domain, days: lifetimeDays(found) }).toEqual({ name, value, domain: '.shop.test', days });
    }

    // A later page without the parameters still carries them.
    await page.goto(h.site.url('/landing'));
    await trackWhenReady(page, 'Browsed');
    const [, browsed] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(browsed.context.providers).toEqual(providers);
  });

  it('keeps fbc for the same fbclid; a new fbclid or click id replaces the stored one', async () => {
    const source = h.source();
    h.site.page('/ad', { tag: { writeKey: source.writeKey } });
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/ad?fbclid=IwAR1first&gclid=Gclid-old'));
    await trackWhenReady(page, 'First Click');
    const [first] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    const firstFbc: string = first.context.providers.facebookTag.fbc;
    expect(firstFbc).toMatch(/^fb\.1\.\d{13}\.IwAR1first$/);
    expect(first.context.providers.googleGtag.data.gclid).toBe('Gclid-old');

    // Later than the first fbc's time: a rebuilt fbc would differ.
    await page.waitForFunction(`Date.now() > ${firstFbc.split('.')[2]}`);
    await page.goto(h.site.url('/ad?fbclid=IwAR1first&gclid=Gclid-old'));
    await trackWhenReady(page, 'Same Click Again');
    const [, again] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(again.context.providers.facebookTag.fbc).toBe(firstFbc);
    expect((await cookie(context, '_fbc'))?.value).toBe(firstFbc);

    await page.goto(h.site.url('/ad?fbclid=IwAR2second&gclid=Gclid-new'));
    await trackWhenReady(page, 'Second Click');
    const [, , second] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];
    const secondFbc: string = second.context.providers.facebookTag.fbc;
    expect(secondFbc).toMatch(/^fb\.1\.\d{13}\.IwAR2second$/);
    expect(Number(secondFbc.split('.')[2])).toBeGreaterThan(Number(firstFbc.split('.')[2]));
    expect(second.context.providers.googleGtag.data.gclid).toBe('Gclid-new');
    expect((await cookie(context, '_fbc'))?.value).toBe(secondFbc);
    expect((await cookie(context, 'sy_googleGtag_gclid'))?.value).toBe('Gclid-new');

    await page.goto(h.site.url('/ad'));
    await trackWhenReady(page, 'Returned');
    const [, , , returned] = (await h.ingestion.events.waitFor(source, 4)) as [Json, Json, Json, Json];
    expect(returned.context.providers).toMatchObject({ facebookTag: { fbc: secondFbc }, googleGtag: { data: { gclid: 'Gclid-new' } } });
  });

  it('carries the cross-domain id on links to a configured domain and adopts it on landing', async () => {
    const source = h.source({ tag: { builtinSyncs: { crossDomain: { domains: ['checkout.test'] } } } });
    const checkout = h.site.url('/pay', 'pay.checkout.test');
    h.site.page('/cart', {
      tag: { writeKey: source.writeKey },
      body: `<a id="pay" href="${checkout}">Pay</a> <a id="blog" href="${h.site.url('/post', 'blog.shop.test')}">Blog</a>`,
    });
    h.site.page('/pay', { tag: { writeKey: source.writeKey } });
    h.site.page('/post', { body: '<h1>Blog</h1>' });
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/cart'));
    await trackWhenReady(page, 'Cart Viewed');
    const [cart] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    const id: string = cart.context.providers.crossDomain.id;
    expect(id).toMatch(UUID);

    await page.click('#pay');
    await page.waitForURL(new RegExp(`^${checkout.replaceAll('.', '\\.').replace('?', '\\?')}\\?_syxid=${id}\\.\\d+$`));
    const usedAt = Number(new URL(page.url()).searchParams.get('_syxid')!.split('.')[1]);
    expect(Math.abs(usedAt - Date.now() / 1000)).toBeLessThan(120);
    await trackWhenReady(page, 'Payment Viewed');
    const [, payment] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(payment.context.providers.crossDomain).toEqual({ id });
    expect(await cookie(context, 'sy_crossDomain_id').then((c) => [c?.value, c?.domain])).toEqual([id, '.shop.test']);
    expect(await cookieOf(context, checkout, 'sy_crossDomain_id').then((c) => [c?.value, c?.domain])).toEqual([id, '.checkout.test']);

    // A copied link opened later by someone else: its stale id is not adopted.
    const stranger = await h.browser.newContext();
    const strangerPage = await stranger.newPage();
    await strangerPage.goto(`${checkout}?_syxid=${id}.${Math.floor(Date.now() / 1000) - 3600}`);
    await trackWhenReady(strangerPage, 'Shared Link Opened');
    const [, , shared] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];
    expect(shared.context.providers.crossDomain.id).toMatch(UUID);
    expect(shared.context.providers.crossDomain.id).not.toBe(id);
    await stranger.close();

    // A link within the site's own domain is left alone.
    await page.goto(h.site.url('/cart'));
    await tagReady(page);
    await page.click('#blog');
    await page.waitForURL(h.site.url('/post', 'blog.shop.test'));
  });

  it('runs the five configurable sync kinds; fetch and pixel once per lifetime', async () => {
    const syncHost = (host: string) => h.site.url('', host);
    const source = h.source({
      tag: {
        syncs: [
          { name: 'affiliate', kind: 'urlParameter', parameter: 'aff_id', lifetimeDays: 30 },
          { name: 'crm', kind: 'cookie', cookie: 'crm_session', pattern: 'uid=(\\w+)', field: 'uid' },
          { name: 'app', kind: 'localStorage', key: 'app_user', path: 'profile.id' },
          { name: 'partner', kind: 'fetch', url: `${syncHost('id.shop.test')}/sync/partner.json?uid={anonymousId}&r={random}`, path: 'partner.uid' },
          { name: 'dmp', kind: 'pixel', url: `${syncHost('px.shop.test')}/sync/dmp.gif?uid={anonymousId}&cb={random}` },
        ],
      },
    });
    h.site.syncJson('partner', { partner: { uid: 'pu-123' }, other: 'ignored' });
    h.site.page('/welcome', {
      tag: { writeKey: source.writeKey },
      script: "localStorage.setItem('app_user', JSON.stringify({ profile: { id: 'app-555', name: 'Ada' } }));",
    });
    const syncRequests = () => h.site.syncRequests;
    const context = await h.browser.newContext();
    await context.addCookies([
      { name: 'crm_session', value: 'v2|uid=cust991|exp=1767225600', domain: '.shop.test', path: '/' },
      { name: 'partner_session', value: 'ps-1', domain: '.shop.test', path: '/' },
    ]);
    const page = await context.newPage();
    await page.goto(h.site.url('/welcome?aff_id=aff-77'));
    await trackWhenReady(page, 'Welcome');
    const [welcome] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    const { affiliate, crm, app, partner, dmp } = welcome.context.providers;
    expect({ affiliate, crm, app, partner }).toEqual({ affiliate: { id: 'aff-77' }, crm: { uid: 'cust991' }, app: { id: 'app-555' }, partner: { id: 'pu-123' } });
    expect(dmp).toEqual({ syncedAt: expect.any(String) });
    expect(new Date(dmp.syncedAt).toISOString()).toBe(dmp.syncedAt);

    // fetch: GET with the placeholders filled in and credentials; pixel: one image request.
    const fetched = syncRequests().filter((r) => r.path === '/sync/partner.json');
    const pixels = syncRequests().filter((r) => r.path === '/sync/dmp.gif');
    expect(fetched).toHaveLength(1);
    expect(pixels).toHaveLength(1);
    expect(fetched[0]).toMatchObject({ query: { uid: welcome.anonymousId, r: expect.any(String) }, origin: new URL(h.site.url('/')).origin });
    expect(fetched[0]!.cookie).toContain('partner_session=ps-1');
    expect(pixels[0]!.query).toEqual({ uid: welcome.anonymousId, cb: expect.any(String) });
    expect(await cookie(context, 'sy_affiliate_id').then((c) => [c?.value, lifetimeDays(c)])).toEqual(['aff-77', 30]);
    expect(await cookie(context, 'sy_partner_id').then((c) => [c?.value, lifetimeDays(c)])).toEqual(['pu-123', 90]);

    // Next page: stored ids still attached, nothing fetched or fired again.
    await page.goto(h.site.url('/welcome'));
    await trackWhenReady(page, 'Welcome Back');
    const [, back] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(back.context.providers).toMatchObject({ affiliate: { id: 'aff-77' }, crm: { uid: 'cust991' }, app: { id: 'app-555' }, partner: { id: 'pu-123' }, dmp: { syncedAt: dmp.syncedAt } });
    expect(syncRequests()).toHaveLength(2);

    // A newer URL parameter value replaces the stored one.
    await page.goto(h.site.url('/welcome?aff_id=aff-88'));
    await trackWhenReady(page, 'Welcome Again');
    const [, , again] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];
    expect(again.context.providers.affiliate).toEqual({ id: 'aff-88' });
  });

  it('sends fetch and pixel syncs the anonymousId the server cookie settles on, not a provisional one', async () => {
    const syncHost = h.site.url('', 'id.shop.test');
    const source = h.source({
      tag: {
        serverCookie: { enabled: true, httpOnly: true },
        syncs: [
          { name: 'partner', kind: 'fetch', url: `${syncHost}/sync/returning.json?uid={anonymousId}`, path: 'uid' },
          { name: 'dsp', kind: 'pixel', url: `${syncHost}/sync/returning.gif?uid={anonymousId}` },
        ],
      },
    });
    h.site.syncJson('returning', { uid: 'pu-9' });
    h.site.page('/return', { tag: { writeKey: source.writeKey } });
    // A returning visitor whose script storage was wiped: only the server's HttpOnly cookie is left.
    const context = await h.browser.newContext();
    await context.addCookies([{ name: 'ajs_anonymous_id', value: 'old-visitor-123', domain: '.shop.test', path: '/', httpOnly: true }]);
    const page = await context.newPage();
    await page.goto(h.site.url('/return'));
    await trackWhenReady(page, 'Returned');
    const [returned] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(returned).toMatchObject({ anonymousId: 'old-visitor-123', context: { providers: { partner: { id: 'pu-9' } } } });
    const calls = h.site.syncRequests.filter((r) => r.path.startsWith('/sync/returning.'));
    expect(calls.map((r) => [r.path, r.query.uid]).sort()).toEqual([
      ['/sync/returning.gif', 'old-visitor-123'],
      ['/sync/returning.json', 'old-visitor-123'],
    ]);
  });
});
