import { headers, type NatsConnection, type Payload, type PublishOptions } from '@nats-io/transport-node';
import { parseEventSubject } from '../nats/subjects.js';

/** NATS header naming the Source (`<namespace>/<name>`) of a stored event. */
export const SOURCE_HEADER = 'Sy-Source';

/**
 * Wraps a connection so that every core publish on an event subject carries {@link SOURCE_HEADER}.
 * Why a wrapper: BatchPublisher (nats/publisher.ts) sets only Nats-Msg-Id and Nats-Expected-Stream,
 * and the source identity must travel in headers, not in the event. The value is read back from
 * the subject (`<prefix>.events.<namespace>.<source>.<type>`, encoded losslessly), so the header
 * always agrees with the subject. Every other member is the connection's own.
 */
export function withSourceHeader(nc: NatsConnection, subjectPrefix: string): NatsConnection {
  const publish = (subject: string, payload?: Payload, options?: PublishOptions): void => {
    const parsed = parseEventSubject(subjectPrefix, subject);
    if (!parsed) return nc.publish(subject, payload, options);
    const h = options?.headers ?? headers();
    h.set(SOURCE_HEADER, `${parsed.namespace}/${parsed.source}`);
    return nc.publish(subject, payload, { ...options, headers: h });
  };
  return new Proxy(nc, {
    get(target, property) {
      if (property === 'publish') return publish;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
