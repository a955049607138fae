import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import { getDomain } from 'tldts';
import type { TagSpec } from '../api/source.js';

/** Longest anonymousId the identity endpoint takes or keeps, in characters. */
export const MAX_ANONYMOUS_ID_LENGTH = 128;

/**
 * What is wrong with an anonymousId for the identity cookie, or undefined when it is fine: a
 * string of 1–{@link MAX_ANONYMOUS_ID_LENGTH} characters without control characters, `;` or `,`
 * (which would break the `Cookie` header it travels back in).
 */
export function anonymousIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string';
  if (id.length < 1 || id.length > MAX_ANONYMOUS_ID_LENGTH) return `must be 1–${MAX_ANONYMOUS_ID_LENGTH} characters`;
  if (/[\u0000-\u001f\u007f;,]/.test(id)) return 'must not hold control characters, ";" or ","';
  return undefined;
}

/**
 * The anonymousId in a `Cookie` header under `name`: the raw value, or a JSON-quoted one as
 * analytics.js classic writes it (`%22<id>%22`). Values that are no valid id are ignored (the
 * answer's cookie replaces them).
 * @returns undefined when there is no such cookie, or its value is not a valid id.
 */
export function anonymousIdFromCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let value = parseCookie(header)[name];
  if (value === undefined) return undefined;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed !== 'string') return undefined;
      value = parsed;
    } catch {
      return undefined;
    }
  }
  return anonymousIdProblem(value) === undefined ? value : undefined;
}

/**
 * The `Domain` attribute of the identity cookie: the configured `tag.cookie.domain`, else the
 * registrable domain of the request's host name per the public suffix list (tldts `getDomain`:
 * `data.shop.example` → `shop.example`, `a.b.co.uk` → `b.co.uk`), else none (host-only: IP
 * addresses, `localhost` and other single-label names).
 */
export function identityCookieDomain(hostname: string | undefined, configured: string | undefined): string | undefined {
  if (configured) return configured;
  if (!hostname) return undefined;
  const host = hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return undefined;
  return getDomain(host) ?? undefined;
}

/** What {@link identityCookie} needs to know of the request. */
export interface IdentityCookieRequest {
  /** Host name the request was sent to (Express `req.hostname`). */
  hostname: string | undefined;
  /** Whether it came over https (Express `req.secure`, which honours `trust proxy`). */
  secure: boolean;
}

/**
 * The `Set-Cookie` value of the server-set anonymousId cookie: `<anonymousIdName>=<id>`, Domain
 * per {@link identityCookieDomain}, `Path=/`, `Max-Age` = `serverCookie.maxAgeDays` days,
 * `SameSite` = `cookie.sameSite`, `Secure` on https requests and always with SameSite None
 * (browsers refuse SameSite=None without it), `HttpOnly` when `serverCookie.httpOnly`.
 */
export function identityCookie(id: string, tag: TagSpec, request: IdentityCookieRequest): string {
  const sameSite = tag.cookie.sameSite.toLowerCase() as 'lax' | 'strict' | 'none';
  return serializeCookie(tag.cookie.anonymousIdName, id, {
    domain: identityCookieDomain(request.hostname, tag.cookie.domain),
    path: '/',
    maxAge: tag.serverCookie.maxAgeDays * 86_400,
    sameSite,
    secure: request.secure || sameSite === 'none',
    httpOnly: tag.serverCookie.httpOnly,
  });
}

/**
 * The anonymousId the identity endpoint answers: the one the browser's cookie holds (it was set
 * first and other tabs or sites on the domain may have sent events with it), else the tag's
 * (`bodyId`, already checked), else a new UUID. With `replace` (the page called
 * `setAnonymousId` or `reset`), the tag's id wins over the cookie's: an HttpOnly cookie can be
 * changed only by the server.
 */
export function chooseAnonymousId(cookieId: string | undefined, bodyId: string | undefined, replace = false): string {
  if (replace && bodyId) return bodyId;
  return cookieId ?? bodyId ?? randomUUID();
}
