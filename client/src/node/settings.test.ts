// Settings of the Node SDK: defaults filled in, every bad setting refused by name at construction.
import { Analytics, AnalyticsError, AnalyticsErrorCodes, ANALYTICS_DEFAULTS, resolveSettings, type AnalyticsSettings } from './index.js';

function refusal(settings: unknown): AnalyticsError {
  try {
    new Analytics(settings as AnalyticsSettings);
  } catch (e) {
    return e as AnalyticsError;
  }
  throw new Error('the settings were accepted');
}

describe('Node SDK settings', () => {
  it('fills in the documented defaults', () => {
    const resolved = resolveSettings({ writeKey: 'wk', host: 'https://data.example.com' });
    expect(resolved).toMatchObject({
      url: 'https://data.example.com/v1/batch',
      path: '/v1/batch',
      flushAt: 15,
      flushInterval: 10_000,
      maxBatchBytes: 512_000,
      maxEventBytes: 32_768,
      maxQueueSize: 10_000,
      maxRetries: 10,
      retryMinDelayMs: 1000,
      retryMaxDelayMs: 30_000,
      httpRequestTimeout: 10_000,
      disable: false,
      random: Math.random,
    });
    expect(resolved).toMatchObject(ANALYTICS_DEFAULTS);
    expect(resolved.clock.now()).toBeInstanceOf(Date);
  });

  it('joins host and path, keeping a path prefix and dropping trailing slashes', () => {
    expect(resolveSettings({ writeKey: 'wk', host: 'https://data.example.com/' }).url).toBe('https://data.example.com/v1/batch');
    expect(resolveSettings({ writeKey: 'wk', host: 'http://127.0.0.1:8787/events//', path: '/v1/import' }).url).toBe('http://127.0.0.1:8787/events/v1/import');
  });

  it('needs no host when disabled', () => {
    expect(resolveSettings({ writeKey: 'wk', disable: true })).toMatchObject({ disable: true, url: '' });
  });

  it.each([
    ['settings', null, /expected an object/],
    ['writeKey', { host: 'https://x.example' }, /non-empty string is required/],
    ['writeKey', { writeKey: '  ', host: 'https://x.example' }, /non-empty string is required/],
    ['host', { writeKey: 'wk' }, /ingestion URL is required/],
    ['host', { writeKey: 'wk', host: 'data.example.com' }, /not a URL/],
    ['host', { writeKey: 'wk', host: 'ftp://data.example.com' }, /http or https URL/],
    ['host', { writeKey: 'wk', host: 'https://data.example.com/?a=1' }, /no query or fragment/],
    ['path', { writeKey: 'wk', host: 'https://x.example', path: 'v1/batch' }, /starting with \//],
    ['flushAt', { writeKey: 'wk', host: 'https://x.example', flushAt: 0 }, /integer from 1 to/],
    ['flushInterval', { writeKey: 'wk', host: 'https://x.example', flushInterval: 1.5 }, /integer from 1 to/],
    ['maxRetries', { writeKey: 'wk', host: 'https://x.example', maxRetries: '3' }, /integer from 0 to/],
    ['httpRequestTimeout', { writeKey: 'wk', host: 'https://x.example', httpRequestTimeout: -1 }, /integer from 1 to/],
    ['maxQueueSize', { writeKey: 'wk', host: 'https://x.example', maxQueueSize: 0 }, /integer from 1 to/],
    ['retryMinDelayMs', { writeKey: 'wk', host: 'https://x.example', retryMinDelayMs: 500, retryMaxDelayMs: 100 }, /above retryMaxDelayMs/],
    ['maxEventBytes', { writeKey: 'wk', host: 'https://x.example', maxBatchBytes: 4096, maxEventBytes: 4096 }, /does not fit in a request of maxBatchBytes 4096/],
    ['disable', { writeKey: 'wk', disable: 'yes' }, /expected a boolean/],
    ['clock', { writeKey: 'wk', host: 'https://x.example', clock: Date }, /now\(\) method/],
    ['random', { writeKey: 'wk', host: 'https://x.example', random: 0.5 }, /function/],
    ['maxEventsInBatch', { writeKey: 'wk', host: 'https://x.example', maxEventsInBatch: 10 }, /unknown setting/],
  ])('refuses a bad %s', (setting, settings, message) => {
    const error = refusal(settings);
    expect(error).toBeInstanceOf(AnalyticsError);
    expect(error).toMatchObject({ name: 'AnalyticsError', code: AnalyticsErrorCodes.INVALID_SETTINGS, setting });
    expect(error.message).toMatch(new RegExp(`^invalid setting ${setting}: `));
    expect(error.message).toMatch(message);
  });

  it('keeps the URL parser error as the cause of a bad host', () => {
    // (the URL class comes from outside jest's realm: match by name)
    expect(refusal({ writeKey: 'wk', host: 'not a url' }).cause).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_URL' });
  });
});
