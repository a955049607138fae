// The snippet runs in a page before the tag: a stub recording calls, and the script element loading the tag.
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { SNIPPET, snippet } from './snippet.js';

/** A page as much as the snippet touches: scripts in <head>, a canonical link, location and title. */
function fakePage() {
  const inserted: Array<{ src: string; async: boolean }> = [];
  const firstScript = { parentNode: { insertBefore: (script: { src: string; async: boolean }) => inserted.push(script) } };
  const window: Record<string, any> = {
    console: { error: (...args: unknown[]) => errors.push(args.join(' ')) },
    location: { pathname: '/shoes', href: 'https://www.shop.example/shoes?utm_source=news#top', search: '?utm_source=news' },
    document: {
      title: 'Shoes',
      referrer: 'https://search.example/',
      createElement: () => ({ src: '', async: false }),
      getElementsByTagName: () => [firstScript],
      querySelector: (selector: string) => (selector === "link[rel='canonical']" ? { getAttribute: () => 'https://www.shop.example/shoes' } : null),
    },
  };
  const errors: string[] = [];
  window.window = window;
  return { window, inserted, errors };
}

describe('snippet', () => {
  it('fills host and write key as JavaScript string content safe in HTML', () => {
    const code = snippet('https://data.shop.example/', 'wk_"</script>$&');
    expect(code).toContain('"https://data.shop.example/tag/"');
    expect(code).toContain('a.load("wk_\\"\\u003c/script>$&")');
    expect(code).not.toContain('{{');
    expect(SNIPPET).toContain('{{host}}');
  });

  it('stubs analytics, loads the tag and records calls with the page context of their time', () => {
    const page = fakePage();
    runInNewContext(snippet('https://data.shop.example', 'wk_web'), page.window);
    runInNewContext('analytics.track("Clicked", {a: 1}); analytics.setConsent({Advertising: true});', page.window);
    const stub = page.window.analytics;
    expect(page.inserted).toEqual([{ src: 'https://data.shop.example/tag/wk_web.js', async: true }]);
    expect(stub._writeKey).toBe('wk_web');
    const bpc = { __t: 'bpc', c: 'https://www.shop.example/shoes', p: '/shoes', u: 'https://www.shop.example/shoes?utm_source=news#top', s: '?utm_source=news', t: 'Shoes', r: 'https://search.example/', d: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) };
    // JSON round trip: the arrays come from another realm.
    expect(JSON.parse(JSON.stringify([...stub]))).toEqual([['page', bpc], ['track', 'Clicked', { a: 1 }, bpc], ['setConsent', { Advertising: true }]]);
  });

  it('forwards calls to the real object once it replaced the stub', () => {
    const page = fakePage();
    runInNewContext(snippet('https://data.shop.example', 'wk_web'), page.window);
    const track = page.window.analytics.track;
    const calls: unknown[][] = [];
    page.window.analytics = { initialized: true, track: (...args: unknown[]) => calls.push(args) };
    track('Later', { b: 2 });
    expect(calls).toEqual([['Later', { b: 2 }]]);
  });

  it('complains when included twice and leaves the first stub alone', () => {
    const page = fakePage();
    runInNewContext(snippet('https://data.shop.example', 'wk_web'), page.window);
    const stub = page.window.analytics;
    runInNewContext(snippet('https://data.shop.example', 'wk_web'), page.window);
    expect(page.window.analytics).toBe(stub);
    expect(page.inserted).toHaveLength(1);
    expect(page.errors).toEqual(['Switchyard snippet included twice.']);
  });
});

describe('the snippet in the README', () => {
  it('is the one snippet() prints', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const shown = /<script>\n(!function\(\)[^\n]*)\n<\/script>/.exec(readme)?.[1];
    expect(shown).toBe(snippet('https://data.shop.example', 'wk_live_…'));
  });
});
