import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

/**
 * A KubeConfig for the suite's control plane: the file named by `KUBECONFIG`, which Jest's global
 * setup sets after starting the control plane (see control-plane.ts).
 * @throws Error when `KUBECONFIG` is not set (the tests were not run through jest, or the selected
 * test files did not include operator tests when the global setup decided what to start).
 */
export function testKubeConfig(): KubeConfig {
  const file = process.env.KUBECONFIG;
  if (!file) {
    throw new Error('KUBECONFIG is not set: run the tests through jest, whose global setup starts a Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)');
  }
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/**
 * Creates a namespace with a unique name `<prefix>-<8 hex chars>` (prefix default `test`, at most
 * 54 characters, lowercase DNS label characters) and resolves to its name. Test files running in
 * parallel against the one control plane each work in their own namespace.
 */
export async function createTestNamespace(kc: KubeConfig, prefix = 'test'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'switchyard.io/test': 'true' } } } });
  return name;
}

/**
 * Deletes a namespace made by {@link createTestNamespace} (foreground: its objects go first) and
 * resolves without waiting for the namespace controller to finish; a missing namespace is fine.
 * Pods bound to a fake node that is no longer running stay Terminating, so stop the fake node
 * after this, or let the pods go with the control plane.
 */
export async function deleteTestNamespace(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name });
  } catch (err) {
    if (statusCode(err) !== 404) throw err;
  }
}

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** What is awaited, for the error message, e.g. `deployment web available`. */
  what: string;
  /** Give up after this many milliseconds (default 20000). */
  timeoutMs?: number;
  /** Pause between attempts in milliseconds (default 100). */
  intervalMs?: number;
}

/**
 * Calls `fn` until it resolves to a value that is not `undefined`, `null` or `false`, and resolves
 * to that value. A call that throws counts as not yet (the error is kept for the message).
 * @throws Error naming `what`, the time waited and the last value (or error) seen.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, options: WaitForOptions): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  let lastError: unknown = undefined;
  for (;;) {
    try {
      const value = await fn();
      lastError = undefined;
      last = value;
      if (value !== undefined && value !== null && value !== false) return value as Exclude<T, undefined | null | false>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const seen = lastError !== undefined ? `last error: ${describeError(lastError)}` : `last value: ${safeJson(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what} (${seen})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The HTTP status of a failed Kubernetes API call (client-node ApiException or {@link KubeRequestError}), else undefined. */
export function statusCode(err: unknown): number | undefined {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown; status?: unknown }).code ?? (err as { status?: unknown }).status;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** A Kubernetes API call answered with a status outside 2xx. */
export class KubeRequestError extends Error {
  constructor(
    /** HTTP status code. */
    readonly status: number,
    /** The Status object's `reason` (e.g. `NotFound`, `Invalid`), when the body was one. */
    readonly reason: string | undefined,
    message: string,
    /** The parsed response body (a Status object usually), or its text. */
    readonly body: unknown,
  ) {
    super(message);
    this.name = 'KubeRequestError';
  }
}

/**
 * One raw API call with the credentials of `kc`: `method` on `path` (e.g. `/api/v1/pods`), with an
 * optional JSON `body` (sent as `contentType`, default `application/json`; merge patches use
 * `application/merge-patch+json`). Resolves to the parsed JSON answer. Objects keep the API's own
 * JSON shape (timestamps are strings), unlike the generated clients.
 * @throws KubeRequestError when the status is not 2xx, with the Status message.
 */
export async function kubeRequest<T = unknown>(kc: KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  const opts: https.RequestOptions = { method, hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: {} };
  await kc.applyToHTTPSOptions(opts);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  opts.headers = { ...opts.headers, accept: 'application/json', ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}) };
  const transport = url.protocol === 'https:' ? https : http;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = transport.request(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: keep the text.
  }
  if (status < 200 || status > 299) {
    const st = parsed && typeof parsed === 'object' ? (parsed as { reason?: string; message?: string }) : {};
    throw new KubeRequestError(status, st.reason, `${method} ${path}: ${status} ${st.message ?? text}`, parsed);
  }
  return parsed as T;
}

function describeError(err: unknown): string {
  if (err && typeof err === 'object' && 'body' in err) {
    const body = (err as { body?: unknown }).body;
    const msg = typeof body === 'string' ? body : safeJson(body);
    return `${err instanceof Error ? err.message : String(err)} ${msg}`.slice(0, 2000);
  }
  return err instanceof Error ? err.message : String(err);
}

function safeJson(value: unknown): string {
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 2000 ? `${s.slice(0, 2000)}…` : s;
  } catch {
    return String(value);
  }
}
