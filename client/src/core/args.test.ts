// analytics.js argument juggling.
import { resolveAliasArguments, resolvePageArguments, resolveTrackArguments, resolveUserArguments, splitOptions } from './args.js';

const callback = () => undefined;

describe('resolveTrackArguments', () => {
  it('takes event, properties, options and a callback anywhere after the event', () => {
    expect(resolveTrackArguments(['Clicked', { a: 1 }, { integrations: {} }, callback])).toEqual({ event: 'Clicked', properties: { a: 1 }, options: { integrations: {} }, callback });
    expect(resolveTrackArguments(['Clicked', callback])).toEqual({ event: 'Clicked', properties: {}, options: {}, callback });
    expect(resolveTrackArguments(['Clicked', null, { context: {} }])).toEqual({ event: 'Clicked', properties: {}, options: { context: {} }, callback: undefined });
  });

  it('takes an event object too', () => {
    expect(resolveTrackArguments([{ event: 'Clicked', properties: { a: 1 } }, { timestamp: 'x' }])).toEqual({ event: 'Clicked', properties: { a: 1 }, options: { timestamp: 'x' }, callback: undefined });
  });
});

describe('resolvePageArguments', () => {
  it('reads two leading strings as category and name, one as the name', () => {
    expect(resolvePageArguments(['Docs', 'Setup', { a: 1 }, { b: 2 }, callback])).toEqual({ category: 'Docs', name: 'Setup', properties: { a: 1 }, options: { b: 2 }, callback });
    expect(resolvePageArguments(['Setup', { a: 1 }])).toEqual({ category: undefined, name: 'Setup', properties: { a: 1 }, options: {}, callback: undefined });
    expect(resolvePageArguments([{ a: 1 }, { b: 2 }])).toEqual({ category: undefined, name: undefined, properties: { a: 1 }, options: { b: 2 }, callback: undefined });
    expect(resolvePageArguments([])).toEqual({ category: undefined, name: undefined, properties: {}, options: {}, callback: undefined });
  });
});

describe('resolveUserArguments', () => {
  it('reads an id (numbers made strings), traits and options by position', () => {
    expect(resolveUserArguments(['u1', { email: 'a@b.c' }, { context: {} }, callback])).toEqual({ id: 'u1', traits: { email: 'a@b.c' }, options: { context: {} }, callback });
    expect(resolveUserArguments([42])).toEqual({ id: '42', traits: undefined, options: {}, callback: undefined });
  });

  it('lets the id be left out or held by null, and traits by null', () => {
    expect(resolveUserArguments([{ email: 'a@b.c' }, { integrations: {} }])).toEqual({ id: undefined, traits: { email: 'a@b.c' }, options: { integrations: {} }, callback: undefined });
    expect(resolveUserArguments([null, { email: 'a@b.c' }])).toEqual({ id: undefined, traits: { email: 'a@b.c' }, options: {}, callback: undefined });
    expect(resolveUserArguments(['u1', null, { timestamp: 't' }])).toEqual({ id: 'u1', traits: undefined, options: { timestamp: 't' }, callback: undefined });
  });
});

describe('resolveAliasArguments', () => {
  it('reads the new id, the previous id and options', () => {
    expect(resolveAliasArguments(['u1', 'anon', { context: {} }, callback])).toEqual({ userId: 'u1', previousId: 'anon', options: { context: {} }, callback });
    expect(resolveAliasArguments(['u1', { context: {} }])).toEqual({ userId: 'u1', previousId: undefined, options: { context: {} }, callback: undefined });
  });
});

describe('splitOptions', () => {
  it('keeps event fields apart and merges everything else into the context', () => {
    const timestamp = new Date(0);
    expect(splitOptions({ timestamp, messageId: 'm1', anonymousId: 'a1', integrations: { All: false }, traits: { plan: 'pro' }, ip: '0.0.0.0', context: { ip: '1.2.3.4', app: {} }, skipped: undefined })).toEqual({
      fields: { timestamp, messageId: 'm1', anonymousId: 'a1', integrations: { All: false } },
      context: { traits: { plan: 'pro' }, ip: '1.2.3.4', app: {} },
    });
  });
});
