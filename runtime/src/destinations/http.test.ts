import { ErrorCodes, SwitchyardError } from '../errors.js';
import { destinationIntegration } from '../test-support/destinations.js';
import { startTestReceiver, type TestReceiver } from '../test-support/http-receiver.js';
import { HttpDestination, query } from './http.js';
import type { DestinationDefinition, RequestResult } from './types.js';
import { WebhookSettings } from './webhook/settings.js';

/**
 * A vendor that takes `{events: [...]}` at most 3 per request, refuses payloads marked stale,
 * reports per-item errors as `{errors: {<index>: message}}`, and refuses a whole batch with
 * `{"split": true}` when it holds an item marked bad.
 */
const vendor: DestinationDefinition<WebhookSettings> = {
  type: 'webhook',
  settingsField: 'webhook',
  title: 'Test vendor',
  docsUrl: 'https://example.invalid',
  settingsSchema: WebhookSettings,
  credentials: { token: { required: true, description: 'API token' } },
  batch: { default: 3, max: 3 },
  outputSchema: () => undefined,
  refuse: (p, ctx) => (typeof p.at === 'number' && ctx.now - p.at > 1000 ? `too old by ${ctx.now - p.at - 1000} ms` : undefined),
  buildRequests(payloads, ctx) {
    if (payloads.some((p) => p.unbuildable)) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, 'cannot build');
    const out = [];
    for (let i = 0; i < payloads.length; i += 3) {
      const items = payloads.slice(i, i + 3).map((_, k) => i + k);
      out.push({ method: 'POST' as const, url: `${ctx.settings.url}?${query({ token: ctx.credentials.token, n: items.length })}`, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: items.map((k) => payloads[k]) }), items });
    }
    return out;
  },
  classify(response): RequestResult {
    const body = JSON.parse(response.body || '{}') as { errors?: Record<string, string>; split?: boolean };
    if (body.split) return { outcome: 'permanent', split: true, error: 'batch refused' };
    if (response.status !== 200) return { outcome: response.status >= 500 ? 'retryable' : 'permanent', error: `HTTP ${response.status}` };
    const items = new Map(Object.entries(body.errors ?? {}).map(([k, m]) => [Number(k), { outcome: 'permanent' as const, error: m }]));
    return items.size ? { outcome: 'success', items } : { outcome: 'success' };
  },
};

let receiver: TestReceiver;
beforeAll(async () => {
  receiver = await startTestReceiver({
    respond: (r) => {
      const events = (r.body as { events: { bad?: boolean; reject?: boolean; down?: boolean }[] }).events;
      if (events.some((e) => e.down)) return { status: 503 };
      if (events.length > 1 && events.some((e) => e.bad)) return { status: 400, body: '{"split":true}' };
      if (events.some((e) => e.bad)) return { status: 400, body: '{}' };
      const errors = Object.fromEntries(events.flatMap((e, i) => (e.reject ? [[String(i), `event ${i} refused`]] : [])));
      return { status: 200, body: JSON.stringify({ errors }) };
    },
  });
});
afterAll(() => receiver.close());
beforeEach(() => {
  receiver.requests.length = 0;
});

const NOW = 1_800_000_000_000;
function create(credentials: Record<string, string> = { token: 'a b&c' }, batchSize = 3) {
  const integration = destinationIntegration('webhook', 'webhook', { url: `${receiver.url}/collect` }, { batchSize });
  return new HttpDestination(vendor, { integration, credentials, timeoutMs: 2000, clock: { now: () => NOW } });
}

describe('HttpDestination', () => {
  it('splits sends into the requests the definition builds, with exact query encoding', async () => {
    const d = create();
    const result = await d.send([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await d.close();
    expect(result).toMatchObject({ outcome: 'success', status: 200 });
    expect(result.items).toBeUndefined();
    expect(receiver.requests.map((r) => r.url)).toEqual(['/collect?token=a+b%26c&n=3']);
  });

  it('merges per-item outcomes of several requests back into payload order', async () => {
    const d = create(undefined, 3);
    const result = await d.send([{ n: 1 }, { reject: true }, { n: 3 }, { n: 4 }, { reject: true }]);
    await d.close();
    expect(receiver.requests).toHaveLength(2);
    expect(result.outcome).toBe('success');
    expect(result.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', error: 'event 1 refused' }, { outcome: 'success' }, { outcome: 'success' }, { outcome: 'permanent', error: 'event 1 refused' }]);
  });

  it('refuses stale payloads before sending: they are never in a request', async () => {
    const d = create();
    const result = await d.send([{ at: NOW - 5000 }, { at: NOW }]);
    await d.close();
    expect(result.items).toEqual([{ outcome: 'permanent', refusal: 'stale_event', error: 'too old by 4000 ms' }, { outcome: 'success' }]);
    expect(receiver.requests.map((r) => r.body.events)).toEqual([[{ at: NOW }]]);
  });

  it('sends each item alone when the vendor refuses a batch for an item it does not name', async () => {
    const d = create();
    const result = await d.send([{ n: 1 }, { bad: true }, { n: 3 }]);
    await d.close();
    // One refused batch, then three single-item requests: only the bad item fails.
    expect(receiver.requests).toHaveLength(4);
    expect(result.items).toEqual([{ outcome: 'success' }, { outcome: 'permanent', error: 'HTTP 400' }, { outcome: 'success' }]);
  });

  it('a failing request fails only its own items', async () => {
    const d = create();
    const result = await d.send([{ n: 1 }, { n: 2 }, { n: 3 }, { down: true }]);
    await d.close();
    expect(result).toMatchObject({ outcome: 'retryable', status: 503, error: 'HTTP 503' });
    expect(result.items!.map((i) => i.outcome)).toEqual(['success', 'success', 'success', 'retryable']);
  });

  it('a builder error fails the send permanently without a request', async () => {
    const d = create();
    const result = await d.send([{ unbuildable: true }]);
    await d.close();
    expect(result).toMatchObject({ outcome: 'permanent', error: 'cannot build' });
    expect(receiver.requests).toHaveLength(0);
  });

  it('refuses missing credentials and batch sizes above the vendor limit', () => {
    expect(() => create({})).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('Test vendor needs a credentials Secret (spec.credentialsSecretRef) holding token') }));
    expect(() => create(undefined, 4)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('more than Test vendor takes per request (3)') }));
  });
});
