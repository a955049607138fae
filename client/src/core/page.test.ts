// Page context by analytics.js's rules, and campaign parameters.
import { campaignFromSearch, isCapturedPage, pageContext, type CapturedPage } from './page.js';

const PAGE: CapturedPage = { __t: 'bpc', p: '/shoes/red', u: 'https://www.shop.example/shoes/red?size=9#reviews', s: '?size=9', t: 'Red shoes', r: 'https://search.example/' };

describe('pageContext', () => {
  it('uses the page URL without its fragment', () => {
    expect(pageContext(PAGE)).toEqual({ path: '/shoes/red', referrer: 'https://search.example/', search: '?size=9', title: 'Red shoes', url: 'https://www.shop.example/shoes/red?size=9' });
  });

  it('prefers the canonical URL, resolved against the page, with the page search when it has none', () => {
    expect(pageContext({ ...PAGE, c: '/shoes' })).toMatchObject({ path: '/shoes', url: 'https://www.shop.example/shoes?size=9' });
    expect(pageContext({ ...PAGE, c: 'https://shop.example/s?id=1' })).toMatchObject({ path: '/s', url: 'https://shop.example/s?id=1' });
  });

  it('recognises the captured page argument', () => {
    expect(isCapturedPage(PAGE)).toBe(true);
    expect(isCapturedPage({ a: 1 })).toBe(false);
    expect(isCapturedPage(null)).toBe(false);
  });
});

describe('campaignFromSearch', () => {
  it('maps utm_campaign to name and keeps the other utm_ suffixes', () => {
    expect(campaignFromSearch('?utm_source=news&utm_medium=email&utm_campaign=spring&utm_term=shoes&utm_content=hero&utm_id=42&gclid=x')).toEqual({
      source: 'news',
      medium: 'email',
      name: 'spring',
      term: 'shoes',
      content: 'hero',
      id: '42',
    });
    expect(campaignFromSearch('?gclid=x')).toBeUndefined();
    expect(campaignFromSearch('')).toBeUndefined();
  });
});
