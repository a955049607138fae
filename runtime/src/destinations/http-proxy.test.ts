import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { destinationIntegration } from '../test-support/destinations.js';
import { startTestReceiver, type TestReceiver } from '../test-support/http-receiver.js';
import { useTempDirs } from '../test-support/temp.js';
import { HttpDestination, proxyFromEnv } from './http.js';
import type { DestinationDefinition } from './types.js';
import { WebhookSettings } from './webhook/settings.js';

/** Posts each send as `{events: [...]}` to the settings' URL. */
const vendor: DestinationDefinition<WebhookSettings> = {
  type: 'webhook',
  settingsField: 'webhook',
  title: 'Test vendor',
  docsUrl: 'https://example.invalid',
  settingsSchema: WebhookSettings,
  credentials: {},
  batch: { default: 10, max: 10 },
  outputSchema: () => undefined,
  buildRequests: (payloads, ctx) => [{ method: 'POST', url: ctx.settings.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: payloads }), items: payloads.map((_, i) => i) }],
  classify: (response) => ({ outcome: response.status === 200 ? 'success' : 'permanent', error: `HTTP ${response.status}` }),
};

/** A forward proxy on loopback: tunnels CONNECT requests and records them; anything else gets 405. */
interface TestProxy {
  url: string;
  /** CONNECT targets (`host:port`) with their headers, in order. */
  connects: { target: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

async function startProxy(): Promise<TestProxy> {
  const sockets = new Set<Socket>();
  const connects: TestProxy['connects'] = [];
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connection', (s: Socket) => {
    sockets.add(s);
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    connects.push({ target: req.url!, headers: req.headers });
    const [host, port] = [req.url!.slice(0, req.url!.lastIndexOf(':')), Number(req.url!.slice(req.url!.lastIndexOf(':') + 1))];
    const upstream = connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    sockets.add(upstream);
    const end = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', end);
    client.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const tempDir = useTempDirs('switchyard-proxy-');
let receiver: TestReceiver;
let proxy: TestProxy;
let other: TestProxy;
let tls: TlsServer;
beforeAll(async () => {
  [receiver, proxy, other] = await Promise.all([startTestReceiver(), startProxy(), startProxy()]);
  // A TLS receiver with a certificate for 127.0.0.1 that nothing trusts: a handshake failing on it
  // shows the connection reached this server through the tunnel.
  const dir = await tempDir();
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir });
  const [key, cert] = await Promise.all([readFile(path.join(dir, 'key.pem')), readFile(path.join(dir, 'cert.pem'))]);
  tls = createTlsServer({ key, cert }, (s) => s.end());
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await Promise.all([receiver.close(), proxy.close(), other.close(), new Promise((resolve) => tls.close(resolve))]);
});
beforeEach(() => {
  receiver.requests.length = 0;
  proxy.connects.length = 0;
  other.connects.length = 0;
});

/** Sends one event to `url` from a destination whose process environment is `env`. */
async function sendThrough(env: NodeJS.ProcessEnv, url = `${receiver.url}/hook`) {
  const d = new HttpDestination(vendor, { integration: destinationIntegration('webhook', 'webhook', { url }), credentials: {}, timeoutMs: 5000, clock: { now: () => Date.now() } }, env);
  try {
    return await d.send([{ n: 1 }]);
  } finally {
    await d.close();
  }
}

const receiverHost = () => `127.0.0.1:${receiver.port}`;

describe('HttpDestination behind an egress proxy', () => {
  it('sends through HTTP_PROXY when it is set, and directly when no proxy is set', async () => {
    expect(await sendThrough({ HTTP_PROXY: proxy.url })).toMatchObject({ outcome: 'success', status: 200 });
    expect(proxy.connects.map((c) => c.target)).toEqual([receiverHost()]);
    expect(receiver.requests.map((r) => [r.url, r.body])).toEqual([['/hook', { events: [{ n: 1 }] }]]);

    expect(await sendThrough({})).toMatchObject({ outcome: 'success', status: 200 });
    expect(proxy.connects).toHaveLength(1);
    expect(receiver.requests).toHaveLength(2);
  });

  it('NO_PROXY hosts bypass the proxy, by host or host:port', async () => {
    expect(await sendThrough({ HTTP_PROXY: proxy.url, NO_PROXY: 'example.com, 127.0.0.1' })).toMatchObject({ outcome: 'success' });
    expect(await sendThrough({ HTTP_PROXY: proxy.url, NO_PROXY: receiverHost() })).toMatchObject({ outcome: 'success' });
    expect(proxy.connects).toHaveLength(0);
    expect(receiver.requests).toHaveLength(2);
    // Another port of the same host still goes through the proxy.
    expect(await sendThrough({ HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1:1' })).toMatchObject({ outcome: 'success' });
    expect(proxy.connects.map((c) => c.target)).toEqual([receiverHost()]);
  });

  it('credentials in the proxy URL are sent to the proxy, never to the destination', async () => {
    const withUser = proxy.url.replace('http://', 'http://egress:s%3Acret@');
    expect(await sendThrough({ HTTP_PROXY: withUser })).toMatchObject({ outcome: 'success' });
    expect(proxy.connects[0]!.headers['proxy-authorization']).toBe(`Basic ${Buffer.from('egress:s:cret').toString('base64')}`);
    expect(receiver.requests[0]!.headers['proxy-authorization']).toBeUndefined();
  });

  it('https destinations tunnel through HTTPS_PROXY, http ones through HTTP_PROXY', async () => {
    const env = { HTTPS_PROXY: proxy.url, HTTP_PROXY: other.url };
    const tlsPort = (tls.address() as AddressInfo).port;
    const secure = await sendThrough(env, `https://127.0.0.1:${tlsPort}/hook`);
    expect(proxy.connects.map((c) => c.target)).toEqual([`127.0.0.1:${tlsPort}`]);
    // The TLS handshake ran inside the tunnel with the receiver: its certificate (trusted by nothing) came back.
    expect(secure).toMatchObject({ outcome: 'retryable', error: expect.stringMatching(/self[- ]signed certificate/) });

    expect(await sendThrough(env)).toMatchObject({ outcome: 'success' });
    expect(other.connects.map((c) => c.target)).toEqual([receiverHost()]);
    expect(proxy.connects).toHaveLength(1);
  });
});

describe('proxyFromEnv', () => {
  it('reads the variables as curl does: lower-case first, empty as unset, the HTTP proxy for https too', () => {
    expect(proxyFromEnv({})).toBeUndefined();
    expect(proxyFromEnv({ HTTP_PROXY: '', https_proxy: '' })).toBeUndefined();
    expect(proxyFromEnv({ HTTP_PROXY: 'http://a:3128', NO_PROXY: '.svc' })).toEqual({ httpProxy: 'http://a:3128', httpsProxy: 'http://a:3128', noProxy: '.svc' });
    expect(proxyFromEnv({ http_proxy: 'http://lower:1', HTTP_PROXY: 'http://upper:1', HTTPS_PROXY: 'http://s:1', no_proxy: 'x' })).toEqual({ httpProxy: 'http://lower:1', httpsProxy: 'http://s:1', noProxy: 'x' });
    expect(proxyFromEnv({ HTTPS_PROXY: 'http://s:1' })).toEqual({ httpProxy: '', httpsProxy: 'http://s:1', noProxy: '' });
  });
});
