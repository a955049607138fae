/**
 * Normalization and hashing of personal data the way ad platforms match it. Sources:
 * - Meta Conversions API, customer information parameters:
 *   https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
 * - Google Ads enhanced conversions, normalize and hash:
 *   https://developers.google.com/google-ads/api/docs/conversions/enhanced-conversions/web
 * Every normalizer is pure, takes a string and returns the normalized string or a
 * {@link PiiRejection} (returned, not thrown: invalid personal data is common and cheap to skip).
 */
import { hash } from 'node:crypto';
import { parsePhoneNumberFromString, isSupportedCountry, type CountryCode, type PhoneNumber } from 'libphonenumber-js/max';
import type { HashKind, PiiKind } from '../api/transform.js';

/** Why a value cannot be normalized. Instances are shared constants: compare `reason`, not identity. */
export interface PiiRejection {
  readonly reason: string;
}

const reject = (reason: string): PiiRejection => Object.freeze({ reason });
const EMPTY = reject('empty value');
const NOT_EMAIL = reject('not an email address');
const NOT_PHONE = reject('not a phone number');
const NO_COUNTRY_CODE = reject('no country code: write the number with + and its country code, or use a phone step with defaultCountry');
const NOT_GENDER = reject('expected f, m, female or male');
const NOT_DATE = reject('expected a date YYYY-MM-DD, an ISO 8601 date-time or YYYYMMDD');
const BAD_DATE = reject('not a calendar date');
const NOT_COUNTRY = reject('expected an ISO 3166-1 alpha-2 country code');

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** True when `value` is 64 hexadecimal characters (either case): a SHA-256 digest already. */
export function isSha256Hex(value: string): boolean {
  return value.length === 64 && SHA256_HEX.test(value);
}

/** SHA-256 of the UTF-8 bytes of `value`, as 64 lowercase hex characters (node:crypto). */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

const WHITESPACE = /\s/;

/** Email (Meta `em`): trimmed and lower-cased; must hold one `@` with text on both sides and no whitespace. */
export function normalizeEmail(value: string): string | PiiRejection {
  const s = value.trim().toLowerCase();
  if (s === '') return EMPTY;
  const at = s.indexOf('@');
  if (at <= 0 || at === s.length - 1 || s.indexOf('@', at + 1) >= 0 || WHITESPACE.test(s)) return NOT_EMAIL;
  return s;
}

/**
 * Email for Google: {@link normalizeEmail}, then the dots of the local part removed for gmail.com and
 * googlemail.com addresses only; nothing else is removed (Google Ads enhanced conversions).
 */
export function normalizeEmailGoogle(value: string): string | PiiRejection {
  const s = normalizeEmail(value);
  if (typeof s !== 'string') return s;
  const at = s.indexOf('@');
  const domain = s.slice(at + 1);
  if (domain !== 'gmail.com' && domain !== 'googlemail.com') return s;
  return s.slice(0, at).replaceAll('.', '') + s.slice(at);
}

/** Output of {@link normalizePhone}: `digits` (country code and number, Meta `ph`) or `e164` (`+` and digits, Google). */
export type PhoneFormat = 'digits' | 'e164';

const NON_DIGITS = /\D/g;
// Longer strings are not phone numbers (E.164 has at most 15 digits); spares the parser huge inputs.
const MAX_PHONE_LENGTH = 64;

/** True when libphonenumber knows `code` (ISO 3166-1 alpha-2, upper case) as a country. */
export function isPhoneCountry(code: string): code is CountryCode {
  return isSupportedCountry(code);
}

/**
 * Phone number, parsed by libphonenumber-js (full metadata):
 * - written with `+`: read as international; must have a possible length for its country;
 * - else with `defaultCountry`: read as a national number of that country (a leading country code
 *   or international prefix is recognized);
 * - else starting with `00`: the international prefix, read as `+`;
 * - else the digits are taken as country code and number, accepted only when that is a *valid*
 *   number (a national number such as `(650) 555-1212` is refused, not guessed).
 * Results are memoized (a bounded cache), as parsing costs microseconds.
 * @returns `16505551212` (digits) or `+16505551212` (e164), or a rejection.
 */
export function normalizePhone(value: string, format: PhoneFormat, defaultCountry?: CountryCode): string | PiiRejection {
  const s = value.trim();
  if (s === '') return EMPTY;
  if (s.length > MAX_PHONE_LENGTH) return NOT_PHONE;
  const key = defaultCountry === undefined ? s : `${defaultCountry}|${s}`;
  let e164 = phoneCache.get(key);
  if (e164 === undefined) {
    e164 = parsePhone(s, defaultCountry);
    if (phoneCache.size >= PHONE_CACHE_SIZE) phoneCache.clear();
    phoneCache.set(key, e164);
  }
  return typeof e164 !== 'string' || format === 'e164' ? e164 : e164.slice(1);
}

// libphonenumber-js builds RegExps on every parse (about 7 µs a number): results are memoized,
// a bounded map emptied when full, since the same users' numbers recur across their events.
const PHONE_CACHE_SIZE = 4096;
const phoneCache = new Map<string, string | PiiRejection>();

/** E.164 form of `s` (trimmed, non-empty), or a rejection; see {@link normalizePhone}. */
function parsePhone(s: string, defaultCountry: CountryCode | undefined): string | PiiRejection {
  let parsed: PhoneNumber | undefined;
  if (s.startsWith('+')) {
    parsed = possible(parsePhoneNumberFromString(s));
  } else if (defaultCountry) {
    parsed = possible(parsePhoneNumberFromString(s, defaultCountry));
  } else {
    const digits = s.replace(NON_DIGITS, '');
    if (digits.startsWith('00')) parsed = possible(parsePhoneNumberFromString(`+${digits.slice(2)}`));
    else {
      const international = parsePhoneNumberFromString(`+${digits}`);
      if (!international?.isValid()) return NO_COUNTRY_CODE;
      parsed = international;
    }
  }
  return parsed ? parsed.number : NOT_PHONE;
}

const possible = (p: PhoneNumber | undefined): PhoneNumber | undefined => (p?.isPossible() ? p : undefined);

const PUNCTUATION_AND_SYMBOLS = /[\p{P}\p{S}]/gu;
const WHITESPACE_RUNS = /\s+/g;
const NOT_LETTER_OR_DIGIT = /[^\p{L}\p{M}\p{N}]/gu;

/**
 * First or last name (Meta `fn`/`ln`): Unicode NFC, lower case, punctuation and symbols removed,
 * whitespace trimmed and collapsed to one space. Letters of every script (and their combining
 * marks) are kept: `Valéry` → `valéry`, `정` → `정`.
 */
export function normalizeName(value: string): string | PiiRejection {
  const s = value.normalize('NFC').toLowerCase().replace(PUNCTUATION_AND_SYMBOLS, '').replace(WHITESPACE_RUNS, ' ').trim();
  return s === '' ? EMPTY : s;
}

/** Gender (Meta `ge`): `f` or `m` from f, m, female, male in any case; anything else is rejected. */
export function normalizeGender(value: string): string | PiiRejection {
  switch (value.trim().toLowerCase()) {
    case 'f':
    case 'female':
      return 'f';
    case 'm':
    case 'male':
      return 'm';
    default:
      return NOT_GENDER;
  }
}

const ISO_DATE_PREFIX = /^(\d{4})-(\d{2})-(\d{2})(?:$|[Tt ])/;
const COMPACT_DATE = /^(\d{4})(\d{2})(\d{2})$/;

/**
 * Date of birth (Meta `db`): `YYYYMMDD` from `YYYY-MM-DD`, an ISO 8601 date-time (its calendar date
 * as written, no time-zone shift) or `YYYYMMDD`; the date must exist (no February 30).
 */
export function normalizeDateOfBirth(value: string): string | PiiRejection {
  const s = value.trim();
  const m = ISO_DATE_PREFIX.exec(s) ?? COMPACT_DATE.exec(s);
  if (!m) return s === '' ? EMPTY : NOT_DATE;
  const [, y, mo, d] = m as unknown as [string, string, string, string];
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(Number(y), month)) return BAD_DATE;
  return y + mo + d;
}

/** Days in `month` (1–12) of the proleptic Gregorian `year`. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** City (Meta `ct`): NFC, lower case, only letters, marks and digits kept (no spaces or punctuation): `San Francisco` → `sanfrancisco`. */
export function normalizeCity(value: string): string | PiiRejection {
  const s = value.normalize('NFC').toLowerCase().replace(NOT_LETTER_OR_DIGIT, '');
  return s === '' ? EMPTY : s;
}

// US states, DC and territories by name (letters only, lower case) → USPS/ANSI code.
const US_STATES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    AL: 'alabama', AK: 'alaska', AZ: 'arizona', AR: 'arkansas', CA: 'california', CO: 'colorado', CT: 'connecticut', DE: 'delaware',
    FL: 'florida', GA: 'georgia', HI: 'hawaii', ID: 'idaho', IL: 'illinois', IN: 'indiana', IA: 'iowa', KS: 'kansas', KY: 'kentucky',
    LA: 'louisiana', ME: 'maine', MD: 'maryland', MA: 'massachusetts', MI: 'michigan', MN: 'minnesota', MS: 'mississippi',
    MO: 'missouri', MT: 'montana', NE: 'nebraska', NV: 'nevada', NH: 'new hampshire', NJ: 'new jersey', NM: 'new mexico',
    NY: 'new york', NC: 'north carolina', ND: 'north dakota', OH: 'ohio', OK: 'oklahoma', OR: 'oregon', PA: 'pennsylvania',
    RI: 'rhode island', SC: 'south carolina', SD: 'south dakota', TN: 'tennessee', TX: 'texas', UT: 'utah', VT: 'vermont',
    VA: 'virginia', WA: 'washington', WV: 'west virginia', WI: 'wisconsin', WY: 'wyoming', DC: 'district of columbia',
    PR: 'puerto rico', GU: 'guam', VI: 'us virgin islands', AS: 'american samoa', MP: 'northern mariana islands',
  }).map(([code, name]) => [name.replaceAll(' ', ''), code.toLowerCase()]),
);

/**
 * State (Meta `st`): NFC, lower case, without spaces and punctuation; a US state, DC or territory
 * written in full becomes its two-letter code (`New York` → `ny`); other values (codes, regions
 * outside the US) are kept in that form (`Île-de-France` → `îledefrance`).
 */
export function normalizeState(value: string): string | PiiRejection {
  const s = value.normalize('NFC').toLowerCase().replace(NOT_LETTER_OR_DIGIT, '');
  if (s === '') return EMPTY;
  return US_STATES.get(s) ?? s;
}

const US_ZIP_PLUS_4 = /^(\d{5})-\d{4}$/;

/** Postal code (Meta `zp`): lower case, whitespace removed; a US ZIP+4 (`94025-1234`) keeps its first 5 digits. */
export function normalizePostalCode(value: string): string | PiiRejection {
  const s = value.toLowerCase().replace(WHITESPACE_RUNS, '');
  if (s === '') return EMPTY;
  return US_ZIP_PLUS_4.exec(s)?.[1] ?? s;
}

const ALPHA_2 = /^[a-z]{2}$/;

/** Country (Meta `country`): an ISO 3166-1 alpha-2 code, lower-cased (`FR` → `fr`); names and alpha-3 codes are rejected. */
export function normalizeCountry(value: string): string | PiiRejection {
  const s = value.trim().toLowerCase();
  if (s === '') return EMPTY;
  return ALPHA_2.test(s) ? s : NOT_COUNTRY;
}

/** External id (Meta `external_id`): trimmed only. */
export function normalizeExternalId(value: string): string | PiiRejection {
  const s = value.trim();
  return s === '' ? EMPTY : s;
}

/** The normalizer of each PII kind; `phone` gives digits (Meta), `phoneE164` `+` and digits (Google), neither with a default country. */
export const PII_NORMALIZERS: Readonly<Record<PiiKind, (value: string) => string | PiiRejection>> = Object.freeze({
  email: normalizeEmail,
  emailGoogle: normalizeEmailGoogle,
  phone: (v: string) => normalizePhone(v, 'digits'),
  phoneE164: (v: string) => normalizePhone(v, 'e164'),
  firstName: normalizeName,
  lastName: normalizeName,
  gender: normalizeGender,
  dateOfBirth: normalizeDateOfBirth,
  city: normalizeCity,
  state: normalizeState,
  postalCode: normalizePostalCode,
  country: normalizeCountry,
  externalId: normalizeExternalId,
});

/**
 * Normalizes `value` as `kind`. A value that already is a SHA-256 digest (64 hex characters, after
 * trimming) is returned lower-cased instead: normalizing a hash would only break it.
 */
export function normalizePii(kind: PiiKind, value: string): string | PiiRejection {
  const trimmed = value.trim();
  if (isSha256Hex(trimmed)) return trimmed.toLowerCase();
  return PII_NORMALIZERS[kind](value);
}

/**
 * Normalizes `value` as `kind` and hashes it ({@link sha256Hex}); `sha256` hashes the value as is.
 * A value that already is 64 hex characters (after trimming) is returned lower-cased, never hashed
 * twice (Meta: "must not be hashed again"). Empty values are rejected for every kind: the hash of
 * "" matches nobody.
 */
export function hashPii(kind: HashKind, value: string): string | PiiRejection {
  const trimmed = value.trim();
  if (isSha256Hex(trimmed)) return trimmed.toLowerCase();
  if (kind === 'sha256') return value === '' ? EMPTY : sha256Hex(value);
  const normalized = PII_NORMALIZERS[kind](value);
  return typeof normalized === 'string' ? sha256Hex(normalized) : normalized;
}
