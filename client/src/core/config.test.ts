// Tag configuration: defaults filled in, and `analytics.load` options laid over the served config.
import { COOKIE_DEFAULTS, mergeTagConfig, resolveTagConfig, SERVER_COOKIE_TIMEOUT_MS, TRANSPORT_DEFAULTS, type TagConfig } from './config.js';

describe('resolveTagConfig', () => {
  it('fills every default of a bare config', () => {
    expect(resolveTagConfig({ writeKey: 'wk' })).toEqual({
      writeKey: 'wk',
      cookie: COOKIE_DEFAULTS,
      serverCookie: false,
      serverCookieTimeoutMs: SERVER_COOKIE_TIMEOUT_MS,
      transport: TRANSPORT_DEFAULTS,
      consent: { missing: 'allow', defaults: {} },
      builtinSyncs: {},
      syncs: [],
    });
  });

  it('keeps what is set, field by field, and drops trailing slashes of apiHost', () => {
    const given: TagConfig = {
      writeKey: 'wk',
      apiHost: 'https://data.shop.example//',
      cookie: { domain: 'shop.example', maxAgeDays: 30 },
      transport: { flushIntervalMs: 50 },
      consent: { missing: 'deny', cookie: { name: 'OptanonConsent', format: 'onetrust' } },
      serverCookie: true,
    };
    const resolved = resolveTagConfig(given);
    expect(resolved.apiHost).toBe('https://data.shop.example');
    expect(resolved.cookie).toEqual({ ...COOKIE_DEFAULTS, domain: 'shop.example', maxAgeDays: 30 });
    expect(resolved.transport).toEqual({ ...TRANSPORT_DEFAULTS, flushIntervalMs: 50 });
    expect(resolved.consent).toEqual({ missing: 'deny', defaults: {}, cookie: { name: 'OptanonConsent', format: 'onetrust' } });
    expect(resolved.serverCookie).toBe(true);
    expect(given.apiHost).toBe('https://data.shop.example//');
  });
});

describe('mergeTagConfig', () => {
  it('merges nested objects, replaces arrays and other values, ignores undefined', () => {
    const served: TagConfig = {
      writeKey: 'wk',
      transport: { maxEvents: 10, flushIntervalMs: 1000 },
      consent: { defaults: { Advertising: false } },
      builtinSyncs: { crossDomain: { domains: ['a.example', 'b.example'] } },
    };
    const merged = mergeTagConfig(served, {
      transport: { flushIntervalMs: 200 },
      consent: { defaults: { Analytics: true } },
      builtinSyncs: { crossDomain: { domains: ['c.example'] } },
      apiHost: undefined,
      serverCookie: true,
    });
    expect(merged).toEqual({
      writeKey: 'wk',
      transport: { maxEvents: 10, flushIntervalMs: 200 },
      consent: { defaults: { Advertising: false, Analytics: true } },
      builtinSyncs: { crossDomain: { domains: ['c.example'] } },
      serverCookie: true,
    });
    expect(served.transport).toEqual({ maxEvents: 10, flushIntervalMs: 1000 });
  });

  it('returns a copy of the base without options', () => {
    const base = { writeKey: 'wk' };
    const merged = mergeTagConfig(base, undefined);
    expect(merged).toEqual(base);
    expect(merged).not.toBe(base);
  });
});
