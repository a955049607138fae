import {
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos, parseDuration } from '../duration.js';
import type { StreamSettings } from '../settings.js';
import { allDeadLettersSubject, allEventsSubject, allReplaysSubject, maxDeliveriesAdvisorySubject } from './subjects.js';

/**
 * Desired configuration of the three streams Switchyard uses, computed from settings (pure). The
 * events stream holds ingested events (`<prefix>.events.>`) and replayed dead letters
 * (`<prefix>.replay.>`), so a replay gets the same retention and is consumed by the Integration's
 * own consumer.
 */
export function desiredStreams(s: StreamSettings): (Partial<StreamConfig> & { name: string })[] {
  return [
    {
      name: s.events.name,
      description: 'Switchyard: accepted events and replayed dead letters',
      subjects: [allEventsSubject(s.subjectPrefix), allReplaysSubject(s.subjectPrefix)],
      retention: RetentionPolicy.Limits,
      storage: s.events.storage === 'memory' ? StorageType.Memory : StorageType.File,
      max_age: nanos(parseDuration(s.events.maxAge)),
      max_bytes: s.events.maxBytes,
      num_replicas: s.events.replicas,
      duplicate_window: nanos(parseDuration(s.events.duplicateWindow)),
      discard: DiscardPolicy.Old,
    },
    {
      name: s.deadLetter.name,
      description: 'Switchyard: events that could not be delivered, with the reason',
      subjects: [allDeadLettersSubject(s.subjectPrefix)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(parseDuration(s.deadLetter.maxAge)),
      max_bytes: s.deadLetter.maxBytes,
      num_replicas: s.deadLetter.replicas,
      duplicate_window: nanos(parseDuration(s.deadLetter.duplicateWindow)),
      discard: DiscardPolicy.Old,
    },
    {
      name: s.advisories.name,
      description: 'Switchyard: max-deliveries advisories of the events stream, kept so no exhausted event is missed',
      subjects: [maxDeliveriesAdvisorySubject(s.events.name, '*')],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(parseDuration(s.advisories.maxAge)),
      num_replicas: s.events.replicas,
      discard: DiscardPolicy.Old,
    },
  ];
}

/**
 * Creates the streams, or updates the settable fields of existing ones. Idempotent; safe to run
 * from every process at start.
 * @throws JetStreamApiError when the server refuses a configuration.
 */
export async function ensureStreams(jsm: JetStreamManager, settings: StreamSettings): Promise<void> {
  for (const desired of desiredStreams(settings)) {
    const name = desired.name;
    let current;
    try {
      current = await jsm.streams.info(name);
    } catch (e) {
      if (e instanceof JetStreamApiError && e.code === 10059) {
        try {
          await jsm.streams.add(desired);
          continue;
        } catch (addError) {
          // Another process created it meanwhile.
          if (!(addError instanceof JetStreamApiError && addError.code === 10058)) throw addError;
          current = await jsm.streams.info(name);
        }
      } else throw e;
    }
    const { storage: _storage, ...mutable } = desired;
    const changed = Object.entries(mutable).some(([k, v]) => JSON.stringify((current.config as unknown as Record<string, unknown>)[k]) !== JSON.stringify(v));
    if (changed) await jsm.streams.update(name, mutable);
  }
}
