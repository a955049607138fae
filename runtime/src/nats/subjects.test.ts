import { desiredStreams, ensureStreams } from './streams.js';
import { isolatedStreamSettings, natsFixture } from '../test-support/nats.js';
import { streamSettings } from '../settings.js';
import { eventSubject, integrationReplayFilter, parseDeliverySubject, replayDedupId, replaySubject } from './subjects.js';

describe('replay subjects', () => {
  it('encodes dotted names as one token each, like event subjects', () => {
    expect(replaySubject('sy', 'shop', 'meta.eu', 'web.eu', 'track')).toBe('sy.replay.shop.meta_eu.web_eu.track');
    expect(integrationReplayFilter('sy', 'shop', 'meta.eu')).toBe('sy.replay.shop.meta_eu.>');
    expect(replayDedupId('shop', 'meta.eu', 42)).toBe('replay:shop/meta.eu/42');
  });

  it('parses event and replay subjects back, and nothing else', () => {
    expect(parseDeliverySubject('sy', eventSubject('sy', 'shop', 'web.eu', 'page'))).toEqual({ namespace: 'shop', source: 'web.eu', type: 'page', replay: false });
    expect(parseDeliverySubject('sy', replaySubject('sy', 'shop', 'meta.eu', 'web.eu', 'track'))).toEqual({ namespace: 'shop', integration: 'meta.eu', source: 'web.eu', type: 'track', replay: true });
    for (const other of ['sy.deadletter.shop.meta', 'sy.replay.shop.meta.web', 'sy.replay.shop.meta.web.track.extra', 'sy.replay.shop..web.track', 'xx.replay.shop.meta.web.track', 'sy.events.shop.web']) {
      expect(parseDeliverySubject('sy', other)).toBeUndefined();
    }
  });

  it('puts replays in the events stream', () => {
    const [events] = desiredStreams(streamSettings({ subjectPrefix: 'sy' }));
    expect(events!.subjects).toEqual(['sy.events.>', 'sy.replay.>']);
  });
});

describe('ensureStreams', () => {
  it('adds the replay subjects to an events stream created before them', async () => {
    const fx = await natsFixture();
    try {
      const streams = isolatedStreamSettings();
      await fx.jsm.streams.add({ name: streams.events.name, subjects: [`${streams.subjectPrefix}.events.>`] });
      await ensureStreams(fx.jsm, streams);
      expect((await fx.jsm.streams.info(streams.events.name)).config.subjects).toEqual([`${streams.subjectPrefix}.events.>`, `${streams.subjectPrefix}.replay.>`]);
      for (const name of [streams.events.name, streams.deadLetter.name, streams.advisories.name]) await fx.jsm.streams.delete(name);
    } finally {
      await fx.cleanup();
    }
  });
});
