import { cp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { useTempDirs } from '../test-support/temp.js';
import { main } from './index.js';
import { parseEvents, readEvents } from './map.js';

const tempDir = useTempDirs('sy-map-');

const shop = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'testdata/shop');
const mappingFile = path.join(shop, 'shop.yaml');

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'switchyard', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err: err.join('\n') };
}

/** Writes events (YAML or JSON text) into a temp file and returns its path. */
async function eventsFile(text: string, name = 'events.yaml'): Promise<string> {
  const file = path.join(await tempDir(), name);
  await writeFile(file, text);
  return file;
}

describe('switchyard map', () => {
  it('prints the name and payload of one event', async () => {
    const r = await run('map', '-f', mappingFile, '--event', path.join(shop, 'events/purchase.json'));
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toHaveLength(1);
    expect(r.out[0]).toBe(
      JSON.stringify({ name: 'purchase', payload: { user_id: 'u1', value: 25, currency: 'USD', items: [{ id: 'A', price: 18.99 }, { id: 'B', price: 6 }] } }, null, 2),
    );
  });

  it('prints one JSON object per event of a Segment batch body, and exits 0 when none failed', async () => {
    const r = await run('map', '-f', mappingFile, '--event', path.join(shop, 'events/batch.json'));
    expect(r.code).toBe(0);
    expect(r.out.map((s) => JSON.parse(s) as unknown)).toEqual([
      { name: 'purchase', payload: { user_id: 'u1', value: 25, currency: 'USD', coupon: 'SAVE5' } },
      { name: 'view_item', payload: { user_id: 'u1', item_id: 'A' } },
      { dropped: 'filtered', message: 'drop condition /drop/0 holds' },
      { dropped: 'no_matching_rule', message: 'no eventSpecific key "page" and no default' },
    ]);
  });

  it('prints the failure and exits 1 when an event fails the mapping', async () => {
    const file = await eventsFile('[{type: track, event: Order Completed, properties: {total: 3}}, {type: track, event: Product Viewed, properties: {sku: A}}]');
    const r = await run('map', '-f', mappingFile, '--event', file);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out[0]!)).toEqual({
      failed: { rule: '/eventSpecific/Order Completed/fields/0', field: 'value', message: 'required field value has no value: properties.revenue: absent (missing)' },
    });
    expect(JSON.parse(r.out[1]!)).toEqual({ name: 'view_item', payload: { item_id: 'A' } });
    expect(r.err).toBe('1 of 2 event(s) failed or were invalid');
  });

  it('--explain tells for each field its source, default, left-out reason, steps and skipped condition', async () => {
    const file = await eventsFile('{type: track, event: Order Completed, properties: {revenue: 25, products: [{sku: A, price: "18.994"}]}}');
    const r = await run('map', '-f', mappingFile, '--event', file, '--explain');
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(2);
    const lines = r.out[1]!.split('\n').map((l) => l.trimEnd());
    const line = (start: string) => lines.find((l) => l.trimStart().startsWith(start));
    expect(lines[0]).toBe('part /eventSpecific/Order Completed → name purchase');
    expect(line('value ←')).toMatch(/^ {2}value ← properties\.revenue = 25 +\(rule \/eventSpecific\/Order Completed\/fields\/0\)$/);
    expect(line('currency ←')).toMatch(/← default "USD" +\(rule \/eventSpecific\/Order Completed\/fields\/1\)$/);
    expect(lines[lines.indexOf(line('currency ←')!) + 1]).toBe('      tried: properties.currency: absent (missing)');
    expect(line('user_id')).toMatch(/user_id — left out: userId: absent \(missing\) +\(rule \/global\/fields\/0\)$/);
    expect(line('coupon')).toMatch(/coupon — skipped: when properties\.coupon is absent \(missing\) +\(rule \/eventSpecific\/Order Completed\/fields\/2\)$/);
    // The each rule comes before its elements.
    expect(lines.findIndex((l) => l.includes('items ← properties.products = [1 element(s)]'))).toBeLessThan(lines.findIndex((l) => l.includes('items[0].id')));
    expect(line('items[0].price')).toMatch(/items\[0\]\.price ← price = 18\.99 +\(rule \/eventSpecific\/Order Completed\/fields\/3\/each\/1\)$/);
    expect(lines).toContain('      steps: convert: 18.994 → round: 18.99');
  });

  it('--explain says why an event was dropped or failed', async () => {
    const file = await eventsFile('[{type: track, event: X, properties: {test: true}}, {type: track, event: Order Completed}]');
    const r = await run('map', '-f', mappingFile, '--event', file, '--explain');
    expect(r.out[1]).toBe('drop condition /drop/0 holds → dropped (filtered)');
    expect(r.out[3]).toContain('  value ✗ failed: required');
    expect(r.out[3]).toContain('      tried: properties.revenue: absent');
    expect(r.out[3]).toMatch(/→ the mapping failed: value: required field value has no value/);
  });

  it.each([
    ['a where filter', '{type: track, event: Product Viewed, properties: {sku: A}}', 'allow', { skipped: 'event_filter' }],
    ['consent', '{type: track, event: Order Completed, properties: {revenue: 3}, context: {consent: {categoryPreferences: {Analytics: false}}}}', 'allow', { skipped: 'consent_denied' }],
    ['--consent-missing deny', '{type: track, event: Order Completed, properties: {revenue: 3}}', 'deny', { skipped: 'consent_denied' }],
    ['nothing (taken)', '{type: track, event: Order Completed, properties: {revenue: 3}}', 'allow', { name: 'purchase', payload: { value: 3, currency: 'USD' } }],
  ])('--integration applies the Integration: %s', async (_what, event, consent, expected) => {
    const r = await run('map', '-f', shop, '--event', await eventsFile(event), '--integration', 'shop-webhook', '--consent-missing', consent);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out[0]!)).toEqual(expected);
  });

  it('--integration checks the output against the webhook payloadSchema; an invalid output exits 1', async () => {
    const file = await eventsFile('{type: track, event: Order Completed, properties: {revenue: "25"}}');
    const r = await run('map', '-f', shop, '--event', file, '--integration', 'shop-webhook', '--explain');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out[0]!)).toEqual({
      invalid: [{ instancePath: '/value', path: 'value', rule: 'type', message: 'must be number' }],
      error: 'output does not satisfy the destination schema: value must be number (type; written by rule /eventSpecific/Order Completed/fields/0)',
    });
    expect(r.out[1]).toContain('value ← properties.revenue = "25"');
    expect(r.out[1]).toMatch(/→ output does not satisfy the destination schema/);
    // Without the Integration, the same event is mapped.
    expect((await run('map', '-f', shop, '--event', file)).code).toBe(0);
  });

  it('does not take the events file for a resource when it sits in a -f folder', async () => {
    const dir = await tempDir();
    await cp(mappingFile, path.join(dir, 'shop.yaml'));
    await writeFile(path.join(dir, 'event.json'), '{"type": "track", "event": "Product Viewed", "properties": {"sku": "A"}}');
    const r = await run('map', '-f', dir, '--event', path.join(dir, 'event.json'));
    expect(r).toMatchObject({ code: 0, err: '' });
  });

  it.each([
    ['no name among two Mappings', [], 'error SY_MISSING_REFERENCE: 2 Mappings found (other, shop): choose one with --mapping'],
    ['an unknown Mapping', ['--mapping', 'nope'], 'error SY_MISSING_REFERENCE: no Mapping named "nope"; Mappings found: other, shop'],
    ['an unknown Integration', ['--integration', 'nope'], 'error SY_MISSING_REFERENCE: no Integration named "nope"; Integrations found: shop-webhook'],
  ])('fails with the names found on %s', async (_what, args, message) => {
    const dir = await tempDir();
    await cp(mappingFile, path.join(dir, 'shop.yaml'));
    await writeFile(path.join(dir, 'other.yaml'), 'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: other}\nspec: {default: {fields: [{to: a, from: b}]}}\n');
    const r = await run('map', '-f', dir, '--event', path.join(shop, 'events/purchase.json'), ...args);
    expect(r).toMatchObject({ code: 1, err: message, out: [] });
  });

  it('picks the Mapping by name, and the Integration\'s Mapping with --integration', async () => {
    const dir = await tempDir();
    await cp(mappingFile, path.join(dir, 'shop.yaml'));
    await writeFile(path.join(dir, 'other.yaml'), 'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: other}\nspec: {default: {fields: [{to: a, value: 1}]}}\n');
    const event = await eventsFile('{type: track, event: Order Completed, properties: {revenue: 3}}');
    expect(JSON.parse((await run('map', '-f', dir, '--event', event, '--mapping', 'other')).out[0]!)).toEqual({ name: 'Order Completed', payload: { a: 1 } });
    expect(JSON.parse((await run('map', '-f', dir, '--event', event, '--integration', 'shop-webhook')).out[0]!)).toMatchObject({ name: 'purchase' });
    expect(JSON.parse((await run('map', '-f', dir, '--event', event, '--integration', 'shop-webhook', '--mapping', 'other')).out[0]!)).toEqual({ name: 'Order Completed', payload: { a: 1 } });
  });

  it('prints resource problems like validate does and exits 1', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'm.yaml');
    await writeFile(file, 'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: m}\nspec:\n  default:\n    fields:\n      - {to: a, from: x, value: 1}\n');
    const r = await run('map', '-f', dir, '--event', path.join(shop, 'events/purchase.json'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}#0 (Mapping/default/m): /spec/default/fields/0/value: a rule takes exactly one of from, value and expr, not from and value (oneOf)`);
    expect(r.err).toContain('1 problem(s)');
    expect(r.out).toEqual([]);
  });

  it('exits 2 on a usage error', async () => {
    expect((await run('map', '-f', shop)).code).toBe(2);
    expect((await run('map', '-f', shop, '--event', 'x.json', '--consent-missing', 'maybe')).code).toBe(2);
  });
});

describe('reading events', () => {
  it.each([
    ['one JSON event', '{"type": "track", "event": "A"}', [{ type: 'track', event: 'A' }]],
    ['a YAML event', 'type: page\nname: Home\n', [{ type: 'page', name: 'Home' }]],
    ['an array', '[{"type": "page"}, {"type": "screen"}]', [{ type: 'page' }, { type: 'screen' }]],
    ['a Segment batch body', '{"batch": [{"type": "identify"}], "sentAt": "2024-01-01T00:00:00Z"}', [{ type: 'identify' }]],
  ])('reads %s', (_what, text, events) => {
    expect(parseEvents(text, 'f')).toEqual(events);
  });

  it.each([
    ['nothing', '', 'f holds no event'],
    ['an empty array', '[]', 'f holds no event'],
    ['a non-object event', '[{"type": "page"}, 3]', 'f: event 1 is not a JSON object'],
    ['a syntax error', '{"type": ', 'cannot parse events in f'],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseEvents(text, 'f')).toThrow(message);
  });

  it('reads standard input for -', async () => {
    const stdin = Readable.from([Buffer.from('[{"type": "pa'), Buffer.from('ge"}]')]);
    expect(await readEvents('-', stdin)).toEqual([{ type: 'page' }]);
  });

  it('names an unreadable file', async () => {
    await expect(readEvents(path.join(shop, 'missing.json'))).rejects.toThrow(/^cannot read .*missing\.json/);
  });

  it("warns when the Integration's destination would refuse an event for its age at --now", async () => {
    const dir = await tempDir();
    const starter = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../destinations/meta-capi/mapping.yaml');
    await cp(starter, path.join(dir, 'mapping.yaml'));
    await writeFile(
      path.join(dir, 'integration.yaml'),
      'apiVersion: switchyard.io/v1alpha1\nkind: Integration\nmetadata: {name: meta}\nspec:\n  sourceRefs: [{name: web}]\n  mappingRef: {name: meta-capi-starter}\n  destination: {type: meta-capi, metaCapi: {pixelId: "1234567890"}}\n',
    );
    const event = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test-support/fixtures/events/08-order-completed.json');
    const fresh = await run('map', '-f', dir, '--integration', 'meta', '--event', event, '--now', '2026-11-20T16:00:00Z');
    expect(fresh).toMatchObject({ code: 0, err: '' });
    const late = await run('map', '-f', dir, '--integration', 'meta', '--event', event, '--now', '2026-11-29T16:00:00Z');
    expect(late.code).toBe(0);
    expect(JSON.parse(late.out[0]!)).toMatchObject({ name: 'Purchase' });
    expect(late.err).toMatch(/^warning: sent at 2026-11-29T16:00:00.000Z, this event would be dead-lettered as stale_event: .*7 days/);
    expect((await run('map', '-f', dir, '--integration', 'meta', '--event', event, '--now', 'yesterday')).err).toContain('--now "yesterday" is not an ISO-8601 time');
  });
});

