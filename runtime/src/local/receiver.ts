import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** One request a {@link startReceiver} got. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** Parsed JSON body, or the raw text when it is not JSON. */
  body: unknown;
  receivedAt: number;
}

/**
 * One line per request a receiver got (`switchyard dev --receiver` and `switchyard receiver`):
 * method, path, the headers that matter (credentials and destination headers; transport ones
 * left out), body.
 */
export function formatReceived(r: ReceivedRequest): string {
  const boring = new Set(['host', 'connection', 'content-length', 'content-type', 'accept', 'accept-encoding', 'user-agent']);
  const headers = Object.fromEntries(Object.entries(r.headers).filter(([k]) => !boring.has(k)));
  return `receiver ← ${r.method} ${r.url} headers=${JSON.stringify(headers)} body=${JSON.stringify(r.body)}`;
}

/**
 * A loopback webhook receiver for local runs: answers 200 to every request and hands each one to
 * `onRequest` (the dev and receiver commands print them with {@link formatReceived}). Listens on `host:port` (port 0 = a free one).
 */
export async function startReceiver(options: { port: number; host?: string; status?: number; onRequest: (r: ReceivedRequest) => void }): Promise<{ url: string; port: number; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const text = raw.toString('utf8');
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      options.onRequest({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, receivedAt: Date.now() });
      const status = options.status ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : `{"error":"answered ${status} on purpose (switchyard receiver --status)"}`);
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
