import type { EventCondition, FieldRule, MappingSpec } from '../api/index.js';
import { SwitchyardError, type Problem } from '../errors.js';
import { checkMappingOutput, compileMapping, type MappingResult, type SegmentEvent } from './index.js';
import { payloadOf, problemsOf, track } from '../test-support/mapping.js';

function apply(spec: MappingSpec, event: SegmentEvent): MappingResult {
  return compileMapping(spec).apply(event);
}

describe('presence', () => {
  const e = track('x', { empty: '', blank: '  ', zero: 0, no: false, list: [], obj: {}, nul: null, v: 'ok' });
  it.each<[string, FieldRule, unknown]>([
    ['notNull: "" wins', { to: 'r', from: 'properties.empty', fallbacks: ['properties.v'] }, ''],
    ['notNull: [] wins', { to: 'r', from: 'properties.list', fallbacks: ['properties.v'] }, []],
    ['notNull: null falls back', { to: 'r', from: 'properties.nul', fallbacks: ['properties.v'] }, 'ok'],
    ['notEmpty: "" falls back', { to: 'r', from: 'properties.empty', fallbacks: ['properties.v'], presence: 'notEmpty' }, 'ok'],
    ['notEmpty: whitespace falls back', { to: 'r', from: 'properties.blank', fallbacks: ['properties.v'], presence: 'notEmpty' }, 'ok'],
    ['notEmpty: [] and {} fall back', { to: 'r', from: 'properties.list', fallbacks: ['properties.obj', 'properties.v'], presence: 'notEmpty' }, 'ok'],
    ['notEmpty: 0 is present', { to: 'r', from: 'properties.zero', fallbacks: ['properties.v'], presence: 'notEmpty' }, 0],
    ['notEmpty: false is present', { to: 'r', from: 'properties.no', fallbacks: ['properties.v'], presence: 'notEmpty' }, false],
    ['notEmpty with default', { to: 'r', from: 'properties.empty', presence: 'notEmpty', default: 'd' }, 'd'],
  ])('%s', (_t, rule, expected) => {
    expect(payloadOf([rule], e).r).toEqual(expected);
  });
});

describe('transforms inside rules', () => {
  const e = track('x', { price: '12.50', bad: 'abc', total: 7, name: '  Zoë  ', email: ' Jane.Doe@Example.com ' });
  it.each<[string, FieldRule, unknown]>([
    ['converts', { to: 'r', from: 'properties.price', transforms: [{ convert: 'number' }] }, 12.5],
    ['a failed step moves on to the next fallback', { to: 'r', from: 'properties.bad', fallbacks: ['properties.total'], transforms: [{ convert: 'number' }] }, 7],
    ['a failed step with no fallback gives the default', { to: 'r', from: 'properties.bad', transforms: [{ convert: 'number' }], default: 0 }, 0],
    ['steps run in order', { to: 'r', from: 'properties.name', transforms: [{ trim: true }, { case: 'upper' }] }, 'ZOË'],
    ['hashes normalized email', { to: 'r', from: 'properties.email', transforms: [{ hash: 'email' }] }, expect.stringMatching(/^[0-9a-f]{64}$/)],
  ])('%s', (_t, rule, expected) => {
    expect(payloadOf([rule], e).r).toEqual(expected);
  });

  it('leaves a field out when every candidate fails a step', () => {
    expect(payloadOf([{ to: 'r', from: 'properties.bad', transforms: [{ convert: 'number' }] }], e)).toEqual({});
  });

  it('strict lookup misses fail the event, naming rule and field', () => {
    const spec: MappingSpec = {
      lookups: { cur: { entries: { $: 'USD' }, mode: 'strict' } },
      default: { fields: [{ to: 'a', value: 1 }, { to: 'currency', from: 'properties.c', transforms: [{ lookup: 'cur' }] }] },
    };
    expect(apply(spec, track('x', { c: '$' }))).toEqual({ ok: true, name: 'x', payload: { a: 1, currency: 'USD' } });
    const failed = apply(spec, track('x', { c: '¥' }));
    expect(failed).toEqual({ ok: false, failed: { rule: '/default/fields/1', field: 'currency', message: expect.stringContaining('¥') } });
  });
});

describe('required', () => {
  const spec: MappingSpec = { default: { fields: [{ to: 'params.value', from: 'properties.revenue', fallbacks: ['properties.total'], required: true }] } };
  it('passes when a source has a value', () => {
    expect(apply(spec, track('x', { total: 3 }))).toEqual({ ok: true, name: 'x', payload: { params: { value: 3 } } });
  });
  it('fails naming the field, the rule and what each source gave', () => {
    const r = apply(spec, track('x', { revenue: null }));
    expect(r.ok).toBe(false);
    expect(r.ok ? undefined : r.failed).toEqual({ rule: '/default/fields/0', field: 'params.value', message: expect.stringContaining('properties.revenue: absent (null); properties.total: absent') });
  });
  it('is not checked when its when does not hold', () => {
    const s: MappingSpec = { default: { fields: [{ to: 'v', from: 'properties.v', required: true, when: [{ path: 'properties.kind', equals: 'paid' }] }] } };
    expect(apply(s, track('x', { kind: 'free' }))).toMatchObject({ ok: true, payload: {} });
    expect(apply(s, track('x', { kind: 'paid' }))).toMatchObject({ ok: false, failed: { field: 'v' } });
  });
  it('inside each names the element', () => {
    const s: MappingSpec = { default: { fields: [{ to: 'items', from: 'properties.products', each: [{ to: 'id', from: 'sku', required: true }] }] } };
    expect(apply(s, track('x', { products: [{ sku: 'a' }, {}] }))).toMatchObject({ ok: false, failed: { rule: '/default/fields/0/each/0', field: 'items[1].id' } });
  });
});

describe('conditions', () => {
  const e = track('Order Completed', { revenue: 25, currency: 'usd', tags: ['sale', 'new'], coupon: null, email: 'A@B.com', nested: { k: [1, 2] } }, { context: { userAgent: 'Mozilla/5.0 (compatible; Googlebot/2.1)' } });
  it.each<[string, EventCondition, boolean]>([
    ['exists true', { path: 'properties.revenue', exists: true }, true],
    ['exists true on null', { path: 'properties.coupon', exists: true }, false],
    ['exists false on missing', { path: 'properties.nope', exists: false }, true],
    ['equals number', { path: 'properties.revenue', equals: 25 }, true],
    ['equals is strict about types', { path: 'properties.revenue', equals: '25' }, false],
    ['equals deep', { path: 'properties.nested', equals: { k: [1, 2] } }, true],
    ['equals ignoreCase', { path: 'properties.currency', equals: 'USD', ignoreCase: true }, true],
    ['notEquals holds on absent', { path: 'properties.nope', notEquals: 1 }, true],
    ['in', { path: 'properties.currency', in: ['eur', 'usd'] }, true],
    ['in objects', { path: 'properties.nested', in: [{ k: [1, 2] }] }, true],
    ['notIn', { path: 'properties.currency', notIn: ['eur'] }, true],
    ['notIn holds on absent', { path: 'properties.nope', notIn: ['x'] }, true],
    ['gt', { path: 'properties.revenue', gt: 20 }, true],
    ['gt on a string never holds', { path: 'properties.currency', gt: 0 }, false],
    ['range', { path: 'properties.revenue', gte: 25, lt: 26 }, true],
    ['lte fails', { path: 'properties.revenue', lte: 24.99 }, false],
    ['matches RE2', { path: 'context.userAgent', matches: '(?i)bot|crawler' }, true],
    ['matches ignoreCase', { path: 'properties.email', matches: '@b\\.com$', ignoreCase: true }, true],
    ['startsWith', { path: 'event', startsWith: 'Order' }, true],
    ['endsWith', { path: 'event', endsWith: 'completed' }, false],
    ['contains in a string', { path: 'properties.email', contains: '@' }, true],
    ['contains in an array', { path: 'properties.tags', contains: 'sale' }, true],
    ['absent value fails other operators', { path: 'properties.nope', startsWith: '' }, false],
    ['any', { any: [{ path: 'properties.revenue', lt: 0 }, { path: 'type', equals: 'track' }] }, true],
    ['all', { all: [{ path: 'properties.revenue', gt: 0 }, { path: 'type', equals: 'page' }] }, false],
    ['$name reads the output name', { path: '$name', equals: 'purchase' }, true],
    ['CEL', { expr: "properties.revenue > 20.0 && type == 'track'" }, true],
    ['CEL that fails does not hold', { expr: 'properties.nope > 1.0' }, false],
  ])('%s', (_t, condition, holds) => {
    const spec: MappingSpec = { eventSpecific: { 'Order Completed': { rename: 'purchase', fields: [{ to: 'hit', value: true, when: [condition] }] } } };
    const r = apply(spec, e);
    expect(r.ok && r.payload.hit === true).toBe(holds);
  });

  it('drop: any condition that holds drops the event, counted as filtered', () => {
    const spec: MappingSpec = { drop: [{ path: 'properties.test', equals: true }, { path: 'context.userAgent', matches: 'bot' }], default: { fields: [{ to: 'a', value: 1 }] } };
    expect(apply(spec, track('x', { test: true }))).toEqual({ ok: false, dropped: 'filtered', message: 'drop condition /drop/0 holds' });
    expect(apply(spec, track('x', {}, { context: { userAgent: 'somebot' } }))).toMatchObject({ ok: false, dropped: 'filtered', message: 'drop condition /drop/1 holds' });
    expect(apply(spec, track('x'))).toMatchObject({ ok: true });
  });

  it.each<[string, unknown, Partial<Problem>]>([
    ['no operator', { path: 'a' }, { path: '/default/fields/0/when/0', rule: 'condition' }],
    ['no path', { equals: 1 }, { path: '/default/fields/0/when/0', rule: 'condition' }],
    ['expr mixed with a test', { expr: 'true', path: 'a', equals: 1 }, { path: '/default/fields/0/when/0/path', rule: 'condition' }],
    ['a backreference (not RE2)', { path: 'a', matches: '(a)\\1' }, { path: '/default/fields/0/when/0/matches', rule: 'regex' }],
    ['a forbidden key', { path: 'a.__proto__', exists: true }, { path: '/default/fields/0/when/0/path', rule: 'path' }],
    ['a bad test inside any', { any: [{ path: 'a', equals: 1 }, { path: 'b' }] }, { path: '/default/fields/0/when/0/any/1', rule: 'condition' }],
    ['a non-bool expression', { expr: "'text'" }, { path: '/default/fields/0/when/0/expr' }],
  ])('refuses %s', (_t, condition, problem) => {
    expect(problemsOf({ default: { fields: [{ to: 'x', value: 1, when: [condition] }] } })).toEqual([expect.objectContaining(problem)]);
  });
});

describe('each, merge and field sets', () => {
  const order = track('Order Completed', {
    currency: 'EUR',
    products: [{ sku: 'a', price: '1.5' }, { sku: 'b', price: 2, tags: ['x'] }, 'loose'],
    extra: { coupon: 'C', shipping: 3 },
  });

  it('reads $item and $event inside each, with per-element when', () => {
    const payload = payloadOf(
      [
        {
          to: 'items',
          from: 'properties.products',
          each: [
            { to: 'id', from: 'sku', fallbacks: ['$item'] },
            { to: 'price', from: 'price', transforms: [{ convert: 'number' }] },
            { to: 'currency', from: '$event.properties.currency' },
            { to: 'tagged', value: true, when: [{ path: 'tags', exists: true }] },
          ],
        },
      ],
      order,
    );
    expect(payload).toEqual({
      items: [
        { id: 'a', price: 1.5, currency: 'EUR' },
        { id: 'b', price: 2, currency: 'EUR', tagged: true },
        { id: 'loose', currency: 'EUR' },
      ],
    });
  });

  it('maps a huge array element by element', () => {
    const products = Array.from({ length: 20_000 }, (_, i) => ({ sku: `s${i}`, price: i }));
    const payload = payloadOf([{ to: 'items', from: 'properties.products', each: [{ to: 'id', from: 'sku' }] }], track('x', { products }));
    const items = payload.items as { id: string }[];
    expect(items).toHaveLength(20_000);
    expect(items[19_999]).toEqual({ id: 's19999' });
  });

  it('merge writes the keys of an object into the target, later rules override', () => {
    const payload = payloadOf(
      [
        { to: 'params.fixed', value: 1 },
        { to: 'params', from: 'properties.extra', merge: true },
        { to: 'params.coupon', value: 'override' },
      ],
      order,
    );
    expect(payload).toEqual({ params: { fixed: 1, coupon: 'override', shipping: 3 } });
    expect(order.properties).toMatchObject({ extra: { coupon: 'C', shipping: 3 } });
  });

  it('merge of a non-object leaves the field out', () => {
    expect(payloadOf([{ to: 'p', from: 'properties.currency', merge: true }], order)).toEqual({});
  });

  it('field sets run before the part fields, in include order, and nest', () => {
    const spec: MappingSpec = {
      fieldSets: {
        base: { fields: [{ to: 'a', value: 'base' }, { to: 'b', value: 'base' }] },
        money: { include: ['base'], fields: [{ to: 'b', value: 'money' }, { to: 'currency', from: 'properties.currency' }] },
      },
      eventSpecific: { 'Order Completed': { include: ['money'], fields: [{ to: 'a', value: 'part' }] } },
    };
    expect(apply(spec, order)).toEqual({ ok: true, name: 'Order Completed', payload: { a: 'part', b: 'money', currency: 'EUR' } });
  });

  it('include on a rule runs field sets on each element, and an object maps as one element', () => {
    const spec: MappingSpec = {
      fieldSets: { item: { fields: [{ to: 'id', from: 'sku', fallbacks: ['product_id'] }, { to: 'currency', from: '$event.properties.currency' }] } },
      eventSpecific: {
        'Order Completed': { fields: [{ to: 'items', from: 'properties.products', include: ['item'], each: [{ to: 'price', from: 'price' }] }] },
        'Product Viewed': { fields: [{ to: 'items', from: 'properties', include: ['item'] }] },
      },
    };
    expect(apply(spec, order)).toMatchObject({ ok: true, payload: { items: [{ id: 'a', currency: 'EUR', price: '1.5' }, { id: 'b', currency: 'EUR', price: 2 }, { currency: 'EUR' }] } });
    expect(apply(spec, track('Product Viewed', { product_id: 'p9', currency: 'USD' }))).toEqual({ ok: true, name: 'Product Viewed', payload: { items: [{ id: 'p9', currency: 'USD' }] } });
  });

  it.each<[string, unknown, Partial<Problem>[]]>([
    ['a field set using $event included at the top level', { fieldSets: { item: { fields: [{ to: 'c', from: '$event.x' }] } }, default: { include: ['item'] } }, [{ path: '/fieldSets/item/fields/0/from', rule: 'path' }]],
    ['include with a static value', { fieldSets: { s: {} }, default: { fields: [{ to: 'a', value: 1, include: ['s'] }] } }, [{ path: '/default/fields/0/include', rule: 'dependency' }]],
    ['an unknown field set', { default: { include: ['nope'] } }, [{ path: '/default/include/0', rule: 'reference' }]],
    ['a cycle', { fieldSets: { a: { include: ['b'] }, b: { include: ['a'] } }, default: { include: ['a'] } }, [{ path: '/fieldSets/b/include/0', rule: 'cycle' }]],
    ['a self-include', { fieldSets: { a: { include: ['a'] } } }, [{ path: '/fieldSets/a/include/0', rule: 'cycle' }]],
    ['a problem inside a field set', { fieldSets: { s: { fields: [{ to: 'a' }] } } }, [{ path: '/fieldSets/s/fields/0', rule: 'oneOf' }]],
    ['$item outside each', { default: { fields: [{ to: 'a', from: '$item' }] } }, [{ path: '/default/fields/0/from', rule: 'path' }]],
    ['$event without a sub-path', { default: { fields: [{ to: 'a', from: 'x', each: [{ to: 'b', from: '$event' }] }] } }, [{ path: '/default/fields/0/each/0/from', rule: 'path' }]],
    ['merge with each', { default: { fields: [{ to: 'a', from: 'x', merge: true, each: [] }] } }, [{ path: '/default/fields/0/merge', rule: 'dependency' }]],
    ['two of from, value and expr', { default: { fields: [{ to: 'a', from: 'x', expr: '1' }] } }, [{ path: '/default/fields/0/expr', rule: 'oneOf' }]],
    ['an unknown lookup', { default: { fields: [{ to: 'a', from: 'x', transforms: [{ lookup: 'nope' }] }] } }, [{ path: expect.stringMatching(/^\/default\/fields\/0\/transforms\/0/) }]],
    ['an expression with an unknown variable', { default: { fields: [{ to: 'a', expr: 'evnt.x' }] } }, [{ path: '/default/fields/0/expr' }]],
  ])('refuses %s', (_t, spec, expected) => {
    expect(problemsOf(spec)).toEqual(expected.map((p) => expect.objectContaining(p)));
  });
});

describe('expressions in rules', () => {
  it.each<[string, string, unknown]>([
    ['arithmetic on doubles', 'properties.revenue * 100.0', 2500],
    ['strings', "type + ':' + name", 'track:purchase'],
    ['has() guards a missing key', "has(properties.coupon) ? properties.coupon : 'none'", 'none'],
    ['lists', 'size(properties.products)', 2],
    ['comprehension', 'properties.products.map(p, p.sku)', ['a', 'b']],
  ])('%s', (_t, expr, expected) => {
    const r = apply({ eventSpecific: { 'Order Completed': { rename: 'purchase', fields: [{ to: 'v', expr }] } } }, track('Order Completed', { revenue: 25, products: [{ sku: 'a' }, { sku: 'b' }] }));
    expect(r).toMatchObject({ ok: true, payload: { v: expected } });
  });

  it('an expression that fails gives the default', () => {
    expect(payloadOf([{ to: 'v', expr: 'properties.nope + 1.0', default: 0 }], track('x'))).toEqual({ v: 0 });
  });

  it('item is the element inside each', () => {
    expect(payloadOf([{ to: 'l', from: 'properties.p', each: [{ to: 'x', expr: 'item.n * 2.0' }] }], track('x', { p: [{ n: 1 }, { n: 2 }] }))).toEqual({ l: [{ x: 2 }, { x: 4 }] });
  });
});

describe('explain', () => {
  const spec: MappingSpec = {
    eventSpecific: {
      'Order Completed': {
        rename: 'purchase',
        fields: [
          { to: 'value', from: 'properties.revenue', fallbacks: ['properties.total'], transforms: [{ convert: 'number' }] },
          { to: 'currency', from: 'properties.currency', default: 'USD' },
          { to: 'coupon', from: 'properties.coupon' },
          { to: 'vip', value: true, when: [{ path: 'properties.tier', equals: 'gold' }] },
          { to: 'items', from: 'properties.products', each: [{ to: 'id', from: 'sku' }] },
        ],
      },
    },
  };

  it('says where each field came from, or why it is missing', () => {
    const r = compileMapping(spec).apply(track('Order Completed', { revenue: null, total: '9.5', products: [{ sku: 'a' }] }), { explain: true });
    expect(r.ok).toBe(true);
    expect(r.explain?.part).toBe('/eventSpecific/Order Completed');
    expect(r.explain?.fields).toEqual([
      expect.objectContaining({ rule: '/eventSpecific/Order Completed/fields/0', to: 'value', outcome: 'written', from: 'properties.total', value: 9.5, tried: ['properties.revenue: absent (null)', 'properties.total: "9.5" → 9.5'], steps: ['convert: 9.5'] }),
      expect.objectContaining({ to: 'currency', outcome: 'default', value: 'USD' }),
      expect.objectContaining({ to: 'coupon', outcome: 'left out' }),
      expect.objectContaining({ to: 'vip', outcome: 'skipped', reason: expect.stringContaining('properties.tier') }),
      expect.objectContaining({ to: 'items[0].id', outcome: 'written', value: 'a' }),
      expect.objectContaining({ to: 'items', outcome: 'written' }),
    ]);
  });

  it('gives the same payload with and without explain', () => {
    const e = track('Order Completed', { revenue: 3, products: [{ sku: 'a' }] });
    const m = compileMapping(spec);
    const plain = m.apply(e);
    const explained = m.apply(e, { explain: true });
    expect(plain.ok && explained.ok && explained.payload).toEqual(plain.ok && plain.payload);
    expect(plain.explain).toBeUndefined();
  });
});

describe('injection attempts stay data', () => {
  const hostile = ['"]; process.exit(1); //', '${process.exit(1)}', '`${globalThis}`', "'); require('fs'); ('", '\\u0000\n\r', '__defineGetter__'];
  it.each(hostile)('as a key, a literal, a lookup entry and a pattern: %j', (text) => {
    const spec: MappingSpec = {
      lookups: { t: { entries: { [text]: text }, mode: 'lenient' } },
      default: {
        rename: text,
        fields: [
          { to: `["${text.replaceAll('"', "'")}"]`, value: text },
          { to: 'copied', from: `properties["${text.replaceAll('"', "'")}"]` },
          { to: 'looked', from: 'properties.k', transforms: [{ lookup: 't' }] },
          { to: 'cond', value: 1, when: [{ path: 'properties.k', equals: text }] },
          { to: 'starts', value: 1, when: [{ path: 'properties.k', startsWith: text }] },
        ],
      },
    };
    const key = text.replaceAll('"', "'");
    const r = apply(spec, track('x', { [key]: 'v', k: text }));
    expect(r).toEqual({ ok: true, name: text, payload: { [key]: text, copied: 'v', looked: text, cond: 1, starts: 1 } });
  });
});

describe('output shape checks', () => {
  const schema = {
    type: 'object',
    required: ['client_id', 'events'],
    additionalProperties: false,
    properties: {
      client_id: { type: 'string' },
      events: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,39}$' }, params: { type: 'object' } } } },
    },
  };
  const target = { schema, label: 'ga4-like' };

  it('accepts a Mapping whose every part can satisfy the schema', () => {
    const spec: MappingSpec = { global: { fields: [{ to: 'client_id', from: 'anonymousId' }, { to: 'events[0].name', from: '$name' }] }, eventSpecific: { a: {}, b: { fields: [{ to: 'events[0].params.v', value: 1 }] } } };
    expect(() => compileMapping(spec, { outputSchema: target })).not.toThrow();
  });

  it('refuses a part that never writes a required field, and a static value the schema refuses, with their paths', () => {
    const spec: MappingSpec = {
      global: { fields: [{ to: 'events[0].name', value: 'bad name!' }] },
      eventSpecific: { a: { fields: [{ to: 'client_id', from: 'anonymousId' }] }, b: { fields: [{ to: 'other', value: 1 }] } },
    };
    let error: SwitchyardError | undefined;
    try {
      compileMapping(spec, { outputSchema: target });
    } catch (e) {
      error = e as SwitchyardError;
    }
    const paths = ((error?.details ?? []) as Problem[]).map((p) => p.path).sort();
    expect(paths).toEqual(['/eventSpecific/b', '/eventSpecific/b/fields/0', '/global/fields/0']);
    expect(error?.message).toContain('ga4-like');
  });

  it('checkMappingOutput reports without throwing', () => {
    const m = compileMapping({ default: { fields: [{ to: 'client_id', value: 7 }, { to: 'events', value: [] }] } });
    expect(checkMappingOutput(m, target)).toEqual([expect.objectContaining({ path: '/default/fields/0' })]);
  });
});

describe('output shape checks of transformed values', () => {
  it('does not refuse a hashed field an array schema expects: scalar steps map over arrays', () => {
    const schema = { type: 'object', properties: { em: { type: 'array', items: { type: 'string' } } } };
    const spec: MappingSpec = { default: { fields: [{ to: 'em', from: 'traits.emails', transforms: [{ hash: 'email' }] }] } };
    const m = compileMapping(spec, { outputSchema: { schema, label: 'meta-like' } });
    expect(m.apply({ type: 'identify', traits: { emails: ['A@b.com', 'c@d.com'] } })).toMatchObject({ ok: true, payload: { em: [expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)] } });
  });
  it('still refuses a number where the schema wants a string', () => {
    const schema = { type: 'object', properties: { id: { type: 'string' } } };
    const spec: MappingSpec = { default: { fields: [{ to: 'id', expr: '1.5 * 2.0', transforms: [{ round: 0 }] }] } };
    expect(() => compileMapping(spec, { outputSchema: { schema, label: 'x' } })).toThrow(/\/default\/fields\/0/);
  });
});

describe('$item as a target: arrays of values', () => {
  const order = track('Order Completed', { products: [{ product_id: 'p1' }, { sku: 's2' }, { name: 'no id' }] });
  it('makes each element the value, leaving out elements without one', () => {
    const payload = payloadOf([{ to: 'content_ids', from: 'properties.products', each: [{ to: '$item', from: 'product_id', fallbacks: ['sku'] }] }], order);
    expect(payload).toEqual({ content_ids: ['p1', 's2'] });
  });
  it('works with transforms and when', () => {
    const payload = payloadOf([{ to: 'ids', from: 'properties.products', each: [{ to: '$item', from: 'product_id', transforms: [{ case: 'upper' }], when: [{ path: 'product_id', startsWith: 'p' }] }] }], order);
    expect(payload).toEqual({ ids: ['P1'] });
  });
  it.each<[string, unknown, Partial<Problem>]>([
    ['outside each', { default: { fields: [{ to: '$item', value: 1 }] } }, { path: '/default/fields/0/to', rule: 'path' }],
    ['with a sub-path', { default: { fields: [{ to: 'a', from: 'x', each: [{ to: '$item.b', from: 'y' }] }] } }, { path: '/default/fields/0/each/0/to', rule: 'path' }],
    ['beside rules writing other paths', { default: { fields: [{ to: 'a', from: 'x', each: [{ to: '$item', from: 'y' }, { to: 'z', from: 'y' }] }] } }, { path: '/default/fields/0/each/1/to', rule: 'dependency' }],
    ['an unknown $ source', { default: { fields: [{ to: 'a', from: 'x', fallbacks: ['$nmae'] }] } }, { path: '/default/fields/0/fallbacks/0', rule: 'path' }],
  ])('refuses $item %s', (_t, spec, problem) => {
    expect(problemsOf(spec)).toEqual([expect.objectContaining(problem)]);
  });
  it('still writes output keys starting with $ (Mixpanel $set)', () => {
    expect(payloadOf([{ to: '$set.plan', from: 'properties.plan' }], track('x', { plan: 'pro' }))).toEqual({ $set: { plan: 'pro' } });
  });
});
