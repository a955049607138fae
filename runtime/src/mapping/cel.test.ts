import type { Problem } from '../errors.js';
import { CelFailure, DEFAULT_CEL_LIMITS, compileExpression, type CelInput, type CelKind, type CelLimits, type CelScope, type CompiledExpression } from './cel.js';

const WHERE = '/eventSpecific/Order Completed/fields/2/expr';

const EVENT = {
  type: 'track',
  event: 'Order Completed',
  timestamp: '2024-03-01T12:30:00.000Z',
  userId: 'u1',
  properties: {
    revenue: 12.5,
    qty: 3,
    currency: 'USD',
    coupon: null,
    tags: ['a', 'b'],
    products: [
      { sku: 'p1', price: 2.5, quantity: 2 },
      { sku: 'p2', price: 7.5, quantity: 1 },
    ],
    nested: { level: { value: 'deep' } },
  },
  context: { consent: { categoryPreferences: { ads: true } }, ip: '203.0.113.9' },
};
const INPUT: CelInput = { event: EVENT, name: 'purchase', type: 'track' };

function compile(source: string, kind: CelKind = 'value', options: { scope?: CelScope; limits?: Partial<CelLimits> } = {}): { compiled: CompiledExpression | undefined; problems: Problem[] } {
  const problems: Problem[] = [];
  return { compiled: compileExpression(source, kind, WHERE, problems, options), problems };
}

/** Compiles (asserting no problem) and evaluates. */
function run(source: string, input: CelInput = INPUT, kind: CelKind = 'value', options: { scope?: CelScope; limits?: Partial<CelLimits> } = {}): unknown {
  const { compiled, problems } = compile(source, kind, options);
  expect(problems).toEqual([]);
  expect(compiled).toBeDefined();
  return compiled!.evaluate(input);
}

function failureMessage(result: unknown): string {
  expect(result).toBeInstanceOf(CelFailure);
  return (result as CelFailure).message;
}

describe('values of each JSON type', () => {
  it.each<[string, unknown, string | undefined]>([
    ['properties.currency', 'USD', undefined],
    ['"a" + "b"', 'ab', 'string'],
    ['properties.revenue * 100.0', 1250, 'number'],
    ['1.5 + 1.0', 2.5, 'number'],
    ['size(properties.tags)', 2, 'integer'],
    ['7 / 2', 3, 'integer'],
    ['2u * 3u', 6, 'integer'],
    ['properties.revenue > 10.0', true, 'boolean'],
    ['properties.coupon', null, undefined],
    ['null', null, undefined],
    ['{"value": properties.revenue, "currency": properties.currency}', { value: 12.5, currency: 'USD' }, 'object'],
    ['{"a": 1, "b": "x", "c": [true]}', { a: 1, b: 'x', c: [true] }, 'object'],
    ['properties.nested', { level: { value: 'deep' } }, undefined],
    ['[1, 2, 3]', [1, 2, 3], 'array'],
    ['properties.products.map(p, p.sku)', ['p1', 'p2'], 'array'],
    ['properties.products.filter(p, p.price > 5.0).map(p, {"id": p.sku})', [{ id: 'p2' }], 'array'],
    ['properties.products.map(p, p.price * p.quantity)', [5, 7.5], 'array'],
  ])('%s → %j (result type %s)', (source, expected, resultType) => {
    const { compiled } = compile(source);
    expect(compiled?.resultType).toBe(resultType);
    expect(compiled?.source).toBe(source);
    expect(compiled!.evaluate(INPUT)).toEqual(expected);
  });
});

describe('numbers: JSON numbers are doubles and mix with int literals', () => {
  it.each<[string, unknown]>([
    ['properties.qty * 2', 6],
    ['2 * properties.qty', 6],
    ['properties.qty + 1', 4],
    ['properties.qty - 1', 2],
    ['properties.qty / 2', 1.5],
    ['properties.revenue * 100', 1250],
    ['7 / 2.0', 3.5],
    ['properties.qty == 3', true],
    ['properties.qty > 2', true],
    ['properties.qty < 2u', false],
    ['type(properties.qty) == double', true],
    ['int(properties.qty) * 2', 6],
    ['double(size(properties.tags)) / 4.0', 0.5],
    ['string(properties.qty)', '3'],
  ])('%s → %j', (source, expected) => {
    expect(run(source)).toEqual(expected);
  });

  it('infers a double when an int literal meets a declared double', () => {
    expect(compile('2 * properties.revenue').compiled?.resultType).toBeUndefined(); // dyn operand
    expect(compile('2 * 1.5').compiled?.resultType).toBe('number');
    expect(run('2 * 1.5')).toBe(3);
  });

  it('keeps standard CEL for statically typed mixed equality', () => {
    const { compiled, problems } = compile('1 == 1.0');
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message: expect.stringContaining('int == double') }]);
  });
});

describe('has() and missing keys', () => {
  it.each<[string, unknown]>([
    ['has(properties.revenue)', true],
    ['has(properties.missing)', false],
    ['has(properties.coupon)', true],
    ['has(traits.email)', false],
    ['has(context.consent.categoryPreferences)', true],
    ['has(context.consent.categoryPreferences.email)', false],
    ['has(event.userId)', true],
    ['has(event.anonymousId)', false],
    ['has(properties.missing) ? properties.missing : "fallback"', 'fallback'],
    ['"a" in properties.tags', true],
    ['"revenue" in properties', true],
    ['"constructor" in properties', false],
  ])('%s → %j', (source, expected) => {
    expect(run(source)).toBe(expected);
  });

  it.each<[string, string]>([
    ['properties.missing', 'No such key: missing'],
    ['properties.nested.other.value', 'No such key: other'],
    ['has(properties.missing.deeper)', 'No such key: missing'],
    ['properties.tags[5]', 'index out of bounds'],
    ['event.anonymousId', 'No such key: anonymousId'],
  ])('%s fails at run time: %s', (source, message) => {
    expect(failureMessage(run(source))).toContain(message);
  });

  it('names the column of a run-time failure', () => {
    expect(failureMessage(run('1.0 + properties.missing'))).toBe('No such key: missing at column 18');
  });
});

describe('variables and shortcuts', () => {
  const bare: CelInput = { event: { type: 'identify', userId: 'u2' }, name: 'identify', type: 'identify' };
  it.each<[string, unknown, CelInput]>([
    ['type', 'track', INPUT],
    ['name', 'purchase', INPUT],
    ['event.event', 'Order Completed', INPUT],
    ['type == "track" && name == "purchase"', true, INPUT],
    ['type + ":" + name', 'track:purchase', INPUT],
    ['properties.currency == event.properties.currency', true, INPUT],
    ['context.ip', '203.0.113.9', INPUT],
    ['properties', {}, bare],
    ['traits', {}, bare],
    ['context', {}, bare],
    ['size(properties) + size(traits) + size(context)', 0, bare],
    ['has(traits.email) ? traits.email : event.userId', 'u2', bare],
    ['traits', { email: 'a@b.c' }, { event: { traits: { email: 'a@b.c' } }, name: 'identify', type: 'identify' }],
    ['type', 'identify', bare],
    ['type(1) == int', true, INPUT],
  ])('%s → %j', (source, expected, input) => {
    expect(run(source, input)).toEqual(expected);
  });

  it('does not reach for a property the event lacks through the shortcut (null counts as absent)', () => {
    expect(run('properties', { event: { properties: null }, name: 'x', type: 'track' })).toEqual({});
  });

  it('fails when a part of the event is not an object', () => {
    expect(failureMessage(run('properties', { event: { properties: 'oops' }, name: 'x', type: 'track' }))).toContain("Variable 'properties' is not of type");
  });

  it('fails (without throwing) when the event is not an object', () => {
    expect(failureMessage(run('name', { event: null as unknown as Record<string, unknown>, name: 'x', type: 'track' }))).toContain('null');
  });

  it.each<[string, string]>([
    ['properties.tags.map(type, type)', '"type" is the event type and cannot name an iteration variable at column 1'],
    ['cel.bind(type, 1, type)', '"type" is the event type and cannot be bound by cel.bind at column 1'],
  ])('refuses %s, since type names the event type', (source, message) => {
    const { compiled, problems } = compile(source);
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message }]);
  });

  it.each<[string, string]>([
    ['type + 1', 'no such overload: string + int at column 1'],
    ['duration(1)', "found no matching overload for 'duration(int)' at column 1"],
    ['name.matches("a", "b")', "found no matching overload for 'string.matches(string, string)' at column 1"],
  ])('reports %s with the names the user wrote', (source, message) => {
    expect(compile(source).problems).toEqual([{ path: WHERE, rule: 'expr', message }]);
  });

  it('evaluates each input afresh (no state kept between events)', () => {
    const { compiled } = compile('has(properties.qty) ? properties.qty * 2 : -1.0');
    expect(compiled!.evaluate(INPUT)).toBe(6);
    expect(compiled!.evaluate({ event: { properties: { qty: 5 } }, name: 'n', type: 'track' })).toBe(10);
    expect(compiled!.evaluate({ event: {}, name: 'n', type: 'track' })).toBe(-1);
  });

  it('never modifies the event', () => {
    const event = JSON.parse(JSON.stringify(EVENT)) as Record<string, unknown>;
    const before = JSON.stringify(event);
    const { compiled } = compile('properties.products.map(p, p.sku) + properties.tags + [properties.currency]');
    expect(compiled!.evaluate({ event, name: 'n', type: 'track' })).toEqual(['p1', 'p2', 'a', 'b', 'USD']);
    expect(JSON.stringify(event)).toBe(before);
  });
});

describe('item scope', () => {
  const product = { sku: 'p1', price: 2.5, quantity: 2 };
  it.each<[string, unknown, unknown]>([
    ['item.price * item.quantity', product, 5],
    ['item.sku + "-" + properties.currency', product, 'p1-USD'],
    ['has(item.discount) ? item.discount : 0.0', product, 0],
    ['item', 'plain', 'plain'],
    ['item', undefined, null],
    ['item * 2', 4, 8],
  ])('%s with item %j → %j', (source, item, expected) => {
    expect(run(source, { ...INPUT, item }, 'value', { scope: 'item' })).toEqual(expected);
  });

  it('has no item outside each rules', () => {
    expect(compile('item.price').problems).toEqual([{ path: WHERE, rule: 'expr', message: 'Unknown variable: item at column 1' }]);
  });
});

describe('conditions', () => {
  it.each<[string, boolean]>([
    ["has(context.consent) && type == 'track'", true],
    ["has(event.context.consent) && event.type == 'track'", true],
    ['properties.revenue > 100.0', false],
    ['properties.products.exists(p, p.price > 5.0)', true],
    ['properties.products.all(p, p.quantity >= 1)', true],
    ['properties.tags.exists_one(t, t == "a")', true],
    ['!has(properties.missing)', true],
    ['properties.currency.startsWith("U") || properties.missing', true],
    ['properties.coupon == null', true],
  ])('%s → %s', (source, expected) => {
    expect(run(source, INPUT, 'condition')).toBe(expected);
  });

  it.each<[string, string]>([
    ['name', 'string'],
    ['1 + 2', 'int'],
    ['properties.tags.map(t, t)', 'list'],
  ])('refuses %s: a condition of type %s', (source, type) => {
    const { compiled, problems } = compile(source, 'condition');
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message: `a condition must be bool, but this expression is ${type}` }]);
  });

  it.each<[string, string]>([
    ['properties.revenue', 'a condition must be bool, got number'],
    ['properties.coupon', 'a condition must be bool, got null'],
    ['properties.missing == 1.0', 'No such key: missing'],
  ])('a dynamic %s fails at run time: %s', (source, message) => {
    expect(failureMessage(run(source, INPUT, 'condition'))).toContain(message);
  });
});

describe('compile problems carry the given path and rule', () => {
  it.each<[string, string]>([
    ['process', 'Unknown variable: process at column 1'],
    ['now', 'Unknown variable: now at column 1'],
    ['properties.x + unknownVar', 'Unknown variable: unknownVar at column 16'],
    ['foo(1)', "found no matching overload for 'foo(int)' at column 1"],
    ['name.foo()', "found no matching overload for 'string.foo()' at column 1"],
    ['name + 1', 'no such overload: string + int at column 1'],
    ['name == 1', 'no such overload: string == int at column 1'],
    ['!name', 'no such overload: !string at column 1'],
    ['1 +', 'syntax error: Unexpected token: EOF at column 4'],
    ['properties.', 'syntax error: Expected IDENTIFIER, got EOF at column 12'],
    ['"unterminated', 'syntax error: Unterminated string at column 1'],
    ['1 +\n  * 2', 'syntax error: Unexpected token: MULTIPLY at line 2, column 3'],
    ['', 'expression is empty'],
  ])('%j: %s', (source, message) => {
    const { compiled, problems } = compile(source);
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message }]);
  });

  it('appends to the problems already collected', () => {
    const problems: Problem[] = [{ path: '/other', rule: 'path', message: 'earlier' }];
    expect(compileExpression('nope', 'value', WHERE, problems)).toBeUndefined();
    expect(problems).toHaveLength(2);
    expect(problems[0]!.path).toBe('/other');
    expect(problems[1]!.path).toBe(WHERE);
  });
});

describe('results converted to JSON', () => {
  it.each<[string, unknown]>([
    ['9007199254740991', 9007199254740991],
    ['-9007199254740991', -9007199254740991],
    ['18446744073709551615u / 4294967296u', 4294967295],
    ['timestamp("2024-01-01T00:00:00Z")', '2024-01-01T00:00:00.000Z'],
    ['timestamp(event.timestamp) + duration("1h30m")', '2024-03-01T14:00:00.000Z'],
    ['timestamp(1700000000)', '2023-11-14T22:13:20.000Z'],
    ['duration("1.5s")', '1.5s'],
    ['duration("2h45m")', '9900s'],
    ['duration("-1.5s")', '-1.5s'],
    ['duration("300ms") + duration("1ns")', '0.300000001s'],
    ['timestamp("2024-01-02T00:00:00Z") - timestamp("2024-01-01T00:00:00Z")', '86400s'],
    ['b"hello"', 'aGVsbG8='],
    ['bytes("é")', 'w6k='],
    ['{1: "one", 2: "two"}', { 1: 'one', 2: 'two' }],
    ['{true: 1}', { true: 1 }],
    ['[[1, 2], [timestamp("2024-01-01T00:00:00Z")]]', [[1, 2], ['2024-01-01T00:00:00.000Z']]],
    ['{"at": timestamp("2024-01-01T00:00:00Z"), "n": 1}', { at: '2024-01-01T00:00:00.000Z', n: 1 }],
    ['-0.0', -0],
  ])('%s → %j', (source, expected) => {
    expect(run(source)).toEqual(expected);
  });

  it.each<[string, string]>([
    ['9007199254740992', 'integer 9007199254740992 is outside the range'],
    ['9223372036854775807', 'integer 9223372036854775807 is outside the range'],
    ['[1, 9223372036854775807]', 'outside the range'],
    ['9223372036854775807 + 1', 'integer overflow'],
    ['18446744073709551615u', 'outside the range'],
    ['1.0 / 0.0', 'Infinity is not a JSON number'],
    ['0.0 / 0.0', 'NaN is not a JSON number'],
    ['type(1)', 'has no JSON form'],
    ['1 / 0', 'division by zero'],
    ['int("nope")', 'cannot convert to int'],
    ['timestamp("yesterday")', 'timestamp() requires a string in ISO 8601 format'],
  ])('%s fails: %s', (source, message) => {
    expect(failureMessage(run(source))).toContain(message);
  });

  it('returns the event’s own arrays and objects without copying them', () => {
    const { compiled } = compile('properties.products');
    expect(compiled!.evaluate(INPUT)).toBe(EVENT.properties.products);
  });

  it('keeps a "__proto__" key read from the event as data', () => {
    const event = JSON.parse('{"properties": {"m": {"__proto__": {"polluted": 1}, "n": 9007199254740991}}}') as Record<string, unknown>;
    const out = run('properties.m', { event, name: 'n', type: 'track' }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'n']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('drops keys a map literal must not create', () => {
    const out = run('{"__proto__": {"polluted": 1}, "ok": 1}') as Record<string, unknown>;
    expect(out).toEqual({ ok: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('regexes run on RE2', () => {
  it.each<[string, boolean]>([
    ['properties.currency.matches("^[A-Z]{3}$")', true],
    ['properties.currency.matches("S")', true],
    ['matches(properties.currency, "^usd$")', false],
    ['matches(properties.currency, "(?i)^usd$")', true],
    ['context.ip.matches("^\\\\d+\\\\.\\\\d+\\\\.\\\\d+\\\\.\\\\d+$")', true],
    ['"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!".matches("(a+)+$")', false],
    ['properties.tags.exists(t, t.matches("^b"))', true],
  ])('%s → %s', (source, expected) => {
    expect(run(source)).toBe(expected);
  });

  it.each<[string, string]>([
    ['name.matches("(")', 'invalid regex: error parsing regexp: missing closing ): `(` at column 14'],
    ['name.matches("(?=a)")', 'invalid regex: error parsing regexp: invalid or unsupported Perl syntax: `(?=` at column 14'],
    ['name.matches("(a)\\\\1")', 'invalid regex: error parsing regexp: invalid escape sequence: `\\1` at column 14'],
    ['matches(name, "[")', 'invalid regex: error parsing regexp: missing closing ]: `[` at column 15'],
    [`name.matches("${'a?'.repeat(200)}")`, 'regex longer than 256 characters at column 14'],
    ['name.matches("a{1000}a{1000}a{1000}a{1000}a{1000}a{1000}")', 'regex compiles to 6002 RE2 instructions, more than the 5000 allowed at column 14'],
    ['name.matches(properties.pattern)', 'matches needs a string literal pattern at column 14'],
    ['matches(name, name)', 'matches needs a string literal pattern at column 15'],
    ['cel.bind(p, "a+", name.matches(p))', 'matches needs a string literal pattern at column 32'],
  ])('refuses %s', (source, message) => {
    const { compiled, problems } = compile(source);
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message }]);
  });

  it('compiles each pattern once, shared by the calls of an expression', () => {
    expect(run('name.matches("^p") && !name.matches("x") && matches(name, "^p")')).toBe(true);
  });
});

describe('no JavaScript is reachable', () => {
  it.each([
    'process',
    'globalThis',
    'constructor',
    'require',
    'Function',
    'this',
    '__proto__',
    'eval("1")',
    'Object.keys(properties)',
    'name.constructor',
    '"".constructor',
    'name.length',
    'name.toString()',
    'properties.toString()',
  ])('%s does not compile', (source) => {
    const { compiled, problems } = compile(source);
    expect(compiled).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ path: WHERE, rule: 'expr' });
  });

  it.each([
    'properties.constructor',
    'properties.__proto__',
    'properties["__proto__"]',
    'properties["hasOwnProperty"]',
    'properties.toString',
    'dyn(name).constructor',
    'dyn(name)["length"]',
    'dyn(properties.tags).length',
    'dyn(properties.tags).push',
    'dyn(b"a").buffer',
    'b"a".buffer',
    'dyn(type(1)).name',
    'dyn(timestamp("2024-01-01T00:00:00Z")).getTime',
  ])('%s fails at run time', (source) => {
    expect(run(source)).toBeInstanceOf(CelFailure);
  });

  it.each(['has(properties.constructor)', 'has(properties.toString)', 'has(properties.__proto__)'])('%s is false', (source) => {
    expect(run(source)).toBe(false);
  });
});

describe('hostile expressions are refused or stopped within the budget', () => {
  const LIST = Array.from({ length: 2000 }, (_, i) => i);
  let deep: unknown = [];
  for (let i = 0; i < 20_000; i++) deep = [deep];
  const HOSTILE_EVENT: Record<string, unknown> = {
    type: 'track',
    properties: {
      items: LIST,
      objects: LIST.map((i) => ({ i, tags: ['x', 'y'] })),
      s: 'a'.repeat(5000) + '!',
      mib: 'a'.repeat(1 << 20),
      deep,
      wide: Object.fromEntries(LIST.map((i) => [`k${i}`, i])),
    },
  };
  const HOSTILE: CelInput = { event: HOSTILE_EVENT, name: 'n', type: 'track' };
  const bind = (depth: number): string => {
    let body = `size(v${depth} + v${depth})`;
    for (let i = depth; i >= 1; i--) body = `cel.bind(v${i}, ${i === 1 ? 'properties.s + properties.s' : `v${i - 1} + v${i - 1}`}, ${body})`;
    return body;
  };

  it.each<[string, string, string]>([
    ['triple-nested comprehension over 2000 elements', 'properties.items.map(a, properties.items.map(b, properties.items.map(c, a)))', 'nest 3 deep, more than the 2 allowed'],
    ['long source', `1.0${' + 1.0'.repeat(1000)}`, 'more than the 4096 allowed'],
    ['too many nodes', `1.0${' + 1.0'.repeat(600)}`, 'Exceeded maxAstNodes (500)'],
    ['deep nesting', `${'('.repeat(40)}1${')'.repeat(40)}`, 'Exceeded maxDepth (32)'],
    ['deep member chain', `properties${'.a'.repeat(40)}`, 'Exceeded maxDepth (32)'],
    ['huge list literal', `[${Array(300).fill('1').join(',')}]`, 'Exceeded maxListElements (256)'],
    ['long regex', `properties.s.matches("${'(a|b)'.repeat(60)}")`, 'regex longer than 256 characters'],
    ['large regex program', `properties.s.matches("${'.{1000}'.repeat(6)}")`, 'more than the 5000 allowed'],
    ['regex read from the event', 'properties.s.matches(properties.s)', 'matches needs a string literal pattern'],
    ['long duration literal (super-linear parser)', `duration("${'1'.repeat(2000)}s")`, 'invalid duration'],
  ])('%s: compile problem', (_label, source, message) => {
    const { compiled, problems } = compile(source);
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message: expect.stringContaining(message) }]);
  });

  it.each<[string, string, CelKind, string]>([
    ['nested comprehension over 2000 × 2000', 'properties.items.map(a, properties.items.map(b, a + b))', 'value', 'cost exceeded'],
    ['nested exists that never holds', 'properties.items.exists(a, properties.items.exists(b, a + b < 0.0))', 'condition', 'cost exceeded'],
    ['nested all with absorbing ||', 'properties.items.all(a, properties.items.all(b, a >= 0.0 || b >= 0.0))', 'condition', 'cost exceeded'],
    ['error absorbed by || after the budget ran out', 'properties.items.exists(a, properties.items.exists(b, a + b < 0.0)) || true', 'condition', 'cost exceeded'],
    ['membership test per element', 'properties.items.filter(x, x in properties.items).size()', 'value', 'cost exceeded'],
    ['deep equality per element', 'properties.items.filter(x, properties.objects == properties.objects).size()', 'value', 'cost exceeded'],
    ['map keys per element', 'properties.items.map(x, size(properties.wide))', 'value', 'cost exceeded'],
    ['big value copied per element', 'properties.items.map(x, properties.objects).size()', 'value', 'cost exceeded'],
    ['string doubling chain', bind(12), 'value', 'cost exceeded'],
    ['list doubling chain', 'cel.bind(a, properties.items + properties.items, cel.bind(b, a + a, cel.bind(c, b + b, cel.bind(d, c + c, cel.bind(e, d + d, size(e + e))))))', 'value', 'cost exceeded'],
    ['size of a huge concatenation', `size(${Array(60).fill('properties.s').join(' + ')})`, 'value', 'cost exceeded'],
    ['string built in a loop', 'properties.items.map(x, properties.s + properties.s).size()', 'value', 'cost exceeded'],
    ['regex over a 1 MiB string', 'properties.mib.matches("(a+)+$")', 'value', 'cost exceeded'],
    ['regex per element', 'properties.items.map(x, properties.s.matches("(a|aa)*b"))', 'value', 'cost exceeded'],
    ['regex with a large program (NFA)', 'properties.s.matches("[\\\\pL\\\\pN]{1000}")', 'value', 'cost exceeded'],
    ['size of a 1 MiB string', 'size(properties.mib)', 'value', 'cost exceeded'],
    ['1 MiB string concatenation', 'properties.mib + "x"', 'value', 'cost exceeded'],
    ['time-zone conversions per element', 'properties.items.map(x, timestamp("2024-01-01T00:00:00Z").getHours("Europe/Paris"))', 'value', 'cost exceeded'],
    ['deeply nested input compared', 'properties.deep == properties.deep', 'value', 'Maximum call stack size exceeded'],
    ['deeply nested input returned', 'properties.deep', 'value', 'Maximum call stack size exceeded'],
    ['long duration read from the event', 'duration(properties.s)', 'value', 'invalid duration'],
  ])('%s: run-time failure', (_label, source, kind, message) => {
    expect(failureMessage(run(source, HOSTILE, kind))).toContain(message);
  });

  it.each<[string, unknown]>([
    ['properties.s.size() > 0', true],
    ['has(properties.mib)', true],
    ['properties.items.exists(a, properties.items.exists(b, a + b == 1.0))', true],
    ['properties.items.map(x, x * 2).size()', 2000],
    ['properties.items.filter(x, x < 3.0)', [0, 1, 2]],
  ])('%s stays within the budget → %j', (source, expected) => {
    expect(run(source, HOSTILE)).toEqual(expected);
  });

  it('passes a 1 MiB string through untouched (reading costs nothing)', () => {
    expect(run('properties.mib', HOSTILE)).toBe((HOSTILE_EVENT.properties as { mib: string }).mib);
  });

  it('keeps working after a stopped evaluation', () => {
    const { compiled } = compile('properties.items.map(a, properties.items.map(b, a + b))');
    expect(compiled!.evaluate(HOSTILE)).toBeInstanceOf(CelFailure);
    expect(compiled!.evaluate({ event: { properties: { items: [1, 2] } }, name: 'n', type: 'track' })).toEqual([
      [2, 3],
      [3, 4],
    ]);
  });

  it('charges the conversion of a large result', () => {
    const { compiled } = compile('properties.objects', 'value', { limits: { maxCost: 1000 } });
    expect(failureMessage(compiled!.evaluate(HOSTILE))).toBe('evaluation cost exceeded the budget of 1000');
    expect(run('properties.objects', HOSTILE)).toBe((HOSTILE_EVENT.properties as { objects: unknown }).objects);
  });
});

describe('limits', () => {
  it('exposes frozen defaults', () => {
    expect(DEFAULT_CEL_LIMITS).toEqual({ maxExpressionLength: 4096, maxNodes: 500, maxDepth: 32, maxCost: 100_000, maxComprehensionNesting: 2, maxLiteralElements: 256, maxRegexLength: 256, maxRegexInstructions: 5000 });
    expect(Object.isFrozen(DEFAULT_CEL_LIMITS)).toBe(true);
  });

  it.each<[Partial<CelLimits>, string, string]>([
    [{ maxExpressionLength: 10 }, 'properties.revenue', 'expression is 18 characters long, more than the 10 allowed'],
    [{ maxNodes: 3 }, '1 + 2 + 3', 'Exceeded maxAstNodes (3)'],
    [{ maxDepth: 2 }, '((1))', 'Exceeded maxDepth (2)'],
    [{ maxLiteralElements: 2 }, '[1, 2, 3]', 'Exceeded maxListElements (2)'],
    [{ maxLiteralElements: 2 }, '{"a": 1, "b": 2, "c": 3}', 'Exceeded maxMapEntries (2)'],
    [{ maxComprehensionNesting: 0 }, 'properties.tags.map(t, t)', 'nest 1 deep, more than the 0 allowed'],
    [{ maxRegexLength: 3 }, 'name.matches("abcd")', 'regex longer than 3 characters'],
    [{ maxRegexInstructions: 10 }, 'name.matches("a{20}")', 'regex compiles to 22 RE2 instructions, more than the 10 allowed'],
  ])('%j refuses %s', (limits, source, message) => {
    const { compiled, problems } = compile(source, 'value', { limits });
    expect(compiled).toBeUndefined();
    expect(problems).toEqual([{ path: WHERE, rule: 'expr', message: expect.stringContaining(message) }]);
  });

  it.each<[number, string, unknown]>([
    [5, 'properties.products.map(p, p.price)', 'failure'],
    [1000, 'properties.products.map(p, p.price)', [2.5, 7.5]],
    [3, 'properties.revenue * 2.0', 25],
  ])('maxCost %d: %s → %j', (maxCost, source, expected) => {
    const result = run(source, INPUT, 'value', { limits: { maxCost } });
    if (expected === 'failure') expect(failureMessage(result)).toBe(`evaluation cost exceeded the budget of ${maxCost}`);
    else expect(result).toEqual(expected);
  });

  it('keeps expressions compiled with different limits apart', () => {
    const strict = compile('properties.products.map(p, p.price)', 'value', { limits: { maxCost: 5, maxNodes: 100 } }).compiled!;
    const loose = compile('properties.products.map(p, p.price)').compiled!;
    expect(strict.evaluate(INPUT)).toBeInstanceOf(CelFailure);
    expect(loose.evaluate(INPUT)).toEqual([2.5, 7.5]);
  });
});
