// The ingestion API against a real nats-server: HTTP requests in, JetStream messages read back.
import { deflateSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { natsFixture, streamMessages } from '../test-support/nats.js';
import { eventSubject } from '../nats/subjects.js';
import { startIngestion, type IngestionSource } from './index.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');

const WEB: IngestionSource = {
  namespace: 'shop',
  name: 'web',
  writeKey: 'wk_web_0123456789',
  allowedOrigins: ['https://shop.example.com'],
  limits: { maxEventBytes: 32 * 1024, maxBatchBytes: 500 * 1024, eventsPerSecond: 10000, burst: 10000 },
};
// A dotted name: subjects encode it as one token.
const BACKEND: IngestionSource = { ...WEB, name: 'backend.v2', writeKey: 'wk_backend_0123456789', allowedOrigins: [] };

function basic(key: string, colon = true): string {
  return `Basic ${Buffer.from(colon ? `${key}:` : key).toString('base64')}`;
}

type Json = Record<string, any>;

describe('ingestion API', () => {
  let fx: Awaited<ReturnType<typeof natsFixture>>;
  let ingestion: Awaited<ReturnType<typeof startIngestion>>;

  async function start(extra: { trustProxy?: boolean } = {}, sources: IngestionSource[] = [WEB, BACKEND]) {
    await ingestion?.close();
    ingestion = await startIngestion({ nc: fx.nc, streams: fx.streams, sources, clock: { now: () => NOW }, host: '127.0.0.1', ...extra });
  }

  beforeEach(async () => {
    fx = await natsFixture();
    await start();
  });
  afterEach(async () => {
    await ingestion.close();
    await fx.cleanup();
  });

  async function post(path: string, body: unknown, opts: { key?: string; headers?: Record<string, string> } = {}) {
    const res = await request(`${ingestion.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.key ? { authorization: basic(opts.key) } : {}), ...opts.headers },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text ? (JSON.parse(text) as Json) : undefined };
  }

  /** Every message of the events stream, in order. */
  async function stored(): Promise<{ subject: string; msgId: string; source: string; consentMissing: string; event: Json }[]> {
    return (await streamMessages(fx.jsm, fx.streams.events.name)).map((m) => ({
      subject: m.subject,
      msgId: m.header.get('Nats-Msg-Id'),
      source: m.header.get('Sy-Source'),
      consentMissing: m.header.get('Sy-Consent-Missing'),
      event: m.json<Json>(),
    }));
  }

  it('marks events of a Source whose consent.missing is deny, so the forwarder can apply it', async () => {
    await start({}, [WEB, { ...BACKEND, consent: { missing: 'deny' } }]);
    expect((await post('/v1/track', { userId: 'u', event: 'A' }, { key: WEB.writeKey })).status).toBe(200);
    expect((await post('/v1/track', { userId: 'u', event: 'B' }, { key: BACKEND.writeKey })).status).toBe(200);
    const events = await stored();
    expect(events.map((e) => [e.event.event, e.consentMissing])).toEqual([
      ['A', ''],
      ['B', 'deny'],
    ]);
  });

  it('stores a track call under its subject, Nats-Msg-Id and Sy-Source, enriched and skew-corrected', async () => {
    const res = await post(
      '/v1/track',
      {
        userId: 'u1',
        event: 'Order Completed',
        properties: { revenue: 25 },
        messageId: 'm-1',
        timestamp: '2026-03-01T11:50:00.000Z',
        sentAt: '2026-03-01T11:55:00.000Z',
        custom_field: { kept: true },
      },
      { key: WEB.writeKey },
    );
    expect(res).toMatchObject({ status: 200, body: { success: true } });
    const [msg, ...more] = await stored();
    expect(more).toHaveLength(0);
    expect(msg!.subject).toBe(eventSubject(fx.streams.subjectPrefix, 'shop', 'web', 'track'));
    expect(msg!.msgId).toBe('shop/web/m-1');
    expect(msg!.source).toBe('shop/web');
    expect(msg!.event).toEqual({
      type: 'track',
      userId: 'u1',
      event: 'Order Completed',
      properties: { revenue: 25 },
      messageId: 'm-1',
      // sent 5 minutes after it happened, received NOW: it happened 5 minutes before NOW
      timestamp: '2026-03-01T11:55:00.000Z',
      originalTimestamp: '2026-03-01T11:50:00.000Z',
      sentAt: '2026-03-01T11:55:00.000Z',
      receivedAt: '2026-03-01T12:00:00.000Z',
      context: { ip: '127.0.0.1' },
      custom_field: { kept: true },
    });
  });

  it('serves every call route, short forms, /v1/batch and /v1/import, taking the type from the route', async () => {
    const calls: [string, Json, string][] = [
      ['/v1/track', { event: 'A' }, 'track'],
      ['/v1/t', { event: 'B' }, 'track'],
      ['/v1/page', { name: 'Home' }, 'page'],
      ['/v1/p', {}, 'page'],
      ['/v1/screen', { name: 'Main' }, 'screen'],
      ['/v1/s', {}, 'screen'],
      ['/v1/identify', { traits: { plan: 'pro' } }, 'identify'],
      ['/v1/i', {}, 'identify'],
      ['/v1/group', { groupId: 'g1' }, 'group'],
      ['/v1/g', { groupId: 'g2' }, 'group'],
      ['/v1/alias', { previousId: 'old' }, 'alias'],
      // the body says identify; the route decides
      ['/v1/a', { previousId: 'old2', type: 'identify' }, 'alias'],
    ];
    for (const [path, body] of calls) {
      const res = await post(path, { userId: 'u1', ...body }, { key: WEB.writeKey });
      expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 200, body: { success: true } });
    }
    for (const path of ['/v1/batch', '/v1/import']) {
      const res = await post(path, { batch: [{ type: 'group', userId: 'u1', groupId: 'g9' }] }, { key: WEB.writeKey });
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
    const types = (await stored()).map((m) => [m.subject.split('.').pop(), m.event.type]);
    expect(types).toEqual([...calls.map(([, , t]) => [t, t]), ['group', 'group'], ['group', 'group']]);
  });

  it('takes the write key from the body of a text/plain request and stores no writeKey', async () => {
    const res = await post(
      '/v1/batch',
      JSON.stringify({ writeKey: BACKEND.writeKey, batch: [{ type: 'track', event: 'E', anonymousId: 'a1', messageId: 'x1' }, { type: 'identify', anonymousId: 'a1', writeKey: 'stray' }] }),
      { headers: { 'content-type': 'text/plain;charset=UTF-8' } },
    );
    expect(res).toMatchObject({ status: 200, body: { success: true } });
    const messages = await stored();
    expect(messages.map((m) => m.subject)).toEqual([
      eventSubject(fx.streams.subjectPrefix, 'shop', 'backend.v2', 'track'),
      eventSubject(fx.streams.subjectPrefix, 'shop', 'backend.v2', 'identify'),
    ]);
    expect(messages[0]!.source).toBe('shop/backend.v2');
    expect(messages[0]!.msgId).toBe('shop/backend.v2/x1');
    expect(messages.every((m) => !('writeKey' in m.event))).toBe(true);
  });

  it('accepts a Basic header encoded without the colon', async () => {
    const res = await request(`${ingestion.url}/v1/track`, {
      method: 'POST',
      headers: { authorization: basic(WEB.writeKey, false), 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u', event: 'E' }),
    });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('answers 401 to an unknown or missing write key and stores nothing', async () => {
    const event = { userId: 'u', event: 'E' };
    const unknownBasic = await post('/v1/track', event, { key: 'wk_nobody_000000' });
    const unknownBody = await post('/v1/track', { ...event, writeKey: 'wk_nobody_000000' });
    const missing = await post('/v1/track', event);
    for (const res of [unknownBasic, unknownBody, missing]) {
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ success: false, errors: [{ field: '/writeKey', rule: 'writeKey' }] });
    }
    expect(missing.body!.errors[0].message).toMatch(/missing write key/);
    // Basic wins over the body: a wrong Basic key is not rescued by a right body key.
    expect((await post('/v1/track', { ...event, writeKey: WEB.writeKey }, { key: 'wk_nobody_000000' })).status).toBe(401);
    expect(await stored()).toHaveLength(0);
  });

  it('reads gzip and deflate bodies', async () => {
    const body = (id: string) => Buffer.from(JSON.stringify({ batch: [{ type: 'track', event: 'Zipped', userId: 'u', messageId: id }] }));
    const gz = await post('/v1/batch', gzipSync(body('g')), { key: WEB.writeKey, headers: { 'content-encoding': 'gzip' } });
    const df = await post('/v1/batch', deflateSync(body('d')), { key: WEB.writeKey, headers: { 'content-encoding': 'deflate' } });
    expect([gz.status, df.status]).toEqual([200, 200]);
    expect((await stored()).map((m) => m.event.messageId)).toEqual(['g', 'd']);
  });

  it('answers 415 to an unknown Content-Encoding', async () => {
    const res = await post('/v1/track', { userId: 'u', event: 'E' }, { key: WEB.writeKey, headers: { 'content-encoding': 'snappy' } });
    expect(res.status).toBe(415);
    expect(res.body).toMatchObject({ success: false, errors: [{ field: '/', rule: 'contentEncoding' }] });
  });

  it('answers 400 with rule json to malformed JSON', async () => {
    const res = await post('/v1/batch', '{"batch": [{"type": "track",', { key: WEB.writeKey });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ success: false, errors: [{ field: '/', rule: 'json', message: expect.stringMatching(/not a JSON object/) }] });
    const notAnObject = await post('/v1/track', '"just a string"', { key: WEB.writeKey });
    expect(notAnObject.body).toMatchObject({ success: false, errors: [{ field: '/', rule: 'json' }] });
  });

  it('answers 400 to a batch envelope without a batch array', async () => {
    const res = await post('/v1/batch', { events: [] }, { key: WEB.writeKey });
    expect(res).toMatchObject({ status: 400, body: { success: false, errors: [{ field: '/batch', rule: 'required' }] } });
    const notArray = await post('/v1/batch', { batch: { type: 'track' } }, { key: WEB.writeKey });
    expect(notArray).toMatchObject({ status: 400, body: { errors: [{ field: '/batch', rule: 'type' }] } });
  });

  it('refuses bad calls one by one with index, field and rule, and stores the good ones (207)', async () => {
    const batch = [
      { type: 'track', event: 'Good', userId: 'u', messageId: 'good-0' },
      { type: 'track', userId: 'u' },
      { type: 'identify', traits: { a: 1 } },
      { type: 'alias', userId: 'u' },
      { type: 'group', anonymousId: 'a' },
      { type: 'track', event: 'Typed', userId: { id: 1 }, anonymousId: 'a', properties: [1], timestamp: 'yesterday' },
      { type: 'purchase', userId: 'u' },
      'not an object',
      { type: 'page', anonymousId: 'a', messageId: 'good-8' },
      { event: 'NoType', userId: 'u' },
      { type: 'track', event: '', userId: '', anonymousId: null },
    ];
    const res = await post('/v1/batch', { batch }, { key: WEB.writeKey });
    expect(res.status).toBe(207);
    expect(res.body).toMatchObject({ success: false, accepted: 2, rejected: 9 });
    const errors = res.body!.errors.map(({ index, field, rule }: Json) => ({ index, field, rule }));
    expect(errors).toEqual(
      expect.arrayContaining([
        { index: 1, field: '/event', rule: 'required' },
        { index: 2, field: '/userId', rule: 'required' },
        { index: 3, field: '/previousId', rule: 'required' },
        { index: 4, field: '/groupId', rule: 'required' },
        { index: 5, field: '/userId', rule: 'type' },
        { index: 5, field: '/properties', rule: 'type' },
        { index: 5, field: '/timestamp', rule: 'format' },
        { index: 6, field: '/type', rule: 'enum' },
        { index: 7, field: '/', rule: 'type' },
        { index: 9, field: '/type', rule: 'required' },
        { index: 10, field: '/userId', rule: 'required' },
        { index: 10, field: '/event', rule: 'minLength' },
      ]),
    );
    // every message names its field
    for (const e of res.body!.errors.filter((p: Json) => p.field !== '/')) expect(e.message).toContain(e.field === '/userId' ? 'userId' : e.field);
    expect((await stored()).map((m) => m.event.messageId)).toEqual(['good-0', 'good-8']);
  });

  it('answers 400 with the same body when no call is valid', async () => {
    const res = await post('/v1/track', { event: 'No ids' }, { key: WEB.writeKey });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      success: false,
      accepted: 0,
      rejected: 1,
      errors: [{ index: 0, field: '/userId', rule: 'required', message: 'userId or anonymousId is required (a non-empty string or a number)' }],
    });
    expect(await stored()).toHaveLength(0);
  });

  it('turns number ids into strings, drops null ids and keeps unknown fields', async () => {
    const res = await post(
      '/v1/batch',
      {
        batch: [
          { type: 'group', userId: 42, anonymousId: null, groupId: 7, _metadata: { bundled: [] } },
          { type: 'alias', userId: 43, previousId: 41 },
        ],
      },
      { key: WEB.writeKey },
    );
    expect(res.status).toBe(200);
    const [group, alias] = (await stored()).map((m) => m.event);
    expect(group).toMatchObject({ userId: '42', groupId: '7', _metadata: { bundled: [] } });
    expect(group).not.toHaveProperty('anonymousId');
    expect(alias).toMatchObject({ userId: '43', previousId: '41' });
  });

  it('makes up a messageId when the call has none', async () => {
    await post('/v1/identify', { userId: 'u' }, { key: WEB.writeKey });
    const [msg] = await stored();
    expect(msg!.event.messageId).toMatch(/^sy-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(msg!.msgId).toBe(`shop/web/${msg!.event.messageId}`);
  });

  it('derives a made-up messageId from a timed call, so its resend is stored once; untimed calls stay distinct', async () => {
    const timed = { userId: 'u', event: 'Resent', timestamp: '2026-03-01T12:00:00.000Z' };
    await post('/v1/track', { ...timed, sentAt: '2026-03-01T12:00:01.000Z' }, { key: WEB.writeKey });
    await post('/v1/track', { ...timed, sentAt: '2026-03-01T12:00:09.000Z' }, { key: WEB.writeKey });
    await post('/v1/track', { userId: 'u', event: 'Untimed' }, { key: WEB.writeKey });
    await post('/v1/track', { userId: 'u', event: 'Untimed' }, { key: WEB.writeKey });
    const events = (await stored()).map((m) => m.event);
    expect(events.filter((e) => e.event === 'Resent')).toHaveLength(1);
    expect(events.find((e) => e.event === 'Resent')!.messageId).toMatch(/^sy-[0-9a-f]{32}$/);
    expect(events.filter((e) => e.event === 'Untimed')).toHaveLength(2);
  });

  it('stores a resent batch once and answers it as accepted, per Source', async () => {
    const batch = Array.from({ length: 20 }, (_, i) => ({ type: 'track', event: 'E', userId: 'u', messageId: `dup-${i}` }));
    const first = await post('/v1/batch', { batch }, { key: WEB.writeKey });
    const again = await post('/v1/batch', { batch }, { key: WEB.writeKey });
    expect([first.body, again.body]).toEqual([{ success: true }, { success: true }]);
    expect((await fx.jsm.streams.info(fx.streams.events.name)).state.messages).toBe(20);
    // The same messageIds from another Source are other events.
    await post('/v1/batch', { batch: batch.slice(0, 5) }, { key: BACKEND.writeKey });
    expect((await fx.jsm.streams.info(fx.streams.events.name)).state.messages).toBe(25);
  });

  it('corrects clock skew from sentAt, batch-level sentAt included, and falls back to originalTimestamp or receivedAt', async () => {
    const res = await post(
      '/v1/batch',
      {
        // the client clock is one hour ahead
        sentAt: '2026-03-01T13:00:00.000Z',
        context: { library: { name: 'test' }, locale: 'fr-FR' },
        batch: [
          { type: 'track', event: 'Skewed', userId: 'u', messageId: 'a', timestamp: '2026-03-01T12:59:30.000Z', context: { locale: 'en-US' } },
          { type: 'track', event: 'Own sentAt', userId: 'u', messageId: 'b', timestamp: '2026-03-01T11:59:00.000Z', sentAt: '2026-03-01T11:59:50.000Z' },
          { type: 'track', event: 'Original only', userId: 'u', messageId: 'c', originalTimestamp: '2026-03-01T12:59:00.000Z' },
        ],
      },
      { key: WEB.writeKey },
    );
    expect(res.status).toBe(200);
    const [a, b, c] = (await stored()).map((m) => m.event);
    expect(a).toMatchObject({ timestamp: '2026-03-01T11:59:30.000Z', originalTimestamp: '2026-03-01T12:59:30.000Z', sentAt: '2026-03-01T13:00:00.000Z' });
    // batch context merged under the call's own
    expect(a!.context).toEqual({ library: { name: 'test' }, locale: 'en-US', ip: '127.0.0.1' });
    expect(b).toMatchObject({ timestamp: '2026-03-01T11:59:10.000Z', originalTimestamp: '2026-03-01T11:59:00.000Z', sentAt: '2026-03-01T11:59:50.000Z' });
    expect(c).toMatchObject({ timestamp: '2026-03-01T11:59:00.000Z', originalTimestamp: '2026-03-01T12:59:00.000Z' });

    await post('/v1/track', { event: 'No times', userId: 'u', messageId: 'd' }, { key: WEB.writeKey });
    const d = (await stored()).at(-1)!.event;
    expect(d.timestamp).toBe('2026-03-01T12:00:00.000Z');
    expect(d).not.toHaveProperty('originalTimestamp');
  });

  it('sets context.ip from X-Forwarded-For only behind a trusted proxy, and never over the call\'s own', async () => {
    const xff = { 'x-forwarded-for': '203.0.113.9' };
    await post('/v1/track', { event: 'E', userId: 'u', messageId: 'untrusted' }, { key: WEB.writeKey, headers: xff });
    await start({ trustProxy: true });
    await post('/v1/track', { event: 'E', userId: 'u', messageId: 'trusted' }, { key: WEB.writeKey, headers: xff });
    await post('/v1/track', { event: 'E', userId: 'u', messageId: 'own', context: { ip: '198.51.100.1' } }, { key: WEB.writeKey, headers: xff });
    const ips = Object.fromEntries((await stored()).map((m) => [m.event.messageId, m.event.context.ip]));
    expect(ips).toEqual({ untrusted: '127.0.0.1', trusted: '203.0.113.9', own: '198.51.100.1' });
  });

  it('answers 404 in the same JSON shape off the API', async () => {
    const res = await post('/v2/track', {}, { key: WEB.writeKey });
    expect(res).toMatchObject({ status: 404, body: { success: false, errors: [{ rule: 'route' }] } });
  });
});
