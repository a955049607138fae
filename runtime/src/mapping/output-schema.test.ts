import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { checkOutputShape, compileOutputValidator, trustOutputSchema, type JsonType, type OutputField, type ShapeSegment } from './output-schema.js';

/** GA4 Measurement Protocol-like payload (https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference). */
const GA4 = {
  type: 'object',
  required: ['client_id', 'events'],
  properties: {
    client_id: { type: 'string' },
    user_id: { type: 'string', maxLength: 256 },
    timestamp_micros: { type: 'integer' },
    non_personalized_ads: { type: 'boolean' },
    events: {
      type: 'array',
      maxItems: 25,
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]{0,39}$' },
          params: { type: 'object', additionalProperties: { type: ['string', 'number'], maxLength: 100 } },
        },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
};

/** Meta Conversions API-like server event (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters). */
const META = {
  $defs: {
    hashes: { type: 'array', items: { type: 'string', pattern: '^[a-f0-9]{64}$' } },
    userData: {
      type: 'object',
      properties: {
        em: { $ref: '#/$defs/hashes' },
        ph: { $ref: '#/$defs/hashes' },
        client_ip_address: { type: 'string', format: 'ipv4' },
        client_user_agent: { type: 'string' },
        fbp: { type: 'string' },
      },
      additionalProperties: false,
    },
    customData: {
      type: 'object',
      properties: {
        currency: { type: 'string', enum: ['USD', 'EUR', 'GBP'] },
        value: { type: 'number', minimum: 0 },
        contents: { type: 'array', items: { type: 'object', required: ['id', 'quantity'], properties: { id: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } } } },
      },
    },
  },
  type: 'object',
  required: ['event_name', 'event_time', 'action_source', 'user_data'],
  properties: {
    event_name: { type: 'string', minLength: 1 },
    event_time: { type: 'integer', minimum: 0 },
    action_source: { enum: ['email', 'website', 'app', 'phone_call', 'chat', 'physical_store', 'system_generated', 'other'] },
    event_source_url: { type: 'string', format: 'uri' },
    user_data: { allOf: [{ $ref: '#/$defs/userData' }, { required: ['client_user_agent'] }] },
    custom_data: { $ref: '#/$defs/customData' },
    opt_out: { type: 'boolean' },
    data_processing_options: { anyOf: [{ type: 'array', items: { const: 'LDU' } }, { type: 'null' }] },
  },
};

/** `events[].params["a.b"]` → segments (`[]` = each, `[n]` = index, `["…"]` = any key). */
function parse(path: string): ShapeSegment[] {
  const out: ShapeSegment[] = [];
  for (const m of path.matchAll(/\["([^"]*)"\]|([^.[\]]+)|\[(\d*)\]/g)) {
    const key = m[1] ?? m[2];
    if (key !== undefined) out.push({ key });
    else out.push(m[3] === '' ? { each: true } : { index: Number(m[3]) });
  }
  return out;
}

type FieldSpec = [path: string, types: JsonType[] | 'unknown', extra?: { always?: boolean; value?: unknown; merge?: boolean }];

/** Fields in rule order: `global` rules (pointers `/global/fields/i`) then the part's (`/default/fields/i`). */
function fields(part: FieldSpec[], global: FieldSpec[] = []): OutputField[] {
  const build =
    (where: string) =>
    ([path, types, extra = {}]: FieldSpec, i: number): OutputField => {
      const field: OutputField = { path: parse(path), types: types === 'unknown' ? undefined : new Set(types), always: extra.always ?? false, pointer: `/${where}/fields/${i}` };
      if (Object.hasOwn(extra, 'value')) {
        field.value = { v: extra.value };
        field.always = extra.always ?? true;
      }
      if (extra.merge) field.merge = true;
      return field;
    };
  return [...global.map(build('global')), ...part.map(build('default'))];
}

const check = (schema: object, list: OutputField[], label = 'ga4'): Problem[] => checkOutputShape(list, schema, { partPointer: '/default', label });

/** Global rules satisfying each schema's required properties, to which each case adds the part's rules. */
const GA4_GLOBAL: FieldSpec[] = [
  ['client_id', 'unknown', { always: true }],
  ['events', ['array']],
  ['events[].name', ['string'], { value: 'purchase' }],
];
const META_GLOBAL: FieldSpec[] = [
  ['event_name', ['string'], { always: true }],
  ['event_time', ['integer'], { always: true }],
  ['action_source', ['string'], { value: 'website' }],
  ['user_data.client_user_agent', 'unknown', { always: true }],
];

describe('checkOutputShape', () => {
  it.each<[string, object, FieldSpec[], Problem[], FieldSpec[]?]>([
    ['a complete GA4 mapping', GA4, [], []],
    ['a complete Meta mapping', META, [], []],
    [
      'a required top-level property no rule writes',
      GA4,
      [],
      [{ path: '/default', rule: 'required', message: 'output never has client_id, which ga4 requires' }],
      GA4_GLOBAL.slice(1),
    ],
    ['a required property written only sometimes', GA4, [['client_id', ['string']]], [], GA4_GLOBAL.slice(1)],
    [
      'a required property of every each element',
      GA4,
      [['events[].params.currency', 'unknown']],
      [{ path: '/default', rule: 'required', message: 'output never has events[].name, which ga4 requires' }],
      GA4_GLOBAL.slice(0, 2),
    ],
    ['a required element property written conditionally inside each', GA4, [['events[].name', ['string']]], [], GA4_GLOBAL.slice(0, 2)],
    [
      'a required property inside an object built unconditionally (allOf + $ref)',
      META,
      [['user_data.fbp', ['string'], { value: 'fb.1.1596403881668.1116446470' }]],
      [{ path: '/default', rule: 'required', message: 'output never has user_data.client_user_agent, which meta requires' }],
      META_GLOBAL.slice(0, 3),
    ],
    ['no required problem inside an object only written conditionally', META, [['user_data', ['object']]], [], META_GLOBAL.slice(0, 3)],
    [
      'a merge at a parent may write any required property',
      META,
      [
        ['user_data.fbp', ['string'], { always: true }],
        ['', ['object'], { merge: true }],
      ],
      [],
      META_GLOBAL.slice(0, 1),
    ],
    ['a merge at the object itself', META, [['user_data', ['object'], { merge: true, always: true }]], [], META_GLOBAL.slice(0, 3)],
    [
      'a static object above a required property: its keys count',
      META,
      [
        ['user_data', ['object'], { value: { fbp: 'x' } }],
        ['user_data.client_ip_address', 'unknown'],
      ],
      [{ path: '/default', rule: 'required', message: 'output never has user_data.client_user_agent, which meta requires' }],
      META_GLOBAL.slice(0, 3),
    ],
    [
      'a copy of unknown type above a required property may hold it',
      META,
      [
        ['user_data', 'unknown', { always: true }],
        ['user_data.fbp', ['string'], { always: true }],
      ],
      [],
      META_GLOBAL.slice(0, 3),
    ],
    [
      'a type clash at the leaf',
      GA4,
      [
        ['events[].params.value', ['boolean']],
        ['timestamp_micros', ['string', 'null']],
      ],
      [
        { path: '/default/fields/0', rule: 'type', message: 'writes a boolean to events[].params.value; ga4 expects string or number' },
        { path: '/default/fields/1', rule: 'type', message: 'writes a string or null to timestamp_micros; ga4 expects integer' },
      ],
    ],
    ['one possible type that fits is enough', GA4, [['events[].params.value', ['boolean', 'number']]], []],
    ['an integer is a number', META, [['custom_data.value', ['integer']]], []],
    ['a number may be integral', META, [['event_time', ['number']]], []],
    [
      'a static number that is not integral where an integer is expected',
      META,
      [['event_time', ['number'], { value: 1.5 }]],
      [{ path: '/default/fields/0', rule: 'type', message: 'writes 1.5 to event_time; meta: event_time must be integer' }],
    ],
    [
      'a container on the path of the wrong type',
      GA4,
      [
        ['client_id.first', ['string']],
        ['events[].params[0]', ['string']],
      ],
      [
        { path: '/default/fields/0', rule: 'type', message: 'writes client_id.first, which makes client_id an object; ga4 expects string at client_id' },
        { path: '/default/fields/1', rule: 'type', message: 'writes events[].params[0], which makes events[].params an array; ga4 expects object at events[].params' },
      ],
    ],
    [
      'enum and const narrow the types',
      META,
      [['action_source', ['integer']]],
      [{ path: '/default/fields/0', rule: 'type', message: 'writes an integer to action_source; meta expects string' }],
    ],
    [
      'static values the sub-schema refuses (enum, minimum, format, pattern through $ref)',
      META,
      [
        ['custom_data.currency', ['string'], { value: 'usd' }],
        ['custom_data.value', ['number'], { value: -1 }],
        ['user_data.client_ip_address', ['string'], { value: '300.1.1.1' }],
        ['user_data.em', ['array'], { value: ['not a hash'] }],
        ['user_data.client_user_agent', ['string'], { value: 'curl' }],
      ],
      [
        { path: '/default/fields/0', rule: 'enum', message: 'writes "usd" to custom_data.currency; meta: custom_data.currency must be one of "USD", "EUR", "GBP"' },
        { path: '/default/fields/1', rule: 'minimum', message: 'writes -1 to custom_data.value; meta: custom_data.value must be >= 0' },
        { path: '/default/fields/2', rule: 'format', message: 'writes "300.1.1.1" to user_data.client_ip_address; meta: user_data.client_ip_address must match format "ipv4"' },
        { path: '/default/fields/3', rule: 'pattern', message: 'writes ["not a hash"] to user_data.em; meta: user_data.em[0] must match pattern "^[a-f0-9]{64}$"' },
      ],
    ],
    [
      'a static event name against the GA4 pattern, and a static param over maxLength',
      GA4,
      [
        ['events[].name', ['string'], { value: 'Order Completed' }],
        ['events[].params.note', ['string'], { value: 'x'.repeat(101) }],
      ],
      [
        { path: '/default/fields/0', rule: 'pattern', message: 'writes "Order Completed" to events[].name; ga4: events[].name must match pattern "^[A-Za-z][A-Za-z0-9_]{0,39}$"' },
        { path: '/default/fields/1', rule: 'maxLength', message: expect.stringMatching(/^writes "x{50,}… to events\[\]\.params\.note; ga4: events\[\]\.params\.note must NOT have more than 100 characters$/) },
      ],
      GA4_GLOBAL.slice(0, 2),
    ],
    [
      'a static object with a bad member, completed by later rules',
      META,
      [
        ['custom_data', ['object'], { value: { currency: 'XXX', contents: [] } }],
        ['custom_data.value', ['number'], { always: true }],
      ],
      [{ path: '/default/fields/0', rule: 'enum', message: 'writes "XXX" to custom_data.currency; meta: custom_data.currency must be one of "USD", "EUR", "GBP"' }],
    ],
    [
      'a static object validated whole (required inside it) when nothing writes below it later',
      META,
      [['custom_data', ['object'], { value: { contents: [{ id: 'sku-1' }] } }]],
      [{ path: '/default/fields/0', rule: 'required', message: 'writes {"contents":[{"id":"sku-1"}]} to custom_data; meta: custom_data.contents[0].quantity is required' }],
    ],
    [
      'a static object with a member the schema forbids, completed by later rules',
      META,
      [
        ['user_data', ['object'], { value: { fbp: 'x', bogus: 1 } }],
        ['user_data.client_ip_address', ['string']],
      ],
      [{ path: '/default/fields/0', rule: 'additionalProperties', message: 'writes user_data.bogus, a property meta does not allow' }],
    ],
    [
      'an each array written after its element rules does not hide them',
      GA4,
      [
        ['events[].name', ['string'], { value: 'Bad Name' }],
        ['events', ['array'], { always: true }],
      ],
      [{ path: '/default/fields/0', rule: 'pattern', message: 'writes "Bad Name" to events[].name; ga4: events[].name must match pattern "^[A-Za-z][A-Za-z0-9_]{0,39}$"' }],
      GA4_GLOBAL.slice(0, 1),
    ],
    ['merges are not type-checked (their keys are unknown)', GA4, [['events[].params', ['string'], { merge: true }]], []],
    [
      'a static object missing a required member that a later conditional rule may write',
      META,
      [
        ['custom_data', ['object'], { value: { contents: [{ id: 'sku-1' }] } }],
        ['custom_data.contents[0].quantity', ['integer']],
      ],
      [],
    ],
    [
      'a static value a later unconditional rule replaces is not checked',
      META,
      [
        ['custom_data.currency', ['string'], { value: 'usd' }],
        ['custom_data', 'unknown', { always: true }],
        ['opt_out', ['string'], { value: 'no' }],
        ['opt_out', ['boolean'], { always: true }],
      ],
      [],
    ],
    [
      'a static value a later conditional rule may replace is still checked',
      META,
      [
        ['opt_out', ['string'], { value: 'no' }],
        ['opt_out', ['boolean']],
      ],
      [{ path: '/default/fields/0', rule: 'type', message: 'writes a string to opt_out; meta expects boolean' }],
    ],
    [
      'paths additionalProperties: false forbids',
      GA4,
      [
        ['debug', ['boolean'], { value: true }],
        ['events[].category', 'unknown'],
        ['events[].params.category', ['string']],
      ],
      [
        { path: '/default/fields/0', rule: 'additionalProperties', message: 'writes debug, a property ga4 does not allow' },
        { path: '/default/fields/1', rule: 'additionalProperties', message: 'writes events[].category, a property ga4 does not allow' },
      ],
    ],
    [
      'an index beyond maxItems',
      GA4,
      [
        ['events[25].name', ['string'], { value: 'late' }],
        ['events[24].name', ['string'], { value: 'last' }],
      ],
      [{ path: '/default/fields/0', rule: 'maxItems', message: 'writes events[25]; ga4 allows at most 25 items in events' }],
      GA4_GLOBAL.slice(0, 1),
    ],
    [
      'unknown types never produce problems',
      GA4,
      [
        ['user_id', 'unknown'],
        ['events[].params.value', 'unknown'],
        ['timestamp_micros', 'unknown', { always: true }],
      ],
      [],
    ],
    [
      'anyOf adds nothing: no problem at or below it',
      META,
      [
        ['data_processing_options', ['boolean']],
        ['data_processing_options[0]', ['integer']],
      ],
      [],
    ],
    // Rows may leave out the global rules: a rest parameter keeps jest from taking a 5th one for `done`.
  ])('%s', (...row) => {
    const [, schema, part, expected, global] = row;
    const label = schema === META ? 'meta' : 'ga4';
    expect(check(schema, fields(part, global ?? (schema === META ? META_GLOBAL : GA4_GLOBAL)), label)).toEqual(expected);
  });

  it.each<[string, object, FieldSpec[], Partial<Problem>[]]>([
    [
      'false sub-schemas and propertyNames',
      {
        type: 'object',
        properties: { legacy: false, tags: { type: 'object', propertyNames: { pattern: '^[a-z_]+$' } } },
      },
      [
        ['legacy', ['string']],
        ['tags.ok_tag', ['string']],
        ['tags.Bad-Tag', ['string']],
      ],
      [
        { path: '/default/fields/0', rule: 'false schema', message: 'writes legacy, which dest forbids' },
        { path: '/default/fields/2', rule: 'propertyNames', message: 'writes tags.Bad-Tag; dest refuses the property name "Bad-Tag": must match pattern "^[a-z_]+$"' },
      ],
    ],
    [
      'patternProperties decide the sub-schema of matching keys',
      { type: 'object', patternProperties: { '^n_': { type: 'number' } }, additionalProperties: { type: 'string' } },
      [
        ['n_total', ['string']],
        ['label', ['number']],
        ['n_count', ['integer']],
      ],
      [
        { path: '/default/fields/0', rule: 'type', message: 'writes a string to n_total; dest expects number' },
        { path: '/default/fields/1', rule: 'type', message: 'writes a number to label; dest expects string' },
      ],
    ],
    [
      'draft-07 tuples: items array then additionalItems',
      { type: 'object', properties: { pair: { type: 'array', items: [{ type: 'string' }, { type: 'integer' }], additionalItems: false } } },
      [
        ['pair[0]', ['string']],
        ['pair[1]', ['string']],
        ['pair[2]', ['string']],
      ],
      [
        { path: '/default/fields/1', rule: 'type', message: 'writes a string to pair[1]; dest expects integer' },
        { path: '/default/fields/2', rule: 'additionalItems', message: 'writes pair[2], an item dest does not allow' },
      ],
    ],
    [
      'draft 2020-12 by $schema: prefixItems then items, each uses the first element',
      {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        properties: {
          pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false },
          rows: { type: 'array', items: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } } },
        },
      },
      [
        ['pair[1]', ['string']],
        ['pair[2]', ['string']],
        ['rows', ['array']],
        ['rows[].id', ['string'], { value: 'x' }],
      ],
      [
        { path: '/default/fields/0', rule: 'type', message: 'writes a string to pair[1]; dest expects integer' },
        { path: '/default/fields/1', rule: 'items', message: 'writes pair[2], an item dest does not allow' },
        { path: '/default/fields/3', rule: 'type', message: 'writes a string to rows[].id; dest expects integer' },
      ],
    ],
    [
      'recursive $ref terminates and applies at every depth',
      {
        $defs: { node: { type: 'object', properties: { label: { type: 'string' }, child: { $ref: '#/$defs/node' } } } },
        $ref: '#/$defs/node',
      },
      [['child.child.child.label', ['boolean']]],
      [{ path: '/default/fields/0', rule: 'type', message: 'writes a boolean to child.child.child.label; dest expects string' }],
    ],
    [
      'allOf intersects types and collects required',
      { allOf: [{ type: 'object', required: ['a'] }, { properties: { n: { type: ['integer', 'string'] } } }, { properties: { n: { type: ['number', 'boolean'] } } }] },
      [['n', ['string']]],
      [
        { path: '/default/fields/0', rule: 'type', message: 'writes a string to n; dest expects integer' },
        { path: '/default', rule: 'required', message: 'output never has a, which dest requires' },
      ],
    ],
    [
      'a payload that can never be an object',
      { type: 'array' },
      [['a', ['string']]],
      [{ path: '/default', rule: 'type', message: 'output is an object; dest expects array' }],
    ],
    [
      'keys that need quoting in messages',
      { type: 'object', properties: { 'price.eur': { type: 'number' } }, required: ['user id'] },
      [['["price.eur"]', ['string']]],
      [
        { path: '/default/fields/0', rule: 'type', message: 'writes a string to ["price.eur"]; dest expects number' },
        { path: '/default', rule: 'required', message: 'output never has ["user id"], which dest requires' },
      ],
    ],
  ])('%s', (_name, schema, specs, expected) => {
    expect(check(schema, fields(specs), 'dest')).toEqual(expected);
  });

  it('reports a required property once, with the part pointer it is given', () => {
    const problems = checkOutputShape(fields([['events', ['array']]]), GA4, { partPointer: '/eventSpecific/Order Completed', label: 'destination ga4' });
    expect(problems).toEqual([{ path: '/eventSpecific/Order Completed', rule: 'required', message: 'output never has client_id, which destination ga4 requires' }]);
  });

  it('refuses a schema ajv cannot compile', () => {
    expect(() => check({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, [])).toThrow(SwitchyardError);
    expect(() => check({ type: 'nonsense' }, [])).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE, message: expect.stringContaining('invalid output schema') }));
  });
});

describe('compileOutputValidator', () => {
  const validate = compileOutputValidator(GA4);

  it.each<[string, unknown, { instancePath: string; path: string; rule: string; message?: string }[] | undefined]>([
    ['a valid payload', { client_id: '1.2', events: [{ name: 'purchase', params: { value: 10, currency: 'EUR' } }] }, undefined],
    ['a missing required property, at the property', { events: [] }, [{ instancePath: '/client_id', path: 'client_id', rule: 'required', message: 'is required' }]],
    [
      'several violations at once, with paths into arrays',
      { client_id: 7, events: [{ name: 'ok' }, { params: { value: true, 'a.b': 'x'.repeat(101) } }], extra: 1 },
      [
        { instancePath: '/extra', path: 'extra', rule: 'additionalProperties', message: 'is not allowed' },
        { instancePath: '/client_id', path: 'client_id', rule: 'type', message: 'must be string' },
        { instancePath: '/events/1/name', path: 'events[1].name', rule: 'required', message: 'is required' },
        { instancePath: '/events/1/params/value', path: 'events[1].params.value', rule: 'type', message: 'must be string,number' },
        { instancePath: '/events/1/params/a.b', path: 'events[1].params["a.b"]', rule: 'maxLength', message: 'must NOT have more than 100 characters' },
      ],
    ],
    ['a pattern', { client_id: 'c', events: [{ name: '1st' }] }, [{ instancePath: '/events/0/name', path: 'events[0].name', rule: 'pattern' }]],
    ['a payload that is not an object', 'text', [{ instancePath: '', path: '', rule: 'type', message: 'must be object' }]],
  ])('%s', (_name, payload, expected) => {
    const result = validate(payload);
    if (expected === undefined) expect(result).toBeUndefined();
    else expect(result).toEqual(expect.arrayContaining(expected.map((e) => expect.objectContaining(e))));
    if (expected) expect(result).toHaveLength(expected.length);
  });

  it.each<[string, object, unknown, Partial<{ instancePath: string; path: string; rule: string; message: string }>[]]>([
    [
      'enum, const, keys with / and ~ (RFC 6901), object keys that look like indexes',
      { type: 'object', properties: { kind: { enum: ['a', 'b'] }, v: { const: 2 }, map: { type: 'object', additionalProperties: { type: 'integer' } } } },
      { kind: 'c', v: 3, map: { '0': 'x', 'a/b~c': 'y' } },
      [
        { instancePath: '/kind', path: 'kind', rule: 'enum', message: 'must be one of "a", "b"' },
        { instancePath: '/v', path: 'v', rule: 'const', message: 'must be 2' },
        { instancePath: '/map/0', path: 'map.0', rule: 'type' },
        { instancePath: '/map/a~1b~0c', path: 'map["a/b~c"]', rule: 'type' },
      ],
    ],
    [
      'propertyNames, at the property',
      { type: 'object', propertyNames: { maxLength: 3 } },
      { long: 1 },
      [
        { instancePath: '/long', path: 'long', rule: 'maxLength' },
        { instancePath: '/long', path: 'long', rule: 'propertyNames' },
      ],
    ],
    [
      'draft 2020-12 by $schema',
      { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'string' }], items: false },
      ['a', 'b'],
      [{ instancePath: '', path: '', rule: 'items' }],
    ],
  ])('%s', (_name, schema, payload, expected) => {
    expect(compileOutputValidator(schema)(payload)).toEqual(expected.map((e) => expect.objectContaining(e)));
  });

  it('compiles once per schema object and never modifies the payload', () => {
    expect(compileOutputValidator(GA4)).toBe(validate);
    const schema = { type: 'object', properties: { a: { type: 'string', default: 'x' } }, additionalProperties: { type: 'number' } };
    const payload = { b: '1' };
    expect(compileOutputValidator(schema)(payload)).toEqual([{ instancePath: '/b', path: 'b', rule: 'type', message: 'must be number' }]);
    expect(payload).toEqual({ b: '1' });
  });

  it.each<[string, object, unknown, string | undefined]>([
    ['a pattern that backtracks exponentially in RegExp (RE2 runs it in linear time)', { type: 'string', pattern: '^(a+)+$' }, `${'a'.repeat(40)}!`, 'pattern'],
    ['a Unicode property class', { type: 'object', patternProperties: { '^\\p{L}+$': { type: 'string' } } }, { prénom: 1 }, 'type'],
    ['a relative $id', { $id: 'ga4-payload', $defs: { s: { type: 'string' } }, properties: { a: { $ref: '#/$defs/s' } } }, { a: 1 }, 'type'],
  ])('%s', (_name, schema, payload, rule) => {
    expect(compileOutputValidator(schema)(payload)?.map((v) => v.rule)).toEqual(rule ? [rule] : undefined);
  });

  it('refuses patterns RE2 cannot run (lookaround, backreferences)', () => {
    expect(() => compileOutputValidator({ type: 'string', pattern: '^(?!admin)' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE }));
    expect(() => compileOutputValidator({ patternProperties: { '(a)\\1': { type: 'string' } } })).toThrow(SwitchyardError);
  });

  it("runs the patterns of our own (trusted) schemas on native RegExp, users' on RE2", () => {
    const user = { type: 'object', properties: { name: { type: 'string', pattern: '^(?!ga_)[a-z_]+$' } } };
    expect(() => compileOutputValidator(user)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_RESOURCE }));
    const ours = trustOutputSchema(structuredClone(user));
    expect(compileOutputValidator(ours)({ name: 'purchase' })).toBeUndefined();
    expect(compileOutputValidator(ours)({ name: 'ga_purchase' })?.map((v) => v.rule)).toEqual(['pattern']);
    // The static check reads keys the same way: patternProperties with lookahead, in a trusted schema.
    const keyed = trustOutputSchema({ type: 'object', properties: { params: { type: 'object', patternProperties: { '^(?!ga_)': { type: 'string' } }, additionalProperties: false } } });
    expect(check(keyed, fields([['params.ok', ['string'], { value: 'x' }]]))).toEqual([]);
    expect(check(keyed, fields([['params.ga_no', ['string'], { value: 'x' }]]))).toEqual([expect.objectContaining({ rule: 'additionalProperties' })]);
  });

  it('keeps schemas with the same $id apart, fragments included', () => {
    const first = { $id: 'https://switchyard.test/payload', type: 'object', properties: { n: { type: 'string' } } };
    const second = { $id: 'https://switchyard.test/payload', type: 'object', properties: { n: { type: 'number' } } };
    expect(compileOutputValidator(first)({ n: 1 })).toHaveLength(1);
    expect(compileOutputValidator(second)({ n: 1 })).toBeUndefined();
    expect(check(second, fields([['n', ['number'], { value: 'text' }]]))).toEqual([{ path: '/default/fields/0', rule: 'type', message: 'writes a string to n; ga4 expects number' }]);
    expect(check(first, fields([['n', ['string'], { value: 2 }]]))).toEqual([{ path: '/default/fields/0', rule: 'type', message: 'writes an integer to n; ga4 expects string' }]);
    expect(check(second, fields([['n', ['number'], { value: -1 }]]))).toEqual([]);
  });
});
