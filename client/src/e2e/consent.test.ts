// Consent in Chromium: an opt-out of Advertising (analytics.setConsent, or a OneTrust
// OptanonConsent cookie) keeps the ad syncs from running (no _fbp minted, no click ids stored or
// attached) while context.consent.categoryPreferences travels on every event; opting in later runs
// them; an opt-out deletes the ids we stored; with consent.missing deny nothing runs until opt-in.
import type { BrowserContext } from 'playwright-core';
import { useTagHarness, type Json } from '../test-support/index.js';
import { eventually } from '../../../runtime/src/test-support/http-receiver.js';

const ONETRUST = { cookie: { name: 'OptanonConsent', format: 'onetrust', categories: { C0002: 'Analytics', C0004: 'Advertising' } } } as const;
const AD_PROVIDERS = ['facebookTag', 'googleGtag', 'tiktok', 'microsoft', 'pinterest', 'snapchat'];
const LANDING = '/landing?fbclid=IwAR2xyz&gclid=Cj0KCQiA1&ttclid=E.C.P.ttc1';

/** Names of the context's cookies. */
async function cookieNames(context: BrowserContext): Promise<string[]> {
  return (await context.cookies()).map((c) => c.name);
}

/** A OneTrust `OptanonConsent` value (URL-encoded, as OneTrust writes it) with these group states. */
function optanon(groups: Record<string, 0 | 1>): string {
  const list = Object.entries(groups)
    .map(([group, on]) => `${group}:${on}`)
    .join(',');
  return `isGDPRRegion=true&datestamp=Sat+Nov+29+2025+12%3A00%3A00+GMT%2B0100&version=202409.1.0&hosts=&consentId=0f3c&interactionCount=1&landingPath=NotLandingPage&groups=${encodeURIComponent(list)}&AwaitingReconsent=false`;
}

describe('consent', () => {
  const h = useTagHarness();

  it('an Advertising opt-out by setConsent keeps ad syncs from running; opting in later runs them', async () => {
    const source = h.source({ tag: { consent: ONETRUST } });
    h.site.page('/landing', { tag: { writeKey: source.writeKey }, script: "analytics.setConsent({ Advertising: false }); analytics.track('Opted Out');" });
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url(LANDING));
    const [optedOut] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(optedOut.context.consent).toEqual({ categoryPreferences: { Advertising: false } });
    for (const key of AD_PROVIDERS) expect(optedOut.context.providers?.[key]).toBeUndefined();
    const names = await cookieNames(context);
    expect(names).not.toContain('_fbp');
    expect(names).not.toContain('_fbc');
    expect(names.filter((n) => /^sy_(googleGtag|tiktok)_/.test(n))).toEqual([]);
    expect(JSON.parse(decodeURIComponent((await context.cookies()).find((c) => c.name === 'sy_consent')!.value))).toEqual({ Advertising: false });

    await page.evaluate('analytics.setConsent({ Advertising: true })');
    await eventually(async () => (await cookieNames(context)).includes('_fbp'), 10_000, 'the Meta sync minting _fbp after the opt-in');
    await page.evaluate("analytics.track('Opted In')");
    const [, optedIn] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(optedIn.context.consent).toEqual({ categoryPreferences: { Advertising: true } });
    expect(optedIn.context.providers).toMatchObject({
      facebookTag: { fbp: expect.stringMatching(/^fb\.1\.\d{13}\.\d{10}$/), fbc: expect.stringMatching(/^fb\.1\.\d{13}\.IwAR2xyz$/) },
      googleGtag: { data: { gclid: 'Cj0KCQiA1' } },
      tiktok: { ttclid: 'E.C.P.ttc1' },
    });
  });

  it('reads a OneTrust OptanonConsent cookie on every event: C0004:0 opts out, the banner accepting later opts in', async () => {
    const source = h.source({ tag: { consent: ONETRUST } });
    h.site.page('/landing', { tag: { writeKey: source.writeKey }, script: "analytics.track('Banner Shown');" });
    const context = await h.browser.newContext();
    await context.addCookies([{ name: 'OptanonConsent', value: optanon({ C0001: 1, C0002: 1, C0004: 0 }), domain: '.shop.test', path: '/' }]);
    const page = await context.newPage();
    await page.goto(h.site.url(LANDING));
    const [shown] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(shown.context.consent).toEqual({ categoryPreferences: { C0001: true, Analytics: true, Advertising: false } });
    for (const key of AD_PROVIDERS) expect(shown.context.providers?.[key]).toBeUndefined();
    expect(await cookieNames(context)).not.toContain('_fbp');

    // OneTrust rewrites its cookie when the visitor accepts; no call to the tag.
    await page.evaluate(`document.cookie = 'OptanonConsent=${optanon({ C0001: 1, C0002: 1, C0004: 1 })}; Path=/; Domain=shop.test'`);
    await page.evaluate("analytics.track('Banner Accepted')");
    const [, accepted] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(accepted.context.consent).toEqual({ categoryPreferences: { C0001: true, Analytics: true, Advertising: true } });
    await eventually(async () => (await cookieNames(context)).includes('_fbp'), 10_000, 'the Meta sync minting _fbp after the banner accepted');
    await page.evaluate("analytics.track('Shopping')");
    const [, , shopping] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];
    expect(shopping.context.providers).toMatchObject({ facebookTag: { fbp: expect.any(String), fbc: expect.stringMatching(/\.IwAR2xyz$/) }, tiktok: { ttclid: 'E.C.P.ttc1' } });
  });

  it('an opt-out deletes the click ids we stored, not the vendors’ own cookies', async () => {
    const source = h.source();
    h.site.page('/landing', { tag: { writeKey: source.writeKey }, script: "analytics.track('Landed');" });
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url(LANDING));
    const [landed] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(landed.context.providers).toMatchObject({ googleGtag: { data: { gclid: 'Cj0KCQiA1' } }, tiktok: { ttclid: 'E.C.P.ttc1' } });
    expect(await cookieNames(context)).toEqual(expect.arrayContaining(['sy_googleGtag_gclid', 'sy_tiktok_ttclid', '_fbp', '_fbc']));

    await page.evaluate('analytics.setConsent({ Advertising: false })');
    await eventually(async () => !(await cookieNames(context)).some((n) => /^sy_(googleGtag|tiktok)_/.test(n)), 10_000, 'our ad click id cookies deleted');
    await page.evaluate("analytics.track('Opted Out')");
    const [, optedOut] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    for (const key of AD_PROVIDERS) expect(optedOut.context.providers?.[key]).toBeUndefined();
    expect(optedOut.context.providers?.crossDomain).toEqual({ id: expect.any(String) });
    expect(await cookieNames(context)).toEqual(expect.arrayContaining(['_fbp', '_fbc', 'sy_crossDomain_id']));
  });

  it('with consent.missing deny, ad syncs wait for an opt-in', async () => {
    const source = h.source({ consent: { missing: 'deny' } });
    h.site.page('/landing', { tag: { writeKey: source.writeKey }, script: "analytics.track('No Choice Yet');" });
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url(LANDING));
    const [undecided] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(undecided.context.consent).toEqual({ categoryPreferences: {} });
    for (const key of AD_PROVIDERS) expect(undecided.context.providers?.[key]).toBeUndefined();
    const names = await cookieNames(context);
    expect(names).not.toContain('_fbp');
    expect(names.filter((n) => /^sy_(googleGtag|tiktok)_/.test(n))).toEqual([]);

    await page.evaluate('analytics.setConsent({ Advertising: true })');
    await eventually(async () => (await cookieNames(context)).includes('_fbp'), 10_000, 'the Meta sync minting _fbp after the opt-in');
    await page.evaluate("analytics.track('Opted In')");
    const [, optedIn] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(optedIn.context.providers).toMatchObject({ facebookTag: { fbp: expect.any(String) }, googleGtag: { data: { gclid: 'Cj0KCQiA1' } } });
  });
});
