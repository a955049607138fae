import { Agent, request } from 'undici';
import type { Integration, WebhookSettings } from '../../api/index.js';
import type { Clock } from '../../clock.js';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { USER_AGENT, type DeliveryOutcome, type Destination, type DestinationOptions, type SendResult } from '../types.js';

/** RFC 9110 token: what a header name may hold. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the HTTP client computes or that would break framing; settings and Secrets cannot set them. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);
/** Most characters of a failed response body kept in the error (and the dead letter). */
export const ERROR_BODY_LIMIT = 512;

/**
 * Classifies an HTTP status the way the webhook destination documents it (WebhookSettings in
 * api/integration.ts): 2xx success; 408 Request Timeout, 429 Too Many Requests and 5xx retryable,
 * except 501 Not Implemented and 505 HTTP Version Not Supported, which a retry cannot fix
 * (RFC 9110 §15.6); everything else (3xx, 4xx) permanent.
 */
export function classifyStatus(status: number): DeliveryOutcome {
  if (status >= 200 && status < 300) return 'success';
  if (status === 408 || status === 429) return 'retryable';
  if (status >= 500 && status < 600 && status !== 501 && status !== 505) return 'retryable';
  return 'permanent';
}

/**
 * Parses a `Retry-After` header (RFC 9110 §10.2.3): delay-seconds, or an HTTP-date compared with
 * `clock.now()` (a date in the past gives 0).
 * @returns milliseconds, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, clock: Clock): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  if (!/[A-Za-z]/.test(text)) return undefined; // not an HTTP-date either (e.g. "1.5", "-3")
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - clock.now());
}

/** Merged request headers: settings, then every credentials key (lower-cased; later wins), then ours. */
export function webhookHeaders(settings: WebhookSettings, credentials: Record<string, string>, where = 'webhook'): Record<string, string> {
  const out: Record<string, string> = { 'user-agent': USER_AGENT };
  const add = (name: string, value: string, origin: string) => {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: ${origin} key ${JSON.stringify(name)} is not a valid HTTP header name`);
    if (RESERVED_HEADERS.has(lower)) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: ${origin} cannot set the ${lower} header`);
    if (/[\r\n\0]/.test(value)) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: the value of ${origin} key ${JSON.stringify(name)} holds a line break or NUL`);
    out[lower] = value;
  };
  for (const [k, v] of Object.entries(settings.headers ?? {})) add(k, v, 'header');
  for (const [k, v] of Object.entries(credentials)) add(k, v.trim(), 'credentials Secret');
  out['content-type'] = 'application/json';
  return out;
}

async function readSnippet(body: AsyncIterable<Buffer | Uint8Array> & { destroy(): void }): Promise<string> {
  let text = '';
  try {
    for await (const chunk of body) {
      text += Buffer.from(chunk).toString('utf8');
      if (text.length >= ERROR_BODY_LIMIT) break;
    }
  } catch {
    // the body failed mid-way: keep what we have
  } finally {
    body.destroy();
  }
  return text.slice(0, ERROR_BODY_LIMIT);
}

/**
 * Webhook destination: one JSON request per send to `spec.destination.webhook.url` with its
 * `method` (default POST). Headers: `settings.headers`, then every key/value of the credentials
 * Secret (so `Authorization` lives in the Secret), `content-type: application/json`,
 * `user-agent: switchyard/<version>`. Body: the mapped payload when `delivery.batchSize` is 1,
 * else `{"batch": [payload, …]}`. Each instance has its own connection pool (undici Agent, at most
 * `delivery.concurrency` connections), so one Integration's slow endpoint never holds another's
 * connections.
 */
export class WebhookDestination implements Destination {
  private readonly agent: Agent;
  private readonly url: string;
  private readonly method: 'POST' | 'PUT' | 'PATCH';
  private readonly headers: Record<string, string>;
  private readonly batched: boolean;
  private readonly timeoutMs: number;
  private readonly clock: Clock;

  /** @throws SwitchyardError INVALID_RESOURCE when the webhook settings are missing or a header cannot be sent. */
  constructor(options: DestinationOptions) {
    const { integration } = options;
    const where = `Integration ${integration.metadata.namespace ?? 'default'}/${integration.metadata.name}`;
    const settings = integration.spec.destination.webhook;
    if (!settings) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `${where}: destination.webhook is required when type is webhook`);
    this.url = settings.url;
    this.method = settings.method ?? 'POST';
    this.headers = webhookHeaders(settings, options.credentials, where);
    this.batched = integration.spec.delivery.batchSize > 1;
    this.timeoutMs = options.timeoutMs;
    this.clock = options.clock;
    this.agent = new Agent({
      connections: integration.spec.delivery.concurrency,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: { timeout: Math.min(options.timeoutMs, 10_000) },
    });
  }

  /** Builds the destination for {@link DestinationType} registries. */
  static create(options: DestinationOptions): WebhookDestination {
    return new WebhookDestination(options);
  }

  /** `spec.destination.webhook.payloadSchema`, when the Integration sets one; a webhook takes any JSON otherwise. */
  static outputSchema(integration: Integration | undefined): object | undefined {
    const schema = integration?.spec.destination.webhook?.payloadSchema;
    return schema && typeof schema === 'object' ? schema : undefined;
  }

  /** The request body for these payloads (exactly one payload when batchSize is 1). */
  body(payloads: readonly unknown[]): string {
    if (!this.batched) {
      if (payloads.length !== 1) throw new RangeError(`webhook with batchSize 1 sends one payload per request, got ${payloads.length}`);
      return JSON.stringify(payloads[0]);
    }
    return JSON.stringify({ batch: payloads });
  }

  /** Sends one request; never throws (failures are results). */
  async send(payloads: readonly unknown[]): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    let body: string;
    try {
      body = this.body(payloads);
    } catch (e) {
      return { outcome: 'permanent', error: `cannot encode the payload: ${(e as Error).message}`, durationMs: elapsed() };
    }
    try {
      const res = await request(this.url, {
        method: this.method,
        headers: this.headers,
        body,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const outcome = classifyStatus(res.statusCode);
      const result: SendResult = { outcome, status: res.statusCode, durationMs: 0 };
      if (outcome === 'success') {
        await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      } else {
        const snippet = await readSnippet(res.body);
        result.error = `HTTP ${res.statusCode}${snippet ? `: ${snippet}` : ''}`;
        const retryAfter = parseRetryAfter(res.headers['retry-after'], this.clock);
        if (retryAfter !== undefined) result.retryAfterMs = retryAfter;
      }
      result.durationMs = elapsed();
      return result;
    } catch (e) {
      const err = e as Error & { code?: string };
      const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError' || err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT' || err.code === 'UND_ERR_CONNECT_TIMEOUT';
      const detail = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
      return { outcome: 'retryable', error: timedOut ? `timeout after ${this.timeoutMs}ms` : `network error: ${detail}`, durationMs: elapsed() };
    }
  }

  /** Closes the connection pool (waits for requests in progress). */
  async close(): Promise<void> {
    await this.agent.close();
  }
}
