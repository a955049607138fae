// POST /v1/identity: the anonymousId cookie set by the ingestion (spec.tag.serverCookie), over real
// HTTP against a real nats-server; and the credentials the tracking routes' CORS answers allow.
import { getSetCookies, Headers, request } from 'undici';
import { TagSpec } from '../api/source.js';
import { parseSettings } from '../api/validate.js';
import { useNatsFixture } from '../test-support/nats.js';
import { startIngestion, type IngestionOptions, type IngestionSource } from './index.js';

const tag = (partial: Record<string, unknown>): TagSpec => structuredClone(parseSettings<TagSpec>(TagSpec, partial, 'spec.tag')) as TagSpec;

const LIMITS = { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 };
const SHOP: IngestionSource = {
  namespace: 'shop',
  name: 'web',
  writeKey: 'wk_web_0123456789',
  allowedOrigins: ['https://www.shop.test'],
  limits: LIMITS,
  tag: tag({ serverCookie: { enabled: true } }),
};
const OFF: IngestionSource = { ...SHOP, name: 'off', writeKey: 'wk_off_0123456789', tag: undefined };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type Json = Record<string, any>;

describe('identity cookie endpoint', () => {
  const { fx, cleanups } = useNatsFixture();
  let url = '';

  async function start(sources: IngestionSource[] = [SHOP, OFF], extra: Partial<IngestionOptions> = {}) {
    const ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources, host: '127.0.0.1', ...extra });
    cleanups.push(() => ingestion.close());
    url = ingestion.url;
  }

  /** POSTs as the tag does (text/plain, write key in the body), to the Host `host`. */
  async function identify(body: unknown, headers: Record<string, string> = {}, host = 'data.shop.test') {
    const res = await request(`${url}/v1/identity`, {
      method: 'POST',
      headers: { host, 'content-type': 'text/plain;charset=UTF-8', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    const setCookie = res.headers['set-cookie'];
    return {
      status: res.statusCode,
      headers: res.headers,
      body: (text ? JSON.parse(text) : undefined) as Json,
      cookie: typeof setCookie === 'string' ? getSetCookies(new Headers({ 'set-cookie': setCookie }))[0] : undefined,
    };
  }

  it('sets the anonymousId cookie on the registrable domain of the Host, for 400 days, SameSite Lax', async () => {
    await start();
    const res = await identify({ writeKey: SHOP.writeKey, anonymousId: 'tag-id-1' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ anonymousId: 'tag-id-1' });
    expect(res.headers['set-cookie']).toBe('ajs_anonymous_id=tag-id-1; Max-Age=34560000; Domain=shop.test; Path=/; SameSite=Lax');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('sets a host-only cookie for an IP address or localhost, and the configured domain when there is one', async () => {
    await start([SHOP, { ...SHOP, name: 'fixed', writeKey: 'wk_fixed_0123456789', tag: tag({ serverCookie: { enabled: true }, cookie: { domain: 'shop.example', anonymousIdName: 'sy_aid' } }) }]);
    for (const host of ['127.0.0.1:8080', '[::1]:8080', 'localhost:8080']) {
      const res = await identify({ writeKey: SHOP.writeKey, anonymousId: 'a' }, {}, host);
      expect({ host, status: res.status, domain: res.cookie?.domain }).toEqual({ host, status: 200, domain: undefined });
    }
    // The public suffix list, not the last two labels: co.uk is a suffix.
    expect((await identify({ writeKey: SHOP.writeKey }, {}, 'data.shop.co.uk')).cookie?.domain).toBe('shop.co.uk');
    const fixed = await identify({ writeKey: 'wk_fixed_0123456789', anonymousId: 'a' }, {}, 'data.other.test');
    expect(fixed.cookie).toMatchObject({ name: 'sy_aid', value: 'a', domain: 'shop.example' });
  });

  it('marks the cookie HttpOnly when configured, and Secure on https (behind a trusted proxy) and with SameSite None', async () => {
    const httpOnly = { ...SHOP, name: 'ho', writeKey: 'wk_ho_0123456789', tag: tag({ serverCookie: { enabled: true, httpOnly: true, maxAgeDays: 30 } }) };
    const none = { ...SHOP, name: 'none', writeKey: 'wk_none_0123456789', tag: tag({ serverCookie: { enabled: true }, cookie: { sameSite: 'None' } }) };
    await start([SHOP, httpOnly, none], { trustProxy: true });
    expect((await identify({ writeKey: httpOnly.writeKey })).cookie).toMatchObject({ httpOnly: true, maxAge: 30 * 86400 });
    expect((await identify({ writeKey: SHOP.writeKey })).headers['set-cookie']).not.toMatch(/HttpOnly|Secure/);
    expect((await identify({ writeKey: SHOP.writeKey }, { 'x-forwarded-proto': 'https' })).cookie).toMatchObject({ secure: true });
    expect((await identify({ writeKey: none.writeKey })).cookie).toMatchObject({ sameSite: 'None', secure: true });
  });

  it('believes X-Forwarded-Proto only from a trusted proxy', async () => {
    await start();
    expect((await identify({ writeKey: SHOP.writeKey }, { 'x-forwarded-proto': 'https' })).headers['set-cookie']).not.toMatch(/Secure/);
  });

  it('keeps the id the browser\'s cookie holds (raw or JSON-quoted) over the tag\'s, else takes the tag\'s, else makes one', async () => {
    await start();
    const body = { writeKey: SHOP.writeKey, anonymousId: 'tag-id' };
    for (const value of ['cookie-id', '%22cookie-id%22']) {
      const res = await identify(body, { cookie: `other=1; ajs_anonymous_id=${value}` });
      expect({ value, id: res.body.anonymousId, cookie: res.cookie?.value }).toEqual({ value, id: 'cookie-id', cookie: 'cookie-id' });
    }
    // A cookie that holds no valid id is replaced.
    expect((await identify(body, { cookie: 'ajs_anonymous_id=%00bad' })).body.anonymousId).toBe('tag-id');
    expect((await identify(body)).body.anonymousId).toBe('tag-id');
    const minted = await identify({ writeKey: SHOP.writeKey });
    expect(minted.body.anonymousId).toMatch(UUID);
    expect(minted.cookie?.value).toBe(minted.body.anonymousId);
  });

  it('lets the tag\'s id replace the cookie\'s when the page asks to (setAnonymousId, reset)', async () => {
    await start();
    const res = await identify({ writeKey: SHOP.writeKey, anonymousId: 'after-reset', replace: true }, { cookie: 'ajs_anonymous_id=before-reset' });
    expect({ id: res.body.anonymousId, cookie: res.cookie?.value }).toEqual({ id: 'after-reset', cookie: 'after-reset' });
    // Without an id in the body, replace changes nothing.
    expect((await identify({ writeKey: SHOP.writeKey, replace: true }, { cookie: 'ajs_anonymous_id=kept' })).body.anonymousId).toBe('kept');
  });

  it('takes the write key as the HTTP Basic user name too', async () => {
    await start();
    const res = await identify({ anonymousId: 'basic-id' }, { authorization: `Basic ${Buffer.from(`${SHOP.writeKey}:`).toString('base64')}` });
    expect(res).toMatchObject({ status: 200, body: { anonymousId: 'basic-id' } });
  });

  it('refuses an invalid anonymousId with 400 naming the field, and sets no cookie', async () => {
    await start();
    for (const anonymousId of ['', 'a;b', 'a,b', 'a\nb', 'x'.repeat(129), 42]) {
      const res = await identify({ writeKey: SHOP.writeKey, anonymousId });
      expect({ anonymousId, status: res.status, field: res.body.errors?.[0]?.field, cookie: res.cookie }).toEqual({ anonymousId, status: 400, field: '/anonymousId', cookie: undefined });
    }
    expect((await identify('not json')).body.errors[0]).toMatchObject({ rule: 'json' });
  });

  it('answers 404 rule serverCookie when the Source does not set the cookie, and 401 to an unknown or missing key', async () => {
    await start();
    const off = await identify({ writeKey: OFF.writeKey, anonymousId: 'a' });
    expect(off).toMatchObject({ status: 404, body: { success: false, errors: [{ rule: 'serverCookie' }] }, cookie: undefined });
    expect((await identify({ writeKey: 'wk_nobody_0123456', anonymousId: 'a' })).status).toBe(401);
    expect((await identify({ anonymousId: 'a' })).status).toBe(401);
  });

  it('lets an allowed origin read the answer with credentials, and refuses others with 403', async () => {
    await start();
    const origin = 'https://www.shop.test';
    const res = await identify({ writeKey: SHOP.writeKey, anonymousId: 'a' }, { origin });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' });
    const denied = await identify({ writeKey: SHOP.writeKey, anonymousId: 'a' }, { origin: 'https://evil.test' });
    expect(denied).toMatchObject({ status: 403, body: { errors: [{ rule: 'origin' }] }, cookie: undefined });
    // Readable as a refusal by the tag's credentialed request (no cookie is set).
    expect(denied.headers).toMatchObject({ 'access-control-allow-origin': 'https://evil.test', 'access-control-allow-credentials': 'true' });

    const preflight = await request(`${url}/v1/identity`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    await preflight.body.dump();
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers).toMatchObject({ 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', 'access-control-allow-methods': 'POST, OPTIONS' });
    const deniedPreflight = await request(`${url}/v1/identity`, { method: 'OPTIONS', headers: { origin: 'https://evil.test', 'access-control-request-method': 'POST' } });
    await deniedPreflight.body.dump();
    expect(deniedPreflight.statusCode).toBe(403);
  });

  it('allows credentials on the tracking routes\' CORS answers too (the tag\'s keepalive and beacon requests may carry cookies)', async () => {
    await start();
    const origin = 'https://www.shop.test';
    const res = await request(`${url}/v1/batch`, {
      method: 'POST',
      headers: { origin, 'content-type': 'text/plain' },
      body: JSON.stringify({ writeKey: SHOP.writeKey, batch: [{ type: 'track', event: 'A', anonymousId: 'a' }] }),
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true' });
    const preflight = await request(`${url}/v1/batch`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
    await preflight.body.dump();
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
  });
});
