import { retryAfterMs } from '@switchyard/client/core';
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import type { Integration } from '../api/index.js';
import { compileValidator, createAjv, formatProblems } from '../api/validate.js';
import { trustOutputSchema } from '../mapping/output-schema.js';
import type { Clock } from '../clock.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import {
  RESPONSE_BODY_LIMIT,
  USER_AGENT,
  type DeliveryOutcome,
  type Destination,
  type DestinationDefinition,
  type DestinationOptions,
  type DestinationType,
  type ItemResult,
  type RequestContext,
  type RequestResult,
  type SendResult,
  type VendorRequest,
  type VendorResponse,
} from './types.js';

/** Most characters of a vendor error kept in a result (and the dead letter). */
export const ERROR_BODY_LIMIT = 512;

/**
 * Classifies an HTTP status alone: 2xx success; 408 Request Timeout, 429 Too Many Requests and
 * 5xx retryable, except 501 Not Implemented and 505 HTTP Version Not Supported, which a retry
 * cannot fix (RFC 9110 §15.6); everything else (3xx, 4xx) permanent.
 */
export function classifyStatus(status: number): DeliveryOutcome {
  if (status >= 200 && status < 300) return 'success';
  if (status === 408 || status === 429) return 'retryable';
  if (status >= 500 && status < 600 && status !== 501 && status !== 505) return 'retryable';
  return 'permanent';
}

/**
 * Parses a `Retry-After` header (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date compared with
 * `now` (ms since the epoch; a date in the past gives 0), by the clients' rule (`retryAfterMs` of
 * `@switchyard/client/core`); of a repeated header, the first.
 * @returns milliseconds, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, clock: Clock | number): number | undefined {
  return retryAfterMs(Array.isArray(value) ? value[0] : value, typeof clock === 'number' ? clock : clock.now());
}

/**
 * The classification of a response by its status alone ({@link classifyStatus}), with
 * `Retry-After`, `throttled` for 429, and the start of the body as the error when it failed.
 * Vendors whose errors hide in a 2xx body start from this and refine it.
 */
export function classifyByStatus(response: VendorResponse, now: number): RequestResult {
  const outcome = classifyStatus(response.status);
  if (outcome === 'success') return { outcome };
  const result: RequestResult = { outcome, error: `HTTP ${response.status}${response.body ? `: ${response.body.slice(0, ERROR_BODY_LIMIT)}` : ''}` };
  if (response.status === 429) result.throttled = true;
  const retryAfter = parseRetryAfter(response.headers['retry-after'], now);
  if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
  return result;
}

/** `a=1&b=x%20y`: URL query encoding of the defined values, in the given order (WHATWG URLSearchParams). */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, String(v));
  return q.toString();
}

/** Whether `v` is a JSON object (not null, not an array). */
export const isJsonObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A vendor body parsed as a JSON object; undefined when it is empty, not JSON or not an object. */
export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return isJsonObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Splits `items` into chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function readBody(body: AsyncIterable<Buffer | Uint8Array> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of body) {
      const b = Buffer.from(c);
      chunks.push(b);
      size += b.length;
      if (size >= RESPONSE_BODY_LIMIT) break;
    }
  } catch {
    // the body failed mid-way: keep what we have
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, RESPONSE_BODY_LIMIT).toString('utf8');
}

/** The egress proxy settings of a process environment (see {@link proxyFromEnv}); empty strings are unset. */
export interface EgressProxy {
  /** Proxy URL for http:// destinations. */
  httpProxy: string;
  /** Proxy URL for https:// destinations. */
  httpsProxy: string;
  /** Hosts reached directly: comma- or space-separated names (`example.com` covers its subdomains, `.example.com` too), `host:port`, or `*` for all. */
  noProxy: string;
}

/**
 * The egress proxy of a process environment, read as curl and undici read it (the lower-case
 * variable wins): `https_proxy`/`HTTPS_PROXY` for https:// destinations, else the HTTP proxy;
 * `http_proxy`/`HTTP_PROXY` for http:// ones; `no_proxy`/`NO_PROXY` for hosts reached directly.
 * @returns undefined when neither proxy is set (empty counts as unset).
 */
export function proxyFromEnv(env: NodeJS.ProcessEnv): EgressProxy | undefined {
  const read = (name: string) => env[name.toLowerCase()] || env[name] || '';
  const httpProxy = read('HTTP_PROXY');
  const httpsProxy = read('HTTPS_PROXY') || httpProxy;
  if (!httpProxy && !httpsProxy) return undefined;
  return { httpProxy, httpsProxy, noProxy: read('NO_PROXY') };
}

const worst = (a: DeliveryOutcome, b: DeliveryOutcome): DeliveryOutcome => (a === 'retryable' || b === 'retryable' ? 'retryable' : a === 'permanent' || b === 'permanent' ? 'permanent' : 'success');

/**
 * A destination driven by a {@link DestinationDefinition}: per send it refuses stale payloads,
 * builds the vendor requests, sends them (at once, over this Integration's own connection pool:
 * an undici Agent with at most `delivery.concurrency` connections; through the egress proxy of
 * the environment when one is set, see {@link proxyFromEnv}) and merges each request's
 * classification into one result per payload. Network errors and timeouts are retryable.
 */
export class HttpDestination<S> implements Destination {
  private readonly agent: Dispatcher;
  private readonly settings: S;
  private readonly credentials: Record<string, string>;
  private readonly label: string;
  private readonly cache = new Map<string, unknown>();

  /**
   * @param env where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read (once, here).
   * @throws SwitchyardError INVALID_RESOURCE when settings or credentials are missing or unusable.
   */
  constructor(
    private readonly definition: DestinationDefinition<S>,
    private readonly options: DestinationOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const { integration } = options;
    this.label = `${integration.metadata.namespace ?? 'default'}/${integration.metadata.name}`;
    this.credentials = Object.fromEntries(Object.entries(options.credentials).map(([k, v]) => [k, v.trim()]));
    this.settings = checkDestination(definition, integration, this.credentials);
    const timeoutMs = options.timeoutMs;
    const connectTimeout = Math.min(timeoutMs, 10_000);
    const pool = { connections: integration.spec.delivery.concurrency, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, connect: { timeout: connectTimeout } };
    const proxy = proxyFromEnv(env);
    // Through a proxy, `connect` is replaced by the tunnel: its timeout goes to the connection to
    // the proxy (proxyTls) and to the TLS handshake with the destination inside the tunnel (requestTls).
    this.agent = proxy ? new EnvHttpProxyAgent({ ...pool, ...proxy, proxyTls: { timeout: connectTimeout }, requestTls: { timeout: connectTimeout } }) : new Agent(pool);
  }

  /** The context handed to the definition's functions for a send starting at `now`. */
  context(now = this.options.clock.now()): RequestContext<S> {
    return { settings: this.settings, credentials: this.credentials, now, integration: this.label, batchSize: this.options.integration.spec.delivery.batchSize ?? this.definition.batch.default, cache: this.cache, fetch: (r) => this.fetch(r) };
  }

  /** One HTTP exchange. @throws Error on network errors and timeouts. */
  async fetch(r: Omit<VendorRequest, 'items'>): Promise<VendorResponse> {
    const res = await request(r.url, {
      method: r.method,
      headers: { 'user-agent': USER_AGENT, ...r.headers },
      ...(r.method === 'GET' ? {} : { body: r.body }),
      dispatcher: this.agent,
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    const body = await readBody(res.body);
    return { status: res.statusCode, headers: res.headers as VendorResponse['headers'], body };
  }

  /** Sends the payloads; never throws (failures are results). */
  async send(payloads: readonly unknown[]): Promise<SendResult> {
    const started = performance.now();
    const ctx = this.context();
    const items: ItemResult[] = new Array(payloads.length);
    const sendable: number[] = [];
    for (let i = 0; i < payloads.length; i++) {
      const reason = this.definition.refuse?.(payloads[i] as Record<string, unknown>, ctx);
      if (reason) items[i] = { outcome: 'permanent', refusal: 'stale_event', error: reason };
      else sendable.push(i);
    }
    const result: SendResult = { outcome: 'success', durationMs: 0 };
    if (sendable.length > 0) {
      let requests: VendorRequest[];
      try {
        requests = await this.definition.buildRequests(sendable.map((i) => payloads[i] as Record<string, unknown>), ctx);
      } catch (e) {
        const failure = toFailure(e, this.options.timeoutMs);
        for (const i of sendable) items[i] = { outcome: failure.outcome, ...(failure.error ? { error: failure.error } : {}) };
        Object.assign(result, failure);
        requests = [];
      }
      const sendablePayloads = sendable.map((i) => payloads[i] as Record<string, unknown>);
      const exchanges = (await Promise.all(requests.map((r) => this.exchangeOrSplit(r, sendablePayloads, ctx)))).flat();
      for (const { request: r, status, result: c } of exchanges) {
        r.items.forEach((local, k) => {
          const index = sendable[local]!;
          const own = c.items?.get(k);
          items[index] = own ?? { outcome: c.outcome, ...(c.error ? { error: c.error } : {}) };
        });
        if ((c.outcome !== 'success' || result.status === undefined) && status !== undefined) result.status = status;
        if (c.outcome !== 'success') {
          result.outcome = worst(result.outcome, c.outcome);
          result.error ??= c.error;
        }
        if (c.throttled) result.throttled = true;
        if (c.retryAfterMs !== undefined) result.retryAfterMs = Math.max(result.retryAfterMs ?? 0, c.retryAfterMs);
      }
    }
    if (items.some((it) => it.outcome !== result.outcome || it.error !== undefined)) result.items = items;
    result.durationMs = performance.now() - started;
    return result;
  }

  /**
   * Sends one request; when its classification asks to `split` (the vendor refused the batch for
   * an item it does not name), sends each of its items alone, built again from its payload, so
   * only the bad ones fail.
   */
  private async exchangeOrSplit(r: VendorRequest, payloads: readonly Record<string, unknown>[], ctx: RequestContext<S>): Promise<{ request: VendorRequest; status?: number; result: RequestResult }[]> {
    const first = await this.exchange(r, ctx);
    if (!first.result.split || r.items.length < 2) return [{ request: r, ...first }];
    return Promise.all(
      r.items.map(async (local) => {
        let single: VendorRequest;
        try {
          const built = await this.definition.buildRequests([payloads[local]!], ctx);
          single = { ...built[0]!, items: [local] };
        } catch (e) {
          return { request: { ...r, items: [local] }, result: toFailure(e, this.options.timeoutMs) };
        }
        const again = await this.exchange(single, ctx);
        return { request: single, ...again };
      }),
    );
  }

  private async exchange(r: VendorRequest, ctx: RequestContext<S>): Promise<{ status?: number; result: RequestResult }> {
    let response: VendorResponse;
    try {
      response = await this.fetch(r);
    } catch (e) {
      return { result: toFailure(e, this.options.timeoutMs) };
    }
    try {
      return { status: response.status, result: this.definition.classify(response, r, ctx) };
    } catch (e) {
      return { status: response.status, result: { outcome: 'retryable', error: `cannot read the answer (HTTP ${response.status}): ${(e as Error).message}` } };
    }
  }

  /** Closes the connection pool (waits for requests in progress). */
  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** A network error or timeout as a retryable result; a SwitchyardError from a builder as permanent. */
function toFailure(e: unknown, timeoutMs: number): RequestResult {
  const err = e as Error & { code?: string };
  if (err instanceof SwitchyardError) return { outcome: 'permanent', error: err.message };
  const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT' || err.code === 'UND_ERR_CONNECT_TIMEOUT';
  const detail = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
  return { outcome: 'retryable', error: timedOut ? `timeout after ${timeoutMs}ms` : `network error: ${detail}` };
}

/**
 * Checks what a destination of `definition` needs from an Integration: its settings field (schema
 * defaults applied and returned), the required keys of its credentials Secret (skipped when
 * `credentials` is undefined: the Secret is not at hand, e.g. offline validation), a batchSize
 * within the vendor's limit, and the definition's own `validate`.
 * @throws SwitchyardError INVALID_RESOURCE naming the field or Secret key.
 */
export function checkDestination<S>(definition: DestinationDefinition<S>, integration: Integration, credentials: Readonly<Record<string, string>> | undefined): S {
  const label = `${integration.metadata.namespace ?? 'default'}/${integration.metadata.name}`;
  const where = `Integration ${label}`;
  const raw = (integration.spec.destination as Record<string, unknown>)[definition.settingsField];
  if (raw === undefined) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: destination.${definition.settingsField} is required when type is ${definition.type}`);
  const settings = settingsOf(definition, raw, where);
  const batchSize = integration.spec.delivery?.batchSize ?? definition.batch.default;
  if (batchSize > definition.batch.max) {
    throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: delivery.batchSize ${batchSize} is more than ${definition.title} takes per request (${definition.batch.max})`);
  }
  if (credentials) {
    const missing = Object.entries(definition.credentials).filter(([k, c]) => c.required && !credentials[k]?.trim()).map(([k]) => k);
    if (missing.length > 0) {
      const secret = integration.spec.credentialsSecretRef?.name;
      throw new SwitchyardError(
        ErrorCodes.INVALID_RESOURCE,
        secret
          ? `${where}: the credentials Secret ${secret} (spec.credentialsSecretRef) must hold ${missing.join(', ')} for ${definition.title}`
          : `${where}: ${definition.title} needs a credentials Secret (spec.credentialsSecretRef) holding ${missing.join(', ')}`,
      );
    }
    definition.validate?.(settings, credentials, label);
  }
  return settings;
}

const settingsValidators = new WeakMap<object, ReturnType<typeof compileValidator>>();

/**
 * The definition's settings with schema defaults applied.
 * @throws SwitchyardError INVALID_RESOURCE naming each problem.
 */
export function settingsOf<S>(definition: DestinationDefinition<S>, raw: unknown, where: string): S {
  let validate = settingsValidators.get(definition.settingsSchema);
  if (!validate) {
    validate = compileValidator(definition.settingsSchema, createAjv());
    settingsValidators.set(definition.settingsSchema, validate);
  }
  const result = validate(structuredClone(raw));
  if (!result.ok) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: invalid destination.${definition.settingsField}:\n${formatProblems(result.problems)}`, { details: result.problems });
  return result.value as S;
}

/** The {@link DestinationType} of a definition: creates {@link HttpDestination}s, output schema from the Integration's settings. */
export function httpDestinationType<S>(definition: DestinationDefinition<S>): DestinationType & { definition: DestinationDefinition<S> } {
  return {
    definition,
    batch: definition.batch,
    create: (options) => new HttpDestination(definition, options),
    outputSchema(integration: Integration | undefined) {
      const raw = integration ? (integration.spec.destination as Record<string, unknown>)[definition.settingsField] : undefined;
      let settings: S | undefined;
      if (raw !== undefined) {
        try {
          settings = settingsOf(definition, raw, 'output schema');
        } catch {
          settings = undefined;
        }
      }
      const schema = definition.outputSchema(settings);
      return schema && !definition.outputSchemaFromUser ? trustOutputSchema(schema) : schema;
    },
  };
}
