// The pure pieces of the ingestion API: write key parsing, addresses, origins, Source tables.
import { basicAuthWriteKey } from './app.js';
import { enrichEvent, normaliseIp } from './enrich.js';
import { SourceTable, normaliseOrigin, type IngestionSource } from './sources.js';

const SOURCE: IngestionSource = {
  namespace: 'ns',
  name: 'web',
  writeKey: 'wk_web_0123456789',
  allowedOrigins: ['https://Shop.Example.com:443', 'http://localhost:3000'],
  limits: { maxEventBytes: 1024, maxBatchBytes: 2048, eventsPerSecond: 1, burst: 1 },
};

describe('ingestion helpers', () => {
  it('reads the write key from a Basic header, with or without the colon', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect(basicAuthWriteKey(`Basic ${b64('abc123:')}`)).toBe('abc123');
    expect(basicAuthWriteKey(`basic ${b64('abc123')}`)).toBe('abc123');
    expect(basicAuthWriteKey(`Basic ${b64('abc123:ignored')}`)).toBe('abc123');
    expect(basicAuthWriteKey(`Basic ${b64(':')}`)).toBeUndefined();
    expect(basicAuthWriteKey('Bearer token')).toBeUndefined();
    expect(basicAuthWriteKey(undefined)).toBeUndefined();
  });

  it('stores IPv4 clients of a dual-stack socket in IPv4 form', () => {
    expect(normaliseIp('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(normaliseIp('2001:db8::1')).toBe('2001:db8::1');
    expect(normaliseIp(undefined)).toBeUndefined();
  });

  it('compares origins the way browsers send them', () => {
    const table = SourceTable.build([SOURCE]);
    expect(table.anyAllows('https://shop.example.com')).toBe(true);
    expect(table.anyAllows('http://localhost:3000')).toBe(true);
    expect(table.anyAllows('http://localhost:3001')).toBe(false);
    expect(table.anyAllows('null')).toBe(false);
    expect(normaliseOrigin('not a url')).toBeUndefined();
  });

  it('keeps a Source\'s rate budget across reloads unless its limits change', async () => {
    const first = SourceTable.build([SOURCE]);
    expect(await first.lookup(SOURCE.writeKey)!.limiter.take(2)).toEqual({ ok: true });
    const same = SourceTable.build([{ ...SOURCE, allowedOrigins: [] }], first);
    expect(await same.lookup(SOURCE.writeKey)!.limiter.take(1)).toMatchObject({ ok: false, retryAfterSeconds: expect.any(Number) });
    const raised = SourceTable.build([{ ...SOURCE, limits: { ...SOURCE.limits, burst: 5 } }], same);
    expect(await raised.lookup(SOURCE.writeKey)!.limiter.take(6)).toEqual({ ok: true });
  });

  it('leaves an unparseable client time as sent instead of inventing one', () => {
    // ajv's date-time accepts leap seconds, Date.parse does not
    const event = enrichEvent({ userId: 'u', event: 'E', timestamp: '2026-12-31T23:59:60Z', sentAt: '2027-01-01T00:00:00Z' }, 'track', { receivedAt: 0 });
    expect(event.timestamp).toBe('2026-12-31T23:59:60Z');
    expect(event.originalTimestamp).toBe('2026-12-31T23:59:60Z');
  });
});
