// The tag's visitor identity in Chromium: the analytics.js-compatible `ajs_anonymous_id` cookie on
// the registrable domain (shared by www. and blog. pages) mirrored in localStorage, which of the
// two wins, analytics.js classic JSON-quoted values, identify's `ajs_user_id`, reset(), and the
// anonymousId cookie the ingestion sets itself (HttpOnly) that outlives cleared script storage.
import type { Cookie, Page } from 'playwright-core';
import { tagReady, useTagHarness, type Json } from '../test-support/index.js';
import { eventually } from '../../../runtime/src/test-support/http-receiver.js';

const DAY_S = 24 * 3600;

/** A cookie's remaining lifetime in days (Playwright gives `expires` in seconds since the epoch). */
function lifetimeDays(cookie: Cookie | undefined): number {
  return Math.round(((cookie?.expires ?? 0) - Date.now() / 1000) / DAY_S);
}

/** The localStorage value of `key` as the tag may store it: raw, or JSON-quoted as analytics.js does. */
async function stored(page: Page, key: string): Promise<string | null> {
  const value = (await page.evaluate(`localStorage.getItem(${JSON.stringify(key)})`)) as string | null;
  if (value?.startsWith('"')) return JSON.parse(value) as string;
  return value;
}

describe('visitor identity', () => {
  const h = useTagHarness();

  /** Registers `path` as a tag page of `writeKey` running `script`. */
  const tagPage = (path: string, writeKey: string, script: string) => h.site.page(path, { tag: { writeKey }, script });

  beforeAll(() => h.site.page('/plain', { body: '<h1>No tag here</h1>' }));

  it('keeps one anonymousId for www. and blog. pages: a cookie on the registrable domain, mirrored in localStorage', async () => {
    const source = h.source();
    tagPage('/home', source.writeKey, "analytics.track('On www')");
    tagPage('/post', source.writeKey, "analytics.track('On blog')");
    const context = await h.browser.newContext();
    const www = await context.newPage();
    await www.goto(h.site.url('/home'));
    const [onWww] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    const blog = await context.newPage();
    await blog.goto(h.site.url('/post', 'blog.shop.test'));
    const [, onBlog] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];

    expect(onWww).toMatchObject({ event: 'On www', anonymousId: expect.any(String) });
    expect(onBlog).toMatchObject({ event: 'On blog', anonymousId: onWww.anonymousId });
    const cookie = (await context.cookies()).find((c) => c.name === 'ajs_anonymous_id');
    expect(cookie).toMatchObject({ value: onWww.anonymousId, domain: '.shop.test', path: '/', sameSite: 'Lax', httpOnly: false, secure: false });
    expect(lifetimeDays(cookie)).toBe(365);
    expect(await stored(www, 'ajs_anonymous_id')).toBe(onWww.anonymousId);
    expect(await stored(blog, 'ajs_anonymous_id')).toBe(onWww.anonymousId);
  });

  it('takes the cookie when cookie and localStorage differ, and rewrites localStorage', async () => {
    const source = h.source();
    tagPage('/conflict', source.writeKey, "analytics.track('Conflict')");
    const context = await h.browser.newContext();
    await context.addCookies([{ name: 'ajs_anonymous_id', value: 'cookie-anon-1', domain: '.shop.test', path: '/' }]);
    const page = await context.newPage();
    await page.goto(h.site.url('/plain'));
    await page.evaluate("localStorage.setItem('ajs_anonymous_id', 'storage-anon-1')");
    await page.goto(h.site.url('/conflict'));
    const [event] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(event.anonymousId).toBe('cookie-anon-1');
    expect(await stored(page, 'ajs_anonymous_id')).toBe('cookie-anon-1');
  });

  it('restores the cookie from localStorage when only localStorage holds the id', async () => {
    const source = h.source();
    tagPage('/restore', source.writeKey, "analytics.track('Restored')");
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/plain'));
    await page.evaluate("localStorage.setItem('ajs_anonymous_id', 'storage-anon-2')");
    await page.goto(h.site.url('/restore'));
    const [event] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(event.anonymousId).toBe('storage-anon-2');
    const cookie = (await context.cookies()).find((c) => c.name === 'ajs_anonymous_id');
    expect(cookie).toMatchObject({ value: 'storage-anon-2', domain: '.shop.test' });
  });

  it('reads the JSON-quoted cookie value analytics.js classic wrote', async () => {
    const source = h.source();
    tagPage('/classic', source.writeKey, "analytics.track('Classic')");
    const context = await h.browser.newContext();
    await context.addCookies([{ name: 'ajs_anonymous_id', value: '%22classic-anon-3%22', domain: '.shop.test', path: '/' }]);
    const page = await context.newPage();
    await page.goto(h.site.url('/classic'));
    const [event] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    expect(event.anonymousId).toBe('classic-anon-3');
  });

  it('identify keeps the userId in ajs_user_id and the traits in localStorage, for later pages', async () => {
    const source = h.source();
    tagPage('/signup', source.writeKey, "analytics.identify('user-42', { email: 'ada@example.com' }); analytics.track('Signed Up');");
    tagPage('/account', source.writeKey, "analytics.track('Account Viewed');");
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/signup'));
    await h.ingestion.events.waitFor(source, 2);
    await page.goto(h.site.url('/account'));
    const [identify, signedUp, viewed] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];

    expect(identify).toMatchObject({ type: 'identify', userId: 'user-42', traits: { email: 'ada@example.com' } });
    expect(signedUp).toMatchObject({ event: 'Signed Up', userId: 'user-42', anonymousId: identify.anonymousId });
    expect(viewed).toMatchObject({ event: 'Account Viewed', userId: 'user-42', anonymousId: identify.anonymousId });
    const cookie = (await context.cookies()).find((c) => c.name === 'ajs_user_id');
    expect(cookie).toMatchObject({ value: 'user-42', domain: '.shop.test' });
    expect(await stored(page, 'ajs_user_id')).toBe('user-42');
    expect(JSON.parse((await page.evaluate("localStorage.getItem('ajs_user_traits')")) as string)).toEqual({ email: 'ada@example.com' });
  });

  it('reset() forgets the user and starts a new anonymousId', async () => {
    const source = h.source();
    tagPage('/logout', source.writeKey, "analytics.identify('user-7'); analytics.track('Before Reset'); analytics.reset(); analytics.track('After Reset');");
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/logout'));
    const [, before, after] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];
    expect(before).toMatchObject({ event: 'Before Reset', userId: 'user-7' });
    expect(after.event).toBe('After Reset');
    expect(after.userId).toBeUndefined();
    expect(after.anonymousId).toEqual(expect.any(String));
    expect(after.anonymousId).not.toBe(before.anonymousId);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'ajs_anonymous_id')?.value).toBe(after.anonymousId);
    expect(cookies.find((c) => c.name === 'ajs_user_id')).toBeUndefined();
    expect(await stored(page, 'ajs_user_id')).toBeNull();
  });

  it('with the server cookie on, the ingestion sets an HttpOnly id cookie that outlives cleared script storage', async () => {
    const source = h.source({ tag: { serverCookie: { enabled: true, httpOnly: true } } });
    tagPage('/first-visit', source.writeKey, "analytics.track('First Visit')");
    tagPage('/second-visit', source.writeKey, "analytics.track('Second Visit')");
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/first-visit'));
    const [first] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    const serverCookie = (await context.cookies()).find((c) => c.name === 'ajs_anonymous_id' && c.httpOnly);
    expect(serverCookie).toMatchObject({ value: first.anonymousId, domain: '.shop.test', path: '/', sameSite: 'Lax', httpOnly: true });
    expect(lifetimeDays(serverCookie)).toBe(400);

    // What privacy tools and capped script cookies do: script-visible storage is gone.
    await tagReady(page);
    await page.evaluate(`(() => {
      localStorage.clear();
      for (const part of document.cookie.split('; ')) {
        const name = part.split('=')[0];
        document.cookie = name + '=; Max-Age=0; Path=/; Domain=shop.test';
        document.cookie = name + '=; Max-Age=0; Path=/';
      }
    })()`);
    expect(await page.evaluate('document.cookie.includes("ajs_anonymous_id")')).toBe(false);
    await page.goto(h.site.url('/second-visit'));
    const [, second] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(second).toMatchObject({ event: 'Second Visit', anonymousId: first.anonymousId });
  });

  it('reset() replaces the HttpOnly server cookie too: the new anonymousId holds on later pages', async () => {
    const source = h.source({ tag: { serverCookie: { enabled: true, httpOnly: true } } });
    tagPage('/account', source.writeKey, "analytics.track('Signed In')");
    tagPage('/bye', source.writeKey, "analytics.track('Next Page')");
    const context = await h.browser.newContext();
    const page = await context.newPage();
    await page.goto(h.site.url('/account'));
    await tagReady(page);
    const [before] = (await h.ingestion.events.waitFor(source, 1)) as [Json];
    await page.evaluate("analytics.reset(); analytics.track('After Reset')");
    const [, after] = (await h.ingestion.events.waitFor(source, 2)) as [Json, Json];
    expect(after.event).toBe('After Reset');
    expect(after.anonymousId).not.toBe(before.anonymousId);
    await eventually(async () => (await context.cookies()).some((c) => c.name === 'ajs_anonymous_id' && c.value === after.anonymousId), 10_000, 'the server cookie holding the new id');
    await page.goto(h.site.url('/bye'));
    const [, , next] = (await h.ingestion.events.waitFor(source, 3)) as [Json, Json, Json];
    expect(next).toMatchObject({ event: 'Next Page', anonymousId: after.anonymousId });
  });
});
