// `switchyard receiver` as a process: what a user runs next to a local cluster to see deliveries.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort } from '../local/nats-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('switchyard receiver', () => {
  it('prints each request as dev does: method, path, the headers that matter (credentials included) and the body', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bin.ts'), 'receiver', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const line = async (re: RegExp) => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        const found = out.split('\n').find((l) => re.test(l));
        if (found) return found;
        if (child.exitCode !== null) break;
      }
      throw new Error(`no line matching ${re} in:\n${out}`);
    };
    try {
      await line(new RegExp(`^receiver on http://127\\.0\\.0\\.1:${port}$`));
      const res = await request(`http://127.0.0.1:${port}/webhook`, {
        method: 'POST',
        headers: { authorization: 'Bearer local-example-token', 'content-type': 'application/json', 'x-switchyard-example': 'true', 'user-agent': 'test' },
        body: JSON.stringify({ event: 'purchase', order: { id: 'o1' } }),
      });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      expect(await line(/^receiver ← /)).toBe(
        'receiver ← POST /webhook headers={"authorization":"Bearer local-example-token","x-switchyard-example":"true"} body={"event":"purchase","order":{"id":"o1"}}',
      );
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);

  it('answers with --status, so dead letters and retries can be tried locally', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'bin.ts'), 'receiver', '--port', String(port), '--status', '400'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      for (const deadline = Date.now() + 20_000; !out.includes('receiver on') && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      const res = await request(`http://127.0.0.1:${port}/webhook`, { method: 'POST', body: '{}' });
      expect(res.statusCode).toBe(400);
      expect(await res.body.json()).toEqual({ error: 'answered 400 on purpose (switchyard receiver --status)' });
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);
});

