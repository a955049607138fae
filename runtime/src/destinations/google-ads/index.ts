/**
 * The `google-ads` destination: click conversions (offline conversion import) uploaded with the
 * Google Ads API ConversionUploadService.UploadClickConversions over REST, with partial failure.
 * Sources of the rules below:
 * - upload guide: https://developers.google.com/google-ads/api/docs/conversions/upload-clicks
 * - request/response: https://developers.google.com/google-ads/api/reference/rpc/v26/UploadClickConversionsRequest
 *   and https://developers.google.com/google-ads/api/reference/rpc/v26/UploadClickConversionsResponse
 * - one conversion: https://developers.google.com/google-ads/api/reference/rpc/v26/ClickConversion
 * - partial failure: https://developers.google.com/google-ads/api/docs/best-practices/partial-failures
 * - errors: https://developers.google.com/google-ads/api/docs/best-practices/error-types and
 *   https://developers.google.com/google-ads/api/reference/rpc/v26/ConversionUploadErrorEnum.ConversionUploadError
 * - OAuth 2.0 refresh: https://developers.google.com/identity/protocols/oauth2/web-server#offline
 */
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { ERROR_BODY_LIMIT, chunk, classifyByStatus, parseRetryAfter, query, isJsonObject, parseJsonObject } from '../http.js';
import type { DestinationDefinition, ItemResult, RequestContext, RequestResult, VendorRequest, VendorResponse } from '../types.js';
import { CONVERSION_ACTION_KEY_PATTERN, GoogleAdsSettings } from './settings.js';

export { GoogleAdsSettings, GOOGLE_ADS_API_VERSION } from './settings.js';

/** Most conversions per UploadClickConversions request (ConversionUploadError TOO_MANY_CONVERSIONS_IN_REQUEST: "Upload fewer than 2001 events"). */
export const MAX_CONVERSIONS_PER_REQUEST = 2000;

/**
 * Oldest conversion sent, in days: 90, the longest click-through conversion window
 * (ConversionAction.click_through_lookback_window_days). A conversion is never older than its
 * click, so one older than this has a click outside every window (EXPIRED_EVENT) and is refused
 * before sending.
 */
export const MAX_CONVERSION_AGE_DAYS = 90;

/** Most user identifiers per conversion (ClickConversion.user_identifiers: "The maximum number of user identifiers for each conversion is 5"). */
export const MAX_USER_IDENTIFIERS = 5;

const DAY_MS = 86_400_000;
/** A cached access token is refreshed this long before it expires, so it never expires in flight. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;

const RESOURCE_NAME = 'customers/[0-9]+/conversionActions/[0-9]+';
const HEX64 = '^[0-9a-f]{64}$';
/** `yyyy-mm-dd hh:mm:ss+|-hh:mm` (ClickConversion.conversion_date_time), calendar ranges checked. */
export const CONVERSION_DATE_TIME_PATTERN = '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9][+-](0[0-9]|1[0-4]):[0-5][0-9]$';

const CONSENT_STATUS = ['GRANTED', 'DENIED', 'UNSPECIFIED'];

function conversionSchema(actionPattern: string): object {
  const clickId = { type: 'string', minLength: 1, maxLength: 1024 };
  return Object.freeze({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Google Ads ClickConversion (REST JSON)',
    type: 'object',
    additionalProperties: false,
    required: ['conversionAction', 'conversionDateTime'],
    properties: {
      gclid: { ...clickId, description: 'Google click id (context.providers.googleGtag.data.gclid). Exactly one of gclid, gbraid, wbraid.' },
      gbraid: { ...clickId, description: 'Click id of iOS app conversions. Exactly one of gclid, gbraid, wbraid.' },
      wbraid: { ...clickId, description: 'Click id of iOS web conversions. Exactly one of gclid, gbraid, wbraid.' },
      conversionAction: {
        type: 'string',
        pattern: actionPattern,
        description: 'Conversion action: a key of destination.googleAds.conversionActions, its id, or the resource name customers/{customerId}/conversionActions/{id}.',
      },
      conversionDateTime: { type: 'string', pattern: CONVERSION_DATE_TIME_PATTERN, description: 'When the conversion happened, yyyy-mm-dd hh:mm:ss+|-hh:mm, e.g. 2026-11-20 15:04:20+00:00 (the date transform pattern "yyyy-MM-dd HH:mm:ssxxx").' },
      conversionValue: { type: 'number', description: 'Value of the conversion for the advertiser.' },
      currencyCode: { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217 code of conversionValue, e.g. USD.' },
      orderId: { type: 'string', minLength: 1, maxLength: 1024, description: 'Order (transaction) id: Google Ads records one conversion per order id and conversion action.' },
      userIdentifiers: {
        type: 'array',
        maxItems: MAX_USER_IDENTIFIERS,
        description:
          'Up to 5 SHA-256 hashed identifiers (64 lowercase hex), each exactly one of hashedEmail or hashedPhoneNumber. null entries (left when a Mapping writes identifiers at fixed indexes and one is missing) are removed before sending.',
        items: {
          anyOf: [
            { type: 'null' },
            {
              type: 'object',
              additionalProperties: false,
              properties: {
                hashedEmail: { type: 'string', pattern: HEX64 },
                hashedPhoneNumber: { type: 'string', pattern: HEX64 },
                userIdentifierSource: { enum: ['FIRST_PARTY', 'THIRD_PARTY', 'UNSPECIFIED'] },
              },
              oneOf: [{ required: ['hashedEmail'] }, { required: ['hashedPhoneNumber'] }],
            },
          ],
        },
      },
      consent: {
        type: 'object',
        additionalProperties: false,
        description: 'Consent of the user. Only adUserData applies to click conversions (Consent.ad_personalization "can only be set for OfflineUserDataJobService and UserDataService").',
        properties: { adUserData: { enum: CONSENT_STATUS } },
      },
      conversionEnvironment: { enum: ['APP', 'WEB', 'UNSPECIFIED'] },
      userIpAddress: { type: 'string', anyOf: [{ format: 'ipv4' }, { format: 'ipv6' }] },
      customVariables: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['conversionCustomVariable', 'value'],
          properties: { conversionCustomVariable: { type: 'string', pattern: '^customers/[0-9]+/conversionCustomVariables/[0-9]+$' }, value: { type: 'string' } },
        },
      },
    },
    // Exactly one click id: this destination uploads click conversions, not enhanced conversions for leads.
    oneOf: [{ required: ['gclid'] }, { required: ['gbraid'] }, { required: ['wbraid'] }],
  });
}

const MAPPING_LEVEL_SCHEMA = conversionSchema(`^(${RESOURCE_NAME}|[0-9]{1,20}|${CONVERSION_ACTION_KEY_PATTERN.slice(1, -1)})$`);

/**
 * JSON Schema (draft 2020-12) of one mapped payload: one ClickConversion in REST JSON. Without
 * settings (a Mapping's own check) `conversionAction` may be any key; with an Integration's
 * settings it must be one of its `conversionActions` keys, an id or a resource name, so a key the
 * Integration does not configure is reported on the rule that writes it.
 */
export function googleAdsOutputSchema(settings: GoogleAdsSettings | undefined): object {
  if (!settings) return MAPPING_LEVEL_SCHEMA;
  const keys = Object.keys(settings.conversionActions ?? {}).filter((k) => new RegExp(CONVERSION_ACTION_KEY_PATTERN).test(k));
  return conversionSchema(`^(${[RESOURCE_NAME, '[0-9]{1,20}', ...keys].join('|')})$`);
}

/**
 * The resource name of a payload's `conversionAction`: kept when it already is one; an id, or a
 * key of `conversionActions`, becomes `customers/{customerId}/conversionActions/{id}`. Anything
 * else is sent as is, so Google refuses that conversion alone (partial failure), not the batch.
 */
export function conversionActionResource(value: unknown, settings: Pick<GoogleAdsSettings, 'customerId' | 'conversionActions'>): unknown {
  if (typeof value !== 'string') return value;
  if (new RegExp(`^${RESOURCE_NAME}$`).test(value)) return value;
  const id = /^[0-9]{1,20}$/.test(value) ? value : Object.hasOwn(settings.conversionActions ?? {}, value) ? settings.conversionActions[value] : undefined;
  return id === undefined ? value : `customers/${settings.customerId}/conversionActions/${id}`;
}

/** The ClickConversion sent for a payload: conversionAction resolved, null user identifiers removed. */
function clickConversion(payload: Record<string, unknown>, settings: GoogleAdsSettings): Record<string, unknown> {
  const out: Record<string, unknown> = { ...payload, conversionAction: conversionActionResource(payload.conversionAction, settings) };
  if (Array.isArray(payload.userIdentifiers)) {
    const ids = payload.userIdentifiers.filter((u) => u !== null && u !== undefined);
    if (ids.length > 0) out.userIdentifiers = ids;
    else delete out.userIdentifiers;
  }
  return out;
}

/**
 * Milliseconds since the epoch of a `yyyy-mm-dd hh:mm:ss±hh:mm` date-time, or undefined when it
 * does not have that form.
 */
export function parseConversionDateTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || !new RegExp(CONVERSION_DATE_TIME_PATTERN).test(value)) return undefined;
  const ms = Date.parse(value.replace(' ', 'T'));
  return Number.isNaN(ms) ? undefined : ms;
}

// ---- credentials and the OAuth access token ---------------------------------------------------

const OAUTH_KEYS = ['client_id', 'client_secret', 'refresh_token'] as const;
const TOKEN_KEY = 'google-ads:token';
const PENDING_KEY = 'google-ads:token-pending';
const REFUSED_KEY = 'google-ads:token-refused';

/** An access token in ctx.cache. `retried`: obtained after Google refused the previous one (refreshed once). */
interface CachedToken {
  token: string;
  /** ms since the epoch (ctx.now at the exchange + expires_in). */
  expiresAt: number;
  retried: boolean;
}

const usesRefreshToken = (credentials: Readonly<Record<string, string>>): boolean => OAUTH_KEYS.every((k) => !!credentials[k]);

/**
 * Exchanges the refresh token for an access token (POST tokenEndpoint, form-encoded
 * grant_type=refresh_token, client_id, client_secret, refresh_token; answer {access_token,
 * expires_in (seconds)}).
 * @throws SwitchyardError (permanent) when Google refuses the client or the grant (400, 401, 403);
 * Error (retryable) for 429, 5xx and unreadable answers.
 */
async function exchangeRefreshToken(ctx: RequestContext<GoogleAdsSettings>): Promise<CachedToken> {
  const { credentials: c } = ctx;
  const response = await ctx.fetch({
    method: 'POST',
    url: ctx.settings.tokenEndpoint,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: query({ grant_type: 'refresh_token', client_id: c.client_id, client_secret: c.client_secret, refresh_token: c.refresh_token }),
  });
  let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
  try {
    json = JSON.parse(response.body) as typeof json;
  } catch {
    // handled below by status
  }
  if (response.status !== 200 || typeof json.access_token !== 'string' || json.access_token === '') {
    const why = `OAuth token endpoint answered HTTP ${response.status}${json.error ? ` ${String(json.error)}` : ''}${json.error_description ? `: ${String(json.error_description)}` : ''}`.slice(0, ERROR_BODY_LIMIT);
    // invalid_grant (revoked or expired refresh token), invalid_client, unauthorized_client: fixing the Secret is the only cure.
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${ctx.integration}: ${why} (check client_id, client_secret and refresh_token of the credentials Secret)`);
    }
    throw new Error(why);
  }
  const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 3600;
  return { token: json.access_token, expiresAt: ctx.now + expiresIn * 1000, retried: ctx.cache.get(REFUSED_KEY) === true };
}

/**
 * The access token of a request: the Secret's `access_token` when it has no refresh token, else
 * the cached OAuth token while it has more than {@link TOKEN_REFRESH_MARGIN_MS} left (by ctx.now),
 * else a new one (one exchange at a time per destination: concurrent sends share it).
 */
export async function googleAdsAccessToken(ctx: RequestContext<GoogleAdsSettings>): Promise<string> {
  if (!usesRefreshToken(ctx.credentials)) return ctx.credentials.access_token ?? '';
  const cached = ctx.cache.get(TOKEN_KEY) as CachedToken | undefined;
  if (cached && ctx.now < cached.expiresAt - TOKEN_REFRESH_MARGIN_MS) return cached.token;
  let pending = ctx.cache.get(PENDING_KEY) as Promise<CachedToken> | undefined;
  if (!pending) {
    pending = exchangeRefreshToken(ctx).then(
      (t) => {
        ctx.cache.set(TOKEN_KEY, t);
        ctx.cache.delete(REFUSED_KEY);
        ctx.cache.delete(PENDING_KEY);
        return t;
      },
      (e: unknown) => {
        ctx.cache.delete(PENDING_KEY);
        throw e;
      },
    );
    ctx.cache.set(PENDING_KEY, pending);
  }
  return (await pending).token;
}

const bearerOf = (request: VendorRequest): string | undefined => /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];

/**
 * Google refused the access token of `request`. With a refresh token, the token is dropped from
 * the cache so the next attempt gets a new one: retryable, once; a refreshed token refused again
 * is permanent. A plain access_token cannot be refreshed: permanent.
 */
function tokenRefused(ctx: RequestContext<GoogleAdsSettings>, request: VendorRequest, error: string): RequestResult {
  if (!usesRefreshToken(ctx.credentials)) {
    return { outcome: 'permanent', error: `${error} (the access_token of the credentials Secret was refused; give client_id, client_secret and refresh_token so it can be refreshed)` };
  }
  const cached = ctx.cache.get(TOKEN_KEY) as CachedToken | undefined;
  const token = bearerOf(request);
  if (cached && cached.token === token) {
    if (cached.retried) return { outcome: 'permanent', error: `${error} (refused again after a refresh)` };
    ctx.cache.delete(TOKEN_KEY);
    ctx.cache.set(REFUSED_KEY, true);
  }
  // Another send may already have replaced the token: the next attempt uses the new one.
  return { outcome: 'retryable', error: `${error} (access token refreshed for the next attempt)` };
}

// ---- Google's error shapes ------------------------------------------------------------------

/** One GoogleAdsError (https://developers.google.com/google-ads/api/reference/rpc/v26/GoogleAdsError) in REST JSON. */
export interface GoogleAdsError {
  /** One-key object, e.g. {conversionUploadError: 'UNPARSEABLE_GCLID'}. */
  errorCode?: Record<string, string>;
  message?: string;
  trigger?: unknown;
  location?: { fieldPathElements?: { fieldName?: string; index?: number }[] };
  details?: { quotaErrorDetails?: { rateScope?: string; rateName?: string; retryDelay?: string } } & Record<string, unknown>;
}

/** A google.rpc.Status in REST JSON: the `error` of a failed call, or `partialFailureError`. */
export interface GoogleStatus {
  code?: number;
  message?: string;
  status?: string;
  details?: ({ '@type'?: string; errors?: GoogleAdsError[]; requestId?: string; retryDelay?: string; fieldViolations?: { field?: string; description?: string }[] } & Record<string, unknown>)[];
}


/** The GoogleAdsErrors of a Status (its GoogleAdsFailure details), and the request id. */
function adsErrors(status: GoogleStatus): { errors: GoogleAdsError[]; requestId?: string } {
  const errors: GoogleAdsError[] = [];
  let requestId: string | undefined;
  for (const d of Array.isArray(status.details) ? status.details : []) {
    if (!isJsonObject(d) || typeof d['@type'] !== 'string' || !d['@type'].endsWith('.errors.GoogleAdsFailure')) continue;
    if (Array.isArray(d.errors)) errors.push(...d.errors.filter(isJsonObject));
    if (typeof d.requestId === 'string') requestId ??= d.requestId;
  }
  return requestId === undefined ? { errors } : { errors, requestId };
}

const codeOf = (e: GoogleAdsError): [string, string] | undefined => {
  const entry = isJsonObject(e.errorCode) ? Object.entries(e.errorCode)[0] : undefined;
  return entry && typeof entry[1] === 'string' ? [entry[0], entry[1]] : undefined;
};

/** Position in `conversions` an error points at (its first field path element `conversions[i]`), or undefined. */
function rowOf(e: GoogleAdsError): number | undefined {
  const first = e.location?.fieldPathElements?.[0];
  return first && first.fieldName === 'conversions' && Number.isInteger(first.index) ? first.index : undefined;
}

/** `message [errorType: CODE] at conversions[1].gclid`: one error, for logs and dead letters. */
export function describeAdsError(e: GoogleAdsError): string {
  const code = codeOf(e);
  const path = (e.location?.fieldPathElements ?? []).map((p) => `${p.fieldName ?? '?'}${Number.isInteger(p.index) ? `[${p.index}]` : ''}`).join('.');
  return [e.message ?? 'error', code ? `[${code[0]}: ${code[1]}]` : '', path ? `at ${path}` : ''].filter(Boolean).join(' ');
}

/**
 * Per-conversion codes that a later attempt can fix (the upload guide's "retry after 6 hours",
 * internal and quota errors); every other code of a row is permanent.
 */
const TRANSIENT_ROW_CODES: Readonly<Record<string, ReadonlySet<string> | 'any'>> = {
  conversionUploadError: new Set(['TOO_RECENT_EVENT', 'TOO_RECENT_CONVERSION_ACTION']),
  internalError: 'any',
  quotaError: 'any',
  databaseError: new Set(['CONCURRENT_MODIFICATION']),
};
/** Per-conversion codes saying Google already has this conversion (a replay): delivered, not failed. */
const ALREADY_RECORDED_CODES = new Set(['CLICK_CONVERSION_ALREADY_EXISTS', 'ORDER_ID_ALREADY_IN_USE']);

const isTransient = (e: GoogleAdsError): boolean => {
  const code = codeOf(e);
  const set = code ? TRANSIENT_ROW_CODES[code[0]] : undefined;
  return set === 'any' || (!!set && set.has(code![1]));
};
const isAlreadyRecorded = (e: GoogleAdsError): boolean => {
  const code = codeOf(e);
  return !!code && code[0] === 'conversionUploadError' && ALREADY_RECORDED_CODES.has(code[1]);
};

/** The outcome of one conversion from its errors: delivered (already recorded), retryable (all transient) or permanent. */
function rowResult(errors: readonly GoogleAdsError[], requestId: string | undefined): ItemResult {
  const text = `${errors.slice(0, 3).map(describeAdsError).join('; ')}${errors.length > 3 ? ` (+${errors.length - 3} more)` : ''}${requestId ? ` (requestId ${requestId})` : ''}`.slice(0, ERROR_BODY_LIMIT);
  if (errors.every(isAlreadyRecorded)) return { outcome: 'success', error: `already recorded by Google Ads: ${text}` };
  if (errors.every(isTransient)) return { outcome: 'retryable', error: text };
  return { outcome: 'permanent', error: text };
}

/**
 * Classifies a 2xx UploadClickConversionsResponse: `partialFailureError` (a google.rpc.Status whose
 * GoogleAdsFailure errors point at `conversions[i]`) fails only those rows; `results[]` has an
 * empty object for each failed row, which places errors without an index. No partialFailureError:
 * every row was taken.
 */
export function classifyUploadResponse(body: string, count: number): RequestResult {
  const json = parseJsonObject(body);
  if (!isJsonObject(json)) return { outcome: 'retryable', error: `unreadable Google Ads answer: ${body.slice(0, 200)}` };
  const failure = json.partialFailureError;
  if (!isJsonObject(failure)) return { outcome: 'success' };
  const { errors, requestId } = adsErrors(failure as GoogleStatus);
  const byRow = new Map<number, GoogleAdsError[]>();
  const loose: GoogleAdsError[] = [];
  for (const e of errors) {
    const row = rowOf(e);
    if (row !== undefined && row >= 0 && row < count) byRow.set(row, [...(byRow.get(row) ?? []), e]);
    else loose.push(e);
  }
  if (loose.length > 0 || (errors.length === 0 && byRow.size === 0)) {
    // Errors that name no row (or a Status without GoogleAdsFailure): the rows Google left without a result.
    const results = Array.isArray(json.results) && json.results.length === count ? json.results : undefined;
    const fallback: GoogleAdsError[] = loose.length > 0 ? loose : [{ message: typeof failure.message === 'string' ? failure.message : 'partial failure' }];
    for (let i = 0; i < count; i++) {
      if (byRow.has(i)) continue;
      if (!results || (isJsonObject(results[i]) && Object.keys(results[i] as object).length === 0)) byRow.set(i, fallback);
    }
  }
  const items = new Map<number, ItemResult>();
  for (const [row, rowErrors] of byRow) items.set(row, rowResult(rowErrors, requestId));
  return items.size > 0 ? { outcome: 'success', items } : { outcome: 'success' };
}

/** A google.protobuf.Duration in JSON (`"30s"`, `"1.5s"`) in milliseconds, or undefined. */
export function parseDuration(value: unknown): number | undefined {
  const m = typeof value === 'string' ? /^([0-9]+)(\.[0-9]{1,9})?s$/.exec(value) : null;
  return m ? Math.round((Number(m[1]) + Number(m[2] ?? 0)) * 1000) : undefined;
}

/** The longest retry delay a Status asks for: QuotaErrorDetails.retry_delay of its errors, or a google.rpc.RetryInfo. */
function retryDelayOf(status: GoogleStatus, errors: readonly GoogleAdsError[]): number | undefined {
  const delays = [
    ...errors.map((e) => parseDuration(e.details?.quotaErrorDetails?.retryDelay)),
    ...(Array.isArray(status.details) ? status.details : []).filter((d) => isJsonObject(d) && d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo').map((d) => parseDuration(d.retryDelay)),
  ].filter((d): d is number => d !== undefined);
  return delays.length > 0 ? Math.max(...delays) : undefined;
}

/** Authentication codes that are not about the access token: refreshing it cannot help. */
const NOT_TOKEN_CODES = new Set(['DEVELOPER_TOKEN_INVALID', 'CLIENT_CUSTOMER_ID_INVALID', 'CUSTOMER_NOT_FOUND', 'NOT_ADS_USER', 'GOOGLE_ACCOUNT_DELETED', 'TWO_STEP_VERIFICATION_NOT_ENROLLED', 'ADVANCED_PROTECTION_NOT_ENROLLED', 'ORGANIZATION_NOT_RECOGNIZED', 'ORGANIZATION_NOT_APPROVED', 'ORGANIZATION_NOT_ASSOCIATED_WITH_DEVELOPER_TOKEN']);

/** gRPC statuses Google's error-handling guide says to retry with backoff. */
const TRANSIENT_STATUSES = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'ABORTED', 'RESOURCE_EXHAUSTED']);

/**
 * Classifies a failed call ({error: {code, message, status, details}}):
 * - 429 / RESOURCE_EXHAUSTED (or a quotaError): retryable and throttled, with the retry delay of
 *   QuotaErrorDetails or RetryInfo, else Retry-After;
 * - UNAVAILABLE (503), DEADLINE_EXCEEDED (504), INTERNAL (500), ABORTED: retryable;
 * - 401 about the access token: refreshed once ({@link tokenRefused}); other 401 and 403: permanent;
 * - 400 INVALID_ARGUMENT pointing at `conversions[i]` (a JSON value Google cannot read, a oneof set
 *   twice): permanent with `split`, so each conversion is sent alone and only the bad ones fail;
 * - anything else by status ({@link classifyByStatus}).
 */
function classifyFailure(response: VendorResponse, request: VendorRequest, ctx: RequestContext<GoogleAdsSettings>): RequestResult {
  const json = parseJsonObject(response.body);
  const status: GoogleStatus | undefined = isJsonObject(json) && isJsonObject(json.error) ? (json.error as GoogleStatus) : undefined;
  if (!status) return classifyByStatus(response, ctx.now);
  const { errors, requestId } = adsErrors(status);
  const detail = errors.length > 0 ? errors.slice(0, 3).map(describeAdsError).join('; ') : (status.message ?? '');
  const error = `HTTP ${response.status} ${status.status ?? ''}: ${detail}${requestId ? ` (requestId ${requestId})` : ''}`.replace(' :', ':').slice(0, ERROR_BODY_LIMIT);
  const codes = errors.map(codeOf).filter((c): c is [string, string] => c !== undefined);

  if (response.status === 429 || status.status === 'RESOURCE_EXHAUSTED' || codes.some(([kind]) => kind === 'quotaError')) {
    const result: RequestResult = { outcome: 'retryable', throttled: true, error };
    const delay = retryDelayOf(status, errors) ?? parseRetryAfter(response.headers['retry-after'], ctx.now);
    if (delay !== undefined) result.retryAfterMs = delay;
    return result;
  }
  if (response.status === 401 || status.status === 'UNAUTHENTICATED') {
    const aboutToken = codes.length === 0 || codes.every(([kind, code]) => kind === 'authenticationError' && !NOT_TOKEN_CODES.has(code));
    return aboutToken ? tokenRefused(ctx, request, error) : { outcome: 'permanent', error };
  }
  if (status.status && TRANSIENT_STATUSES.has(status.status)) return { outcome: 'retryable', error };
  if (response.status === 400 && request.items.length > 1) {
    const rows = [
      ...errors.map(rowOf),
      ...(status.details ?? []).flatMap((d) => (isJsonObject(d) && Array.isArray(d.fieldViolations) ? d.fieldViolations.map((v) => /^conversions\[([0-9]+)\]/.exec(v.field ?? '')?.[1]) : [])),
      /at 'conversions\[([0-9]+)\]/.exec(status.message ?? '')?.[1],
    ].filter((r) => r !== undefined);
    if (rows.length > 0) return { outcome: 'permanent', error, split: true };
  }
  const byStatus = classifyByStatus(response, ctx.now);
  return byStatus.outcome === 'success' ? byStatus : { ...byStatus, error };
}

/** Header values must not carry line breaks or NUL (they would split the request). */
const SAFE_HEADER_VALUE = /^[^\r\n\0]*$/;

/**
 * Google Ads click conversions. One mapped payload = one ClickConversion (REST JSON,
 * lowerCamelCase); up to 2,000 per request to
 * `POST {endpoint}/{apiVersion}/customers/{customerId}:uploadClickConversions` with body
 * `{conversions, partialFailure: true, validateOnly?}` and headers `authorization: Bearer`,
 * `developer-token`, `login-customer-id` (when set). `conversionAction` may be a key of
 * `settings.conversionActions`, an id or a resource name. Conversions older than 90 days are
 * refused before sending. Per-row errors (partial failure) fail only their rows; rows Google says
 * it already has (order id or click + time already recorded) count as delivered; rows refused as
 * too recent (TOO_RECENT_EVENT: the click is under 6 hours old) are retryable, so the
 * Integration's retry schedule should reach beyond 6 hours.
 */
export const googleAdsDestination: DestinationDefinition<GoogleAdsSettings> = {
  type: 'google-ads',
  settingsField: 'googleAds',
  title: 'Google Ads click conversions',
  docsUrl: 'https://developers.google.com/google-ads/api/docs/conversions/upload-clicks',
  settingsSchema: GoogleAdsSettings,
  credentials: {
    developer_token: { required: true, description: 'Google Ads API developer token (API Center of the manager account), sent as the developer-token header.' },
    client_id: { required: false, description: 'OAuth 2.0 client id; with client_secret and refresh_token, access tokens are obtained and refreshed automatically (recommended).' },
    client_secret: { required: false, description: 'OAuth 2.0 client secret (with client_id and refresh_token).' },
    refresh_token: { required: false, description: 'OAuth 2.0 refresh token of a user with access to customerId, scope https://www.googleapis.com/auth/adwords (with client_id and client_secret).' },
    access_token: { required: false, description: 'A ready OAuth 2.0 access token, used only when client_id, client_secret and refresh_token are not all given; it expires after about an hour and cannot be refreshed.' },
  },
  batch: { default: 200, max: MAX_CONVERSIONS_PER_REQUEST },
  outputSchema: googleAdsOutputSchema,
  starterMapping: new URL('./mapping.yaml', import.meta.url),

  validate(_settings, credentials, integration) {
    const where = `Integration ${integration}`;
    const oauth = OAUTH_KEYS.filter((k) => credentials[k]);
    if (oauth.length > 0 && oauth.length < OAUTH_KEYS.length) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: the credentials Secret has ${oauth.join(', ')} but not ${OAUTH_KEYS.filter((k) => !credentials[k]).join(', ')}: Google Ads OAuth needs all three`);
    }
    if (oauth.length === 0 && !credentials.access_token) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: the credentials Secret must hold client_id, client_secret and refresh_token (or an access_token) for Google Ads`);
    }
    for (const key of ['developer_token', 'access_token'] as const) {
      if (credentials[key] && !SAFE_HEADER_VALUE.test(credentials[key]!)) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: the credentials Secret key ${key} holds a line break or NUL`);
    }
  },

  refuse(payload, ctx) {
    const at = parseConversionDateTime(payload.conversionDateTime);
    if (at === undefined) return undefined;
    const days = (ctx.now - at) / DAY_MS;
    if (days <= MAX_CONVERSION_AGE_DAYS) return undefined;
    return `conversionDateTime ${String(payload.conversionDateTime)} is ${Math.floor(days)} days old; Google Ads takes click conversions at most ${MAX_CONVERSION_AGE_DAYS} days after the click (EXPIRED_EVENT)`;
  },

  async buildRequests(payloads, ctx) {
    const s = ctx.settings;
    const token = await googleAdsAccessToken(ctx);
    const url = `${s.endpoint.replace(/\/+$/, '')}/${s.apiVersion}/customers/${s.customerId}:uploadClickConversions`;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      'developer-token': ctx.credentials.developer_token ?? '',
    };
    if (s.loginCustomerId) headers['login-customer-id'] = s.loginCustomerId;
    return chunk(
      payloads.map((_, i) => i),
      MAX_CONVERSIONS_PER_REQUEST,
    ).map((items) => ({
      method: 'POST' as const,
      url,
      headers: { ...headers },
      body: JSON.stringify({ conversions: items.map((i) => clickConversion(payloads[i]!, s)), partialFailure: true, ...(s.validateOnly ? { validateOnly: true } : {}) }),
      items,
    }));
  },

  classify(response, request, ctx) {
    if (response.status >= 200 && response.status < 300) {
      const cached = ctx.cache.get(TOKEN_KEY) as CachedToken | undefined;
      if (cached?.retried && cached.token === bearerOf(request)) cached.retried = false; // the refreshed token works
      return classifyUploadResponse(response.body, request.items.length);
    }
    return classifyFailure(response, request, ctx);
  },
};
