import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { API_VERSION, CommonStatus, ObjectMeta, PositiveDuration, SecretKeySelector, StringEnum } from './common.js';
import type { Problem } from '../errors.js';

/** Default per-event size limit in bytes, after decompression (Segment's HTTP API limit). */
export const DEFAULT_MAX_EVENT_BYTES = 32 * 1024;
/** Default per-request size limit in bytes, after decompression (Segment's HTTP API limit). */
export const DEFAULT_MAX_BATCH_BYTES = 500 * 1024;

/** An RFC 6265 cookie name (a token). */
const COOKIE_NAME = { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", minLength: 1, maxLength: 128 };
/** A host name such as `shop.example` (letters, digits and `-` per label). */
const HOST_NAME_PATTERN = '^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$';
/** Name of a configurable sync: the key under `context.providers`. */
export const SYNC_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_-]{0,62}$';
/** Browsers cap cookie lifetimes at 400 days (RFC 6265bis, "The Max-Age Attribute"). */
const MAX_COOKIE_DAYS = 400;

const category = (description: string) => Type.String({ description, minLength: 1, maxLength: 128 });
const lifetimeDays = (description: string) => Type.Integer({ description, minimum: 1, maximum: MAX_COOKIE_DAYS });

/** One built-in vendor sync: on by default, its consent category and id lifetime overridable. */
function BuiltinSync<P extends Record<string, TSchema> = {}>(description: string, defaults: { category?: string; lifetimeDays: number }, extra?: P) {
  return Type.Object(
    {
      enabled: Type.Boolean({ description: 'Collect these ids and attach them to events.', default: true }),
      category: Type.Optional(
        category(`Consent category this sync needs (an opt-out skips it and deletes its stored ids). Default: ${defaults.category ?? 'none (always runs)'}.`),
      ),
      lifetimeDays: Type.Optional(lifetimeDays(`Days a collected click id is kept in its first-party cookie. Default: ${defaults.lifetimeDays}.`)),
      ...(extra as P),
    },
    { description, default: {}, additionalProperties: false },
  );
}

/**
 * Fields of each configurable sync kind: `needs` must be set, `allows` may be; the fields of other
 * kinds may not. The CRD's CEL rules and {@link tagProblems} both follow this table.
 */
export const SYNC_KIND_FIELDS = {
  urlParameter: { needs: ['parameter'], allows: [] },
  cookie: { needs: ['cookie'], allows: ['pattern'] },
  localStorage: { needs: ['key'], allows: ['path'] },
  fetch: { needs: ['url', 'path'], allows: ['credentials'] },
  pixel: { needs: ['url'], allows: [] },
} as const satisfies Record<string, { needs: readonly string[]; allows: readonly string[] }>;
/** The configurable sync kinds. */
export const SYNC_KINDS = Object.keys(SYNC_KIND_FIELDS) as (keyof typeof SYNC_KIND_FIELDS)[];
type SyncKind = keyof typeof SYNC_KIND_FIELDS;

/** Kind-specific field → the kinds it belongs to. */
const KIND_SPECIFIC_FIELDS: Map<string, SyncKind[]> = new Map();
for (const kind of SYNC_KINDS) {
  for (const field of [...SYNC_KIND_FIELDS[kind].needs, ...SYNC_KIND_FIELDS[kind].allows]) {
    KIND_SPECIFIC_FIELDS.set(field, [...(KIND_SPECIFIC_FIELDS.get(field) ?? []), kind]);
  }
}
const needsMessage = (kind: SyncKind) => `kind ${kind} needs ${SYNC_KIND_FIELDS[kind].needs.join(' and ')}`;
const onlyForMessage = (field: string, kinds: SyncKind[]) => `${field} is only for kind ${kinds.join(' or ')}`;

/** A configurable sync (client `SyncConfig`): one object for the five kinds, checked per kind by CEL. */
export const SyncSpec = Type.Object(
  {
    name: Type.String({ description: 'Key under context.providers the collected id is attached to (letters, digits, _ and -; unique among syncs).', pattern: SYNC_NAME_PATTERN, maxLength: 63 }),
    kind: StringEnum(SYNC_KINDS, {
      description:
        'Where the id comes from: urlParameter (a parameter of the landing page URL; a newer value replaces the stored one), cookie (a cookie, optionally through pattern), localStorage (a key, optionally a dot path into its JSON), fetch (a JSON answer of GET url, at path; once per lifetime) or pixel (an image request to url, once per lifetime; attaches the ISO time it fired).',
    }),
    field: Type.Optional(Type.String({ description: 'Field of context.providers.<name> the id is written to. Default: id (pixel: syncedAt).', pattern: SYNC_NAME_PATTERN, maxLength: 63 })),
    category: Type.Optional(category('Consent category this sync needs. Default: none (always runs).')),
    lifetimeDays: Type.Optional(lifetimeDays('Days the collected id (or the pixel\'s firing) is kept in the first-party cookie sy_<name>_<field>. Default: 90.')),
    parameter: Type.Optional(Type.String({ description: 'kind urlParameter: name of the URL parameter.', minLength: 1, maxLength: 256 })),
    cookie: Type.Optional(Type.String({ description: 'kind cookie: name of the cookie read.', ...COOKIE_NAME })),
    pattern: Type.Optional(
      Type.String({ description: 'kind cookie: a JavaScript regular expression applied to the cookie value; its first capture group is the id. Default: the whole value.', minLength: 1, maxLength: 512 }),
    ),
    key: Type.Optional(Type.String({ description: 'kind localStorage: the localStorage key read.', minLength: 1, maxLength: 256 })),
    path: Type.Optional(
      Type.String({ description: 'kind localStorage (optional) and fetch (required): dot path of the id in the JSON value, e.g. user.id.', pattern: '^[^.\\s]+(\\.[^.\\s]+)*$', maxLength: 256 }),
    ),
    url: Type.Optional(
      Type.String({
        description: 'kind fetch and pixel: the http(s) URL requested; {anonymousId}, {userId}, {crossDomainId} and {random} are filled in, URL-encoded.',
        pattern: '^https?://[^\\s]+$',
        maxLength: 2048,
      }),
    ),
    credentials: Type.Optional(StringEnum(['include', 'omit', 'same-origin'] as const, { description: 'kind fetch: fetch credentials mode. Default: include.' })),
  },
  {
    description: 'A configurable sync: an id collected in the browser and attached to every event under context.providers.<name>.',
    additionalProperties: false,
    'x-kubernetes-validations': [
      ...SYNC_KINDS.map((kind) => ({
        rule: `self.kind != '${kind}' || (${SYNC_KIND_FIELDS[kind].needs.map((f) => `has(self.${f})`).join(' && ')})`,
        message: needsMessage(kind),
      })),
      ...[...KIND_SPECIFIC_FIELDS].map(([field, kinds]) => ({
        rule: `!has(self.${field}) || ${kinds.length === 1 ? `self.kind == '${kinds[0]}'` : `self.kind in [${kinds.map((k) => `'${k}'`).join(', ')}]`}`,
        message: onlyForMessage(field, kinds),
      })),
    ],
  },
);
export type SyncSpec = Static<typeof SyncSpec>;

/** Most configurable syncs per Source (bounds the CRD's CEL cost and the tag's work per page). */
export const MAX_SYNCS = 32;

/** `spec.tag`: the first-party browser tag the ingestion serves for this Source (`GET /tag/<writeKey>.js`). */
export const TagSpec = Type.Object(
  {
    enabled: Type.Boolean({ description: 'Serve the tag for this Source at /tag/<writeKey>.js and /analytics.js/v1/<writeKey>/analytics.min.js.', default: true }),
    apiHost: Type.Optional(
      Type.String({
        description: 'Base URL the tag sends events to, e.g. https://data.example.com. Default: the origin the tag was loaded from.',
        pattern: '^https?://[^/?#\\s]+(/[^?#\\s]*)?$',
        maxLength: 2048,
      }),
    ),
    cookie: Type.Object(
      {
        domain: Type.Optional(
          Type.String({
            description:
              'Domain of the identity cookies, e.g. shop.example. Default: the registrable domain (the tag probes for the shortest parent domain that takes a cookie; the ingestion uses the public suffix list).',
            pattern: HOST_NAME_PATTERN,
            maxLength: 253,
          }),
        ),
        anonymousIdName: Type.String({ description: 'Cookie (and localStorage key) holding the anonymousId.', default: 'ajs_anonymous_id', ...COOKIE_NAME }),
        userIdName: Type.String({ description: 'Cookie (and localStorage key) holding the userId.', default: 'ajs_user_id', ...COOKIE_NAME }),
        maxAgeDays: Type.Integer({ description: 'Lifetime of the identity cookies the tag writes, in days.', default: 365, minimum: 1, maximum: MAX_COOKIE_DAYS }),
        sameSite: StringEnum(['Lax', 'Strict', 'None'] as const, { description: 'SameSite attribute of the identity cookies (None implies Secure).', default: 'Lax' }),
      },
      { description: 'Identity cookies (analytics.js-compatible names by default).', default: {}, additionalProperties: false },
    ),
    serverCookie: Type.Object(
      {
        enabled: Type.Boolean({
          description:
            'The tag asks the ingestion (POST /v1/identity, with credentials) to set the anonymousId cookie in its answer: server-set cookies outlive script-set ones in browsers that cap the latter (Safari: 7 days). The cookie the browser already holds wins over the tag\'s id. Needs the ingestion on the same registrable domain as the site (e.g. data.shop.example for shop.example).',
          default: false,
        }),
        httpOnly: Type.Boolean({ description: 'Set the cookie HttpOnly (scripts cannot read it; the tag learns the id from the answer).', default: false }),
        maxAgeDays: Type.Integer({ description: 'Lifetime of the server-set cookie in days (400 is what browsers allow at most).', default: 400, minimum: 1, maximum: MAX_COOKIE_DAYS }),
        timeout: PositiveDuration({ description: 'How long the tag holds sending while it waits for the answer; then it goes on with its own id.', default: '2s' }),
      },
      { description: 'The anonymousId cookie set by the ingestion itself.', default: {}, additionalProperties: false },
    ),
    transport: Type.Object(
      {
        maxEvents: Type.Integer({ description: 'Events per request at most.', default: 20, minimum: 1, maximum: 500 }),
        maxBytes: Type.Integer({
          description: 'Bytes per request body at most (64 KiB is what a page may have in flight with keepalive while it unloads).',
          default: 64000,
          minimum: 1024,
          maximum: 65536,
        }),
        flushInterval: PositiveDuration({ description: 'Wait before a queued event is sent, so more events join its request.', default: '1s' }),
        retryMinDelay: PositiveDuration({ description: 'First retry delay; it doubles per attempt, with ±50% jitter.', default: '1s' }),
        retryMaxDelay: PositiveDuration({ description: 'Longest retry delay.', default: '1m' }),
        maxAttempts: Type.Integer({ description: 'Attempts before an event is dropped.', default: 10, minimum: 1, maximum: 100 }),
        maxAge: PositiveDuration({
          description: "Age after which a queued event is dropped (resends after the ingestion's duplicate window, 10 minutes by default, may be stored twice).",
          default: '7d',
        }),
        lease: PositiveDuration({ description: 'How long one tab owns the shared queue without renewing it (it renews every third of it).', default: '3s' }),
      },
      { description: 'Batching and retries of the tag.', default: {}, additionalProperties: false },
    ),
    consent: Type.Object(
      {
        cookie: Type.Optional(
          Type.Object(
            {
              name: Type.String({ description: "The consent platform's cookie, e.g. OptanonConsent (OneTrust) or CookieConsent (Cookiebot).", ...COOKIE_NAME }),
              format: StringEnum(['onetrust', 'cookiebot', 'json'] as const, {
                description: 'onetrust (groups=C0001:1,C0004:0), cookiebot ({necessary:true,marketing:false,…}) or json (a URL-encoded JSON object category → boolean).',
              }),
              categories: Type.Record(Type.String(), category('Our category name (as Integrations\' consent.categories name it).'), {
                description: "The platform's category names → ours, e.g. {C0004: Advertising}; unnamed ones keep their own name.",
                default: {},
                maxProperties: 64,
              }),
            },
            { description: "A consent platform's cookie, read on every event (analytics.setConsent wins over it). Default: none.", additionalProperties: false },
          ),
        ),
        defaults: Type.Record(Type.String(), Type.Boolean(), {
          description: 'Preferences assumed until the site or the platform states one, e.g. {Analytics: true}. Categories with none follow spec.consent.missing.',
          default: {},
          maxProperties: 64,
        }),
      },
      { description: 'Where the tag reads the visitor\'s consent, besides analytics.setConsent(...).', default: {}, additionalProperties: false },
    ),
    builtinSyncs: Type.Object(
      {
        meta: BuiltinSync('Meta: context.providers.facebookTag {fbp, fbc} from the _fbp cookie (minted when missing) and _fbc (built from fbclid).', { category: 'Advertising', lifetimeDays: 90 }),
        google: BuiltinSync(
          'Google: context.providers.googleGtag.data {client_id, session_id, gclid, gbraid, wbraid, dclid} from the _ga and _ga_<stream> cookies and the click id URL parameters.',
          { category: 'Advertising', lifetimeDays: 90 },
          {
            measurementId: Type.Optional(
              Type.String({ description: 'GA4 measurement id (G-XXXXXXX) whose _ga_<stream> cookie gives session_id. Default: the first such cookie found.', pattern: '^G-[A-Z0-9]{1,20}$' }),
            ),
          },
        ),
        tiktok: BuiltinSync('TikTok: context.providers.tiktok {ttclid, ttp} from the ttclid URL parameter and the _ttp cookie.', { category: 'Advertising', lifetimeDays: 90 }),
        microsoft: BuiltinSync('Microsoft Advertising: context.providers.microsoft {msclkid} from the msclkid URL parameter (_uetmsclkid cookie).', { category: 'Advertising', lifetimeDays: 90 }),
        pinterest: BuiltinSync('Pinterest: context.providers.pinterest {epik} from the epik URL parameter (_epik cookie).', { category: 'Advertising', lifetimeDays: 365 }),
        snapchat: BuiltinSync('Snapchat: context.providers.snapchat {sccid, scid} from the ScCid URL parameter and the _scid cookie.', { category: 'Advertising', lifetimeDays: 90 }),
        crossDomain: BuiltinSync(
          'Our own id shared across your domains: context.providers.crossDomain {id}, carried by the _syxid URL parameter on links to domains and adopted from it on landing.',
          { lifetimeDays: 365 },
          {
            domains: Type.Array(Type.String({ pattern: HOST_NAME_PATTERN, maxLength: 253 }), {
              description: 'Host names whose links carry the id (a host and its subdomains), e.g. shop.example.',
              default: [],
              maxItems: 64,
              uniqueItems: true,
              'x-kubernetes-list-type': 'set',
            }),
          },
        ),
      },
      { description: 'Built-in vendor syncs (ids under context.providers); each is on unless enabled is false.', default: {}, additionalProperties: false },
    ),
    syncs: Type.Array(SyncSpec, {
      description: 'Configurable syncs, by unique name.',
      default: [],
      maxItems: MAX_SYNCS,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
  },
  {
    description:
      'The first-party browser tag (analytics.js-compatible, with the Sync Injector) served by the ingestion with this configuration. Default: served, with the defaults below.',
    additionalProperties: false,
  },
);
export type TagSpec = Static<typeof TagSpec>;

/**
 * The checks of `spec.tag` a JSON Schema cannot state, the same as the CRD's CEL rules (see
 * {@link SYNC_KIND_FIELDS}) plus one CEL cannot: sync names are unique, each kind has the fields
 * it needs and none of another kind's, and `pattern` is a valid JavaScript regular expression.
 * @returns problems with paths relative to `spec.tag` (e.g. `/syncs/2/path`); empty when fine.
 */
export function tagProblems(tag: Pick<TagSpec, 'syncs'>): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  tag.syncs.forEach((sync, i) => {
    const at = `/syncs/${i}`;
    if (seen.has(sync.name)) problems.push({ path: `${at}/name`, rule: 'unique', message: `sync name ${sync.name} is used more than once` });
    seen.add(sync.name);
    const fields = sync as Record<string, unknown>;
    const needs = SYNC_KIND_FIELDS[sync.kind]?.needs ?? [];
    if (needs.some((f) => fields[f] === undefined)) problems.push({ path: `${at}/${needs.find((f) => fields[f] === undefined)}`, rule: 'required', message: needsMessage(sync.kind) });
    for (const [field, kinds] of KIND_SPECIFIC_FIELDS) {
      if (fields[field] !== undefined && !kinds.includes(sync.kind)) problems.push({ path: `${at}/${field}`, rule: 'kind', message: onlyForMessage(field, kinds) });
    }
    if (sync.pattern !== undefined) {
      try {
        new RegExp(sync.pattern);
      } catch (e) {
        problems.push({ path: `${at}/pattern`, rule: 'pattern', message: `not a JavaScript regular expression: ${(e as Error).message}` });
      }
    }
  });
  return problems;
}

export const SourceSpec = Type.Object(
  {
    writeKey: Type.Object(
      {
        secretKeyRef: Type.Optional(SecretKeySelector('Secret key holding the write key. Required in a cluster.')),
        value: Type.Optional(
          Type.String({
            description: 'The write key itself. Honoured only by `switchyard dev` (local mode); in a cluster use secretKeyRef.',
            minLength: 8,
            maxLength: 256,
          }),
        ),
      },
      {
        description:
          'The key SDKs send (HTTP Basic user name, or `writeKey` in the body) to name this Source. It is public in every page that embeds the tag: it identifies, it does not protect.',
        additionalProperties: false,
        'x-kubernetes-validations': [
          { rule: 'has(self.secretKeyRef) != has(self.value)', message: 'set exactly one of writeKey.secretKeyRef and writeKey.value' },
        ],
      },
    ),
    allowedOrigins: Type.Array(
      Type.String({ maxLength: 2048, pattern: '^(\\*|https?://[^/]+)$' }),
      {
        description:
          'Browser origins (scheme://host[:port]) allowed to send events with CORS; `*` allows any. Empty: no browser origin is allowed (server SDKs are unaffected).',
        default: [],
        maxItems: 256,
      },
    ),
    limits: Type.Object(
      {
        maxEventBytes: Type.Integer({
          description: 'Largest accepted event in bytes, as JSON after decompression. Larger events are refused one by one.',
          default: DEFAULT_MAX_EVENT_BYTES,
          minimum: 1024,
          maximum: 1048576,
        }),
        maxBatchBytes: Type.Integer({
          description: 'Largest accepted request body in bytes, after decompression; larger requests get 413.',
          default: DEFAULT_MAX_BATCH_BYTES,
          minimum: 1024,
          maximum: 16777216,
        }),
        eventsPerSecond: Type.Integer({
          description: 'Sustained rate of events accepted for this Source per ingestion replica; above it requests get 429 with Retry-After.',
          default: 5000,
          minimum: 1,
          maximum: 10000000,
        }),
        burst: Type.Integer({
          description: 'Events that may arrive at once above the sustained rate (token bucket size).',
          default: 10000,
          minimum: 1,
          maximum: 100000000,
        }),
      },
      { description: 'Size and rate limits.', default: {}, additionalProperties: false },
    ),
    consent: Type.Object(
      {
        missing: StringEnum(['allow', 'deny'] as const, {
          description:
            "What an Integration needing a consent category does with an event of this Source that states no preference for it (no context.consent.categoryPreferences entry): allow (opt-out regimes, e.g. CCPA) or deny (opt-in regimes, e.g. GDPR).",
          default: 'allow',
        }),
      },
      { description: 'Consent policy of this Source.', default: {}, additionalProperties: false },
    ),
    tag: Type.Optional(TagSpec),
  },
  { description: 'A place events come from, identified by its write key.', additionalProperties: false },
);
export type SourceSpec = Static<typeof SourceSpec>;

export const Source = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('Source'),
    metadata: ObjectMeta,
    spec: SourceSpec,
    status: Type.Optional(CommonStatus()),
  },
  { additionalProperties: false },
);
export type Source = Static<typeof Source>;
