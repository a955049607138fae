import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { snippet } from '@switchyard/client/core';

/** HTML-escapes text for element content and attribute values. */
function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The demo shop page of `switchyard dev --site`: the Source's snippet loading the tag from the
 * ingestion, and buttons making the calls a shop makes (the example Mapping turns `Order Completed`
 * into the webhook's `purchase`).
 * @param ingestionUrl the ingestion's base URL as the browser reaches it.
 */
export function demoPage(ingestionUrl: string, writeKey: string, source: string): string {
  const order = {
    order_id: 'demo-1',
    revenue: 25,
    currency: 'USD',
    products: [{ product_id: 'p1', name: 'Uno', price: 12.5, quantity: 2 }],
  };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Switchyard demo shop</title>
<script>${snippet(ingestionUrl, writeKey)}</script>
<style>body{font:16px system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}button{margin:.2rem}code{background:#eee;padding:0 .2rem}</style>
</head>
<body>
<h1>Switchyard demo shop</h1>
<p>This page carries the tag of Source <code>${html(source)}</code>, served first-party by the
ingestion at <code>${html(ingestionUrl)}/tag/${html(encodeURIComponent(writeKey))}.js</code>. Every call
goes to the ingestion; the terminal running <code>switchyard dev</code> shows what reaches the
Integrations.</p>
<p>
<button id="view" onclick="analytics.track('Product Viewed', {product_id: 'p1', name: 'Uno', price: 12.5})">Product Viewed</button>
<button id="order" onclick='analytics.track("Order Completed", ${html(JSON.stringify(order))})'>Order Completed</button>
<button id="identify" onclick="analytics.identify('u1', {email: 'ada@example.com'})">identify u1</button>
<button id="reset" onclick="analytics.reset()">reset</button>
</p>
<p>
<label><input type="checkbox" id="ads" checked onchange="analytics.setConsent({Advertising: this.checked})"> consent to Advertising (ad click ids are attached only with it)</label>
</p>
<p><a href="?fbclid=IwAR-demo&amp;gclid=Cj0KCQ-demo&amp;utm_source=newsletter&amp;utm_campaign=demo">Come back as if from an ad</a>
(the Sync Injector keeps the click ids in first-party cookies and attaches them to every event under
<code>context.providers</code>).</p>
</body>
</html>
`;
}

/**
 * Serves {@link demoPage} on `http://<host>:<port>/` (port 0 = a free one) for `switchyard dev --site`.
 * @throws the `listen` error (e.g. EADDRINUSE).
 */
export async function startDemoSite(options: { port: number; host?: string; ingestionUrl: string; writeKey: string; source: string }): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const page = demoPage(options.ingestionUrl, options.writeKey, options.source);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/favicon.ico') {
      res.writeHead(204).end(); // browsers ask for it; an error in the console would mislead
      return;
    }
    if (req.method !== 'GET' || path !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(page);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
