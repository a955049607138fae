/**
 * Transform steps of Mapping v2 field rules and lookup tables, compiled once into closures. Schemas:
 * runtime/src/api/transform.ts. Semantics in short:
 * - Steps run in order on a present value (never undefined/null). A step that cannot apply returns
 *   a {@link StepFailure} (never throws): the field is left out, or, for a `fatal` one (a strict
 *   lookup miss), the whole event fails. A step giving null ends the chain: the field is absent.
 * - Scalar steps (trim, case, replace, substring, truncate, convert, round, multiply, date, lookup,
 *   hash, normalize, phone) given an array apply to each element and return a new array; one
 *   failing element fails the step. `split` needs a string, `join` an array, `flatten` an object,
 *   `json: encode` takes anything.
 * - Inputs are never modified; results are new values (lookup entries are shared deep-frozen values).
 */
import { isDeepStrictEqual } from 'node:util';
import type { ValidateFunction } from 'ajv';
import { format as formatDate } from 'date-fns';
import { TZDate, tzOffset } from '@date-fns/tz';
import { RE2JS } from 're2js';
import { LOOKUP_NAME_PATTERN, LookupTable, TransformStep, type DateInput, type DateOutput, type HashKind, type PiiKind } from '../api/transform.js';
import { createAjv, deepFreeze, toProblems } from '../api/validate.js';
import type { Problem } from '../errors.js';
import { FORBIDDEN_KEYS } from './path.js';
import { daysInMonth, hashPii, isPhoneCountry, isSha256Hex, normalizePhone, normalizePii, type PhoneFormat, type PiiRejection } from './pii.js';

/** Returned (never thrown) by a step that cannot apply. `fatal` failures fail the whole event (strict lookup); others make the value absent. */
export class StepFailure {
  constructor(
    readonly message: string,
    readonly fatal = false,
  ) {}
}

/** One compiled step: takes a present value (never undefined/null), returns the new value or a {@link StepFailure}. */
export type StepFn = (value: unknown) => unknown;

/** A step ready to run; `pointer` is its JSON pointer in the Mapping spec, e.g. `/default/fields/0/transforms/2/hash`. */
export interface CompiledStep {
  readonly pointer: string;
  readonly op: string;
  readonly fn: StepFn;
}

/** JSON Schema type names; `integer` is a number without a fraction. */
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';

/** A compiled `transforms` list. */
export interface CompiledTransforms {
  readonly steps: readonly CompiledStep[];
  /**
   * Runs the steps in order on `value`. Returns the result, undefined when a step gave null (or the
   * input was absent), or the first {@link StepFailure}.
   */
  run(value: unknown): unknown;
  /**
   * Statically known type of the result of a successful run on a non-array value (e.g. `string`
   * after hash, `integer` after date to unixMillis); undefined when unknown. An array reaching an
   * element-wise step yields an array of that type instead.
   */
  readonly outputType: JsonType | undefined;
}

/** A compiled lookup table. */
export interface CompiledLookup {
  readonly name: string;
  /** The entry of the string form of `value`, the miss result (default, or `value` itself when lenient without default), or a fatal {@link StepFailure} (strict miss). */
  get(value: unknown): unknown;
  /** Type of every value `get` can return, when one type covers them all (entries and default, and a strict table or a default); else undefined. */
  readonly valueType: JsonType | undefined;
}

/** Largest string `json: decode` reads, in UTF-8 bytes. */
export const MAX_JSON_DECODE_BYTES = 64 * 1024;
/** Most keys `flatten` produces. */
export const MAX_FLATTEN_KEYS = 1000;
/** Deepest object nesting `flatten` walks. */
export const MAX_FLATTEN_DEPTH = 32;

let validateStep: ValidateFunction | undefined;
let validateTable: ValidateFunction | undefined;
const schemaValidators = () => {
  if (!validateStep || !validateTable) {
    const ajv = createAjv({ useDefaults: false });
    validateStep = ajv.compile(TransformStep);
    validateTable = ajv.compile(LookupTable);
  }
  return { step: validateStep, table: validateTable! };
};

/** JSON-pointer escaping of one token (RFC 6901). */
const esc = (token: string): string => token.replaceAll('~', '~0').replaceAll('/', '~1');

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** JSON type of a static value (`integer` for whole numbers). */
function jsonTypeOf(v: unknown): JsonType | undefined {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'object':
      return typeof v as JsonType;
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'number';
    default:
      return undefined;
  }
}

/** The one type covering `a` and `b` (integer ⊂ number), or undefined. */
function unite(a: JsonType | undefined, b: JsonType | undefined): JsonType | undefined {
  if (a === b) return a;
  if ((a === 'integer' && b === 'number') || (a === 'number' && b === 'integer')) return 'number';
  return undefined;
}

const wrongType = (op: string, expected: string, v: unknown) => new StepFailure(`${op}: expected ${expected}, got ${typeName(v)}`);

/** Applies a scalar step to each element of an array input (a new array), or to a scalar input. */
function elementwise(scalar: StepFn): StepFn {
  return (v) => {
    if (!Array.isArray(v)) return scalar(v);
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      const r = scalar(v[i]);
      if (r instanceof StepFailure) return new StepFailure(`${r.message} (element ${i})`, r.fatal);
      out[i] = r;
    }
    return out;
  };
}

/** A scalar step on strings only. */
const onString = (op: string, f: (s: string) => unknown): StepFn => elementwise((v) => (typeof v === 'string' ? f(v) : wrongType(op, 'a string', v)));

/** A scalar step on numbers only. */
const onNumber = (op: string, f: (n: number) => unknown): StepFn => elementwise((v) => (typeof v === 'number' ? f(v) : wrongType(op, 'a number', v)));

// ---------------------------------------------------------------------------------------------
// Strings

const TITLE_WORD_START = /(?:^|[\s-])\p{L}/gu;
const toTitleCase = (s: string): string => s.toLowerCase().replace(TITLE_WORD_START, (m) => m.toUpperCase());

const isPairAt = (s: string, i: number): boolean => {
  const c = s.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff || i + 1 >= s.length) return false;
  const d = s.charCodeAt(i + 1);
  return d >= 0xdc00 && d <= 0xdfff;
};

/** `length` code points of `s` from code point `start` (all the rest when length is undefined); surrogate pairs stay whole. */
function codePointSlice(s: string, start: number, length: number | undefined): string {
  let i = 0;
  for (let n = 0; n < start && i < s.length; n++) i += isPairAt(s, i) ? 2 : 1;
  if (length === undefined) return i === 0 ? s : s.slice(i);
  const from = i;
  for (let n = 0; n < length && i < s.length; n++) i += isPairAt(s, i) ? 2 : 1;
  return s.slice(from, i);
}

// ---------------------------------------------------------------------------------------------
// Numbers

const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** `n` × 10^k computed on the shortest decimal form of `n`, so 1.005 × 10² is exactly 100.5. */
function shiftDecimal(n: number, k: number): number {
  const s = String(n);
  const e = s.indexOf('e');
  return e < 0 ? Number(`${s}e${k}`) : Number(`${s.slice(0, e)}e${Number(s.slice(e + 1)) + k}`);
}

/** Rounds to `decimals` places, half away from zero, on the decimal form (1.005 → 1.01, -2.5 → -3). */
function roundHalfAwayFromZero(x: number, decimals: number): number {
  if (Number.isInteger(x)) return x;
  const r = shiftDecimal(Math.round(shiftDecimal(Math.abs(x), decimals)), -decimals);
  return r === 0 ? 0 : x < 0 ? -r : r;
}

function toNumber(op: string, v: unknown): number | StepFailure {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = v.trim();
    if (DECIMAL.test(t)) {
      const n = Number(t);
      if (Number.isFinite(n)) return n;
    }
    return new StepFailure(`${op}: ${JSON.stringify(preview(v))} is not a decimal number`);
  }
  return wrongType(op, 'a number or a numeric string', v);
}

const BOOLEAN_WORDS: ReadonlyMap<string, boolean> = new Map([
  ['true', true],
  ['false', false],
  ['yes', true],
  ['no', false],
  ['1', true],
  ['0', false],
]);

function compileConvert(to: 'string' | 'number' | 'integer' | 'boolean'): StepFn {
  const op = `convert ${to}`;
  switch (to) {
    case 'string':
      return elementwise((v) => {
        if (typeof v === 'string') return v;
        if (typeof v === 'number') return String(v); // the JSON form of a finite number
        if (typeof v === 'boolean') return v ? 'true' : 'false';
        return wrongType(op, 'a string, number or boolean', v);
      });
    case 'number':
      return elementwise((v) => toNumber(op, v));
    case 'integer':
      return elementwise((v) => {
        const n = toNumber(op, v);
        if (n instanceof StepFailure) return n;
        const i = Math.trunc(n);
        if (!Number.isSafeInteger(i)) return new StepFailure(`${op}: ${n} is beyond the safe integer range`);
        return i === 0 ? 0 : i;
      });
    case 'boolean':
      return elementwise((v) => {
        if (typeof v === 'boolean') return v;
        if (typeof v === 'number') return v === 1 ? true : v === 0 ? false : new StepFailure(`${op}: only the numbers 1 and 0 are booleans, got ${v}`);
        if (typeof v === 'string') {
          const b = BOOLEAN_WORDS.get(v.trim().toLowerCase());
          return b ?? new StepFailure(`${op}: ${JSON.stringify(preview(v))} is not true, false, yes, no, 1 or 0`);
        }
        return wrongType(op, 'a boolean, string or number', v);
      });
  }
}

/** First characters of a value quoted in a message. */
const preview = (s: string): string => (s.length > 64 ? `${s.slice(0, 64)}…` : s);

// ---------------------------------------------------------------------------------------------
// Dates

// Parsing sets the sub-millisecond digits here (0–999 µs) next to the milliseconds it returns:
// steps run synchronously, and this spares an object per event.
let parsedSubMillisMicros = 0;

const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?))?$/;
/** Milliseconds a Date can hold either side of the epoch (ECMA-262 §21.4.1.1). */
const MAX_DATE_MS = 8.64e15;

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil, http://howardhinnant.github.io/date_algorithms.html). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Epoch milliseconds of an ISO 8601 instant: `YYYY-MM-DDThh:mm[:ss[.fraction]]` with `Z` or an
 * offset `±hh[:mm]` (a space or `t` may separate date and time), or a date `YYYY-MM-DD` (UTC
 * midnight). Fraction digits below the millisecond go to {@link parsedSubMillisMicros} (JS Date
 * drops them); beyond microseconds they are truncated.
 */
/**
 * Fast path for the canonical form `Date.prototype.toISOString` and Segment libraries write,
 * `YYYY-MM-DDTHH:MM:SS.sssZ` (most events): digits read with charCodeAt, no regex or slices.
 * @returns epoch milliseconds, or undefined for any other form or an out-of-range field (the
 * general parser then decides, with its error message).
 */
function parseCanonicalIso(s: string): number | undefined {
  if (s.length !== 24 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46 || s.charCodeAt(23) !== 90) {
    return undefined;
  }
  let bad = false;
  const num = (from: number, to: number): number => {
    let n = 0;
    for (let i = from; i < to; i++) {
      const c = s.charCodeAt(i) - 48;
      if (c < 0 || c > 9) bad = true;
      n = n * 10 + c;
    }
    return n;
  };
  const year = num(0, 4);
  const month = num(5, 7);
  const day = num(8, 10);
  const hour = num(11, 13);
  const minute = num(14, 16);
  const second = num(17, 19);
  const millis = num(20, 23);
  if (bad || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
  parsedSubMillisMicros = 0;
  return (((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis;
}

function parseIsoInstant(text: string): number | StepFailure {
  const fast = parseCanonicalIso(text);
  if (fast !== undefined) return fast;
  const s = text.trim();
  const m = ISO_INSTANT.exec(s);
  if (!m) return new StepFailure(`date: ${JSON.stringify(preview(s))} is not an ISO 8601 date-time with a time zone (Z or ±hh:mm) or a date YYYY-MM-DD`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = m[4] === undefined ? 0 : Number(m[4]);
  const minute = m[5] === undefined ? 0 : Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const offsetHours = m[10] === undefined ? 0 : Number(m[10]);
  const offsetMinutes = m[11] === undefined ? 0 : Number(m[11]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) {
    return new StepFailure(`date: ${JSON.stringify(preview(s))} is not a valid date-time`);
  }
  const fraction = m[7] ?? '';
  let millis = 0;
  let micros = 0;
  if (fraction !== '') {
    const digits = fraction.length >= 6 ? fraction.slice(0, 6) : fraction.padEnd(6, '0');
    millis = Number(digits.slice(0, 3));
    micros = Number(digits.slice(3));
  }
  const offset = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes);
  parsedSubMillisMicros = micros;
  return (((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute - offset) * 60 + second) * 1000 + millis;
}

const UNIX_DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * Epoch milliseconds of a unix time in `unit` (seconds, milliseconds or microseconds), from a
 * number or a decimal string (fraction and exponent allowed), floored to the microsecond;
 * sub-millisecond digits go to {@link parsedSubMillisMicros}.
 */
function parseUnix(v: unknown, unit: Exclude<DateInput, 'iso'>): number | StepFailure {
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    // The common case, without decimal arithmetic.
    if (unit === 'unixMicros') {
      const ms = Math.floor(v / 1000);
      parsedSubMillisMicros = v - ms * 1000;
      return ms;
    }
    parsedSubMillisMicros = 0;
    return unit === 'unixSeconds' ? v * 1000 : v;
  }
  let text: string;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return new StepFailure(`date: ${v} is not a unix time`);
    text = String(v);
  } else if (typeof v === 'string') text = v.trim();
  else return wrongType('date', 'a number or a numeric string', v);
  const m = UNIX_DECIMAL.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return new StepFailure(`date: ${JSON.stringify(preview(text))} is not a unix time`);
  // Exact decimal arithmetic in microseconds: 1795187060.108123 s must give …108123 µs.
  const digits = (m[2] ?? '') + (m[3] ?? '');
  const exponent = Number(m[4] ?? 0) - (m[3] ?? '').length + (unit === 'unixSeconds' ? 6 : unit === 'unixMillis' ? 3 : 0);
  const negative = m[1] === '-';
  let micros: bigint;
  if (exponent >= 0) {
    if (exponent > 40) return new StepFailure(`date: ${JSON.stringify(preview(text))} is out of range`);
    micros = BigInt(digits) * 10n ** BigInt(exponent);
    if (negative) micros = -micros;
  } else {
    const mantissa = BigInt(digits);
    // Past 40 digits the quotient is 0 for any mantissa this input could hold.
    const divisor = 10n ** BigInt(Math.min(-exponent, digits.length + 1));
    micros = mantissa / divisor;
    if (negative) micros = mantissa % divisor === 0n ? -micros : -micros - 1n;
  }
  const limit = BigInt(MAX_DATE_MS) * 1000n;
  if (micros > limit || micros < -limit) return new StepFailure(`date: ${JSON.stringify(preview(text))} is out of range`);
  let ms = micros / 1000n;
  let sub = micros % 1000n;
  if (sub < 0n) {
    ms -= 1n;
    sub += 1000n;
  }
  parsedSubMillisMicros = Number(sub);
  return Number(ms);
}

// date-fns's tokenizer (https://github.com/date-fns/date-fns/blob/main/src/format/index.ts): runs of
// one letter, quoted text ('' is a quote), or any other single character.
const DATE_FNS_TOKENS = /[yYQqMLwIdDecihHKkms]o|(\w)\1*|''|'(''|[^'])+('|$)|./g;

/** Why `pattern` cannot be a date-fns format in `timeZone`, or undefined when it can. */
function checkDatePattern(pattern: string, timeZone: string): string | undefined {
  // date-fns only warns (on every call) about these; refuse them once, here.
  for (const token of pattern.match(DATE_FNS_TOKENS) ?? []) {
    if (/^Y+$/.test(token)) return `${token} is the week-numbering year: use ${token.toLowerCase()} for the calendar year`;
    if (/^D+$/.test(token)) return `${token} is the day of the year: use ${token.toLowerCase()} for the day of the month`;
  }
  try {
    formatDate(new TZDate(0, timeZone), pattern);
    return undefined;
  } catch (e) {
    return `invalid date-fns pattern: ${(e as Error).message}`;
  }
}

/** Whether @date-fns/tz knows `timeZone` (an IANA name or an offset such as +05:30); it gives NaN offsets for others. */
const isTimeZone = (timeZone: string): boolean => !Number.isNaN(tzOffset(timeZone, new Date(0)));

const HOUR_MS = 3_600_000;
const OFFSET_CACHE_SIZE = 4096;

/**
 * The UTC offset (minutes east) of `timeZone` at an instant. tzOffset asks Intl (about 1.5 µs), so
 * offsets are cached by UTC hour, for hours whose first and last millisecond share one offset (a
 * transition inside the hour is computed exactly every time).
 */
function offsetFinder(timeZone: string): (ms: number) => number {
  if (timeZone === 'UTC') return () => 0;
  const cache = new Map<number, number>();
  return (ms) => {
    const hour = Math.floor(ms / HOUR_MS);
    const cached = cache.get(hour);
    if (cached !== undefined) return cached;
    const start = tzOffset(timeZone, new Date(hour * HOUR_MS));
    if (start !== tzOffset(timeZone, new Date(hour * HOUR_MS + HOUR_MS - 1))) return tzOffset(timeZone, new Date(ms));
    if (cache.size >= OFFSET_CACHE_SIZE) cache.clear();
    cache.set(hour, start);
    return start;
  };
}

/** Wall-clock fields of one instant in one zone, filled per call (steps run synchronously). */
const wall = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, milli: 0, offset: 0 };

const zeros = (n: number, width: number): string => {
  const text = String(Math.abs(n)).padStart(width, '0');
  return n < 0 ? `-${text}` : text;
};

/** date-fns offset formats (formatTimezone*): `+hh:mm`, `+hhmm`, or `+hh` when whole hours (X, x). */
const offsetPart = (offset: number, delimiter: string, optionalMinutes: boolean): string => {
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.trunc(Math.abs(offset)); // local mean times have offsets in seconds: shown in whole minutes, as date-fns does
  const hours = zeros(Math.trunc(abs / 60), 2);
  if (optionalMinutes && abs % 60 === 0) return sign + hours;
  return sign + hours + delimiter + zeros(abs % 60, 2);
};

type Piece = string | (() => string);

/**
 * A precompiled renderer for the date-fns tokens used by vendor formats — y, M/MM, d, H, h, m, s, S,
 * a, X, x and literal text — with date-fns's exact output (the tests compare both); undefined when
 * the pattern uses any other token (names of months and days, ordinals, week dates…), which then go
 * through date-fns per event (about 20 µs with TZDate).
 */
function compileFastFormat(pattern: string): (() => string) | undefined {
  const pieces: Piece[] = [];
  for (const token of pattern.match(DATE_FNS_TOKENS) ?? []) {
    const c = token[0]!;
    const n = token.length;
    if (token === "''") pieces.push("'");
    else if (c === "'") pieces.push((/^'([^]*?)'?$/.exec(token)?.[1] ?? '').replaceAll("''", "'"));
    else if (!/[a-zA-Z]/.test(c)) pieces.push(token);
    else if (n > 1 && token[1] !== c) return undefined; // ordinals such as "do"
    else {
      switch (c) {
        case 'y':
          pieces.push(() => {
            const year = wall.year > 0 ? wall.year : 1 - wall.year;
            return zeros(n === 2 ? year % 100 : year, n);
          });
          break;
        case 'M':
          if (n > 2) return undefined;
          pieces.push(() => zeros(wall.month, n));
          break;
        case 'd':
          pieces.push(() => zeros(wall.day, n));
          break;
        case 'H':
          pieces.push(() => zeros(wall.hour, n));
          break;
        case 'h':
          pieces.push(() => zeros(wall.hour % 12 || 12, n));
          break;
        case 'm':
          pieces.push(() => zeros(wall.minute, n));
          break;
        case 's':
          pieces.push(() => zeros(wall.second, n));
          break;
        case 'S':
          pieces.push(() => zeros(Math.trunc(wall.milli * 10 ** (n - 3)), n));
          break;
        case 'a':
          pieces.push(() => {
            const pm = wall.hour >= 12;
            return n <= 2 ? (pm ? 'PM' : 'AM') : n === 3 ? (pm ? 'pm' : 'am') : n === 5 ? (pm ? 'p' : 'a') : pm ? 'p.m.' : 'a.m.';
          });
          break;
        case 'X':
        case 'x':
          if (n > 5) return undefined;
          pieces.push(() => (c === 'X' && wall.offset === 0 ? 'Z' : offsetPart(wall.offset, n === 3 || n === 5 ? ':' : '', n === 1)));
          break;
        default:
          return undefined;
      }
    }
  }
  return () => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p();
    return out;
  };
}

function compileDate(cfg: { from?: DateInput; to: DateOutput; pattern?: string; timeZone?: string }): StepFn {
  const from = cfg.from ?? 'iso';
  const timeZone = cfg.timeZone ?? 'UTC';
  const offsetAt = offsetFinder(timeZone);
  const parse: (v: unknown) => number | StepFailure =
    from === 'iso' ? (v) => (typeof v === 'string' ? parseIsoInstant(v) : wrongType('date', 'an ISO 8601 string', v)) : (v) => parseUnix(v, from);
  let write: (ms: number, sub: number) => unknown;
  switch (cfg.to) {
    case 'unixSeconds':
      write = (ms) => Math.floor(ms / 1000);
      break;
    case 'unixMillis':
      write = (ms) => ms;
      break;
    case 'unixMicros':
      write = (ms, sub) => {
        const micros = ms * 1000 + sub;
        return Number.isSafeInteger(micros) ? micros : new StepFailure('date: the instant is beyond the exact integer range in microseconds');
      };
      break;
    case 'iso':
      // Milliseconds always, microseconds when the input had them; Z in UTC, else the zone's offset.
      write = (ms, sub) => {
        const subText = sub === 0 ? '' : String(sub).padStart(3, '0');
        if (timeZone === 'UTC') {
          const iso = new Date(ms).toISOString();
          return subText === '' ? iso : `${iso.slice(0, -1)}${subText}Z`;
        }
        const offset = offsetAt(ms);
        return `${new Date(ms + offset * 60000).toISOString().slice(0, -1)}${subText}${offsetPart(offset, ':', false)}`;
      };
      break;
    case 'format': {
      const pattern = cfg.pattern!;
      const fast = compileFastFormat(pattern);
      write = fast
        ? (ms) => {
            const offset = offsetAt(ms);
            const local = new Date(ms + offset * 60000);
            wall.year = local.getUTCFullYear();
            wall.month = local.getUTCMonth() + 1;
            wall.day = local.getUTCDate();
            wall.hour = local.getUTCHours();
            wall.minute = local.getUTCMinutes();
            wall.second = local.getUTCSeconds();
            wall.milli = local.getUTCMilliseconds();
            wall.offset = offset;
            return fast();
          }
        : (ms) => formatDate(new TZDate(ms, timeZone), pattern);
      break;
    }
  }
  return elementwise((v) => {
    const ms = parse(v);
    if (ms instanceof StepFailure) return ms;
    if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) return new StepFailure('date: the instant is out of range');
    return write(ms, parsedSubMillisMicros);
  });
}

// ---------------------------------------------------------------------------------------------
// PII

/** Strings as they are, finite numbers in their JSON form (phone numbers, ZIP codes and ids often come as numbers). */
const piiText = (op: string, v: unknown): string | StepFailure =>
  typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : wrongType(op, 'a string or number', v);

const piiResult = (op: string, r: string | PiiRejection): unknown => (typeof r === 'string' ? r : new StepFailure(`${op}: ${r.reason}`));

// ---------------------------------------------------------------------------------------------
// JSON and objects

function decodeJson(v: unknown): unknown {
  if (typeof v !== 'string') return wrongType('json decode', 'a string', v);
  // A UTF-16 unit is at most 3 UTF-8 bytes: measure only strings that could be too long.
  if (v.length > MAX_JSON_DECODE_BYTES / 3 && Buffer.byteLength(v, 'utf8') > MAX_JSON_DECODE_BYTES) {
    return new StepFailure(`json decode: the string is longer than ${MAX_JSON_DECODE_BYTES} bytes`);
  }
  try {
    // JSON.parse defines "__proto__" as an own property, never as the prototype.
    return JSON.parse(v);
  } catch (e) {
    return new StepFailure(`json decode: ${(e as Error).message}`);
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function flatten(v: unknown, separator: string): unknown {
  if (!isPlainObject(v)) return wrongType('flatten', 'an object', v);
  const out: Record<string, unknown> = {};
  let count = 0;
  const walk = (obj: Record<string, unknown>, prefix: string | undefined, depth: number): StepFailure | undefined => {
    if (depth > MAX_FLATTEN_DEPTH) return new StepFailure(`flatten: objects nested deeper than ${MAX_FLATTEN_DEPTH} levels`);
    for (const key of Object.keys(obj)) {
      if (FORBIDDEN_KEYS.has(key)) continue;
      const value = obj[key];
      const joined = prefix === undefined ? key : prefix + separator + key;
      if (isPlainObject(value)) {
        const failure = walk(value, joined, depth + 1);
        if (failure) return failure;
        continue;
      }
      if (!Object.hasOwn(out, joined) && ++count > MAX_FLATTEN_KEYS) return new StepFailure(`flatten: more than ${MAX_FLATTEN_KEYS} keys`);
      Object.defineProperty(out, joined, { value, writable: true, enumerable: true, configurable: true });
    }
    return undefined;
  };
  return walk(v, undefined, 1) ?? out;
}

// ---------------------------------------------------------------------------------------------
// Compilers

const LOOKUP_NAME = new RegExp(LOOKUP_NAME_PATTERN);

/**
 * Compiles one lookup table of the Mapping's `spec.lookups`. Keys are matched against the string
 * form of the value (numbers and booleans stringified; other types never match), lower-cased on
 * both sides when `ignoreCase`. Entry values and the default are deep-frozen copies.
 * @param where JSON pointer of the table in the spec, e.g. `/lookups/countries`.
 * @returns the table, or undefined after adding {@link Problem}s (rule `lookup`, or the JSON Schema
 * keyword): a bad name, a schema violation, or keys that collide under ignoreCase with different values.
 */
export function compileLookup(name: string, table: LookupTable, where: string, problems: Problem[]): CompiledLookup | undefined {
  const before = problems.length;
  if (!LOOKUP_NAME.test(name)) {
    problems.push({ path: where, rule: 'lookup', message: `a lookup table name is a letter, then letters, digits, _ or -, at most 63 characters: ${JSON.stringify(name)}` });
  }
  const { table: validate } = schemaValidators();
  if (!validate(table)) {
    problems.push(...toProblems(validate.errors, where));
    return undefined;
  }
  const ignoreCase = table.ignoreCase ?? false;
  const strict = (table.mode ?? 'lenient') === 'strict';
  const hasDefault = Object.hasOwn(table, 'default');
  const fallback: unknown = hasDefault ? deepFreeze(structuredClone(table.default)) : undefined;
  const entries = new Map<string, unknown>();
  const firstKey = new Map<string, string>();
  let valueType: JsonType | undefined;
  let first = true;
  for (const [key, raw] of Object.entries(table.entries)) {
    const k = ignoreCase ? key.toLowerCase() : key;
    const value = deepFreeze(structuredClone(raw));
    const earlier = firstKey.get(k);
    if (earlier !== undefined) {
      if (!isDeepStrictEqual(entries.get(k), value)) {
        problems.push({ path: `${where}/entries/${esc(key)}`, rule: 'lookup', message: `with ignoreCase, ${JSON.stringify(key)} and ${JSON.stringify(earlier)} are the same key but map to different values` });
      }
      continue;
    }
    firstKey.set(k, key);
    entries.set(k, value);
    valueType = first ? jsonTypeOf(value) : unite(valueType, jsonTypeOf(value));
    first = false;
  }
  if (problems.length > before) return undefined;
  if (hasDefault) valueType = first ? jsonTypeOf(fallback) : unite(valueType, jsonTypeOf(fallback));
  else if (!strict || first) valueType = undefined; // a lenient miss returns the input as is

  const miss = (v: unknown, key: string | undefined): unknown => {
    if (strict) {
      return new StepFailure(
        key === undefined ? `lookup ${name}: a value of type ${typeName(v)} has no entry (strict table)` : `lookup ${name}: no entry for ${JSON.stringify(preview(key))} (strict table)`,
        true,
      );
    }
    return hasDefault ? fallback : v;
  };
  return Object.freeze({
    name,
    valueType,
    get(v: unknown): unknown {
      let key: string;
      if (typeof v === 'string') key = ignoreCase ? v.toLowerCase() : v;
      else if (typeof v === 'number' || typeof v === 'boolean') key = String(v);
      else return miss(v, undefined);
      const hit = entries.get(key);
      return hit !== undefined ? hit : miss(v, typeof v === 'string' ? v : key);
    },
  });
}

interface Compiled {
  fn: StepFn;
  /** Result type given the input type, for a non-array input. */
  type: (input: JsonType | undefined) => JsonType | undefined;
}

const always =
  (t: JsonType | undefined) =>
  (): JsonType | undefined =>
    t;

function compileStep(op: string, step: TransformStep, at: string, problems: Problem[], lookups: ReadonlyMap<string, CompiledLookup>): Compiled | undefined {
  switch (op) {
    case 'trim':
      return step.trim ? { fn: onString('trim', (s) => s.trim()), type: always('string') } : { fn: (v) => v, type: (t) => t };
    case 'case': {
      const f = step.case === 'lower' ? (s: string) => s.toLowerCase() : step.case === 'upper' ? (s: string) => s.toUpperCase() : toTitleCase;
      return { fn: onString('case', f), type: always('string') };
    }
    case 'replace': {
      const { pattern, with: replacement = '', regex = false, all = true } = step.replace!;
      if (!regex) {
        const literal = () => replacement; // a function, so "$&" in `with` stays literal
        return { fn: onString('replace', all ? (s) => s.replaceAll(pattern, literal) : (s) => s.replace(pattern, literal)), type: always('string') };
      }
      let re: RE2JS;
      try {
        re = RE2JS.compile(pattern);
      } catch (e) {
        problems.push({ path: `${at}/pattern`, rule: 'transform', message: `invalid RE2 pattern (no backreferences or lookarounds): ${(e as Error).message}` });
        return undefined;
      }
      return { fn: onString('replace', all ? (s) => re.matcher(s).replaceAll(replacement) : (s) => re.matcher(s).replaceFirst(replacement)), type: always('string') };
    }
    case 'split': {
      const sep = step.split!;
      return {
        fn: (v) => (typeof v === 'string' ? (sep === '' ? Array.from(v) : v.split(sep)) : wrongType('split', 'a string', v)),
        type: always('array'),
      };
    }
    case 'join': {
      const sep = step.join!;
      return {
        fn: (v) => {
          if (!Array.isArray(v)) return wrongType('join', 'an array', v);
          let out = '';
          for (let i = 0; i < v.length; i++) {
            const e: unknown = v[i];
            if (typeof e !== 'string' && typeof e !== 'number' && typeof e !== 'boolean') {
              return new StepFailure(`join: expected strings, numbers or booleans, got ${typeName(e)} (element ${i})`);
            }
            out += i === 0 ? String(e) : sep + String(e);
          }
          return out;
        },
        type: always('string'),
      };
    }
    case 'substring': {
      const { start, length } = step.substring!;
      return { fn: onString('substring', (s) => codePointSlice(s, start, length)), type: always('string') };
    }
    case 'truncate': {
      const max = step.truncate!;
      // A string of at most `max` UTF-16 units has at most `max` code points.
      return { fn: onString('truncate', (s) => (s.length <= max ? s : codePointSlice(s, 0, max))), type: always('string') };
    }
    case 'convert': {
      const to = step.convert!;
      return { fn: compileConvert(to), type: always(to) };
    }
    case 'round': {
      const decimals = step.round!;
      return { fn: onNumber('round', (n) => roundHalfAwayFromZero(n, decimals)), type: always(decimals === 0 ? 'integer' : 'number') };
    }
    case 'multiply': {
      const factor = step.multiply!;
      return {
        fn: onNumber('multiply', (n) => {
          const r = n * factor;
          if (!Number.isFinite(r)) return new StepFailure(`multiply: ${n} × ${factor} is not a finite number`);
          return r === 0 ? 0 : r;
        }),
        type: always('number'),
      };
    }
    case 'date': {
      const cfg = step.date!;
      const before = problems.length;
      if (cfg.to === 'format' && cfg.pattern === undefined) problems.push({ path: `${at}/pattern`, rule: 'transform', message: 'pattern is required with to: format' });
      if (cfg.to !== 'format' && cfg.pattern !== undefined) problems.push({ path: `${at}/pattern`, rule: 'transform', message: 'pattern is only allowed with to: format' });
      const timeZone = cfg.timeZone ?? 'UTC';
      if (!isTimeZone(timeZone)) problems.push({ path: `${at}/timeZone`, rule: 'transform', message: `unknown time zone ${JSON.stringify(timeZone)}: use an IANA name such as Europe/Paris, or an offset such as +05:30` });
      else if (cfg.to === 'format' && cfg.pattern !== undefined) {
        const bad = checkDatePattern(cfg.pattern, timeZone);
        if (bad) problems.push({ path: `${at}/pattern`, rule: 'transform', message: bad });
      }
      if (problems.length > before) return undefined;
      return { fn: compileDate(cfg), type: always(cfg.to === 'iso' || cfg.to === 'format' ? 'string' : 'integer') };
    }
    case 'lookup': {
      const table = lookups.get(step.lookup!);
      if (!table) {
        problems.push({ path: at, rule: 'lookup', message: `no lookup table named ${JSON.stringify(step.lookup)} in spec.lookups` });
        return undefined;
      }
      return { fn: elementwise((v) => table.get(v)), type: always(table.valueType) };
    }
    case 'hash': {
      const kind: HashKind = step.hash!;
      const op = `hash ${kind}`;
      return {
        fn: elementwise((v) => {
          const s = piiText(op, v);
          return typeof s === 'string' ? piiResult(op, hashPii(kind, s)) : s;
        }),
        type: always('string'),
      };
    }
    case 'normalize': {
      const kind: PiiKind = step.normalize!;
      const op = `normalize ${kind}`;
      return {
        fn: elementwise((v) => {
          const s = piiText(op, v);
          return typeof s === 'string' ? piiResult(op, normalizePii(kind, s)) : s;
        }),
        type: always('string'),
      };
    }
    case 'phone': {
      const { format, defaultCountry } = step.phone! as { format: PhoneFormat; defaultCountry?: string };
      if (defaultCountry !== undefined && !isPhoneCountry(defaultCountry)) {
        problems.push({ path: `${at}/defaultCountry`, rule: 'transform', message: `${JSON.stringify(defaultCountry)} is not a country libphonenumber knows (ISO 3166-1 alpha-2, upper case)` });
        return undefined;
      }
      const country = defaultCountry as Parameters<typeof normalizePhone>[2];
      return {
        fn: elementwise((v) => {
          const s = piiText('phone', v);
          if (typeof s !== 'string') return s;
          const trimmed = s.trim();
          return isSha256Hex(trimmed) ? trimmed.toLowerCase() : piiResult('phone', normalizePhone(s, format, country));
        }),
        type: always('string'),
      };
    }
    case 'json':
      return step.json === 'encode' ? { fn: (v) => JSON.stringify(v), type: always('string') } : { fn: decodeJson, type: always(undefined) };
    case 'flatten': {
      const sep = step.flatten!;
      return { fn: (v) => flatten(v, sep), type: always('object') };
    }
    default:
      problems.push({ path: at, rule: 'transform', message: `unknown transform ${JSON.stringify(op)}` });
      return undefined;
  }
}

/**
 * Compiles a field rule's `transforms` list into closures: schemas checked, regular expressions (RE2),
 * date patterns and time zones validated and lookup tables resolved, all once.
 * @param where JSON pointer of the list in the spec, e.g. `/default/fields/0/transforms`.
 * @param lookups the Mapping's compiled tables by name.
 * @returns the compiled list, or undefined after adding {@link Problem}s whose paths point at the
 * step and its operation, e.g. `${where}/2/date/pattern` (rule `transform`, `lookup`, or the JSON
 * Schema keyword).
 */
export function compileTransforms(
  steps: readonly TransformStep[],
  where: string,
  problems: Problem[],
  lookups: ReadonlyMap<string, CompiledLookup>,
): CompiledTransforms | undefined {
  const before = problems.length;
  const { step: validate } = schemaValidators();
  const compiled: CompiledStep[] = [];
  let type: JsonType | undefined;
  steps.forEach((step, i) => {
    const at = `${where}/${i}`;
    if (!validate(step)) {
      problems.push(...toProblems(validate.errors, at));
      return;
    }
    const op = Object.keys(step)[0]!;
    const c = compileStep(op, step, `${at}/${esc(op)}`, problems, lookups);
    if (!c) return;
    compiled.push(Object.freeze({ pointer: `${at}/${esc(op)}`, op, fn: c.fn }));
    type = c.type(type);
  });
  if (problems.length > before) return undefined;
  const fns = compiled.map((s) => s.fn);
  return Object.freeze({
    steps: Object.freeze(compiled),
    outputType: type,
    run(value: unknown): unknown {
      let v = value;
      for (let i = 0; i < fns.length; i++) {
        if (v === undefined || v === null) return undefined;
        v = fns[i]!(v);
        if (v instanceof StepFailure) return v;
      }
      return v === null ? undefined : v;
    },
  });
}
