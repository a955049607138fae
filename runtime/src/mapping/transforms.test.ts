import { createHash } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import { TZDate } from '@date-fns/tz';
import { format as formatDate } from 'date-fns';
import { toStructural } from '../api/crds.js';
import { LookupTable, TransformStep } from '../api/transform.js';
import type { Problem } from '../errors.js';
import { StepFailure, compileLookup, compileTransforms, type CompiledLookup, type JsonType } from './transforms.js';

const sha = (s: string) => createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex');

const TABLES: Record<string, LookupTable> = {
  countries: { entries: { France: 'FR', 'United States': 'US', Deutschland: 'DE' }, ignoreCase: true },
  strictCurrency: { entries: { euro: 'EUR', dollar: 'USD', '1': 'ONE', true: 'YES', '0': 'ZERO', false: 'NO' }, mode: 'strict' },
  withDefault: { entries: { a: 1, b: 2 }, default: 0 },
  nullDefault: { entries: { a: 1 }, default: null },
  objects: { entries: { gold: { tier: 3, perks: ['lounge'] } }, mode: 'strict' },
};

function tables(): Map<string, CompiledLookup> {
  const problems: Problem[] = [];
  const out = new Map<string, CompiledLookup>();
  for (const [name, t] of Object.entries(TABLES)) out.set(name, compileLookup(name, t, `/lookups/${name}`, problems)!);
  expect(problems).toEqual([]);
  return out;
}
const LOOKUPS = tables();

type Outcome = { value: unknown } | { failure: string; fatal: boolean };

/** Compiles `steps` (expecting no problem) and runs them on `input`. */
function run(steps: unknown[], input: unknown): Outcome {
  const problems: Problem[] = [];
  const compiled = compileTransforms(steps as TransformStep[], '/t', problems, LOOKUPS);
  expect(problems).toEqual([]);
  const r = compiled!.run(input);
  return r instanceof StepFailure ? { failure: r.message, fatal: r.fatal } : { value: r };
}

const ok = (value: unknown): Outcome => ({ value });
const fail = (failure: string, fatal = false): Outcome => ({ failure, fatal });

/** Compiles `steps` and returns the problems. */
function problemsOf(steps: unknown[]): Problem[] {
  const problems: Problem[] = [];
  const compiled = compileTransforms(steps as TransformStep[], '/global/fields/3/transforms', problems, LOOKUPS);
  expect(compiled === undefined).toBe(problems.length > 0);
  return problems;
}

const MB = 'x'.repeat(1024 * 1024);

describe('absent, empty and falsy inputs', () => {
  it.each<[string, unknown[], unknown, Outcome]>([
    ['undefined is absent', [{ trim: true }], undefined, ok(undefined)],
    ['null is absent', [{ trim: true }], null, ok(undefined)],
    ['no steps keep the value', [], 'x', ok('x')],
    ['"" is a string', [{ trim: true }], '', ok('')],
    ['"" has no case', [{ case: 'upper' }], '', ok('')],
    ['0 to string', [{ convert: 'string' }], 0, ok('0')],
    ['false to string', [{ convert: 'string' }], false, ok('false')],
    ['0 to boolean', [{ convert: 'boolean' }], 0, ok(false)],
    ['false stays false', [{ convert: 'boolean' }], false, ok(false)],
    ['"" is not a number', [{ convert: 'number' }], '', fail('convert number: "" is not a decimal number')],
    ['0 multiplied', [{ multiply: 5 }], 0, ok(0)],
    ['0 looked up', [{ lookup: 'strictCurrency' }], 0, ok('ZERO')],
    ['false looked up', [{ lookup: 'strictCurrency' }], false, ok('NO')],
    ['a null result ends the chain', [{ json: 'decode' }, { trim: true }], 'null', ok(undefined)],
    ['a null lookup default is absent', [{ lookup: 'nullDefault' }], 'zzz', ok(undefined)],
    ['the first failure stops the chain', [{ convert: 'number' }, { convert: 'string' }], 'abc', fail('convert number: "abc" is not a decimal number')],
  ])('%s', (_name, steps, input, expected) => {
    expect(run(steps, input)).toEqual(expected);
  });
});

describe('string steps', () => {
  it.each<[string, unknown[], unknown, Outcome]>([
    // trim
    ['trim spaces', [{ trim: true }], '  a b  ', ok('a b')],
    ['trim Unicode whitespace', [{ trim: true }], '\u00a0\u2003\t\n a \u3000\ufeff', ok('a')],
    ['trim false is a no-op', [{ trim: false }], 42, ok(42)],
    ['trim a number', [{ trim: true }], 42, fail('trim: expected a string, got number')],
    ['trim an object', [{ trim: true }], { a: 1 }, fail('trim: expected a string, got object')],
    ['trim 1 MiB', [{ trim: true }, { truncate: 3 }], ` ${MB} `, ok('xxx')],
    // case
    ['lower', [{ case: 'lower' }], 'ÀBC Straße', ok('àbc straße')],
    ['upper', [{ case: 'upper' }], 'àbc straße', ok('ÀBC STRASSE')],
    ['upper keeps Turkish-free mapping', [{ case: 'upper' }], 'i', ok('I')],
    ['title', [{ case: 'title' }], 'jean-luc PICARD', ok('Jean-Luc Picard')],
    ['title non-Latin', [{ case: 'title' }], 'élodie владимир', ok('Élodie Владимир')],
    ['title leaves apostrophes', [{ case: 'title' }], "o'neil", ok("O'neil")],
    ['case a number', [{ case: 'lower' }], 5, fail('case: expected a string, got number')],
    ['case a boolean', [{ case: 'lower' }], true, fail('case: expected a string, got boolean')],
    // replace
    ['replace all literal', [{ replace: { pattern: '.', with: '-' } }], 'a.b.c', ok('a-b-c')],
    ['replace first literal', [{ replace: { pattern: '.', with: '-', all: false } }], 'a.b.c', ok('a-b.c')],
    ['replace deletes by default', [{ replace: { pattern: ' ' } }], 'a b c', ok('abc')],
    ['literal $ in with', [{ replace: { pattern: 'x', with: '$&$1$$' } }], 'axb', ok('a$&$1$$b')],
    ['literal pattern is not a regex', [{ replace: { pattern: 'a+', with: '!' } }], 'aa a+', ok('aa !')],
    ['regex all', [{ replace: { pattern: '[0-9]+', with: '#', regex: true } }], 'a1b22c333', ok('a#b#c#')],
    ['regex first', [{ replace: { pattern: '[0-9]+', with: '#', regex: true, all: false } }], 'a1b22', ok('a#b22')],
    ['regex groups', [{ replace: { pattern: '(\\w+)@(\\w+)', with: '$2 at $1', regex: true } }], 'joe@example', ok('example at joe')],
    ['regex named group', [{ replace: { pattern: '(?P<d>\\d+)', with: '<$<d>>', regex: true } }], 'v12', ok('v<12>')],
    ['regex case-insensitive flag', [{ replace: { pattern: '(?i)hello', with: 'bye', regex: true } }], 'HeLLo you', ok('bye you')],
    ['regex on emoji', [{ replace: { pattern: '.', with: 'x', regex: true } }], '😀é', ok('xx')],
    ['regex nested quantifier stays linear', [{ replace: { pattern: '(a+)+$', with: 'Z', regex: true } }], `${'a'.repeat(50_000)}!`, ok(`${'a'.repeat(50_000)}!`)],
    ['regex on 1 MiB', [{ replace: { pattern: 'x+', with: 'y', regex: true } }], MB, ok('y')],
    ['replace a number', [{ replace: { pattern: '1' } }], 1, fail('replace: expected a string, got number')],
    // split / join
    ['split', [{ split: ',' }], 'a,b,,c', ok(['a', 'b', '', 'c'])],
    ['split into code points', [{ split: '' }], 'a😀é', ok(['a', '😀', 'é'])],
    ['split no separator found', [{ split: ';' }], 'abc', ok(['abc'])],
    ['split an array', [{ split: ',' }], ['a,b'], fail('split: expected a string, got array')],
    ['split then trim each', [{ split: ',' }, { trim: true }], ' a , b ', ok(['a', 'b'])],
    ['join', [{ join: ', ' }], ['a', 1, true, 2.5], ok('a, 1, true, 2.5')],
    ['join empty array', [{ join: ',' }], [], ok('')],
    ['join a string', [{ join: ',' }], 'abc', fail('join: expected an array, got string')],
    ['join an object element', [{ join: ',' }], ['a', { b: 1 }], fail('join: expected strings, numbers or booleans, got object (element 1)')],
    ['join a null element', [{ join: ',' }], ['a', null], fail('join: expected strings, numbers or booleans, got null (element 1)')],
    // substring / truncate count code points
    ['substring', [{ substring: { start: 1, length: 3 } }], 'abcdef', ok('bcd')],
    ['substring to the end', [{ substring: { start: 2 } }], 'abcdef', ok('cdef')],
    ['substring past the end', [{ substring: { start: 10 } }], 'abc', ok('')],
    ['substring of emoji', [{ substring: { start: 1, length: 2 } }], 'a😀b😀c', ok('😀b')],
    ['substring zero length', [{ substring: { start: 0, length: 0 } }], 'abc', ok('')],
    ['substring keeps combining marks as code points', [{ substring: { start: 0, length: 2 } }], 'e\u0301x', ok('e\u0301')],
    ['truncate', [{ truncate: 3 }], 'abcdef', ok('abc')],
    ['truncate short', [{ truncate: 10 }], 'abc', ok('abc')],
    ['truncate never splits a pair', [{ truncate: 2 }], '😀😀😀', ok('😀😀')],
    ['truncate a family emoji by code points', [{ truncate: 1 }], '👨‍👩‍👧', ok('👨')],
    ['truncate lone surrogates count one each', [{ truncate: 1 }], '\ud800\ud800', ok('\ud800')],
    ['truncate 1 MiB', [{ truncate: 5 }], MB, ok('xxxxx')],
    ['truncate a number', [{ truncate: 5 }], 123456, fail('truncate: expected a string, got number')],
  ])('%s', (_name, steps, input, expected) => {
    expect(run(steps, input)).toEqual(expected);
  });
});

describe('number steps', () => {
  it.each<[string, unknown[], unknown, Outcome]>([
    // convert string
    ['string of a string', [{ convert: 'string' }], 'x', ok('x')],
    ['string of an integer', [{ convert: 'string' }], 42, ok('42')],
    ['string of a float', [{ convert: 'string' }], 0.1, ok('0.1')],
    ['string of a big number', [{ convert: 'string' }], 1e21, ok('1e+21')],
    ['string of -0', [{ convert: 'string' }], -0, ok('0')],
    ['string of true', [{ convert: 'string' }], true, ok('true')],
    ['string of an object', [{ convert: 'string' }], { a: 1 }, fail('convert string: expected a string, number or boolean, got object')],
    // convert number
    ['number of a number', [{ convert: 'number' }], 1.5, ok(1.5)],
    ['number of a decimal string', [{ convert: 'number' }], ' -1.5e3 ', ok(-1500)],
    ['number of +.5', [{ convert: 'number' }], '+.5', ok(0.5)],
    ['number of "5."', [{ convert: 'number' }], '5.', ok(5)],
    ['number of hex', [{ convert: 'number' }], '0x1F', fail('convert number: "0x1F" is not a decimal number')],
    ['number of Infinity', [{ convert: 'number' }], 'Infinity', fail('convert number: "Infinity" is not a decimal number')],
    ['number of NaN', [{ convert: 'number' }], 'NaN', fail('convert number: "NaN" is not a decimal number')],
    ['number of 1e999', [{ convert: 'number' }], '1e999', fail('convert number: "1e999" is not a decimal number')],
    ['number of spaces', [{ convert: 'number' }], '   ', fail('convert number: "   " is not a decimal number')],
    ['number of "1 000"', [{ convert: 'number' }], '1 000', fail('convert number: "1 000" is not a decimal number')],
    ['number of a boolean', [{ convert: 'number' }], true, fail('convert number: expected a number or a numeric string, got boolean')],
    // convert integer
    ['integer truncates', [{ convert: 'integer' }], 12.9, ok(12)],
    ['integer truncates toward zero', [{ convert: 'integer' }], ' -12.9 ', ok(-12)],
    ['integer of -0.5 is 0', [{ convert: 'integer' }], -0.5, ok(0)],
    ['integer of an exponent', [{ convert: 'integer' }], '1e3', ok(1000)],
    ['integer unsafe', [{ convert: 'integer' }], '9007199254740993', fail('convert integer: 9007199254740992 is beyond the safe integer range')],
    // convert boolean
    ...(['true', 'TRUE', ' Yes ', '1'] as const).map((s): [string, unknown[], unknown, Outcome] => [`boolean of ${JSON.stringify(s)}`, [{ convert: 'boolean' }], s, ok(true)]),
    ...(['false', 'No', '0'] as const).map((s): [string, unknown[], unknown, Outcome] => [`boolean of ${JSON.stringify(s)}`, [{ convert: 'boolean' }], s, ok(false)]),
    ['boolean of 1', [{ convert: 'boolean' }], 1, ok(true)],
    ['boolean of 2', [{ convert: 'boolean' }], 2, fail('convert boolean: only the numbers 1 and 0 are booleans, got 2')],
    ['boolean of "y"', [{ convert: 'boolean' }], 'y', fail('convert boolean: "y" is not true, false, yes, no, 1 or 0')],
    ['boolean of ""', [{ convert: 'boolean' }], '', fail('convert boolean: "" is not true, false, yes, no, 1 or 0')],
    // round: half away from zero, on the decimal form
    ['round 1.005', [{ round: 2 }], 1.005, ok(1.01)],
    ['round 1.255', [{ round: 2 }], 1.255, ok(1.26)],
    ['round 2.5', [{ round: 0 }], 2.5, ok(3)],
    ['round -2.5', [{ round: 0 }], -2.5, ok(-3)],
    ['round -1.005', [{ round: 2 }], -1.005, ok(-1.01)],
    ['round -0.004 to 0', [{ round: 2 }], -0.004, ok(0)],
    ['round 1e-7', [{ round: 2 }], 1e-7, ok(0)],
    ['round 1.23456e-5 to 6', [{ round: 6 }], 1.23456e-5, ok(0.000012)],
    ['round an integer', [{ round: 2 }], 7, ok(7)],
    ['round a huge number', [{ round: 2 }], 1.5e300, ok(1.5e300)],
    ['round 10 decimals', [{ round: 10 }], 0.12345678905, ok(0.1234567891)],
    ['round a string', [{ round: 2 }], '1.005', fail('round: expected a number, got string')],
    // multiply
    ['cents to units', [{ multiply: 0.01 }], 1999, ok(19.990000000000002)],
    ['cents to units, rounded', [{ multiply: 0.01 }, { round: 2 }], 1999, ok(19.99)],
    ['multiply negative', [{ multiply: -2 }], 3, ok(-6)],
    ['multiply to -0 gives 0', [{ multiply: -1 }], 0, ok(0)],
    ['multiply overflow', [{ multiply: 1e300 }], 1e300, fail('multiply: 1e+300 × 1e+300 is not a finite number')],
    ['multiply a string', [{ multiply: 2 }], '2', fail('multiply: expected a number, got string')],
    ['convert then multiply', [{ convert: 'number' }, { multiply: 100 }, { round: 0 }], '19.99', ok(1999)],
  ])('%s', (_name, steps, input, expected) => {
    const outcome = run(steps, input);
    expect(outcome).toEqual(expected);
    if ('value' in outcome && outcome.value === 0) expect(Object.is(outcome.value, -0)).toBe(false);
  });
});

describe('date', () => {
  const NY = 'America/New_York';

  it('reads the canonical toISOString form like Date.parse, across years, leap days and month ends', () => {
    const instants = [Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(1970, 0, 1), Date.UTC(2000, 11, 31, 12, 0, 0, 1), Date.UTC(2100, 1, 28, 0, 0, 0, 500)];
    for (let i = 0; i < 200; i++) instants.push(Date.UTC(1900 + ((i * 37) % 300), (i * 5) % 12, 1 + ((i * 7) % 28), (i * 3) % 24, (i * 11) % 60, (i * 13) % 60, (i * 17) % 1000));
    for (const ms of instants) {
      const iso = new Date(ms).toISOString();
      expect({ iso, out: run([{ date: { to: 'unixMillis' } }], iso) }).toEqual({ iso, out: ok(ms) });
    }
  });

  it.each(['2026-13-20T15:04:20.108Z', '2026-02-30T15:04:20.108Z', '2026-11-20T24:04:20.108Z', '2026-11-2xT15:04:20.108Z', '2026-11-20T15:04:60.108Z'])('refuses the canonical-looking but invalid %s', (text) => {
    expect(run([{ date: { to: 'unixMillis' } }], text)).toEqual(expect.objectContaining({ failure: expect.stringContaining('date') }));
  });

  it.each<[string, Record<string, unknown>, unknown, Outcome]>([
    // Precision: sub-millisecond digits survive to unixMicros.
    ['ISO micros', { to: 'unixMicros' }, '2026-11-20T15:04:20.108123Z', ok(1795187060108123)],
    ['ISO nanos truncated', { to: 'unixMicros' }, '2026-11-20T15:04:20.108123999Z', ok(1795187060108123)],
    ['ISO one fraction digit', { to: 'unixMicros' }, '2026-11-20T15:04:20.1Z', ok(1795187060100000)],
    ['ISO comma fraction', { to: 'unixMicros' }, '2026-11-20T15:04:20,5Z', ok(1795187060500000)],
    ['ISO no seconds', { to: 'unixSeconds' }, '2026-11-20T15:04Z', ok(1795187040)],
    ['ISO millis', { to: 'unixMillis' }, '2026-11-20T15:04:20.108Z', ok(1795187060108)],
    ['ISO seconds floor', { to: 'unixSeconds' }, '2026-11-20T15:04:20.999Z', ok(1795187060)],
    ['ISO with offset', { to: 'unixSeconds' }, '2026-11-20T16:04:20+01:00', ok(1795187060)],
    ['ISO with basic offset', { to: 'unixSeconds' }, '2026-11-20T10:04:20-0500', ok(1795187060)],
    ['ISO with hour offset', { to: 'unixSeconds' }, '2026-11-20T20:34:20+05:30', ok(1795187060)],
    ['ISO lower-case t and z', { to: 'unixSeconds' }, '2026-11-20t15:04:20z', ok(1795187060)],
    ['ISO space separator', { to: 'unixSeconds' }, '2026-11-20 15:04:20Z', ok(1795187060)],
    ['ISO with surrounding spaces', { to: 'unixSeconds' }, ' 2026-11-20T15:04:20Z\n', ok(1795187060)],
    ['date only is UTC midnight', { to: 'unixSeconds' }, '2026-11-20', ok(1795132800)],
    ['leap day', { to: 'iso' }, '2024-02-29', ok('2024-02-29T00:00:00.000Z')],
    ['year 0001', { to: 'unixMillis' }, '0001-01-01T00:00:00Z', ok(-62135596800000)],
    ['before 1970', { to: 'unixSeconds' }, '1969-12-31T23:59:59.5Z', ok(-1)],
    // Refused ISO inputs.
    ['ISO without zone', { to: 'unixSeconds' }, '2026-11-20T15:04:20', fail('date: "2026-11-20T15:04:20" is not an ISO 8601 date-time with a time zone (Z or ±hh:mm) or a date YYYY-MM-DD')],
    ['ISO 30 February', { to: 'unixSeconds' }, '2026-02-30', fail('date: "2026-02-30" is not a valid date-time')],
    ['ISO hour 24', { to: 'unixSeconds' }, '2026-11-20T24:00:00Z', fail('date: "2026-11-20T24:00:00Z" is not a valid date-time')],
    ['ISO leap second', { to: 'unixSeconds' }, '2026-12-31T23:59:60Z', fail('date: "2026-12-31T23:59:60Z" is not a valid date-time')],
    ['ISO week date', { to: 'unixSeconds' }, '2026-W47-5', fail('date: "2026-W47-5" is not an ISO 8601 date-time with a time zone (Z or ±hh:mm) or a date YYYY-MM-DD')],
    ['ISO of a number', { to: 'unixSeconds' }, 1795187060, fail('date: expected an ISO 8601 string, got number')],
    ['ISO empty', { to: 'unixSeconds' }, '', fail('date: "" is not an ISO 8601 date-time with a time zone (Z or ±hh:mm) or a date YYYY-MM-DD')],
    // ISO output.
    ['ISO output keeps micros', { to: 'iso' }, '2026-11-20T16:04:20.108123+01:00', ok('2026-11-20T15:04:20.108123Z')],
    ['ISO output millis', { to: 'iso' }, '2026-11-20T15:04:20Z', ok('2026-11-20T15:04:20.000Z')],
    ['ISO output in a time zone', { to: 'iso', timeZone: NY }, '2026-11-20T15:04:20.108Z', ok('2026-11-20T10:04:20.108-05:00')],
    ['ISO output in a half-hour zone', { to: 'iso', timeZone: 'Asia/Kolkata' }, '2026-11-20T15:04:20Z', ok('2026-11-20T20:34:20.000+05:30')],
    // Unix inputs.
    ['unix seconds', { from: 'unixSeconds', to: 'iso' }, 1795187060, ok('2026-11-20T15:04:20.000Z')],
    ['unix seconds fraction (string)', { from: 'unixSeconds', to: 'unixMicros' }, '1795187060.108123', ok(1795187060108123)],
    ['unix seconds fraction (number)', { from: 'unixSeconds', to: 'unixMillis' }, 1795187060.108, ok(1795187060108)],
    ['unix seconds exponent', { from: 'unixSeconds', to: 'unixMillis' }, '1.79518706e9', ok(1795187060000)],
    ['unix millis', { from: 'unixMillis', to: 'unixSeconds' }, 1795187060999, ok(1795187060)],
    ['unix millis negative floors', { from: 'unixMillis', to: 'unixSeconds' }, -1, ok(-1)],
    ['unix millis string', { from: 'unixMillis', to: 'iso' }, ' 1795187060108 ', ok('2026-11-20T15:04:20.108Z')],
    ['unix micros', { from: 'unixMicros', to: 'iso' }, 1795187060108123, ok('2026-11-20T15:04:20.108123Z')],
    ['unix micros negative', { from: 'unixMicros', to: 'iso' }, -1, ok('1969-12-31T23:59:59.999999Z')],
    ['unix micros string negative fraction', { from: 'unixMicros', to: 'unixMicros' }, '-1.5', ok(-2)],
    ['unix micros round trip', { from: 'unixMicros', to: 'unixMicros' }, 1795187060108123, ok(1795187060108123)],
    ['unix seconds zero', { from: 'unixSeconds', to: 'iso' }, 0, ok('1970-01-01T00:00:00.000Z')],
    ['unix not a number', { from: 'unixSeconds', to: 'iso' }, 'soon', fail('date: "soon" is not a unix time')],
    ['unix boolean', { from: 'unixSeconds', to: 'iso' }, true, fail('date: expected a number or a numeric string, got boolean')],
    ['unix out of range', { from: 'unixSeconds', to: 'iso' }, 1e13, fail('date: the instant is out of range')],
    ['unix string out of range', { from: 'unixSeconds', to: 'iso' }, '1e20', fail('date: "1e20" is out of range')],
    // Formats (date-fns, in a time zone).
    ['Google Ads format', { to: 'format', pattern: 'yyyy-MM-dd HH:mm:ssxxx' }, '2026-11-20T15:04:20Z', ok('2026-11-20 15:04:20+00:00')],
    ['Google Ads format in New York', { to: 'format', pattern: 'yyyy-MM-dd HH:mm:ssxxx', timeZone: NY }, '2026-11-20T15:04:20Z', ok('2026-11-20 10:04:20-05:00')],
    ['format with quoted text', { to: 'format', pattern: "EEEE d MMMM yyyy 'at' h a", timeZone: 'Europe/Paris' }, '2026-11-20T15:04:20Z', ok('Friday 20 November 2026 at 4 PM')],
    // DST in New York: spring forward on 2026-03-08 at 02:00, fall back on 2026-11-01 at 02:00.
    ['NY before spring forward', { to: 'format', pattern: 'yyyy-MM-dd HH:mm:ssxxx', timeZone: NY }, '2026-03-08T06:59:59Z', ok('2026-03-08 01:59:59-05:00')],
    ['NY after spring forward', { to: 'format', pattern: 'yyyy-MM-dd HH:mm:ssxxx', timeZone: NY }, '2026-03-08T07:00:00Z', ok('2026-03-08 03:00:00-04:00')],
    ['NY first 01:30 of fall back', { to: 'iso', timeZone: NY }, '2026-11-01T05:30:00Z', ok('2026-11-01T01:30:00.000-04:00')],
    ['NY second 01:30 of fall back', { to: 'iso', timeZone: NY }, '2026-11-01T06:30:00Z', ok('2026-11-01T01:30:00.000-05:00')],
    ['NY local offsets parse across DST', { to: 'unixSeconds' }, '2026-03-08T03:00:00-04:00', ok(1772953200)],
    ['NY local offsets parse across DST (before)', { to: 'unixSeconds' }, '2026-03-08T01:59:59-05:00', ok(1772953199)],
    ['Paris spring forward', { to: 'iso', timeZone: 'Europe/Paris' }, '2026-03-29T01:00:00Z', ok('2026-03-29T03:00:00.000+02:00')],
    ['Paris before spring forward', { to: 'iso', timeZone: 'Europe/Paris' }, '2026-03-29T00:59:59Z', ok('2026-03-29T01:59:59.000+01:00')],
  ])('%s', (_name, date, input, expected) => {
    expect(run([{ date }], input)).toEqual(expected);
  });

  it('converts each element of an array', () => {
    expect(run([{ date: { to: 'unixSeconds' } }], ['2026-11-20T15:04:20Z', '2026-11-20'])).toEqual(ok([1795187060, 1795132800]));
    expect(run([{ date: { to: 'unixSeconds' } }], ['2026-11-20T15:04:20Z', 'nope'])).toEqual(
      fail('date: "nope" is not an ISO 8601 date-time with a time zone (Z or ±hh:mm) or a date YYYY-MM-DD (element 1)'),
    );
  });
});

describe('date formats match date-fns', () => {
  // Supported tokens run on a precompiled renderer; date-fns itself is the oracle here.
  const PATTERNS = [
    'yyyy-MM-dd HH:mm:ssxxx',
    "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    'y yy yyy yyyy yyyyy',
    'M MM d dd H HH HHH h hh m mm s ss',
    'S SS SSS SSSS SSSSSS',
    'a aa aaa aaaa aaaaa',
    'X XX XXX XXXX XXXXX x xx xxx xxxx xxxxx',
    "'quoted ''text''' yyyyMMdd '' [dd/MM/yy] é_1",
    "h:mm a 'on' M/d",
    // Not on the fast path: date-fns per event.
    'MMMM do, yyyy',
    'EEEE, MMM d',
    'PPpp',
    'QQQ T t O zzzz',
  ];
  const ZONES = ['UTC', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns', 'Europe/London', 'Pacific/Kiritimati', '+05:30'];
  const INSTANTS = [
    Date.UTC(2026, 10, 20, 15, 4, 20, 108),
    Date.UTC(2026, 2, 8, 6, 59, 59, 999), // New York, just before spring forward
    Date.UTC(2026, 2, 8, 7, 0, 0, 0),
    Date.UTC(2026, 9, 3, 15, 29, 59, 999), // Lord Howe, around its half-hour shift
    Date.UTC(2026, 9, 3, 15, 30, 0, 0),
    Date.UTC(2026, 0, 1, 0, 0, 0, 0),
    Date.UTC(2000, 1, 29, 23, 59, 59, 5),
    Date.UTC(1850, 0, 1, 12, 0, 0, 0), // local mean time, offsets in seconds
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    -62198755200000, // a year before year 1
    0,
  ];
  it.each(PATTERNS.flatMap((pattern) => ZONES.map((timeZone) => [pattern, timeZone] as const)))('%j in %s', (pattern, timeZone) => {
    const problems: Problem[] = [];
    const compiled = compileTransforms([{ date: { from: 'unixMillis', to: 'format', pattern, timeZone } }], '/t', problems, LOOKUPS)!;
    expect(problems).toEqual([]);
    for (const ms of INSTANTS) {
      for (const t of [ms, ms + 1, ms]) {
        expect([t, compiled.run(t)]).toEqual([t, formatDate(new TZDate(t, timeZone), pattern)]);
      }
    }
  });

  it.each(ZONES)('ISO output in %s has the offset date-fns gives', (timeZone) => {
    const problems: Problem[] = [];
    const compiled = compileTransforms([{ date: { from: 'unixMillis', to: 'iso', timeZone } }], '/t', problems, LOOKUPS)!;
    for (const ms of INSTANTS.filter((t) => t > 0 && t < Date.UTC(9000, 0, 1))) {
      const expected = timeZone === 'UTC' ? new Date(ms).toISOString() : formatDate(new TZDate(ms, timeZone), "yyyy-MM-dd'T'HH:mm:ss.SSSxxx");
      expect([ms, compiled.run(ms)]).toEqual([ms, expected]);
    }
  });
});

describe('lookup', () => {
  it.each<[string, string, unknown, Outcome]>([
    ['hit', 'countries', 'France', ok('FR')],
    ['ignoreCase hit', 'countries', 'UNITED STATES', ok('US')],
    ['ignoreCase hit with different case in table', 'countries', 'deutschland', ok('DE')],
    ['lenient miss keeps the value', 'countries', 'Spain', ok('Spain')],
    ['lenient miss of an object keeps it', 'countries', { a: 1 }, ok({ a: 1 })],
    ['lenient miss gives the default', 'withDefault', 'z', ok(0)],
    ['case-sensitive by default', 'withDefault', 'A', ok(0)],
    ['strict hit', 'strictCurrency', 'euro', ok('EUR')],
    ['strict miss is fatal', 'strictCurrency', 'yen', fail('lookup strictCurrency: no entry for "yen" (strict table)', true)],
    ['strict is case-sensitive', 'strictCurrency', 'EURO', fail('lookup strictCurrency: no entry for "EURO" (strict table)', true)],
    ['numbers are stringified', 'strictCurrency', 1, ok('ONE')],
    ['booleans are stringified', 'strictCurrency', true, ok('YES')],
    ['1.0 is "1"', 'strictCurrency', 1.0, ok('ONE')],
    ['objects never match', 'strictCurrency', { euro: 1 }, fail('lookup strictCurrency: a value of type object has no entry (strict table)', true)],
    ['each element', 'countries', ['france', 'Spain'], ok(['FR', 'Spain'])],
    ['strict miss in an array is fatal', 'strictCurrency', ['euro', 'yen'], fail('lookup strictCurrency: no entry for "yen" (strict table) (element 1)', true)],
    ['object values', 'objects', 'gold', ok({ tier: 3, perks: ['lounge'] })],
  ])('%s', (_name, table, input, expected) => {
    expect(run([{ lookup: table }], input)).toEqual(expected);
  });

  it('returns frozen entry values, so no one can change the table', () => {
    const outcome = run([{ lookup: 'objects' }], 'gold') as { value: { perks: string[] } };
    expect(Object.isFrozen(outcome.value)).toBe(true);
    expect(Object.isFrozen(outcome.value.perks)).toBe(true);
  });

  it('does not keep a reference to the spec', () => {
    const entries: Record<string, unknown> = { k: { v: 1 } };
    const problems: Problem[] = [];
    const table = compileLookup('t', { entries }, '/lookups/t', problems)!;
    (entries.k as { v: number }).v = 2;
    expect(table.get('k')).toEqual({ v: 1 });
  });

  it.each<[string, LookupTable, JsonType | undefined]>([
    ['strict, all strings', { entries: { a: 'x', b: 'y' }, mode: 'strict' }, 'string'],
    ['lenient with a string default', { entries: { a: 'x' }, default: 'z' }, 'string'],
    ['integers and numbers', { entries: { a: 1, b: 1.5 }, mode: 'strict' }, 'number'],
    ['lenient without default keeps the input', { entries: { a: 'x' } }, undefined],
    ['mixed types', { entries: { a: 'x', b: 1 }, mode: 'strict' }, undefined],
    ['default of another type', { entries: { a: 'x' }, default: 1 }, undefined],
  ])('value type: %s', (_name, table, expected) => {
    const problems: Problem[] = [];
    expect(compileLookup('t', table, '/lookups/t', problems)!.valueType).toBe(expected);
    expect(problems).toEqual([]);
  });

  it.each<[string, string, unknown, Problem[]]>([
    [
      'keys colliding under ignoreCase with different values',
      'c',
      { entries: { us: 'US', US: 'USA' }, ignoreCase: true },
      [{ path: '/lookups/c/entries/US', rule: 'lookup', message: 'with ignoreCase, "US" and "us" are the same key but map to different values' }],
    ],
    ['a key with / and ~ is escaped in the pointer', 'c', { entries: { 'a/b~': 1, 'A/B~': 2 }, ignoreCase: true }, [{ path: '/lookups/c/entries/A~1B~0', rule: 'lookup', message: 'with ignoreCase, "A/B~" and "a/b~" are the same key but map to different values' }]],
    ['a bad mode', 'c', { entries: {}, mode: 'loose' }, [{ path: '/lookups/c/mode', rule: 'enum', message: 'must be one of "strict", "lenient"' }]],
    ['no entries', 'c', { mode: 'strict' }, [{ path: '/lookups/c/entries', rule: 'required', message: 'is required' }]],
    ['an unknown field', 'c', { entries: {}, fallback: 1 }, [{ path: '/lookups/c/fallback', rule: 'additionalProperties', message: 'is not a known field' }]],
    ['a bad name', '1st', { entries: {} }, [{ path: '/lookups/c', rule: 'lookup', message: 'a lookup table name is a letter, then letters, digits, _ or -, at most 63 characters: "1st"' }]],
  ])('problem: %s', (_name, name, table, expected) => {
    const problems: Problem[] = [];
    expect(compileLookup(name, table as LookupTable, '/lookups/c', problems)).toBeUndefined();
    expect(problems).toEqual(expected);
  });

  it('accepts keys colliding under ignoreCase with equal values', () => {
    const problems: Problem[] = [];
    const table = compileLookup('c', { entries: { us: { c: 'US' }, US: { c: 'US' } }, ignoreCase: true }, '/lookups/c', problems);
    expect(problems).toEqual([]);
    expect(table!.get('Us')).toEqual({ c: 'US' });
  });

  it('takes 10,000 entries', () => {
    const entries = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i]));
    const problems: Problem[] = [];
    const table = compileLookup('big', { entries, mode: 'strict' }, '/lookups/big', problems)!;
    expect(problems).toEqual([]);
    expect(table.get('k9999')).toBe(9999);
    const tooMany = { ...entries, extra: 1 };
    expect(compileLookup('big', { entries: tooMany }, '/lookups/big', problems)).toBeUndefined();
    expect(problems).toEqual([{ path: '/lookups/big/entries', rule: 'maxProperties', message: 'must NOT have more than 10000 properties' }]);
  });
});

describe('hash, normalize and phone steps', () => {
  const digest = sha('someone@example.com');
  it.each<[string, unknown[], unknown, Outcome]>([
    ['hash email', [{ hash: 'email' }], ' John_Smith@Gmail.com ', ok(sha('john_smith@gmail.com'))],
    ['hash emailGoogle', [{ hash: 'emailGoogle' }], 'John.Smith@gmail.com', ok(sha('johnsmith@gmail.com'))],
    ['hash emailGoogle keeps other domains', [{ hash: 'emailGoogle' }], 'John.Smith@outlook.com', ok(sha('john.smith@outlook.com'))],
    ['hash phone from a number', [{ hash: 'phone' }], 16505551212, ok(sha('16505551212'))],
    ['hash phoneE164', [{ hash: 'phoneE164' }], '+33 6 12 34 56 78', ok(sha('+33612345678'))],
    ['hash a national phone fails', [{ hash: 'phone' }], '06 12 34 56 78', fail('hash phone: no country code: write the number with + and its country code, or use a phone step with defaultCountry')],
    ['phone with default country, then hash', [{ phone: { format: 'digits', defaultCountry: 'FR' } }, { hash: 'phone' }], '06 12 34 56 78', ok(sha('33612345678'))],
    ['phone UK e164', [{ phone: { format: 'e164', defaultCountry: 'GB' } }], '020 7946 0958', ok('+442079460958')],
    ['phone US digits', [{ phone: { format: 'digits', defaultCountry: 'US' } }], '(650) 555-1212', ok('16505551212')],
    ['phone keeps a digest', [{ phone: { format: 'digits' } }], digest.toUpperCase(), ok(digest)],
    ['phone of a boolean', [{ phone: { format: 'digits' } }], true, fail('phone: expected a string or number, got boolean')],
    ['hash zip from a number', [{ hash: 'postalCode' }], 94025, ok(sha('94025'))],
    ['hash externalId from a number', [{ hash: 'externalId' }], 12345, ok(sha('12345'))],
    ['hash sha256 as is', [{ hash: 'sha256' }], ' X ', ok(sha(' X '))],
    ['hash keeps a digest', [{ hash: 'email' }], digest.toUpperCase(), ok(digest)],
    ['hash twice is hash once', [{ hash: 'email' }, { hash: 'email' }], 'A@B.C', ok(sha('a@b.c'))],
    ['hash an empty string', [{ hash: 'email' }], '', fail('hash email: empty value')],
    ['hash a boolean', [{ hash: 'sha256' }], false, fail('hash sha256: expected a string or number, got boolean')],
    ['hash an object', [{ hash: 'email' }], { em: 'a@b.c' }, fail('hash email: expected a string or number, got object')],
    ['hash an array of emails', [{ hash: 'email' }], ['A@B.C', ' d@e.f '], ok([sha('a@b.c'), sha('d@e.f')])],
    ['hash an array with a bad element', [{ hash: 'email' }], ['a@b.c', 'nope'], fail('hash email: not an email address (element 1)')],
    ['hash an array with null', [{ hash: 'email' }], ['a@b.c', null], fail('hash email: expected a string or number, got null (element 1)')],
    ['hash gender', [{ hash: 'gender' }], 'Female', ok(sha('f'))],
    ['hash dateOfBirth', [{ date: { to: 'iso' } }, { hash: 'dateOfBirth' }], '1990-01-15', ok(sha('19900115'))],
    ['hash a non-Latin name', [{ hash: 'firstName' }], ' Владимир ', ok(sha('владимир'))],
    ['normalize email', [{ normalize: 'email' }], ' A@B.C ', ok('a@b.c')],
    ['normalize country', [{ normalize: 'country' }], 'France', fail('normalize country: expected an ISO 3166-1 alpha-2 country code')],
    ['normalize state', [{ normalize: 'state' }], 'California', ok('ca')],
    ['normalize keeps a digest', [{ normalize: 'city' }], digest, ok(digest)],
    ['normalize then hash sha256', [{ normalize: 'city' }, { hash: 'sha256' }], 'New York', ok(sha('newyork'))],
  ])('%s', (_name, steps, input, expected) => {
    expect(run(steps, input)).toEqual(expected);
  });
});

describe('json and flatten', () => {
  const deep = (levels: number): Record<string, unknown> => {
    let o: Record<string, unknown> = { leaf: 1 };
    for (let i = 1; i < levels; i++) o = { n: o };
    return o;
  };
  it.each<[string, unknown[], unknown, Outcome]>([
    ['encode an object', [{ json: 'encode' }], { a: [1, 'é'] }, ok('{"a":[1,"é"]}')],
    ['encode a string', [{ json: 'encode' }], 'x"y', ok('"x\\"y"')],
    ['encode an array as a whole', [{ json: 'encode' }], [1, 2], ok('[1,2]')],
    ['encode false', [{ json: 'encode' }], false, ok('false')],
    ['decode', [{ json: 'decode' }], '{"a":[1,true]}', ok({ a: [1, true] })],
    ['decode a number', [{ json: 'decode' }], '42', ok(42)],
    ['decode invalid', [{ json: 'decode' }], '{a:1}', fail(`json decode: ${jsonError('{a:1}')}`)],
    ['decode an array input', [{ json: 'decode' }], ['1'], fail('json decode: expected a string, got array')],
    ['decode 64 KiB', [{ json: 'decode' }, { json: 'encode' }], JSON.stringify('é'.repeat(32 * 1024 - 1)), ok(JSON.stringify('é'.repeat(32 * 1024 - 1)))],
    ['decode over 64 KiB', [{ json: 'decode' }], JSON.stringify('é'.repeat(32 * 1024)), fail('json decode: the string is longer than 65536 bytes')],
    ['decode 1 MiB', [{ json: 'decode' }], MB, fail('json decode: the string is longer than 65536 bytes')],
    ['flatten', [{ flatten: '.' }], { a: { b: 1, c: { d: 'x' } }, e: [{ f: 1 }], g: null }, ok({ 'a.b': 1, 'a.c.d': 'x', e: [{ f: 1 }], g: null })],
    ['flatten with another separator', [{ flatten: '__' }], { a: { b: 1 } }, ok({ a__b: 1 })],
    ['flatten drops empty objects', [{ flatten: '.' }], { a: {}, b: 1 }, ok({ b: 1 })],
    ['flatten: later keys win', [{ flatten: '.' }], { 'a.b': 1, a: { b: 2 } }, ok({ 'a.b': 2 })],
    ['flatten 32 levels', [{ flatten: '.' }], deep(32), ok({ [`${'n.'.repeat(31)}leaf`]: 1 })],
    ['flatten 33 levels', [{ flatten: '.' }], deep(33), fail('flatten: objects nested deeper than 32 levels')],
    ['flatten 1000 keys', [{ flatten: '.' }, { json: 'encode' }], { o: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i])) }, ok(JSON.stringify(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`o.k${i}`, i]))))],
    ['flatten 1001 keys', [{ flatten: '.' }], { o: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])) }, fail('flatten: more than 1000 keys')],
    ['flatten an array', [{ flatten: '.' }], [{ a: 1 }], fail('flatten: expected an object, got array')],
    ['flatten a string', [{ flatten: '.' }], 'x', fail('flatten: expected an object, got string')],
  ])('%s', (_name, steps, input, expected) => {
    expect(run(steps, input)).toEqual(expected);
  });

  it('flatten skips __proto__, constructor and prototype and never touches a prototype', () => {
    const input = JSON.parse('{"__proto__": {"polluted": 1}, "a": {"constructor": {"x": 1}, "prototype": 2, "ok": 3}}');
    const outcome = run([{ flatten: '.' }], input) as { value: Record<string, unknown> };
    expect(outcome.value).toEqual({ 'a.ok': 3 });
    expect(Object.getPrototypeOf(outcome.value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('json decode keeps "__proto__" as an own key', () => {
    const outcome = run([{ json: 'decode' }], '{"__proto__": {"polluted": 1}}') as { value: Record<string, unknown> };
    expect(Object.hasOwn(outcome.value, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(outcome.value)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

describe('arrays', () => {
  it.each<[string, unknown[], unknown, Outcome]>([
    ['trim each', [{ trim: true }], [' a ', 'b '], ok(['a', 'b'])],
    ['case each', [{ case: 'upper' }], ['a', 'é'], ok(['A', 'É'])],
    ['an empty array stays empty', [{ trim: true }], [], ok([])],
    ['round each', [{ round: 1 }], [1.25, 2.35], ok([1.3, 2.4])],
    ['convert each', [{ convert: 'integer' }], ['1', 2.5], ok([1, 2])],
    ['a failing element fails the step', [{ trim: true }], ['a', 1], fail('trim: expected a string, got number (element 1)')],
    ['nested arrays are not flattened', [{ trim: true }], [['a']], fail('trim: expected a string, got array (element 0)')],
    ['split then join', [{ split: ' ' }, { case: 'title' }, { join: ' ' }], 'hello big world', ok('Hello Big World')],
  ])('%s', (_name, steps, input, expected) => {
    expect(run(steps, input)).toEqual(expected);
  });
});

describe('inputs are never modified', () => {
  const freeze = <T>(v: T): T => {
    if (v && typeof v === 'object') {
      Object.freeze(v);
      for (const x of Object.values(v)) freeze(x);
    }
    return v;
  };
  it.each<[string, unknown[], unknown]>([
    ['trim an array', [{ trim: true }], [' a ', ' b ']],
    ['hash an array', [{ hash: 'email' }], ['A@B.C']],
    ['flatten', [{ flatten: '.' }], { a: { b: [1, { c: 2 }] } }],
    ['lookup an array', [{ lookup: 'countries' }], ['France', 'x']],
    ['date an array', [{ date: { to: 'unixSeconds' } }], ['2026-01-01']],
    ['json encode', [{ json: 'encode' }], { a: [1] }],
  ])('%s', (_name, steps, input) => {
    const copy = structuredClone(input);
    const outcome = run(steps, freeze(input)) as { value: unknown };
    expect('value' in outcome).toBe(true);
    expect(input).toEqual(copy);
    expect(outcome.value).not.toBe(input);
  });
});

describe('output type', () => {
  it.each<[unknown[], JsonType | undefined]>([
    [[], undefined],
    [[{ trim: true }], 'string'],
    [[{ trim: false }], undefined],
    [[{ convert: 'number' }, { trim: false }], 'number'],
    [[{ hash: 'email' }], 'string'],
    [[{ normalize: 'phone' }], 'string'],
    [[{ phone: { format: 'e164' } }], 'string'],
    [[{ date: { to: 'unixMillis' } }], 'integer'],
    [[{ date: { to: 'unixMicros' } }], 'integer'],
    [[{ date: { to: 'iso' } }], 'string'],
    [[{ date: { to: 'format', pattern: 'yyyy' } }], 'string'],
    [[{ convert: 'boolean' }], 'boolean'],
    [[{ convert: 'integer' }], 'integer'],
    [[{ round: 0 }], 'integer'],
    [[{ round: 2 }], 'number'],
    [[{ multiply: 2 }], 'number'],
    [[{ split: ',' }], 'array'],
    [[{ split: ',' }, { join: ';' }], 'string'],
    [[{ json: 'decode' }], undefined],
    [[{ json: 'encode' }], 'string'],
    [[{ flatten: '.' }], 'object'],
    [[{ lookup: 'countries' }], undefined],
    [[{ lookup: 'strictCurrency' }], 'string'],
    [[{ lookup: 'withDefault' }], 'integer'],
    [[{ hash: 'email' }, { lookup: 'countries' }], undefined],
  ])('%j → %s', (steps, expected) => {
    const problems: Problem[] = [];
    expect(compileTransforms(steps as TransformStep[], '/t', problems, LOOKUPS)!.outputType).toBe(expected);
    expect(problems).toEqual([]);
  });

  it('gives every step its pointer and operation', () => {
    const problems: Problem[] = [];
    const compiled = compileTransforms([{ trim: true }, { hash: 'email' }], '/eventSpecific/Order Completed/fields/2/transforms', problems, LOOKUPS)!;
    expect(compiled.steps.map((s) => [s.pointer, s.op])).toEqual([
      ['/eventSpecific/Order Completed/fields/2/transforms/0/trim', 'trim'],
      ['/eventSpecific/Order Completed/fields/2/transforms/1/hash', 'hash'],
    ]);
  });
});

describe('compile problems', () => {
  const W = '/global/fields/3/transforms';
  it.each<[string, unknown[], Problem[]]>([
    ['a backreference', [{ trim: true }, { replace: { pattern: '(a)\\1', regex: true } }], [{ path: `${W}/1/replace/pattern`, rule: 'transform', message: 'invalid RE2 pattern (no backreferences or lookarounds): error parsing regexp: invalid escape sequence: `\\1`' }]],
    ['a lookahead', [{ replace: { pattern: 'a(?=b)', regex: true } }], [{ path: `${W}/0/replace/pattern`, rule: 'transform', message: 'invalid RE2 pattern (no backreferences or lookarounds): error parsing regexp: invalid or unsupported Perl syntax: `(?=`' }]],
    ['an unclosed class', [{ replace: { pattern: '[a-', regex: true } }], [{ path: `${W}/0/replace/pattern`, rule: 'transform', message: 'invalid RE2 pattern (no backreferences or lookarounds): error parsing regexp: missing closing ]: `[a-`' }]],
    ['a bad time zone', [{ date: { to: 'iso', timeZone: 'Mars/Olympus' } }], [{ path: `${W}/0/date/timeZone`, rule: 'transform', message: 'unknown time zone "Mars/Olympus": use an IANA name such as Europe/Paris, or an offset such as +05:30' }]],
    ['format without pattern', [{ date: { to: 'format' } }], [{ path: `${W}/0/date/pattern`, rule: 'transform', message: 'pattern is required with to: format' }]],
    ['pattern without format', [{ date: { to: 'iso', pattern: 'yyyy' } }], [{ path: `${W}/0/date/pattern`, rule: 'transform', message: 'pattern is only allowed with to: format' }]],
    ['an unescaped letter', [{ date: { to: 'format', pattern: 'yyyy-MM-dd jj' } }], [{ path: `${W}/0/date/pattern`, rule: 'transform', message: 'invalid date-fns pattern: Format string contains an unescaped latin alphabet character `j`' }]],
    ['week-numbering year', [{ date: { to: 'format', pattern: 'YYYY-MM-dd' } }], [{ path: `${W}/0/date/pattern`, rule: 'transform', message: 'YYYY is the week-numbering year: use yyyy for the calendar year' }]],
    ['day of year', [{ date: { to: 'format', pattern: 'yyyy-MM-DD' } }], [{ path: `${W}/0/date/pattern`, rule: 'transform', message: 'DD is the day of the year: use dd for the day of the month' }]],
    ['an unknown lookup', [{ lookup: 'nope' }], [{ path: `${W}/0/lookup`, rule: 'lookup', message: 'no lookup table named "nope" in spec.lookups' }]],
    ['an unknown phone country', [{ phone: { format: 'e164', defaultCountry: 'UK' } }], [{ path: `${W}/0/phone/defaultCountry`, rule: 'transform', message: '"UK" is not a country libphonenumber knows (ISO 3166-1 alpha-2, upper case)' }]],
    ['two operations', [{ trim: true, case: 'lower' }], [{ path: `${W}/0`, rule: 'maxProperties', message: 'must NOT have more than 1 properties' }]],
    ['no operation', [{}], [{ path: `${W}/0`, rule: 'minProperties', message: 'must NOT have fewer than 1 properties' }]],
    ['an unknown operation', [{ reverse: true }], [{ path: `${W}/0/reverse`, rule: 'additionalProperties', message: 'is not a known field' }]],
    ['round out of range', [{ round: 11 }], [{ path: `${W}/0/round`, rule: 'maximum', message: 'must be <= 10' }]],
    ['truncate 0', [{ truncate: 0 }], [{ path: `${W}/0/truncate`, rule: 'minimum', message: 'must be >= 1' }]],
    ['an unknown hash kind', [{ hash: 'md5' }], [{ path: `${W}/0/hash`, rule: 'enum', message: expect.stringMatching(/^must be one of "email", /) as unknown as string }]],
    ['normalize sha256', [{ normalize: 'sha256' }], [{ path: `${W}/0/normalize`, rule: 'enum', message: expect.stringMatching(/^must be one of /) as unknown as string }]],
    ['date without to', [{ date: { from: 'iso' } }], [{ path: `${W}/0/date/to`, rule: 'required', message: 'is required' }]],
    [
      'several problems, each at its step',
      [{ lookup: 'nope' }, { trim: true }, { date: { to: 'format', pattern: 'YY', timeZone: 'Nowhere' } }],
      [
        { path: `${W}/0/lookup`, rule: 'lookup', message: 'no lookup table named "nope" in spec.lookups' },
        { path: `${W}/2/date/timeZone`, rule: 'transform', message: 'unknown time zone "Nowhere": use an IANA name such as Europe/Paris, or an offset such as +05:30' },
      ],
    ],
  ])('%s', (_name, steps, expected) => {
    expect(problemsOf(steps)).toEqual(expected);
  });

  it('accepts every valid step', () => {
    expect(
      problemsOf([
        { trim: true },
        { case: 'title' },
        { replace: { pattern: '(?i)^\\s*(mr|mrs)\\.?\\s+', regex: true } },
        { substring: { start: 0, length: 10 } },
        { truncate: 5 },
        { lookup: 'countries' },
        { normalize: 'country' },
        { hash: 'country' },
      ]),
    ).toEqual([]);
  });
});

describe('schemas', () => {
  type Node = Record<string, unknown>;
  /** Every property node of a schema, with its path. */
  const properties = (node: Node, at: string): [string, Node][] => {
    const out: [string, Node][] = [];
    for (const [k, v] of Object.entries((node.properties ?? {}) as Record<string, Node>)) {
      out.push([`${at}.${k}`, v], ...properties(v, `${at}.${k}`));
      if (v.items) out.push(...properties(v.items as Node, `${at}.${k}[]`));
    }
    return out;
  };

  it.each<[string, TSchema]>([
    ['TransformStep', TransformStep],
    ['LookupTable', LookupTable],
  ])('%s converts to a structural CRD schema', (_name, schema) => {
    const structural = toStructural(schema);
    const text = JSON.stringify(structural);
    for (const forbidden of ['"anyOf"', '"oneOf"', '"allOf"', '"$ref"', '"patternProperties"']) expect(text).not.toContain(forbidden);
  });

  it.each<[string, TSchema]>([
    ['TransformStep', TransformStep],
    ['LookupTable', LookupTable],
  ])('every property of %s has one type (or keeps unknown fields) and a description', (_name, schema) => {
    const nodes = properties(toStructural(schema), _name);
    expect(nodes.length).toBeGreaterThan(3);
    for (const [path, node] of nodes) {
      expect([path, typeof node.description]).toEqual([path, 'string']);
      expect([path, typeof node.type === 'string' || node['x-kubernetes-preserve-unknown-fields'] === true]).toEqual([path, true]);
    }
  });

  it('TransformStep takes exactly one operation', () => {
    const structural = toStructural(TransformStep);
    expect([structural.minProperties, structural.maxProperties]).toEqual([1, 1]);
  });
});
