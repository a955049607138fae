import { createHmac, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { classifyByStatus, httpDestinationType } from '../http.js';
import { USER_AGENT, type DestinationDefinition } from '../types.js';
import { WebhookSettings } from './settings.js';

export { WebhookSettings } from './settings.js';

/** RFC 9110 token: what a header name may hold. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the HTTP client computes or that would break framing; settings and Secrets cannot set them. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer', 'proxy-connection']);

/**
 * Merged request headers: settings, then every credentials key (lower-cased; later wins) except
 * the signature's secret key, then ours (`user-agent`, `content-type: application/json`).
 * @throws SwitchyardError INVALID_RESOURCE for a name that is not an HTTP token, a reserved header
 * (host, content-length…) or a value holding a line break or NUL.
 */
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
  for (const [k, v] of Object.entries(credentials)) if (k !== settings.signature?.secretKey) add(k, v.trim(), 'credentials Secret');
  out['content-type'] = 'application/json';
  return out;
}

/**
 * The signature header value of `body` sent at `timestampSec`: `t=<timestampSec>,v1=<hex
 * HMAC-SHA256(secret, "<timestampSec>.<body>")>` (Stripe's webhook scheme,
 * https://docs.stripe.com/webhooks#verify-manually).
 */
export function signWebhook(secret: string, body: string, timestampSec: number): string {
  const mac = createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex');
  return `t=${timestampSec},v1=${mac}`;
}

/**
 * Checks a webhook signature header on the receiving side: a `v1` HMAC of `"<t>.<body>"` with
 * `secret` (compared in constant time) and `t` within `toleranceSec` (default 300) of `nowMs`.
 * @returns true when the body is authentic and fresh.
 */
export function verifyWebhookSignature(secret: string, header: string | undefined, body: string, nowMs: number, toleranceSec = 300): boolean {
  if (!header) return false;
  const parts = new Map<string, string[]>();
  for (const item of header.split(',')) {
    const [k, ...v] = item.trim().split('=');
    if (k && v.length) parts.set(k, [...(parts.get(k) ?? []), v.join('=')]);
  }
  const t = Number(parts.get('t')?.[0]);
  if (!Number.isInteger(t) || Math.abs(nowMs / 1000 - t) > toleranceSec) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split('v1=')[1]!, 'hex');
  return (parts.get('v1') ?? []).some((sig) => {
    const given = Buffer.from(sig, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/**
 * Webhook: one JSON request per send to `url` with `method`. Headers: `headers`, then every key of
 * the credentials Secret (so `Authorization` lives in the Secret) but the signing secret,
 * `content-type: application/json`, `user-agent: switchyard/<version>`, and the signature when
 * `signature` is set. Body: the mapped payload when `delivery.batchSize` is 1, else
 * `{"batch": [payload, …]}`. Classified by status ({@link classifyByStatus}).
 */
export const webhookDestination: DestinationDefinition<WebhookSettings> = {
  type: 'webhook',
  settingsField: 'webhook',
  title: 'Webhook',
  docsUrl: 'https://www.rfc-editor.org/rfc/rfc9110',
  settingsSchema: WebhookSettings,
  credentials: {},
  batch: { default: 1, max: 1000 },
  outputSchema: (settings) => (settings?.payloadSchema && typeof settings.payloadSchema === 'object' ? settings.payloadSchema : undefined),
  outputSchemaFromUser: true,
  starterMapping: new URL('./mapping.yaml', import.meta.url),
  validate(settings, credentials, integration) {
    webhookHeaders(settings, credentials, `Integration ${integration}`);
    const key = settings.signature?.secretKey;
    if (key && !credentials[key]) throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${integration}: the credentials Secret has no key ${key} (destination.webhook.signature.secretKey)`);
  },
  buildRequests(payloads, ctx) {
    // Settings and credentials are fixed for the destination's life: merge and check them once.
    let headers = ctx.cache.get('headers') as Record<string, string> | undefined;
    if (!headers) ctx.cache.set('headers', (headers = webhookHeaders(ctx.settings, { ...ctx.credentials }, `Integration ${ctx.integration}`)));
    const request = (body: string, items: number[]) => {
      const signature = ctx.settings.signature;
      const signed = signature ? { ...headers, [signature.header.toLowerCase()]: signWebhook(ctx.credentials[signature.secretKey]!, body, Math.floor(ctx.now / 1000)) } : headers;
      return { method: ctx.settings.method, url: ctx.settings.url, headers: signed, body, items };
    };
    // batchSize 1: the payload itself is the body, one request each.
    if (ctx.batchSize === 1) return payloads.map((p, i) => request(JSON.stringify(p), [i]));
    return [request(JSON.stringify({ batch: payloads }), payloads.map((_, i) => i))];
  },
  classify: (response, _request, ctx) => classifyByStatus(response, ctx.now),
};

/** The webhook {@link DestinationType}. */
export const WebhookDestination = httpDestinationType(webhookDestination);
