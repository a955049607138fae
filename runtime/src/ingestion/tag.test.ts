// The browser tag served by the ingestion API: the bundle wrapped with each Source's configuration,
// over real HTTP against a real nats-server.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { COOKIE_DEFAULTS, SERVER_COOKIE_TIMEOUT_MS, TRANSPORT_DEFAULTS, type TagConfig } from '@switchyard/client/core';
import { TagSpec } from '../api/source.js';
import { parseSettings } from '../api/validate.js';
import { useNatsFixture } from '../test-support/nats.js';
import { useTempDirs } from '../test-support/temp.js';
import { startIngestion, type IngestionOptions, type IngestionSource } from './index.js';

/** A Source's `spec.tag` with the schema's defaults, as the operator and `switchyard dev` pass it. */
const tag = (partial: Record<string, unknown>): TagSpec => structuredClone(parseSettings<TagSpec>(TagSpec, partial, 'spec.tag')) as TagSpec;

const LIMITS = { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 };
const WEB: IngestionSource = { namespace: 'shop', name: 'web', writeKey: 'wk_web_0123456789', allowedOrigins: ['https://shop.example'], limits: LIMITS };
const APP: IngestionSource = {
  namespace: 'shop',
  name: 'app',
  writeKey: 'wk_app_0123456789',
  allowedOrigins: [],
  limits: LIMITS,
  consent: { missing: 'deny' },
  tag: tag({
    apiHost: 'https://data.shop.example/',
    cookie: { domain: 'shop.example', sameSite: 'Strict' },
    serverCookie: { enabled: true, timeout: '500ms' },
    transport: { flushInterval: '250ms', maxAge: '1d' },
    // Characters that must not reach the page raw: `</script>` would end an inline script, U+2028 a line.
    consent: { cookie: { name: 'OptanonConsent', format: 'onetrust', categories: { C0004: 'Ads</script><!--\u2028\u2029' } }, defaults: { Analytics: true } },
    builtinSyncs: { google: { measurementId: 'G-ABC123' }, tiktok: { enabled: false }, crossDomain: { domains: ['shop-eu.example'] } },
    syncs: [
      { name: 'crm', kind: 'urlParameter', parameter: 'crm_id', category: 'Analytics' },
      { name: 'broken', kind: 'cookie', cookie: 'b', pattern: '(' },
      { name: 'dsp', kind: 'pixel', url: 'https://px.example/?u={anonymousId}' },
    ],
  }),
};
const OFF: IngestionSource = { ...WEB, name: 'off', writeKey: 'wk_off_0123456789', tag: tag({ enabled: false }) };

const PREFIX = '(function(__sy_config){';

/** The bundle and the configuration of a served script (`(function(__sy_config){<bundle>\n})(<json>);`). */
function unwrap(body: string): { bundle: string; config: TagConfig; json: string } {
  expect(body.startsWith(PREFIX)).toBe(true);
  expect(body.endsWith(');')).toBe(true);
  const split = body.lastIndexOf('\n})(');
  const json = body.slice(split + 4, -2);
  return { bundle: body.slice(PREFIX.length, split), config: JSON.parse(json) as TagConfig, json };
}

describe('browser tag route', () => {
  const { fx, cleanups } = useNatsFixture();
  const tempDir = useTempDirs('sy-tag-');
  let url = '';
  let setSources: (sources: IngestionSource[]) => void = () => undefined;

  async function start(sources: IngestionSource[], extra: Partial<IngestionOptions> = {}) {
    const ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources, host: '127.0.0.1', ...extra });
    cleanups.push(() => ingestion.close());
    url = ingestion.url;
    setSources = ingestion.setSources;
  }

  async function get(pathname: string, headers: Record<string, string> = {}) {
    const res = await request(`${url}${pathname}`, { headers });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  }

  /** A bundle file standing in for the built tag: it hands its configuration to the page. */
  async function fakeBundle(text = 'globalThis.__seen = __sy_config;'): Promise<string> {
    const file = path.join(await tempDir(), 'tag.min.js');
    await writeFile(file, text);
    return file;
  }

  it('serves the built bundle of @switchyard/client/tag with the Source configuration, defaults matching the tag\'s own', async () => {
    await start([WEB]);
    const res = await get(`/tag/${WEB.writeKey}.js`);
    expect(res.status).toBe(200);
    const built = await readFile(createRequire(import.meta.url).resolve('@switchyard/client/tag'), 'utf8');
    const { bundle, config } = unwrap(res.body.toString('utf8'));
    expect(bundle).toBe(built);
    // A Source without spec.tag: every default, the same as the tag's own defaults.
    expect(config).toEqual({
      writeKey: WEB.writeKey,
      cookie: { ...COOKIE_DEFAULTS },
      serverCookie: false,
      serverCookieTimeoutMs: SERVER_COOKIE_TIMEOUT_MS,
      transport: TRANSPORT_DEFAULTS,
      consent: { missing: 'allow', defaults: {} },
      builtinSyncs: {
        meta: { enabled: true },
        google: { enabled: true },
        tiktok: { enabled: true },
        microsoft: { enabled: true },
        pinterest: { enabled: true },
        snapchat: { enabled: true },
        crossDomain: { enabled: true, domains: [] },
      },
      syncs: [],
    });
    expect(res.headers).toMatchObject({
      'content-type': 'application/javascript; charset=utf-8',
      'cache-control': 'public, max-age=300',
      vary: 'Accept-Encoding',
      'cross-origin-resource-policy': 'cross-origin',
      'x-content-type-options': 'nosniff',
      'access-control-allow-origin': '*',
      'content-length': String(res.body.length),
    });
    expect(res.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
  });

  it('embeds each Source\'s configuration, escaped for HTML, in a script that runs and hands it to the bundle', async () => {
    await start([WEB, APP], { tagScript: await fakeBundle() });
    const body = (await get(`/tag/${APP.writeKey}.js`)).body.toString('utf8');
    expect(body).not.toMatch(/<|\u2028|\u2029/);
    const { config, json } = unwrap(body);
    expect(json).toContain('Ads\\u003c/script>\\u003c!--\\u2028\\u2029');
    expect(config).toEqual({
      writeKey: APP.writeKey,
      apiHost: 'https://data.shop.example',
      cookie: { domain: 'shop.example', anonymousIdName: 'ajs_anonymous_id', userIdName: 'ajs_user_id', maxAgeDays: 365, sameSite: 'Strict' },
      serverCookie: true,
      serverCookieTimeoutMs: 500,
      transport: { ...TRANSPORT_DEFAULTS, flushIntervalMs: 250, maxAgeMs: 86_400_000 },
      consent: { missing: 'deny', cookie: { name: 'OptanonConsent', format: 'onetrust', categories: { C0004: 'Ads</script><!--\u2028\u2029' } }, defaults: { Analytics: true } },
      builtinSyncs: {
        meta: { enabled: true },
        google: { enabled: true, measurementId: 'G-ABC123' },
        tiktok: { enabled: false },
        microsoft: { enabled: true },
        pinterest: { enabled: true },
        snapchat: { enabled: true },
        crossDomain: { enabled: true, domains: ['shop-eu.example'] },
      },
      // The sync whose pattern is no regular expression is left out; the others are served.
      syncs: [
        { name: 'crm', kind: 'urlParameter', parameter: 'crm_id', category: 'Analytics' },
        { name: 'dsp', kind: 'pixel', url: 'https://px.example/?u={anonymousId}' },
      ],
    });
    const page: { __seen?: unknown } = {};
    vm.runInNewContext(body, vm.createContext(page));
    expect(page.__seen).toEqual(config);
    const web = unwrap((await get(`/tag/${WEB.writeKey}.js`)).body.toString('utf8')).config;
    expect(web.writeKey).toBe(WEB.writeKey);
  });

  it('serves the same script at Segment\'s CDN path, so a snippet only changes its host', async () => {
    await start([WEB], { tagScript: await fakeBundle() });
    const ours = await get(`/tag/${WEB.writeKey}.js`);
    const alias = await get(`/analytics.js/v1/${WEB.writeKey}/analytics.min.js`);
    expect(alias.status).toBe(200);
    expect(alias.body.equals(ours.body)).toBe(true);
    expect(alias.headers.etag).toBe(ours.headers.etag);
  });

  it('answers 304 to a matching If-None-Match, and 200 to another', async () => {
    await start([WEB], { tagScript: await fakeBundle() });
    const first = await get(`/tag/${WEB.writeKey}.js`);
    const etag = first.headers.etag as string;
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await get(`/tag/${WEB.writeKey}.js`, { 'if-none-match': inm });
      expect({ inm, status: again.status, bytes: again.body.length }).toEqual({ inm, status: 304, bytes: 0 });
      expect(again.headers).toMatchObject({ etag, 'cache-control': 'public, max-age=300', vary: 'Accept-Encoding' });
    }
    expect((await get(`/tag/${WEB.writeKey}.js`, { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('serves gzip and brotli by Accept-Encoding, each decoding to the same script under its own ETag', async () => {
    // The real bundle: compression is worth checking on the size it has.
    await start([WEB]);
    const plain = await get(`/tag/${WEB.writeKey}.js`);
    const gz = await get(`/tag/${WEB.writeKey}.js`, { 'accept-encoding': 'gzip, deflate' });
    const br = await get(`/tag/${WEB.writeKey}.js`, { 'accept-encoding': 'gzip, deflate, br, zstd' });
    const noBr = await get(`/tag/${WEB.writeKey}.js`, { 'accept-encoding': 'br;q=0, gzip' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect([gz.headers['content-encoding'], br.headers['content-encoding'], noBr.headers['content-encoding']]).toEqual(['gzip', 'br', 'gzip']);
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);
    expect(br.body.length).toBeLessThan(gz.body.length);
    expect(gz.body.length).toBeLessThan(plain.body.length);
    expect(new Set([plain.headers.etag, gz.headers.etag, br.headers.etag]).size).toBe(3);
    for (const r of [gz, br]) expect(r.headers).toMatchObject({ vary: 'Accept-Encoding', 'content-length': String(r.body.length) });
    expect((await get(`/tag/${WEB.writeKey}.js`, { 'accept-encoding': 'br', 'if-none-match': br.headers.etag as string })).status).toBe(304);
  });

  it('answers 404 with a JavaScript comment to an unknown write key and to a Source whose tag is off', async () => {
    await start([WEB, OFF], { tagScript: await fakeBundle() });
    for (const pathname of ['/tag/wk_nobody_0123456.js', `/tag/${OFF.writeKey}.js`, `/analytics.js/v1/${OFF.writeKey}/analytics.min.js`]) {
      const res = await get(pathname);
      expect({ pathname, status: res.status }).toEqual({ pathname, status: 404 });
      expect(res.headers['content-type']).toBe('application/javascript; charset=utf-8');
      expect(res.body.toString()).toMatch(/^\/\* Switchyard: no tag for this write key .* \*\/\n$/);
    }
  });

  it('follows setSources: a changed tag changes the script and its ETag; a removed Source is 404', async () => {
    await start([WEB], { tagScript: await fakeBundle() });
    const before = await get(`/tag/${WEB.writeKey}.js`);
    setSources([{ ...WEB, tag: tag({ apiHost: 'https://data.shop.example' }) }]);
    const after = await get(`/tag/${WEB.writeKey}.js`, { 'if-none-match': before.headers.etag as string });
    expect(after.status).toBe(200);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect(unwrap(after.body.toString()).config.apiHost).toBe('https://data.shop.example');
    // A tag breaking its schema is refused with the whole update; the previous Sources stay.
    expect(() => setSources([{ ...WEB, tag: { ...tag({}), transport: { lease: 'soon' } } as unknown as TagSpec }])).toThrow(
      expect.objectContaining({ code: 'SY_INVALID_SETTINGS', message: expect.stringMatching(/spec\.tag of Source shop\/web[\s\S]*\/transport\/lease/) }),
    );
    expect((await get(`/tag/${WEB.writeKey}.js`)).headers.etag).toBe(after.headers.etag);
    setSources([APP]);
    expect((await get(`/tag/${WEB.writeKey}.js`)).status).toBe(404);
  });

  it('answers 503 naming the fix while the bundle file is missing, and serves it once it is built', async () => {
    const file = path.join(await tempDir(), 'missing.min.js');
    await start([WEB], { tagScript: file });
    const res = await get(`/tag/${WEB.writeKey}.js`);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toBe('application/javascript; charset=utf-8');
    expect(res.body.toString()).toContain('npm run build');
    expect(res.body.toString()).toContain(file);
    await writeFile(file, '/* built */');
    const served = await get(`/tag/${WEB.writeKey}.js`);
    expect(served.status).toBe(200);
    expect(unwrap(served.body.toString()).bundle).toBe('/* built */');
    await rm(file);
    // Read once: a running ingestion keeps serving what it read.
    expect((await get(`/tag/${WEB.writeKey}.js`)).status).toBe(200);
  });

  it('counts tag requests by route in the request metrics, without write keys', async () => {
    await start([WEB], { tagScript: await fakeBundle() });
    await get(`/tag/${WEB.writeKey}.js`);
    await get(`/analytics.js/v1/wk_nobody_0123456/analytics.min.js`);
    const metrics = (await get('/metrics')).body.toString();
    expect(metrics).toContain('switchyard_ingest_requests_total{route="/tag/:writeKey.js",status="200"} 1');
    expect(metrics).toContain('switchyard_ingest_requests_total{route="/analytics.js/v1/:writeKey/analytics.min.js",status="404"} 1');
    expect(metrics).not.toContain(WEB.writeKey);
  });
});
