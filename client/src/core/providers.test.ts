import { describe, expect, it } from '@jest/globals';
import {
  fbclidOf,
  fillPlaceholders,
  gaClientId,
  gaSessionId,
  gclidFromGclAw,
  hostInDomains,
  LINKER_MAX_AGE_S,
  linkerId,
  linkerValue,
  mintFbp,
  msclkidFromUet,
  nextFbc,
  valueAtPath,
  withUrlParameter,
} from './providers.js';

describe('Google cookies', () => {
  it('takes the client id from _ga, whatever the domain depth', () => {
    expect(gaClientId('GA1.1.1162820436.1749482504')).toBe('1162820436.1749482504');
    expect(gaClientId('GA1.2.987654321.1700000000')).toBe('987654321.1700000000');
  });

  it('ignores _ga values of another shape', () => {
    expect(gaClientId(undefined)).toBeUndefined();
    expect(gaClientId('')).toBeUndefined();
    expect(gaClientId('1162820436.1749482504')).toBeUndefined();
    expect(gaClientId('GA1.1.1162820436')).toBeUndefined();
  });

  it('takes the session id from a GS1 _ga_<stream> cookie', () => {
    expect(gaSessionId('GS1.1.1746825440.14.0.1746825440.0.0.295082955')).toBe('1746825440');
  });

  it('takes the session id from a GS2 _ga_<stream> cookie, wherever the s field sits', () => {
    expect(gaSessionId('GS2.1.s1747132561$o1$g0$t1747132655$j0$l0$h0')).toBe('1747132561');
    expect(gaSessionId('GS2.1.o3$g1$s1747132561$t1747132655')).toBe('1747132561');
  });

  it('finds no session id in other values', () => {
    expect(gaSessionId(undefined)).toBeUndefined();
    expect(gaSessionId('GS2.1.o1$g0$t1747132655')).toBeUndefined();
    expect(gaSessionId('GS1.1.abc.1')).toBeUndefined();
    expect(gaSessionId('GA1.1.1162820436.1749482504')).toBeUndefined();
  });

  it('takes the gclid from _gcl_aw', () => {
    expect(gclidFromGclAw('GCL.1700000000.CjwKCAiA-x_Y')).toBe('CjwKCAiA-x_Y');
    expect(gclidFromGclAw('1.1700000000.CjwKCAiA')).toBeUndefined();
    expect(gclidFromGclAw(undefined)).toBeUndefined();
  });
});

describe('Microsoft cookie', () => {
  it('strips the _uet prefix of _uetmsclkid', () => {
    expect(msclkidFromUet('_uet3b1a2c4d5e6f11ee')).toBe('3b1a2c4d5e6f11ee');
    expect(msclkidFromUet('3b1a2c4d5e6f11ee')).toBeUndefined();
    expect(msclkidFromUet('_uet')).toBeUndefined();
  });
});

describe('Meta ids', () => {
  it('mints _fbp as fb.1.<ms>.<10 digits>', () => {
    expect(mintFbp(1700000000123, () => 0)).toBe('fb.1.1700000000123.1000000000');
    expect(mintFbp(1700000000123, () => 0.9999999999)).toMatch(/^fb\.1\.1700000000123\.9\d{9}$/);
    expect(mintFbp(1700000000123)).toMatch(/^fb\.1\.1700000000123\.\d{10}$/);
  });

  it('reads the fbclid of an fbc value, with or without the parameter builder appendix', () => {
    expect(fbclidOf('fb.1.1657051589577.IwZXh0bgNhZW0CMTAAAR-uK_5w')).toBe('IwZXh0bgNhZW0CMTAAAR-uK_5w');
    expect(fbclidOf('fb.2.1657051589577.IwZXh0bg.AQEAAQMB')).toBe('IwZXh0bg');
    expect(fbclidOf('IwZXh0bg')).toBeUndefined();
  });

  it('builds _fbc from a new fbclid, keeping its case', () => {
    expect(nextFbc(undefined, 'IwAR2F4-dbP0l7Mn1Iaw', 1700000000123)).toBe('fb.1.1700000000123.IwAR2F4-dbP0l7Mn1Iaw');
  });

  it('keeps the stored _fbc (and its time) when the same fbclid comes again', () => {
    const stored = 'fb.1.1600000000000.IwAR2F4-dbP0l7Mn1Iaw';
    expect(nextFbc(stored, 'IwAR2F4-dbP0l7Mn1Iaw', 1700000000123)).toBe(stored);
    expect(nextFbc(`${stored}.AQEAAQMB`, 'IwAR2F4-dbP0l7Mn1Iaw', 1700000000123)).toBe(`${stored}.AQEAAQMB`);
  });

  it('replaces the stored _fbc when another fbclid comes', () => {
    expect(nextFbc('fb.1.1600000000000.OLDCLICK', 'NEWCLICK', 1700000000123)).toBe('fb.1.1700000000123.NEWCLICK');
  });

  it('keeps the stored _fbc (or none) without an fbclid', () => {
    expect(nextFbc('fb.1.1600000000000.OLDCLICK', null, 1700000000123)).toBe('fb.1.1600000000000.OLDCLICK');
    expect(nextFbc('fb.1.1600000000000.OLDCLICK', '', 1700000000123)).toBe('fb.1.1600000000000.OLDCLICK');
    expect(nextFbc(undefined, undefined, 1700000000123)).toBeUndefined();
  });
});

describe('valueAtPath', () => {
  const body = { user: { id: 'u-1', number: 42, items: [{ id: 'i-1' }], flag: false, none: null, empty: '' } };

  it('walks a dot path through objects and arrays', () => {
    expect(valueAtPath(body, 'user.id')).toBe('u-1');
    expect(valueAtPath(body, 'user.items.0.id')).toBe('i-1');
  });

  it('gives numbers and booleans as text', () => {
    expect(valueAtPath(body, 'user.number')).toBe('42');
    expect(valueAtPath(body, 'user.flag')).toBe('false');
  });

  it('gives the value itself without a path', () => {
    expect(valueAtPath('abc', undefined)).toBe('abc');
    expect(valueAtPath('abc', '')).toBe('abc');
  });

  it('gives undefined for missing paths, objects, null and empty strings', () => {
    expect(valueAtPath(body, 'user.missing.id')).toBeUndefined();
    expect(valueAtPath(body, 'user')).toBeUndefined();
    expect(valueAtPath(body, 'user.items')).toBeUndefined();
    expect(valueAtPath(body, 'user.none')).toBeUndefined();
    expect(valueAtPath(body, 'user.empty')).toBeUndefined();
    expect(valueAtPath(null, 'user.id')).toBeUndefined();
    expect(valueAtPath('text', 'length')).toBeUndefined();
    expect(valueAtPath({ n: Number.NaN }, 'n')).toBeUndefined();
  });
});

describe('fillPlaceholders', () => {
  it('fills placeholders URL-encoded and empties unset ones', () => {
    const url = fillPlaceholders('https://sync.example/m?a={anonymousId}&u={userId}&x={crossDomainId}&r={random}', {
      anonymousId: 'a b&c',
      userId: null,
      crossDomainId: undefined,
      random: '123',
    });
    expect(url).toBe('https://sync.example/m?a=a%20b%26c&u=&x=&r=123');
  });

  it('leaves unknown placeholders as written', () => {
    expect(fillPlaceholders('https://sync.example/{partner}?id={anonymousId}', { anonymousId: 'a1' })).toBe('https://sync.example/{partner}?id=a1');
  });
});

describe('hostInDomains', () => {
  it('matches the domain and its subdomains, case-insensitively', () => {
    expect(hostInDomains('brand.test', ['brand.test'])).toBe(true);
    expect(hostInDomains('www.Brand.test', ['brand.TEST'])).toBe(true);
  });

  it('does not match other hosts sharing a suffix', () => {
    expect(hostInDomains('otherbrand.test', ['brand.test'])).toBe(false);
    expect(hostInDomains('brand.test.evil.example', ['brand.test'])).toBe(false);
    expect(hostInDomains('brand.test', [])).toBe(false);
  });
});

describe('withUrlParameter', () => {
  it('adds the parameter to a URL without a query', () => {
    expect(withUrlParameter('https://brand.test/p', '_syxid', 'abc')).toBe('https://brand.test/p?_syxid=abc');
  });

  it('appends it to the query, leaving the other parameters byte for byte', () => {
    expect(withUrlParameter('https://brand.test/p?q=a+b%20c&flag', '_syxid', 'abc')).toBe('https://brand.test/p?q=a+b%20c&flag&_syxid=abc');
  });

  it('replaces a parameter of the same name', () => {
    expect(withUrlParameter('https://brand.test/p?_syxid=old&x=1', '_syxid', 'new')).toBe('https://brand.test/p?x=1&_syxid=new');
  });

  it('keeps the fragment after the query, a ? inside it included', () => {
    expect(withUrlParameter('https://brand.test/p?x=1#top?y', '_syxid', 'abc')).toBe('https://brand.test/p?x=1&_syxid=abc#top?y');
    expect(withUrlParameter('https://brand.test/p#top', '_syxid', 'abc')).toBe('https://brand.test/p?_syxid=abc#top');
  });

  it('URL-encodes the value', () => {
    expect(withUrlParameter('https://brand.test/', 'v', 'a&b')).toBe('https://brand.test/?v=a%26b');
  });
});

describe('linkerValue / linkerId', () => {
  const NOW = Date.parse('2026-11-20T15:10:00.000Z');
  const ID = '3f1c2b4a-8d9e-4f00-a1b2-c3d4e5f60718';

  it('carries the id with the time the link was used, honoured for two minutes either way', () => {
    const value = linkerValue(ID, NOW);
    expect(value).toBe(`${ID}.${NOW / 1000}`);
    expect(linkerId(value, NOW)).toBe(ID);
    expect(linkerId(value, NOW + LINKER_MAX_AGE_S * 1000)).toBe(ID);
    expect(linkerId(value, NOW + LINKER_MAX_AGE_S * 1000 + 1000)).toBeUndefined();
    expect(linkerId(value, NOW - LINKER_MAX_AGE_S * 1000 - 1000)).toBeUndefined();
  });

  it('ignores values without a time, with a malformed id, or absent', () => {
    expect(linkerId(ID, NOW)).toBeUndefined();
    expect(linkerId(`short.${NOW / 1000}`, NOW)).toBeUndefined();
    expect(linkerId(`${ID}<x.${NOW / 1000}`, NOW)).toBeUndefined();
    expect(linkerId(undefined, NOW)).toBeUndefined();
  });
});
