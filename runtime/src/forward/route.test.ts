import { consentAllows } from './route.js';

describe('consentAllows', () => {
  const event = (prefs: unknown) => ({ type: 'track', event: 'x', context: { consent: { categoryPreferences: prefs } } });
  it.each<[string, unknown, string[], 'allow' | 'deny', boolean]>([
    ['no categories needed', { Advertising: false }, [], 'deny', true],
    ['granted', { Advertising: true }, ['Advertising'], 'deny', true],
    ['opted out', { Advertising: false, Analytics: true }, ['Advertising'], 'allow', false],
    ['opted out in another case', { advertising: false }, ['Advertising'], 'allow', false],
    ['granted in another case', { ADVERTISING: true }, ['Advertising'], 'deny', true],
    ['two spellings, one false: denied', { Advertising: true, advertising: false }, ['Advertising'], 'allow', false],
    ['no preference, allow regime', { Analytics: true }, ['Advertising'], 'allow', true],
    ['no preference, deny regime', { Analytics: true }, ['Advertising'], 'deny', false],
    ['not a boolean counts as no preference', { Advertising: 'yes' }, ['Advertising'], 'deny', false],
    ['no consent object at all, allow regime', undefined, ['Advertising'], 'allow', true],
    ['no consent object at all, deny regime', undefined, ['Advertising'], 'deny', false],
    ['every needed category must be granted', { Advertising: true, Personalization: false }, ['Advertising', 'Personalization'], 'allow', false],
    ['preferences that are not an object', ['Advertising'], ['Advertising'], 'deny', false],
  ])('%s', (_t, prefs, categories, missing, allowed) => {
    expect(consentAllows(event(prefs), categories, missing)).toBe(allowed);
  });
});
