import { createHash } from 'node:crypto';
import { HASH_KINDS, PII_KINDS, type PiiKind } from '../api/transform.js';
import {
  hashPii,
  isSha256Hex,
  normalizeCity,
  normalizeCountry,
  normalizeDateOfBirth,
  normalizeEmail,
  normalizeEmailGoogle,
  normalizeExternalId,
  normalizeGender,
  normalizeName,
  normalizePhone,
  normalizePii,
  normalizePostalCode,
  normalizeState,
  sha256Hex,
  type PiiRejection,
} from './pii.js';

// Expected digests come from node:crypto's streaming API, not from the code under test.
const reference = (s: string) => createHash('sha256').update(Buffer.from(s, 'utf8')).digest('hex');
const reason = (r: string | PiiRejection) => (typeof r === 'string' ? r : `rejected: ${r.reason}`);

describe('sha256Hex and isSha256Hex', () => {
  it.each(['', 'a', 'john_smith@gmail.com', 'valéry', '정', '😀 emoji', 'x'.repeat(100_000)])('hashes %j like node:crypto', (s) => {
    expect(sha256Hex(s)).toBe(reference(s));
    expect(sha256Hex(s)).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['a'.repeat(64), true],
    ['A'.repeat(64), true],
    ['0123456789abcdefABCDEF'.padEnd(64, '0'), true],
    ['a'.repeat(63), false],
    ['a'.repeat(65), false],
    ['g'.repeat(64), false],
    [' '.repeat(64), false],
    ['', false],
  ])('isSha256Hex(%j) is %s', (s, expected) => {
    expect(isSha256Hex(s)).toBe(expected);
  });
});

describe("Meta's documented examples (customer information parameters)", () => {
  // Input, kind, normalized form and SHA-256 exactly as printed in Meta's documentation:
  // https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
  it.each<[string, PiiKind, string, string]>([
    ['John_Smith@gmail.com', 'email', 'john_smith@gmail.com', '62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f'],
    ['+1 (650)555-1212', 'phone', '16505551212', 'e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176'],
    ['Mary', 'firstName', 'mary', '6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec'],
    ['정', 'firstName', '정', '8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14'],
    ['Valéry', 'lastName', 'valéry', '08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c'],
    // The same name with a decomposed é (e + U+0301) must match too.
    ['Vale\u0301ry', 'firstName', 'valéry', '08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c'],
  ])('%j as %s → %j → documented hash', (input, kind, normalized, digest) => {
    expect(normalizePii(kind, input)).toBe(normalized);
    expect(reference(normalized)).toBe(digest);
    expect(hashPii(kind, input)).toBe(digest);
  });

  it('normalizes the documented US number written nationally once the country is known', () => {
    expect(normalizePhone('(650)555-1212', 'digits', 'US')).toBe('16505551212');
  });
});

describe('normalizers', () => {
  it.each<[(s: string) => string | PiiRejection, string, string]>([
    // email: trim and lower case only.
    [normalizeEmail, '  Person@Example.COM ', 'person@example.com'],
    [normalizeEmail, 'first.last+tag@gmail.com', 'first.last+tag@gmail.com'],
    [normalizeEmail, 'Ünïcode@Exämple.de', 'ünïcode@exämple.de'],
    [normalizeEmail, '\u00a0a@b.c\u2003', 'a@b.c'],
    [normalizeEmail, '', 'rejected: empty value'],
    [normalizeEmail, '   ', 'rejected: empty value'],
    [normalizeEmail, 'no-at-sign', 'rejected: not an email address'],
    [normalizeEmail, '@example.com', 'rejected: not an email address'],
    [normalizeEmail, 'user@', 'rejected: not an email address'],
    [normalizeEmail, 'a@b@c', 'rejected: not an email address'],
    [normalizeEmail, 'a b@c.d', 'rejected: not an email address'],
    // emailGoogle: dots of the local part go for gmail.com and googlemail.com only; nothing else is removed.
    [normalizeEmailGoogle, 'John.Smith@Gmail.com', 'johnsmith@gmail.com'],
    [normalizeEmailGoogle, ' j.o.h.n+shop@googlemail.com ', 'john+shop@googlemail.com'],
    [normalizeEmailGoogle, 'john.smith@example.com', 'john.smith@example.com'],
    [normalizeEmailGoogle, 'john.smith@gmail.com.evil.org', 'john.smith@gmail.com.evil.org'],
    [normalizeEmailGoogle, 'john.smith@mail.gmail.com', 'john.smith@mail.gmail.com'],
    [normalizeEmailGoogle, 'x', 'rejected: not an email address'],
    // names: lower case, punctuation and symbols removed, letters of every script kept.
    [normalizeName, "  O'Brien ", 'obrien'],
    [normalizeName, 'Jean-Luc', 'jeanluc'],
    [normalizeName, 'Mary   Ann', 'mary ann'],
    [normalizeName, 'ÉLODIE', 'élodie'],
    [normalizeName, 'Владимир', 'владимир'],
    [normalizeName, '李', '李'],
    [normalizeName, 'محمد', 'محمد'],
    [normalizeName, 'Zoë 😀', 'zoë'],
    [normalizeName, '...', 'rejected: empty value'],
    // gender
    [normalizeGender, 'Female', 'f'],
    [normalizeGender, ' M ', 'm'],
    [normalizeGender, 'MALE', 'm'],
    [normalizeGender, 'f', 'f'],
    [normalizeGender, 'x', 'rejected: expected f, m, female or male'],
    [normalizeGender, 'femme', 'rejected: expected f, m, female or male'],
    [normalizeGender, '', 'rejected: expected f, m, female or male'],
    // date of birth: YYYYMMDD of the calendar date as written.
    [normalizeDateOfBirth, '1990-01-15', '19900115'],
    [normalizeDateOfBirth, '1990-01-15T23:30:00-05:00', '19900115'],
    [normalizeDateOfBirth, '1990-01-15 08:00:00Z', '19900115'],
    [normalizeDateOfBirth, ' 19900115 ', '19900115'],
    [normalizeDateOfBirth, '2000-02-29', '20000229'],
    [normalizeDateOfBirth, '1900-02-29', 'rejected: not a calendar date'],
    [normalizeDateOfBirth, '1990-02-30', 'rejected: not a calendar date'],
    [normalizeDateOfBirth, '19901301', 'rejected: not a calendar date'],
    [normalizeDateOfBirth, '15/01/1990', 'rejected: expected a date YYYY-MM-DD, an ISO 8601 date-time or YYYYMMDD'],
    [normalizeDateOfBirth, '1990-1-5', 'rejected: expected a date YYYY-MM-DD, an ISO 8601 date-time or YYYYMMDD'],
    [normalizeDateOfBirth, '', 'rejected: empty value'],
    // city: letters and digits only.
    [normalizeCity, 'San Francisco', 'sanfrancisco'],
    [normalizeCity, 'Saint-Étienne', 'saintétienne'],
    [normalizeCity, "L'Aquila", 'laquila'],
    [normalizeCity, '東京', '東京'],
    [normalizeCity, ' - ', 'rejected: empty value'],
    // state: US names to codes, others lower case without spaces or punctuation.
    [normalizeState, 'Texas', 'tx'],
    [normalizeState, 'TX', 'tx'],
    [normalizeState, 'New York', 'ny'],
    [normalizeState, ' N.Y. ', 'ny'],
    [normalizeState, 'district of columbia', 'dc'],
    [normalizeState, 'Île-de-France', 'îledefrance'],
    [normalizeState, 'Bayern', 'bayern'],
    [normalizeState, '', 'rejected: empty value'],
    // postal code: lower case, no whitespace, US ZIP+4 → 5 digits.
    [normalizePostalCode, '94025-1234', '94025'],
    [normalizePostalCode, ' 94025 ', '94025'],
    [normalizePostalCode, 'SW1A 1AA', 'sw1a1aa'],
    [normalizePostalCode, '100-0001', '100-0001'],
    [normalizePostalCode, '   ', 'rejected: empty value'],
    // country: alpha-2 only.
    [normalizeCountry, 'FR', 'fr'],
    [normalizeCountry, ' us ', 'us'],
    [normalizeCountry, 'France', 'rejected: expected an ISO 3166-1 alpha-2 country code'],
    [normalizeCountry, 'FRA', 'rejected: expected an ISO 3166-1 alpha-2 country code'],
    [normalizeCountry, 'F1', 'rejected: expected an ISO 3166-1 alpha-2 country code'],
    [normalizeCountry, '', 'rejected: empty value'],
    // external id: trimmed only.
    [normalizeExternalId, '  User-42 ', 'User-42'],
    [normalizeExternalId, ' ', 'rejected: empty value'],
  ])('%p(%j) → %j', (normalize, input, expected) => {
    expect(reason(normalize(input))).toBe(expected);
  });
});

describe('normalizePhone', () => {
  const NO_CODE = 'rejected: no country code: write the number with + and its country code, or use a phone step with defaultCountry';
  it.each<[string, 'FR' | 'GB' | 'US' | undefined, string, string]>([
    // With +: international, any formatting.
    ['+1 (650) 555-1212', undefined, '16505551212', '+16505551212'],
    ['+44 20 7946 0958', undefined, '442079460958', '+442079460958'],
    ['+44 (0)20 7946 0958', undefined, '442079460958', '+442079460958'],
    ['+33 6 12 34 56 78', undefined, '33612345678', '+33612345678'],
    ['+33 (0)6 12 34 56 78', undefined, '33612345678', '+33612345678'],
    // 00 international prefix.
    ['0033 6 12 34 56 78', undefined, '33612345678', '+33612345678'],
    ['00 44 20 7946 0958', undefined, '442079460958', '+442079460958'],
    // Country code without +: accepted when it makes a valid number.
    ['16505551212', undefined, '16505551212', '+16505551212'],
    ['33 6 12 34 56 78', undefined, '33612345678', '+33612345678'],
    ['442079460958', undefined, '442079460958', '+442079460958'],
    // National numbers: need the default country.
    ['(650) 555-1212', 'US', '16505551212', '+16505551212'],
    ['650.555.1212', 'US', '16505551212', '+16505551212'],
    ['1 650 555 1212', 'US', '16505551212', '+16505551212'],
    ['020 7946 0958', 'GB', '442079460958', '+442079460958'],
    ['07700 900123', 'GB', '447700900123', '+447700900123'],
    ['06 12 34 56 78', 'FR', '33612345678', '+33612345678'],
    ['33612345678', 'FR', '33612345678', '+33612345678'],
    // A + number ignores the default country.
    ['+44 20 7946 0958', 'FR', '442079460958', '+442079460958'],
    // Refused.
    ['(650) 555-1212', undefined, NO_CODE, NO_CODE],
    ['020 7946 0958', undefined, NO_CODE, NO_CODE],
    ['06 12 34 56 78', undefined, NO_CODE, NO_CODE],
    ['+1 650', undefined, 'rejected: not a phone number', 'rejected: not a phone number'],
    ['+44 20 7946 0958 1234 5678', undefined, 'rejected: not a phone number', 'rejected: not a phone number'],
    ['call me', 'US', 'rejected: not a phone number', 'rejected: not a phone number'],
    ['', 'US', 'rejected: empty value', 'rejected: empty value'],
    ['+1' + '2'.repeat(100_000), undefined, 'rejected: not a phone number', 'rejected: not a phone number'],
  ])('%j (default %s) → %j / %j', (input, country, digits, e164) => {
    expect(reason(normalizePhone(input, 'digits', country))).toBe(digits);
    expect(reason(normalizePhone(input, 'e164', country))).toBe(e164);
  });
});

describe('hashPii', () => {
  it.each<[PiiKind, string, string]>([
    ['email', ' Person@Example.com ', 'person@example.com'],
    ['emailGoogle', 'John.Smith@gmail.com', 'johnsmith@gmail.com'],
    ['emailGoogle', 'John.Smith@example.com', 'john.smith@example.com'],
    ['phone', '+44 20 7946 0958', '442079460958'],
    ['phoneE164', '+44 20 7946 0958', '+442079460958'],
    ['firstName', ' Élodie ', 'élodie'],
    ['lastName', "O'Neil", 'oneil'],
    ['gender', 'Male', 'm'],
    ['dateOfBirth', '1990-01-15', '19900115'],
    ['city', 'New York', 'newyork'],
    ['state', 'California', 'ca'],
    ['postalCode', '94025-1234', '94025'],
    ['country', 'DE', 'de'],
    ['externalId', ' abc-123 ', 'abc-123'],
  ])('hash %s of %j is the SHA-256 of %j', (kind, input, normalized) => {
    expect(hashPii(kind, input)).toBe(reference(normalized));
  });

  it('sha256 hashes the value as is', () => {
    expect(hashPii('sha256', ' As Is ')).toBe(reference(' As Is '));
  });

  const digest = reference('someone@example.com');
  it.each(HASH_KINDS.map((k) => [k]))('%s never hashes a SHA-256 digest again (kept, lower-cased)', (kind) => {
    expect(hashPii(kind, digest)).toBe(digest);
    expect(hashPii(kind, digest.toUpperCase())).toBe(digest);
    expect(hashPii(kind, ` ${digest.toUpperCase()}\n`)).toBe(digest);
  });

  it.each(PII_KINDS.map((k) => [k]))('normalize %s keeps a SHA-256 digest (lower-cased)', (kind) => {
    expect(normalizePii(kind, digest.toUpperCase())).toBe(digest);
  });

  it.each(HASH_KINDS.map((k) => [k]))('%s refuses an empty value (the hash of "" matches nobody)', (kind) => {
    expect(reason(hashPii(kind, ''))).toMatch(/^rejected: /);
  });

  it('hashes a 63-character hex string (not a digest)', () => {
    const almost = 'a'.repeat(63);
    expect(hashPii('externalId', almost)).toBe(reference(almost));
  });
});

describe('phone memoization', () => {
  it('keys results by default country', () => {
    expect(normalizePhone('06 12 34 56 78', 'e164', 'FR')).toBe('+33612345678');
    expect(reason(normalizePhone('06 12 34 56 78', 'e164'))).toMatch(/^rejected: no country code/);
    // A possible length in the UK too (only the length is checked, as libphonenumber-js advises).
    expect(normalizePhone('06 12 34 56 78', 'e164', 'GB')).toBe('+44612345678');
    expect(normalizePhone('06 12 34 56 78', 'digits', 'FR')).toBe('33612345678');
  });

  it('stays right past the cache size', () => {
    for (let i = 0; i < 5000; i++) {
      const national = `06 12 ${String(i).padStart(4, '0')} 78`.replaceAll(' ', '');
      expect(normalizePhone(national, 'digits', 'FR')).toBe(`33${national.slice(1)}`);
    }
    expect(normalizePhone('+1 650 555 1212', 'e164')).toBe('+16505551212');
  });
});
