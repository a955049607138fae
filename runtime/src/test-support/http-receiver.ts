import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';

/** One request a test receiver got. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body (undefined when not JSON). */
  body: any;
  /** Date.now() when the body was complete. */
  at: number;
  /** 0-based index among all requests of this receiver. */
  index: number;
}

/** What the receiver answers; `hold` delays the answer until the promise settles. */
export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  hold?: Promise<unknown>;
}

export type Responder = (req: ReceivedRequest) => Reply | undefined;

/** A loopback HTTP receiver for tests that records every request and answers through `respond`. */
export interface TestReceiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  respond: Responder;
  /** Resolves when `predicate` holds (polled), rejects after `timeoutMs`. */
  waitFor(predicate: (requests: ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Kills the server: open connections are destroyed, then it stops listening. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
}

/** Polls `predicate` every 10 ms until it holds; rejects with `what` after `timeoutMs`. */
export async function eventually(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a receiver on 127.0.0.1 (port 0: a free one). Default answer: 200 `{"ok":true}`. */
export async function startTestReceiver(options: { port?: number; respond?: Responder } = {}): Promise<TestReceiver> {
  const requests: ReceivedRequest[] = [];
  let server: Server;
  let port = options.port ?? 0;
  const receiver: TestReceiver = {
    url: '',
    port: 0,
    requests,
    respond: options.respond ?? (() => undefined),
    async waitFor(predicate, timeoutMs = 10_000) {
      await eventually(() => predicate(requests), timeoutMs, `receiver requests (have ${requests.length})`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    restart: () => listen(),
  };
  const answer = (res: ServerResponse, reply: Reply | undefined) => {
    if (res.destroyed) return;
    res.writeHead(reply?.status ?? 200, { 'content-type': 'application/json', ...reply?.headers }).end(reply?.body ?? '{"ok":true}');
  };
  const listen = async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        const r: ReceivedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, text, body, at: Date.now(), index: requests.length };
        requests.push(r);
        const reply = receiver.respond(r);
        if (reply?.hold) void reply.hold.then(() => answer(res, reply), () => answer(res, reply));
        else answer(res, reply);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as { port: number }).port;
    receiver.port = port;
    receiver.url = `http://127.0.0.1:${port}`;
  };
  await listen();
  return receiver;
}
