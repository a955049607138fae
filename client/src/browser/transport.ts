/** What a tracking request got: the HTTP status (undefined: no answer, network failure) and `Retry-After`. */
export interface Answer {
  status: number | undefined;
  retryAfter: string | null;
  /** The answer's body, read for 207 and final 4xx (to tell the developer why). */
  text?: string;
}

/** Total body bytes a page may have in flight with `keepalive` (Fetch standard: 64 KiB; a margin left for other scripts). */
export const KEEPALIVE_BYTES = 64000;

/**
 * POSTs a batch body as `text/plain` (no CORS preflight), without credentials, with `keepalive`
 * when asked (the request then outlives the page).
 * @param beacon while the page is going away in a browser whose fetch has no `keepalive`:
 * `navigator.sendBeacon` sends it instead, and the result is undefined (no answer will come).
 */
export function post(url: string, body: string, keepalive: boolean, beacon = false): Promise<Answer> | undefined {
  if (beacon && !('keepalive' in Request.prototype)) {
    navigator.sendBeacon?.(url, new Blob([body], { type: 'text/plain' }));
    return undefined;
  }
  return fetch(url, { method: 'POST', body, headers: { 'Content-Type': 'text/plain' }, credentials: 'omit', keepalive }).then(
    async (response) => {
      const { status } = response;
      const answer: Answer = { status, retryAfter: response.headers.get('Retry-After') };
      if (status === 207 || (status >= 400 && status < 500)) answer.text = await response.text().catch(() => '');
      return answer;
    },
    () => ({ status: undefined, retryAfter: null }),
  );
}
