/**
 * A loopback fake of the Google Ads API ConversionUploadService.UploadClickConversions (REST) and
 * of Google's OAuth 2.0 token endpoint, for tests. It enforces the documented rules and answers
 * with Google's shapes, so a request it accepts is one Google Ads would take:
 * - OAuth (https://developers.google.com/identity/protocols/oauth2/web-server#offline): POST /token,
 *   form-encoded grant_type=refresh_token + client_id + client_secret + refresh_token →
 *   {access_token, expires_in, scope, token_type}; errors {error, error_description}. Tokens
 *   expire by the injected clock.
 * - Upload (https://developers.google.com/google-ads/api/reference/rpc/v26/ConversionUploadService/UploadClickConversions):
 *   POST /{version}/customers/{10 digits}:uploadClickConversions with `authorization: Bearer`,
 *   `developer-token`, optional `login-customer-id`; body {conversions (1..2000), partialFailure:
 *   true, validateOnly?, jobId?} in proto JSON (lowerCamelCase or original names). Errors outside
 *   the conversions are RPC errors {error: {code, message, status, details: [GoogleAdsFailure]}};
 *   errors of conversions come back as HTTP 200 with `partialFailureError` (partial failure:
 *   https://developers.google.com/google-ads/api/docs/best-practices/partial-failures) and an
 *   empty `results[]` entry per failed row. Values proto JSON cannot read (unknown fields, wrong
 *   types, enum names, a oneof set twice, null list elements) fail the whole request with 400,
 *   as Google's JSON transcoding does.
 * - Per conversion (ClickConversion, ConversionUploadError): exactly one of gclid/gbraid/wbraid,
 *   decodable click ids, a known conversion action, conversion_date_time
 *   `yyyy-mm-dd hh:mm:ss+|-hh:mm` not older than 90 days (EXPIRED_EVENT), ISO 4217 currency, at
 *   most 5 user identifiers each one SHA-256 (64 lowercase hex) email or phone, no
 *   consent.ad_personalization, unique order ids (DUPLICATE_ORDER_ID, ORDER_ID_ALREADY_IN_USE) and
 *   click + time (CLICK_CONVERSION_ALREADY_EXISTS).
 * Faults: throttle (429 RESOURCE_EXHAUSTED with QuotaErrorDetails.retry_delay), unavailable (503),
 * deadline (504), chosen rows failing with a chosen code, token expiry and revocation, down.
 */
import { GOLDEN_NOW } from '../../test-support/destinations.js';
import { startTestReceiver, type ReceivedRequest, type Reply, type TestReceiver } from '../../test-support/http-receiver.js';

/** An error of one conversion, as the fake reports it (GoogleAdsError in REST JSON). */
export interface FakeAdsError {
  errorCode: Record<string, string>;
  message: string;
  trigger?: { stringValue: string };
  location?: { fieldPathElements: { fieldName: string; index?: number }[] };
}

/** Options of {@link startGoogleAdsFake}; every one has a default. */
export interface GoogleAdsFakeOptions {
  /** The fake's clock (ms since the epoch): token expiry and the 90-day window. Default: GOLDEN_NOW. */
  now?: () => number;
  developerToken?: string;
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  /** Lifetime of issued access tokens in seconds (Google: 3599). */
  tokenTtlSeconds?: number;
  /** The customer the OAuth user can upload to (10 digits). */
  customerId?: string;
  /** When set, the customer is reached through this manager: login-customer-id must name it. */
  loginCustomerId?: string;
  /** Ids of the conversion actions of the customer (type UPLOAD_CLICKS). */
  conversionActions?: string[];
  /** API versions served. */
  apiVersions?: string[];
}

/** One conversion the fake recorded (never with validateOnly). */
export interface AcceptedConversion {
  customerId: string;
  jobId: string;
  /** The conversion as received, keys in lowerCamelCase. */
  conversion: Record<string, unknown>;
}

/** The running fake: its receiver, what it recorded, and fault controls. */
export interface GoogleAdsFake {
  receiver: TestReceiver;
  /** Base URL: settings.endpoint. */
  url: string;
  /** OAuth token endpoint: settings.tokenEndpoint. */
  tokenUrl: string;
  options: Required<Omit<GoogleAdsFakeOptions, 'loginCustomerId'>> & { loginCustomerId?: string };
  accepted: AcceptedConversion[];
  /** Access tokens issued (token → expiry ms). */
  tokens: Map<string, number>;
  /** Issues a valid access token directly (as if obtained elsewhere). */
  issueToken(ttlSeconds?: number): string;
  /** Every issued token expires now. */
  expireTokens(): void;
  /** The refresh token is revoked: exchanges answer invalid_grant. */
  revokeRefreshToken(): void;
  /** The next `times` uploads answer 429 RESOURCE_EXHAUSTED with this retry delay (a Duration, e.g. "30s"). */
  throttle(times: number, retryDelay?: string): void;
  /** The next `times` uploads answer 503 UNAVAILABLE. */
  unavailable(times: number): void;
  /** The next `times` uploads answer 504 DEADLINE_EXCEEDED. */
  deadline(times: number): void;
  /** Rows for which `fail` returns an error are refused with it (partial failure), after the fake's own checks pass. */
  failRows(fail: ((conversion: Record<string, unknown>, index: number) => Omit<FakeAdsError, 'location'> | undefined) | undefined): void;
  /** Uploads (not token exchanges) received. */
  uploads(): ReceivedRequest[];
  /** Stops listening (connections refused) until {@link up}. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Clears recorded conversions, requests, tokens and faults. */
  reset(): void;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;
const MAX_CONVERSIONS = 2000;
const HEX64 = /^[0-9a-f]{64}$/;
const DATE_TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})([+-])([0-9]{2}):([0-9]{2})$/;
/** ISO 4217 codes the fake knows (a sample: enough to refuse made-up codes). */
const CURRENCIES = new Set(['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'BRL', 'MXN', 'INR', 'CNY', 'KRW', 'SGD', 'HKD', 'NZD', 'ZAR', 'TRY', 'ILS', 'AED']);
const CONSENT = new Set(['UNSPECIFIED', 'UNKNOWN', 'GRANTED', 'DENIED']);
const ENVIRONMENT = new Set(['UNSPECIFIED', 'UNKNOWN', 'APP', 'WEB']);

/** Fields of ClickConversion (v26), lowerCamelCase. */
const CONVERSION_FIELDS = new Set([
  'gclid', 'gbraid', 'wbraid', 'conversionAction', 'conversionDateTime', 'conversionValue', 'currencyCode', 'orderId', 'externalAttributionData', 'customVariables',
  'cartData', 'userIdentifiers', 'conversionEnvironment', 'consent', 'customerType', 'userIpAddress', 'sessionAttributesEncoded', 'sessionAttributesKeyValuePairs',
]);
const REQUEST_FIELDS = new Set(['conversions', 'partialFailure', 'validateOnly', 'jobId', 'customerId']);
const USER_IDENTIFIER_FIELDS = new Set(['hashedEmail', 'hashedPhoneNumber', 'mobileId', 'thirdPartyUserId', 'addressInfo', 'userIdentifierSource']);
const USER_IDENTIFIER_ONEOF = ['hashedEmail', 'hashedPhoneNumber', 'mobileId', 'thirdPartyUserId', 'addressInfo'];

const camel = (k: string): string => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Proto JSON takes both the lowerCamelCase and the original field name. */
const camelKeys = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));

/** A proto-JSON transcoding failure: the whole request is refused (400). */
class JsonError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Starts the fake on a free loopback port. */
export async function startGoogleAdsFake(options: GoogleAdsFakeOptions = {}): Promise<GoogleAdsFake> {
  const opts = {
    now: options.now ?? (() => GOLDEN_NOW),
    developerToken: options.developerToken ?? 'fake-developer-token',
    clientId: options.clientId ?? 'fake-client.apps.googleusercontent.com',
    clientSecret: options.clientSecret ?? 'fake-client-secret',
    refreshToken: options.refreshToken ?? '1//fake-refresh-token',
    tokenTtlSeconds: options.tokenTtlSeconds ?? 3599,
    customerId: options.customerId ?? '1234567890',
    conversionActions: options.conversionActions ?? ['987654321'],
    apiVersions: options.apiVersions ?? ['v26'],
    ...(options.loginCustomerId ? { loginCustomerId: options.loginCustomerId } : {}),
  };
  const tokens = new Map<string, number>();
  const accepted: AcceptedConversion[] = [];
  const orderIds = new Set<string>();
  const clicks = new Set<string>();
  let tokenCount = 0;
  let jobCount = 0;
  let requestCount = 0;
  let revoked = false;
  let faults: { kind: 'throttle' | 'unavailable' | 'deadline'; retryDelay?: string }[] = [];
  let rowFault: Parameters<GoogleAdsFake['failRows']>[0];

  const json = (status: number, body: unknown, headers: Record<string, string> = {}): Reply => ({ status, headers: { 'content-type': 'application/json; charset=UTF-8', ...headers }, body: JSON.stringify(body) });
  const requestId = () => `fakeReq${String(++requestCount).padStart(6, '0')}`;

  const issue = (ttl = opts.tokenTtlSeconds): string => {
    const token = `ya29.fake-${++tokenCount}`;
    tokens.set(token, opts.now() + ttl * 1000);
    return token;
  };

  /** {error: {code, message, status, details}}: an RPC error, with a GoogleAdsFailure when `errors` are given. */
  const rpcError = (version: string, http: number, status: string, message: string, errors?: FakeAdsError[], extra: object[] = []): Reply => {
    const id = requestId();
    const details = [...(errors ? [{ '@type': `type.googleapis.com/google.ads.googleads.${version}.errors.GoogleAdsFailure`, errors, requestId: id }] : []), ...extra];
    return json(http, { error: { code: http, message, status, ...(details.length > 0 ? { details } : {}) } }, { 'request-id': id });
  };

  // ---- OAuth token endpoint ----------------------------------------------------------------
  const tokenEndpoint = (req: ReceivedRequest): Reply => {
    if (req.method !== 'POST') return json(405, { error: 'invalid_request', error_description: 'Method not allowed' });
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      return json(400, { error: 'invalid_request', error_description: 'Invalid content type: form-encoded body required' });
    }
    const form = new URLSearchParams(req.text);
    if (form.get('grant_type') !== 'refresh_token') return json(400, { error: 'unsupported_grant_type', error_description: `Invalid grant_type: ${form.get('grant_type') ?? ''}` });
    if (form.get('client_id') !== opts.clientId) return json(401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
    if (form.get('client_secret') !== opts.clientSecret) return json(401, { error: 'invalid_client', error_description: 'Unauthorized' });
    if (revoked || form.get('refresh_token') !== opts.refreshToken) return json(400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
    return json(200, { access_token: issue(), expires_in: opts.tokenTtlSeconds, scope: 'https://www.googleapis.com/auth/adwords', token_type: 'Bearer' });
  };

  // ---- uploadClickConversions ------------------------------------------------------------------
  const upload = (req: ReceivedRequest, version: string, customerId: string): Reply => {
    const unauthenticated = (message: string, reason: string) =>
      rpcError(version, 401, 'UNAUTHENTICATED', message, undefined, [
        { '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com', metadata: { service: 'googleads.googleapis.com', method: 'google.ads.googleads.v26.services.ConversionUploadService.UploadClickConversions' } },
      ]);
    const auth = String(req.headers.authorization ?? '');
    if (!auth) return unauthenticated('Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.', 'CREDENTIALS_MISSING');
    const token = /^Bearer (\S+)$/.exec(auth)?.[1];
    const expiry = token ? tokens.get(token) : undefined;
    if (expiry === undefined) return unauthenticated('Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.', 'ACCESS_TOKEN_TYPE_UNSUPPORTED');
    if (opts.now() >= expiry) return unauthenticated('Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.', 'ACCESS_TOKEN_EXPIRED');

    const developerToken = req.headers['developer-token'];
    if (!developerToken) {
      return rpcError(version, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [{ errorCode: { requestError: 'DEVELOPER_TOKEN_PARAMETER_MISSING' }, message: 'developer-token parameter is missing.' }]);
    }
    if (developerToken !== opts.developerToken) {
      return rpcError(version, 401, 'UNAUTHENTICATED', 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', [
        { errorCode: { authenticationError: 'DEVELOPER_TOKEN_INVALID' }, message: 'The developer token is not valid.' },
      ]);
    }
    if (!/^[0-9]{10}$/.test(customerId)) {
      return rpcError(version, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [{ errorCode: { requestError: 'INVALID_CUSTOMER_ID' }, message: `Invalid customer ID '${customerId}'.` }]);
    }
    const login = req.headers['login-customer-id'];
    if (login !== undefined && !/^[0-9]{10}$/.test(String(login))) {
      return rpcError(version, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [{ errorCode: { headerError: 'INVALID_LOGIN_CUSTOMER_ID' }, message: 'The login customer ID could not be validated.' }]);
    }
    if (customerId !== opts.customerId || (opts.loginCustomerId !== undefined && login !== opts.loginCustomerId)) {
      return rpcError(version, 403, 'PERMISSION_DENIED', 'The caller does not have permission', [
        { errorCode: { authorizationError: 'USER_PERMISSION_DENIED' }, message: "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header. See https://developers.google.com/google-ads/api/docs/concepts/call-structure#cid" },
      ]);
    }

    const fault = faults.shift();
    if (fault?.kind === 'throttle') {
      return rpcError(version, 429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', [
        {
          errorCode: { quotaError: 'RESOURCE_TEMPORARILY_EXHAUSTED' },
          message: `Too many requests. Retry in ${fault.retryDelay}.`,
          details: { quotaErrorDetails: { rateScope: 'DEVELOPER', rateName: 'Requests per developer token', retryDelay: fault.retryDelay } },
        } as FakeAdsError,
      ]);
    }
    if (fault?.kind === 'unavailable') return rpcError(version, 503, 'UNAVAILABLE', 'The service is currently unavailable.');
    if (fault?.kind === 'deadline') return rpcError(version, 504, 'DEADLINE_EXCEEDED', 'Deadline expired before operation could complete.');

    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return badRequest(version, `Invalid JSON payload received. Unexpected content type: ${String(req.headers['content-type'] ?? 'none')}.`);
    }
    let body: Record<string, unknown>;
    let conversions: Record<string, unknown>[];
    try {
      const parsed: unknown = JSON.parse(req.text);
      if (!isObject(parsed)) throw new JsonError('Invalid JSON payload received. Expected an object.');
      body = camelKeys(parsed);
      for (const k of Object.keys(body)) if (!REQUEST_FIELDS.has(k)) throw new JsonError(`Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
      if (body.conversions !== undefined && !Array.isArray(body.conversions)) throw new JsonError(`Invalid value at 'conversions' (type.googleapis.com/google.ads.googleads.${version}.services.ClickConversion), ${JSON.stringify(body.conversions)}`, 'conversions');
      for (const k of ['partialFailure', 'validateOnly'] as const) if (body[k] !== undefined && typeof body[k] !== 'boolean') throw new JsonError(`Invalid value at '${snake(k)}' (TYPE_BOOL), ${JSON.stringify(body[k])}`, snake(k));
      conversions = ((body.conversions as unknown[] | undefined) ?? []).map((c, i) => readConversion(c, i, version));
    } catch (e) {
      if (e instanceof JsonError) return badRequest(version, e.message, e.field);
      return badRequest(version, `Invalid JSON payload received. ${(e as Error).message}`);
    }
    if (conversions.length === 0) {
      return rpcError(version, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [{ errorCode: { fieldError: 'REQUIRED' }, message: 'The required field was not present.', location: { fieldPathElements: [{ fieldName: 'conversions' }] } }]);
    }
    if (body.partialFailure !== true) {
      return rpcError(version, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
        { errorCode: { partialFailureError: 'PARTIAL_FAILURE_MODE_REQUIRED' }, message: 'The partial failure field was false in the request. This method requires this field be set to true.', location: { fieldPathElements: [{ fieldName: 'partial_failure' }] } },
      ]);
    }
    if (conversions.length > MAX_CONVERSIONS) {
      return rpcError(version, 400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', [
        { errorCode: { conversionUploadError: 'TOO_MANY_CONVERSIONS_IN_REQUEST' }, message: 'Upload fewer than 2001 events in a single request.', location: { fieldPathElements: [{ fieldName: 'conversions' }] } },
      ]);
    }

    // Per-conversion checks: partial failure.
    const rowErrors = conversions.map((c, i) => checkConversion(c, i));
    const orderCount = new Map<string, number>();
    const clickCount = new Map<string, number>();
    conversions.forEach((c, i) => {
      if (rowErrors[i]!.length > 0) return;
      if (typeof c.orderId === 'string') orderCount.set(`${c.conversionAction}|${c.orderId}`, (orderCount.get(`${c.conversionAction}|${c.orderId}`) ?? 0) + 1);
      clickCount.set(clickKey(c), (clickCount.get(clickKey(c)) ?? 0) + 1);
    });
    conversions.forEach((c, i) => {
      const errors = rowErrors[i]!;
      if (errors.length > 0) return;
      const at = (field?: string) => ({ fieldPathElements: [{ fieldName: 'conversions', index: i }, ...(field ? [{ fieldName: field }] : [])] });
      const order = typeof c.orderId === 'string' ? `${c.conversionAction}|${c.orderId}` : undefined;
      if (order && orderCount.get(order)! > 1) {
        errors.push({ errorCode: { conversionUploadError: 'DUPLICATE_ORDER_ID' }, message: 'Imported events include multiple conversions with the same order ID and were not processed. Make sure order IDs are unique and try again.', location: at('order_id') });
      } else if (order && orderIds.has(order)) {
        errors.push({ errorCode: { conversionUploadError: 'ORDER_ID_ALREADY_IN_USE' }, message: 'The imported event includes an order ID that was previously recorded, so the event was not processed.', location: at('order_id') });
      } else if (clickCount.get(clickKey(c))! > 1) {
        errors.push({ errorCode: { conversionUploadError: 'DUPLICATE_CLICK_CONVERSION_IN_REQUEST' }, message: 'Multiple events have the same click and conversion_date_time. Make sure your conversion_date_time is correctly configured and try again.', location: at() });
      } else if (clicks.has(clickKey(c))) {
        errors.push({ errorCode: { conversionUploadError: 'CLICK_CONVERSION_ALREADY_EXISTS' }, message: 'The imported event has the same click and conversion_date_time as an existing conversion. Use a unique conversion_date_time or order ID for each unique event and try again.', location: at() });
      }
      const injected = errors.length === 0 ? rowFault?.(c, i) : undefined;
      if (injected) errors.push({ ...injected, location: at() });
    });

    const validateOnly = body.validateOnly === true;
    const jobId = String(1_000_000 + ++jobCount);
    const results = conversions.map((c, i) => {
      if (rowErrors[i]!.length > 0) return {};
      if (!validateOnly) {
        accepted.push({ customerId, jobId, conversion: c });
        if (typeof c.orderId === 'string') orderIds.add(`${c.conversionAction}|${c.orderId}`);
        clicks.add(clickKey(c));
      }
      const result: Record<string, unknown> = {};
      for (const k of ['gbraid', 'wbraid', 'gclid', 'conversionAction', 'conversionDateTime', 'userIdentifiers']) if (c[k] !== undefined) result[k] = c[k];
      return result;
    });
    const errors = rowErrors.flat();
    const id = requestId();
    const response: Record<string, unknown> = {};
    if (errors.length > 0) {
      const first = errors[0]!;
      const where = (first.location?.fieldPathElements ?? []).map((p) => `${p.fieldName}${p.index !== undefined ? `[${p.index}]` : ''}`).join('.');
      const summary = `${first.message}${where ? `, at ${where}` : ''}`;
      response.partialFailureError = {
        code: 3,
        message: errors.length > 1 ? `Multiple errors in ‘details’. First error: ${summary}` : summary,
        details: [{ '@type': `type.googleapis.com/google.ads.googleads.${version}.errors.GoogleAdsFailure`, errors, requestId: id }],
      };
    }
    if (!validateOnly) response.results = results;
    response.jobId = jobId;
    return json(200, response, { 'request-id': id });
  };

  const clickKey = (c: Record<string, unknown>) => `${String(c.conversionAction)}|${String(c.gclid ?? c.gbraid ?? c.wbraid)}|${String(c.conversionDateTime)}`;

  const badRequest = (version: string, description: string, field?: string): Reply =>
    rpcError(version, 400, 'INVALID_ARGUMENT', description, undefined, [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ ...(field ? { field } : {}), description }] }]);

  /** Reads one conversion as proto JSON would: unknown names, wrong types, bad enum names, a oneof set twice and null elements fail the request. */
  const readConversion = (raw: unknown, i: number, version: string): Record<string, unknown> => {
    const at = `conversions[${i}]`;
    if (!isObject(raw)) throw new JsonError(`Invalid value at '${at}' (type.googleapis.com/google.ads.googleads.${version}.services.ClickConversion), ${JSON.stringify(raw)}`, at);
    const c = camelKeys(raw);
    for (const k of Object.keys(c)) if (!CONVERSION_FIELDS.has(k)) throw new JsonError(`Invalid JSON payload received. Unknown name "${k}" at '${at}': Cannot find field.`, at);
    for (const k of ['gclid', 'gbraid', 'wbraid', 'conversionAction', 'conversionDateTime', 'currencyCode', 'orderId', 'userIpAddress']) {
      if (c[k] !== undefined && typeof c[k] !== 'string') throw new JsonError(`Invalid value at '${at}.${snake(k)}' (TYPE_STRING), ${JSON.stringify(c[k])}`, `${at}.${snake(k)}`);
    }
    if (c.conversionValue !== undefined && !(typeof c.conversionValue === 'number' || (typeof c.conversionValue === 'string' && c.conversionValue.trim() !== '' && Number.isFinite(Number(c.conversionValue))))) {
      throw new JsonError(`Invalid value at '${at}.conversion_value' (TYPE_DOUBLE), ${JSON.stringify(c.conversionValue)}`, `${at}.conversion_value`);
    }
    if (c.conversionEnvironment !== undefined && !ENVIRONMENT.has(c.conversionEnvironment as string)) {
      throw new JsonError(`Invalid value at '${at}.conversion_environment' (type.googleapis.com/google.ads.googleads.${version}.enums.ConversionEnvironmentEnum.ConversionEnvironment), ${JSON.stringify(c.conversionEnvironment)}`, `${at}.conversion_environment`);
    }
    if (c.consent !== undefined) {
      if (!isObject(c.consent)) throw new JsonError(`Invalid value at '${at}.consent' (type.googleapis.com/google.ads.googleads.${version}.common.Consent), ${JSON.stringify(c.consent)}`, `${at}.consent`);
      const consent = camelKeys(c.consent);
      for (const [k, v] of Object.entries(consent)) {
        if (k !== 'adUserData' && k !== 'adPersonalization') throw new JsonError(`Invalid JSON payload received. Unknown name "${k}" at '${at}.consent': Cannot find field.`, `${at}.consent`);
        if (!CONSENT.has(v as string)) throw new JsonError(`Invalid value at '${at}.consent.${snake(k)}' (type.googleapis.com/google.ads.googleads.${version}.enums.ConsentStatusEnum.ConsentStatus), ${JSON.stringify(v)}`, `${at}.consent.${snake(k)}`);
      }
      c.consent = consent;
    }
    if (c.userIdentifiers !== undefined) {
      if (!Array.isArray(c.userIdentifiers)) throw new JsonError(`Invalid value at '${at}.user_identifiers' (type.googleapis.com/google.ads.googleads.${version}.common.UserIdentifier), ${JSON.stringify(c.userIdentifiers)}`, `${at}.user_identifiers`);
      c.userIdentifiers = c.userIdentifiers.map((u, j) => {
        const uat = `${at}.user_identifiers[${j}]`;
        if (!isObject(u)) throw new JsonError(`Invalid value at '${uat}' (type.googleapis.com/google.ads.googleads.${version}.common.UserIdentifier), ${JSON.stringify(u)}`, uat);
        const id = camelKeys(u);
        for (const k of Object.keys(id)) if (!USER_IDENTIFIER_FIELDS.has(k)) throw new JsonError(`Invalid JSON payload received. Unknown name "${k}" at '${uat}': Cannot find field.`, uat);
        const set = USER_IDENTIFIER_ONEOF.filter((k) => id[k] !== undefined);
        if (set.length > 1) throw new JsonError(`Invalid JSON payload received. Oneof field 'identifier' is already set. Cannot set '${set[1]}'`, uat);
        for (const k of ['hashedEmail', 'hashedPhoneNumber']) if (id[k] !== undefined && typeof id[k] !== 'string') throw new JsonError(`Invalid value at '${uat}.${snake(k)}' (TYPE_STRING), ${JSON.stringify(id[k])}`, `${uat}.${snake(k)}`);
        return id;
      });
    }
    return c;
  };

  /** The ConversionUploadError-style checks of one readable conversion. */
  const checkConversion = (c: Record<string, unknown>, i: number): FakeAdsError[] => {
    const errors: FakeAdsError[] = [];
    const at = (field?: string, index?: number) => ({ fieldPathElements: [{ fieldName: 'conversions', index: i }, ...(field ? [{ fieldName: field, ...(index !== undefined ? { index } : {}) }] : [])] });
    const fail = (errorCode: Record<string, string>, message: string, field?: string, trigger?: unknown) =>
      errors.push({ errorCode, message, location: at(field), ...(typeof trigger === 'string' ? { trigger: { stringValue: trigger } } : {}) });

    const ids = (['gclid', 'gbraid', 'wbraid'] as const).filter((k) => typeof c[k] === 'string' && c[k] !== '');
    if (ids.length === 0) fail({ fieldError: 'REQUIRED' }, 'The required field was not present.', 'gclid');
    else if (ids.includes('gbraid') && ids.includes('wbraid')) fail({ conversionUploadError: 'GBRAID_WBRAID_BOTH_SET' }, "Can't use both gbraid and wbraid parameters. Use only 1 and try again.", 'wbraid');
    else if (ids.length > 1) fail({ fieldError: 'VALUE_MUST_BE_UNSET' }, 'The field is not allowed to be set.', snake(ids[1]!));
    const unparseable = { gclid: ['UNPARSEABLE_GCLID', 'The imported gclid could not be decoded.'], gbraid: ['UNPARSEABLE_GBRAID', "Can't parse event import data. Check if your gbraid parameter was not modified and try again."], wbraid: ['UNPARSEABLE_WBRAID', "Can't parse event import data. Check if your wbraid parameter was not modified and try again."] } as const;
    for (const k of ids) if (!/^[A-Za-z0-9_-]{8,}$/.test(c[k] as string)) fail({ conversionUploadError: unparseable[k][0] }, unparseable[k][1], k, c[k]);

    const action = c.conversionAction;
    if (typeof action !== 'string' || action === '') fail({ fieldError: 'REQUIRED' }, 'The required field was not present.', 'conversion_action');
    else {
      const m = /^customers\/([0-9]+)\/conversionActions\/([0-9]+)$/.exec(action);
      // Google ignores the customer id of the resource name: only the action id counts.
      if (!m) fail({ requestError: 'RESOURCE_NAME_MALFORMED' }, 'Resource name is malformed.', 'conversion_action', action);
      else if (!opts.conversionActions.includes(m[2]!)) fail({ conversionUploadError: 'NO_CONVERSION_ACTION_FOUND' }, "The conversion action specified in the upload request cannot be found. Make sure it's available in this account.", 'conversion_action', action);
    }

    const when = c.conversionDateTime;
    if (typeof when !== 'string' || when === '') fail({ fieldError: 'REQUIRED' }, 'The required field was not present.', 'conversion_date_time');
    else {
      const m = DATE_TIME.exec(when);
      const ms = m ? Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[7]}${m[8]}:${m[9]}`) : NaN;
      const valid = m && !Number.isNaN(ms) && new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!)).getUTCDate() === +m[3]! && +m[4]! < 24 && +m[8]! <= 14;
      if (!valid) fail({ dateError: 'INVALID_STRING_DATE_TIME_SECONDS_WITH_OFFSET' }, "The string date time's format should be yyyy-mm-dd hh:mm:ss+|-hh:mm.", 'conversion_date_time', when);
      else if (opts.now() - ms > 90 * DAY_MS) {
        fail({ conversionUploadError: 'EXPIRED_EVENT' }, "The imported event can't be recorded because its click occurred before this conversion's click-through window. Make sure you import the most recent data.", 'conversion_date_time', when);
      }
    }

    if (c.currencyCode !== undefined && !CURRENCIES.has(c.currencyCode as string)) fail({ currencyCodeError: 'UNSUPPORTED' }, 'The currency code is not supported.', 'currency_code', c.currencyCode);
    if (c.orderId === '') fail({ stringLengthError: 'EMPTY' }, 'The specified field should have a least one non-whitespace character in it.', 'order_id');

    const identifiers = (c.userIdentifiers as Record<string, unknown>[] | undefined) ?? [];
    if (identifiers.length > 5) fail({ collectionSizeError: 'TOO_MANY' }, 'Too many elements.', 'user_identifiers');
    identifiers.forEach((u, j) => {
      const value = u.hashedEmail ?? u.hashedPhoneNumber;
      if (value === undefined) {
        errors.push({ errorCode: { conversionUploadError: 'UNSUPPORTED_USER_IDENTIFIER' }, message: 'The provided user identifiers are not supported. Use only hashed email or phone number and try again.', location: at('user_identifiers', j) });
      } else if (!HEX64.test(value as string)) {
        errors.push({ errorCode: { conversionUploadError: 'INVALID_USER_IDENTIFIER' }, message: 'Make sure you hash user provided data using SHA-256 and ensure you are normalizing according to the guidelines.', location: at('user_identifiers', j) });
      }
    });
    const consent = c.consent as Record<string, unknown> | undefined;
    if (consent?.adPersonalization !== undefined) {
      errors.push({ errorCode: { fieldError: 'VALUE_MUST_BE_UNSET' }, message: 'The field is not allowed to be set.', location: { fieldPathElements: [{ fieldName: 'conversions', index: i }, { fieldName: 'consent' }, { fieldName: 'ad_personalization' }] } });
    }
    return errors;
  };

  const receiver = await startTestReceiver({
    respond(req) {
      const path = req.url.split('?')[0]!;
      if (path === '/token') return tokenEndpoint(req);
      const m = /^\/(v[0-9]+)\/customers\/([^/:]+):uploadClickConversions$/.exec(path);
      if (!m || !opts.apiVersions.includes(m[1]!)) return json(404, { error: { code: 404, message: `Method not found: ${path}`, status: 'NOT_FOUND' } });
      if (req.method !== 'POST') return json(404, { error: { code: 404, message: `Method not found: ${req.method} ${path}`, status: 'NOT_FOUND' } });
      return upload(req, m[1]!, decodeURIComponent(m[2]!));
    },
  });

  const fake: GoogleAdsFake = {
    receiver,
    url: receiver.url,
    tokenUrl: `${receiver.url}/token`,
    options: opts,
    accepted,
    tokens,
    issueToken: (ttl) => issue(ttl),
    expireTokens() {
      for (const k of tokens.keys()) tokens.set(k, opts.now());
    },
    revokeRefreshToken() {
      revoked = true;
    },
    throttle(times, retryDelay = '30s') {
      for (let i = 0; i < times; i++) faults.push({ kind: 'throttle', retryDelay });
    },
    unavailable(times) {
      for (let i = 0; i < times; i++) faults.push({ kind: 'unavailable' });
    },
    deadline(times) {
      for (let i = 0; i < times; i++) faults.push({ kind: 'deadline' });
    },
    failRows(fail) {
      rowFault = fail;
    },
    uploads: () => receiver.requests.filter((r) => r.url.includes(':uploadClickConversions')),
    down: () => receiver.close(),
    up: () => receiver.restart(),
    reset() {
      accepted.length = 0;
      receiver.requests.length = 0;
      tokens.clear();
      orderIds.clear();
      clicks.clear();
      faults = [];
      rowFault = undefined;
      revoked = false;
    },
    close: () => receiver.close(),
  };
  return fake;
}
