// `switchyard snippet`: the <script> a site pastes, for one Source and ingestion host.
import { snippet } from '@switchyard/client/core';
import { main } from './index.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'switchyard', 'snippet', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('switchyard snippet', () => {
  it("prints the client's snippet for the host and write key inside a script element", async () => {
    const r = await cli(['--host', 'https://data.shop.example/', '--write-key', 'wk_live_123']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`<script>\n${snippet('https://data.shop.example', 'wk_live_123')}\n</script>`);
    expect(r.out).toContain('"https://data.shop.example/tag/"');
    expect(r.out).toContain('a.load("wk_live_123")');
  });

  it('needs both the host and the write key', async () => {
    const r = await cli(['--host', 'https://data.shop.example']);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('--write-key');
  });
});
