import type { FieldRule, MappingSpec } from '../api/index.js';
import type { Problem } from '../errors.js';
import { compileMapping, type SegmentEvent } from './index.js';
import { parsePath, readPath } from './path.js';
import { payloadOf, problemsOf, track } from '../test-support/mapping.js';

describe('parsePath', () => {
  it.each([
    ['a', [{ key: 'a' }]],
    ['a.b.c', [{ key: 'a' }, { key: 'b' }, { key: 'c' }]],
    ['products[2].price', [{ key: 'products' }, { index: 2 }, { key: 'price' }]],
    ['a["b.c"]', [{ key: 'a' }, { key: 'b.c' }]],
    ['["x y"][0][1]', [{ key: 'x y' }, { index: 0 }, { index: 1 }]],
    ['traits["prénom"]', [{ key: 'traits' }, { key: 'prénom' }]],
    ['$ctx.@id-1', [{ key: '$ctx' }, { key: '@id-1' }]],
  ])('parses %s', (text, segments) => {
    const parsed = parsePath(text);
    expect(typeof parsed === 'string' ? parsed : parsed.map(({ key, index }) => (key !== undefined ? { key } : { index }))).toEqual(segments);
  });

  it.each([
    ['', 'empty path'],
    ['[0]', 'cannot start with an index'],
    ['a..b', 'expected a key'],
    ['a[x]', 'bad index'],
    ['a["b', 'unterminated'],
    ['a.__proto__', '"__proto__" is not allowed'],
    ['a["constructor"]', '"constructor" is not allowed'],
    ['prototype', '"prototype" is not allowed'],
    ['a b', 'unexpected'],
  ])('refuses %j', (text, message) => {
    expect(parsePath(text)).toEqual(expect.stringContaining(message));
  });

  it('reads own keys only, never through prototypes or array properties', () => {
    const event = JSON.parse('{"a":{"__proto__":{"x":1}},"list":[1,2]}') as unknown;
    expect(readPath(event, [{ key: 'a' }, { key: 'toString' }])).toBeUndefined();
    expect(readPath(event, [{ key: 'list' }, { key: 'length' }])).toBeUndefined();
    expect(readPath(event, [{ key: 'list' }, { index: 5 }])).toBeUndefined();
    expect(readPath(event, [{ key: 'a' }, { index: 0 }])).toBeUndefined();
  });
});

describe('field rules', () => {
  const event = track('Order Completed', {
    revenue: 0,
    currency: '',
    coupon: null,
    paid: false,
    total: 12.5,
    'price.eur': 9,
    prénom: 'Zoë',
    deep: { a: { b: { c: { d: [{ e: 'deep' }] } } } },
    products: [
      { product_id: 'p1', sku: 's1', price: 10, quantity: 2 },
      { sku: 's2', price: 0 },
      { product_id: null, sku: null, price: null },
    ],
    tags: ['a', 'b'],
    notAList: { 0: 'x' },
  });

  it.each<[string, FieldRule[], Record<string, unknown>]>([
    ['copies a present value', [{ to: 'v', from: 'properties.total' }], { v: 12.5 }],
    ['treats 0 as present', [{ to: 'v', from: 'properties.revenue', fallbacks: ['properties.total'] }], { v: 0 }],
    ['treats "" as present', [{ to: 'v', from: 'properties.currency', default: 'USD' }], { v: '' }],
    ['treats false as present', [{ to: 'v', from: 'properties.paid', default: true }], { v: false }],
    ['treats null as absent (fallback)', [{ to: 'v', from: 'properties.coupon', fallbacks: ['properties.total'] }], { v: 12.5 }],
    ['treats missing as absent (fallback chain)', [{ to: 'v', from: 'properties.nope', fallbacks: ['properties.coupon', 'properties.revenue'] }], { v: 0 }],
    ['writes the default when all are absent', [{ to: 'v', from: 'properties.nope', fallbacks: ['properties.coupon'], default: 'none' }], { v: 'none' }],
    ['leaves the field out when absent without default', [{ to: 'v', from: 'properties.coupon' }], {}],
    ['writes null defaults as given', [{ to: 'v', from: 'properties.nope', default: null }], { v: null }],
    ['writes static values', [{ to: 'a.b', value: { x: [1, 'two'] } }, { to: 'n', value: 0 }], { a: { b: { x: [1, 'two'] } }, n: 0 }],
    ['reads $name and $type', [{ to: 'name', from: '$name' }, { to: 'type', from: '$type' }], { name: 'Order Completed', type: 'track' }],
    ['reads keys with dots', [{ to: 'eur', from: 'properties["price.eur"]' }], { eur: 9 }],
    ['reads and writes unicode keys', [{ to: '["données"]["prénom"]', from: 'properties["prénom"]' }], { données: { prénom: 'Zoë' } }],
    ['reads deep paths', [{ to: 'x.y.z', from: 'properties.deep.a.b.c.d[0].e' }], { x: { y: { z: 'deep' } } }],
    ['reads array indexes', [{ to: 'first', from: 'properties.products[0].product_id' }, { to: 'third', from: 'properties.tags[2]' }], { first: 'p1' }],
    ['writes array indexes, filling holes with null', [{ to: 'list[2]', value: 'c' }, { to: 'list[0].id', value: 1 }], { list: [{ id: 1 }, null, 'c'] }],
    ['lets the later rule win', [{ to: 'v', value: 1 }, { to: 'v', from: 'properties.total' }], { v: 12.5 }],
    ['replaces a scalar in the way', [{ to: 'a', value: 'x' }, { to: 'a.b', value: 1 }], { a: { b: 1 } }],
    [
      'maps each element of an array',
      [
        {
          to: 'items',
          from: 'properties.products',
          each: [
            { to: 'id', from: 'product_id', fallbacks: ['sku'] },
            { to: 'price', from: 'price' },
            { to: 'qty', from: 'quantity', default: 1 },
            { to: 'event', from: '$name' },
          ],
        },
      ],
      {
        items: [
          { id: 'p1', price: 10, qty: 2, event: 'Order Completed' },
          { id: 's2', price: 0, qty: 1, event: 'Order Completed' },
          { qty: 1, event: 'Order Completed' },
        ],
      },
    ],
    ['maps primitive elements to objects of their rules', [{ to: 'tags', from: 'properties.tags', each: [{ to: 'k', value: 1 }] }], { tags: [{ k: 1 }, { k: 1 }] }],
    ['omits each over a scalar', [{ to: 'items', from: 'properties.total', each: [{ to: 'x', value: 1 }] }], {}],
    ['maps an object with each as a one-element array', [{ to: 'items', from: 'properties.notAList', each: [{ to: 'x', from: '0' }] }], { items: [{ x: 'x' }] }],
    ['writes the default of an absent each as is', [{ to: 'items', from: 'properties.nope', default: [], each: [{ to: 'x', value: 1 }] }], { items: [] }],
    ['nests each in each', [{ to: 'd', from: 'properties.deep.a.b.c.d', each: [{ to: 'e', from: 'e' }, { to: 'n', from: 'e', each: [] }] }], { d: [{ e: 'deep' }] }],
    ['copies injection-looking values verbatim', [{ to: 'v', from: 'properties.evil' }], { v: '{{constructor.constructor("x")()}}' }],
  ])('%s', (_title, fields, expected) => {
    const e = structuredClone(event);
    (e.properties as Record<string, unknown>).evil = '{{constructor.constructor("x")()}}';
    expect(payloadOf(fields, e)).toEqual(expected);
  });

  it('never modifies the event nor the static values of the Mapping', () => {
    const e = track('x', { ctx: { a: 1 } });
    const before = structuredClone(e);
    const mapping = compileMapping({
      default: {
        fields: [
          { to: 'ctx', from: 'properties.ctx' },
          { to: 'ctx.b', value: 2 },
          { to: 'stat', value: { a: 1 } },
          { to: 'stat.b', from: 'userId' },
        ],
      },
    });
    const first = mapping.apply(e);
    expect(first).toEqual({ ok: true, name: 'x', payload: { ctx: { a: 1, b: 2 }, stat: { a: 1, b: 'u1' } } });
    expect(e).toEqual(before);
    const second = mapping.apply(track('x', { ctx: { z: 0 } }, { userId: 'u2' }));
    expect(second).toEqual({ ok: true, name: 'x', payload: { ctx: { z: 0, b: 2 }, stat: { a: 1, b: 'u2' } } });
  });

  it('keeps keys like __proto__ from the event as plain data, without touching prototypes', () => {
    const e = JSON.parse('{"type":"track","event":"x","properties":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}}') as SegmentEvent;
    const payload = payloadOf([{ to: 'props', from: 'properties' }, { to: 'props.extra', value: 1 }], e);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(payload.props)).toBe(Object.prototype);
    expect((payload.props as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(payload))).toEqual(JSON.parse('{"props":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"extra":1}}'));
  });
});

describe('parts and names', () => {
  const spec: MappingSpec = {
    global: { fields: [{ to: 'event', from: '$name' }, { to: 'g', value: true }, { to: 'v', value: 'global' }] },
    eventSpecific: {
      'Order Completed': { rename: 'purchase', fields: [{ to: 'v', value: 'specific' }] },
      page: { fields: [{ to: 'kind', value: 'page-key' }] },
      identify: { rename: 'user', fields: [{ to: 'id', from: 'userId' }] },
    },
  };

  it.each<[string, SegmentEvent, unknown]>([
    ['track by name, renamed, later rules win', track('Order Completed'), { ok: true, name: 'purchase', payload: { event: 'purchase', g: true, v: 'specific' } }],
    ['other types by type', { type: 'identify', userId: 'u9' }, { ok: true, name: 'user', payload: { event: 'user', g: true, v: 'global', id: 'u9' } }],
    ['a page call', { type: 'page', name: 'Home' }, { ok: true, name: 'page', payload: { event: 'page', g: true, v: 'global', kind: 'page-key' } }],
    ['a track event named like a type, by its name', track('page'), { ok: true, name: 'page', payload: { event: 'page', g: true, v: 'global', kind: 'page-key' } }],
    ['unmatched track without default: dropped', track('Other'), expect.objectContaining({ ok: false, dropped: 'no_matching_rule' })],
    ['unmatched type without default: dropped (global alone is not enough)', { type: 'group' }, expect.objectContaining({ ok: false, dropped: 'no_matching_rule' })],
    ['track named like an inherited property', track('constructor'), expect.objectContaining({ ok: false, dropped: 'no_matching_rule' })],
  ])('%s', (_title, event, expected) => {
    expect(compileMapping(spec).apply(event)).toEqual(expected);
  });

  it('uses default for unmatched events, and global rename when the part has none', () => {
    const m = compileMapping({ global: { rename: 'everything', fields: [{ to: 'n', from: '$name' }] }, default: { fields: [{ to: 'd', value: 1 }] }, eventSpecific: { a: { rename: 'A' } } });
    expect(m.apply(track('zzz'))).toEqual({ ok: true, name: 'everything', payload: { n: 'everything', d: 1 } });
    expect(m.apply(track('a'))).toEqual({ ok: true, name: 'A', payload: { n: 'A' } });
    expect(compileMapping({ default: {} }).apply({ type: 'alias' })).toEqual({ ok: true, name: 'alias', payload: {} });
    expect(compileMapping({ default: {} }).apply({ type: 'track' })).toEqual({ ok: true, name: 'track', payload: {} });
  });
});

describe('compile errors', () => {
  it.each<[string, unknown, Partial<Problem>[]]>([
    ['both from and value', { eventSpecific: { 'Order Completed': { fields: [{ to: 'a', value: 1 }, { to: 'b', from: 'x' }, { to: 'c', from: 'x', value: 2 }] } } }, [{ path: '/eventSpecific/Order Completed/fields/2/value', rule: 'oneOf' }]],
    ['neither from nor value', { default: { fields: [{ to: 'a' }] } }, [{ path: '/default/fields/0', rule: 'oneOf' }]],
    ['default without from', { global: { fields: [{ to: 'a', value: 1, default: 2 }] } }, [{ path: '/global/fields/0/default', rule: 'dependency' }]],
    ['each without from', { global: { fields: [{ to: 'a', value: [], each: [] }] } }, [{ path: '/global/fields/0/each', rule: 'dependency' }]],
    ['fallbacks without from', { global: { fields: [{ to: 'a', value: 1, fallbacks: ['b'] }] } }, [{ path: '/global/fields/0/fallbacks', rule: 'dependency' }]],
    ['a forbidden key in from', { eventSpecific: { 'Order Completed': { fields: [{ to: 'a', value: 1 }, { to: 'b', value: 1 }, { to: 'c', from: 'properties.__proto__.x' }] } } }, [{ path: '/eventSpecific/Order Completed/fields/2/from', rule: 'path' }]],
    ['a forbidden key in to', { default: { fields: [{ to: 'a.constructor', value: 1 }] } }, [{ path: '/default/fields/0/to', rule: 'path' }]],
    ['a bracketed forbidden key', { default: { fields: [{ to: 'a', from: 'x["prototype"]' }] } }, [{ path: '/default/fields/0/from', rule: 'path' }]],
    ['a forbidden key in a fallback', { default: { fields: [{ to: 'a', from: 'x', fallbacks: ['y', 'constructor'] }] } }, [{ path: '/default/fields/0/fallbacks/1', rule: 'path' }]],
    ['an error deep inside each', { default: { fields: [{ to: 'a', from: 'x', each: [{ to: 'b', from: 'y', each: [{ to: 'c', from: 'z', each: [{ to: 'd', value: 1, default: 0 }] }] }] }] } }, [{ path: '/default/fields/0/each/0/each/0/each/0/default', rule: 'dependency' }]],
    ['a sub-path of $name', { default: { fields: [{ to: 'a', from: '$name.x' }] } }, [{ path: '/default/fields/0/from', rule: 'path' }]],
    ['a huge output index', { default: { fields: [{ to: 'a[100000]', value: 1 }] } }, [{ path: '/default/fields/0/to', rule: 'path' }]],
    ['a key with a slash, escaped in the pointer', { eventSpecific: { 'a/b~c': { fields: [{ to: 'a' }] } } }, [{ path: '/eventSpecific/a~1b~0c/fields/0', rule: 'oneOf' }]],
    ['schema: unknown field', { default: { fields: [{ to: 'a', value: 1, bogus: true }] } }, [{ path: '/default/fields/0/bogus', rule: 'additionalProperties' }]],
    ['schema: bad path pattern', { default: { fields: [{ to: 'a b', value: 1 }] } }, [{ path: '/default/fields/0/to', rule: 'pattern' }]],
    ['schema: unknown destination type', { destinationType: 'ftp' }, [{ path: '/destinationType', rule: 'enum' }]],
  ])('%s', (_title, spec, expected) => {
    const problems = problemsOf(spec);
    expect(problems).toEqual(expected.map((p) => expect.objectContaining(p)));
    for (const p of problems) expect(p.message.length).toBeGreaterThan(0);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ global: { fields: [{ to: 'a' }] }, default: { fields: [{ to: 'b', value: 1, each: [] }] } });
    expect(problems.map((p) => p.path)).toEqual(['/global/fields/0', '/default/fields/0/each']);
  });

  it('does not modify the spec', () => {
    const spec: MappingSpec = { default: { fields: [{ to: 'a', value: { x: 1 } }] } };
    const copy = structuredClone(spec);
    compileMapping(spec).apply(track('x'));
    expect(spec).toEqual(copy);
    expect(Object.isFrozen(spec.default!.fields![0]!.value)).toBe(false);
  });
});
