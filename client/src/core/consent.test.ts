// Consent platforms' cookies read into category preferences, and the missing-preference policy.
import { consentAllows, parseConsentCookie } from './consent.js';

describe('parseConsentCookie', () => {
  it('reads OneTrust groups, renamed where configured', () => {
    // As document.cookie parsers give it: URL-decoded once.
    const value = 'isGpcEnabled=0&datestamp=Mon Nov 03 2025&version=202409.1.0&groups=C0001:1,C0002:0,C0004:1&hosts=';
    expect(parseConsentCookie(value, 'onetrust', { C0004: 'Advertising' })).toEqual({ C0001: true, C0002: false, Advertising: true });
    // Still encoded (a parser that does not decode).
    expect(parseConsentCookie('groups=C0001%3A1%2CC0004%3A0', 'onetrust')).toEqual({ C0001: true, C0004: false });
    expect(parseConsentCookie('datestamp=x', 'onetrust')).toEqual({});
  });

  it("reads Cookiebot's object literal and ignores its non-category fields", () => {
    const value = "{stamp:'abc==',necessary:true,preferences:false,statistics:true,marketing:false,method:'explicit',ver:1,utc:1700000000000,region:'de'}";
    expect(parseConsentCookie(value, 'cookiebot', { marketing: 'Advertising' })).toEqual({ necessary: true, preferences: false, statistics: true, Advertising: false });
    expect(parseConsentCookie('-1', 'cookiebot')).toEqual({});
  });

  it('reads a JSON object, keeping boolean values only', () => {
    expect(parseConsentCookie('{"Advertising":false,"Analytics":true,"x":"yes"}', 'json')).toEqual({ Advertising: false, Analytics: true });
    expect(parseConsentCookie('not json', 'json')).toEqual({});
    expect(parseConsentCookie(undefined, 'json')).toEqual({});
  });
});

describe('consentAllows', () => {
  it('allows syncs without a category, follows stated preferences, and the policy for the rest', () => {
    const preferences = { Advertising: false, Analytics: true };
    expect(consentAllows(preferences, 'deny', undefined)).toBe(true);
    expect(consentAllows(preferences, 'allow', 'Advertising')).toBe(false);
    expect(consentAllows(preferences, 'deny', 'Analytics')).toBe(true);
    expect(consentAllows(preferences, 'allow', 'Functional')).toBe(true);
    expect(consentAllows(preferences, 'deny', 'Functional')).toBe(false);
  });
});
