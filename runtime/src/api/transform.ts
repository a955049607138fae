import { Type, type Static } from '@sinclair/typebox';
import { AnyValue, StringEnum } from './common.js';

/**
 * Schemas of Mapping v2 transform steps and lookup tables. They are part of the Mapping CRD, so
 * they stay structural (one `type` per property, no anyOf of different types, no `$ref`, no
 * recursion: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
 * Semantics of every step: runtime/src/mapping/transforms.ts.
 */

/**
 * PII kinds `normalize` and `hash` know. Rules: Meta Conversions API customer information
 * parameters (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters)
 * and Google Ads enhanced conversions (https://developers.google.com/google-ads/api/docs/conversions/enhanced-conversions/web);
 * implemented in runtime/src/mapping/pii.ts.
 */
export const PII_KINDS = [
  'email',
  'emailGoogle',
  'phone',
  'phoneE164',
  'firstName',
  'lastName',
  'gender',
  'dateOfBirth',
  'city',
  'state',
  'postalCode',
  'country',
  'externalId',
] as const;
export type PiiKind = (typeof PII_KINDS)[number];

/** What `hash` takes: a PII kind (normalized first) or `sha256` (hashed as is). */
export const HASH_KINDS = [...PII_KINDS, 'sha256'] as const;
export type HashKind = (typeof HASH_KINDS)[number];

/** Instant encodings `date` reads (`from`). */
export const DATE_INPUTS = ['iso', 'unixSeconds', 'unixMillis', 'unixMicros'] as const;
/** Instant encodings `date` writes (`to`); `format` uses `pattern`. */
export const DATE_OUTPUTS = [...DATE_INPUTS, 'format'] as const;
export type DateInput = (typeof DATE_INPUTS)[number];
export type DateOutput = (typeof DATE_OUTPUTS)[number];

/** Names of lookup tables (keys of the Mapping's `spec.lookups`): a letter, then letters, digits, _ or -, at most 63 characters. */
export const LOOKUP_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_-]{0,62}$';

/** Most entries in one lookup table. */
export const MAX_LOOKUP_ENTRIES = 10000;

/** One step of a field rule's `transforms` list: an object with exactly one property, the operation. */
export const TransformStep = Type.Object(
  {
    trim: Type.Optional(Type.Boolean({ description: 'true: remove Unicode whitespace at both ends of a string. false: no-op.' })),
    case: Type.Optional(
      StringEnum(['lower', 'upper', 'title'] as const, {
        description: 'Change letter case, the same in every locale. title: first letter of each word (after a space or hyphen) upper case, the rest lower case.',
      }),
    ),
    replace: Type.Optional(
      Type.Object(
        {
          pattern: Type.String({ description: 'Text to find; an RE2 regular expression when regex is true (https://github.com/google/re2/wiki/Syntax).', minLength: 1, maxLength: 1024 }),
          with: Type.Optional(
            Type.String({
              description: 'Replacement. With regex, $1, $<name>, $& insert groups and $$ a dollar sign. Default: empty (delete matches).',
              default: '',
              maxLength: 1024,
            }),
          ),
          regex: Type.Optional(Type.Boolean({ description: 'Treat pattern as an RE2 regular expression (linear time; no backreferences or lookarounds).', default: false })),
          all: Type.Optional(Type.Boolean({ description: 'Replace every match; false replaces the first one only.', default: true })),
        },
        { description: 'Replace text in a string.', additionalProperties: false },
      ),
    ),
    split: Type.Optional(Type.String({ description: 'Separator: split a string into an array of strings. Empty splits into characters (code points).', maxLength: 64 })),
    join: Type.Optional(Type.String({ description: 'Separator: join an array of strings, numbers and booleans into one string.', maxLength: 64 })),
    substring: Type.Optional(
      Type.Object(
        {
          start: Type.Integer({ description: 'First character kept (0-based, in Unicode code points).', minimum: 0 }),
          length: Type.Optional(Type.Integer({ description: 'Characters kept (code points). Default: up to the end.', minimum: 0 })),
        },
        { description: 'Part of a string, counted in Unicode code points (a surrogate pair is never split).', additionalProperties: false },
      ),
    ),
    truncate: Type.Optional(Type.Integer({ description: 'Longest length kept, in Unicode code points.', minimum: 1 })),
    convert: Type.Optional(
      StringEnum(['string', 'number', 'integer', 'boolean'] as const, {
        description:
          'Convert the type. string: numbers as JSON, booleans "true"/"false". number: numbers and decimal strings ("-1.5e3"). integer: like number, then truncated. boolean: true/false, "true"/"false"/"yes"/"no"/"1"/"0" (any case), 1/0. Anything else fails.',
      }),
    ),
    round: Type.Optional(Type.Integer({ description: 'Decimals kept, rounding half away from zero (1.005 → 1.01).', minimum: 0, maximum: 10 })),
    multiply: Type.Optional(Type.Number({ description: 'Factor, e.g. 0.01 for cents to units. Follow with round: binary floating point gives 0.07 * 100 = 7.000000000000001.' })),
    date: Type.Optional(
      Type.Object(
        {
          from: Type.Optional(
            StringEnum(DATE_INPUTS, {
              description: 'Input encoding. iso: ISO-8601 with a time zone (Z or ±hh:mm), or a date YYYY-MM-DD (UTC midnight); unix*: a number or numeric string.',
              default: 'iso',
            }),
          ),
          to: StringEnum(DATE_OUTPUTS, { description: 'Output encoding: iso (string), unixSeconds/unixMillis/unixMicros (integers, floored), or format (pattern).' }),
          pattern: Type.Optional(
            Type.String({
              description: 'date-fns format pattern (Unicode tokens, https://date-fns.org/docs/format), required with to: format, e.g. "yyyy-MM-dd HH:mm:ssxxx".',
              minLength: 1,
              maxLength: 128,
            }),
          ),
          timeZone: Type.Optional(
            Type.String({ description: 'Time zone of iso and format output: an IANA name such as Europe/Paris, or a fixed offset such as +05:30.', default: 'UTC', minLength: 1, maxLength: 64 }),
          ),
        },
        { description: 'Convert an instant between encodings.', additionalProperties: false },
      ),
    ),
    lookup: Type.Optional(Type.String({ description: 'Name of a table in the Mapping spec.lookups: replace the value by its entry.', pattern: LOOKUP_NAME_PATTERN, maxLength: 63 })),
    hash: Type.Optional(
      StringEnum(HASH_KINDS, {
        description:
          'Normalize as this kind of personal data, then SHA-256 (lowercase hex). sha256: hash as is. A value that already is 64 hex characters is kept (lowercased), never hashed twice.',
      }),
    ),
    normalize: Type.Optional(StringEnum(PII_KINDS, { description: 'Normalize as this kind of personal data the way ad platforms match it, without hashing.' })),
    phone: Type.Optional(
      Type.Object(
        {
          format: StringEnum(['digits', 'e164'] as const, { description: 'digits: country code and number, digits only (Meta). e164: + then digits (Google).' }),
          defaultCountry: Type.Optional(
            Type.String({ description: 'ISO 3166-1 alpha-2 country of numbers written without a country code, e.g. FR.', pattern: '^[A-Z]{2}$', minLength: 2, maxLength: 2 }),
          ),
        },
        { description: 'Normalize a phone number (libphonenumber).', additionalProperties: false },
      ),
    ),
    json: Type.Optional(StringEnum(['encode', 'decode'] as const, { description: 'encode: any value to a JSON string. decode: a JSON string (at most 64 KiB) to its value.' })),
    flatten: Type.Optional(
      Type.String({ description: 'Separator: turn nested objects into one level with joined keys ({a: {b: 1}} → {"a.b": 1}); arrays are kept as values.', minLength: 1, maxLength: 8 }),
    ),
  },
  {
    description: 'One transform step: exactly one of its properties, the operation. Steps run in order; a step that cannot apply leaves the field out.',
    minProperties: 1,
    maxProperties: 1,
    additionalProperties: false,
  },
);
export type TransformStep = Static<typeof TransformStep>;

/** A lookup table: maps the string form of a value to any JSON value. */
export const LookupTable = Type.Object(
  {
    entries: Type.Record(Type.String(), AnyValue({ description: 'Value the key maps to (any JSON).' }), {
      description: 'Key → value. Keys are compared with the value as a string (numbers and booleans are stringified; other types never match).',
      maxProperties: MAX_LOOKUP_ENTRIES,
    }),
    mode: Type.Optional(
      StringEnum(['strict', 'lenient'] as const, {
        description: 'On a miss, lenient gives default (or the value unchanged when there is no default); strict fails the event. Default: lenient.',
        default: 'lenient',
      }),
    ),
    default: Type.Optional(AnyValue({ description: 'Value given on a miss in lenient mode. Without it a miss keeps the value unchanged.' })),
    ignoreCase: Type.Optional(Type.Boolean({ description: 'Compare keys case-insensitively (Unicode lower case). Default: false.', default: false })),
  },
  { description: 'A lookup table used by the lookup transform step.', additionalProperties: false },
);
export type LookupTable = Static<typeof LookupTable>;
