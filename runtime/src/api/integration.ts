import { Type, type Static } from '@sinclair/typebox';
import { DESTINATION_SETTINGS, DESTINATION_TYPES, SETTINGS_FIELDS } from '../destinations/settings.js';
import { Conditions } from './condition.js';
import { API_VERSION, CommonStatus, Duration, LocalObjectReference, ObjectMeta, PositiveDuration, Quantity, StringEnum } from './common.js';

/** Segment spec call types (https://segment.com/docs/connections/spec/). */
export const EVENT_TYPES = ['track', 'page', 'screen', 'identify', 'group', 'alias'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export { DESTINATION_TYPES, SETTINGS_FIELDS, type DestinationTypeName as DestinationType } from '../destinations/settings.js';
export { WebhookSettings } from '../destinations/webhook/settings.js';

/** Default retry schedule: the delay before each redelivery after a retryable failure. */
export const DEFAULT_RETRY_SCHEDULE = ['1s', '5s', '30s', '2m', '10m'];

/** The `spec.destination` object: `type`, and one optional settings field per type (the one named by the type is required). */
const DestinationSpec = Type.Object(
  {
    type: StringEnum(DESTINATION_TYPES, { description: 'Destination type; the settings field named after it (webhook, ga4, metaCapi, tiktok, googleAds, pinterest, snapchat, amplitude) holds its settings.' }),
    ...DESTINATION_SETTINGS,
  },
  {
    description: 'Where mapped events are delivered.',
    additionalProperties: false,
    'x-kubernetes-validations': Object.entries(SETTINGS_FIELDS).map(([type, field]) => ({
      rule: `self.type != '${type}' || has(self.${field})`,
      message: `destination.${field} is required when type is ${type}`,
    })),
  },
);

const RESOURCE_NAMES_RULE = [{ rule: "self.all(k, k in ['cpu', 'memory', 'ephemeral-storage'])", message: 'resource names are cpu, memory and ephemeral-storage' }];

export const IntegrationSpec = Type.Object(
  {
    sourceRefs: Type.Array(LocalObjectReference('A Source whose events this Integration takes.'), {
      description: 'Sources feeding this Integration, in its namespace.',
      minItems: 1,
      maxItems: 64,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
    mappingRef: LocalObjectReference('The Mapping that turns events into the destination payload, in this namespace.'),
    destination: DestinationSpec,
    credentialsSecretRef: Type.Optional(LocalObjectReference('Secret with the destination credentials; what its keys mean is up to the destination type.')),
    events: Type.Object(
      {
        types: Type.Array(StringEnum(EVENT_TYPES), {
          description: 'Event types taken. Default: all.',
          default: [...EVENT_TYPES],
          minItems: 1,
          maxItems: EVENT_TYPES.length,
          uniqueItems: true,
          'x-kubernetes-list-type': 'set',
        }),
        names: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
            description: 'Track event names taken; other track events are skipped. Default: every name. Does not affect other types.',
            minItems: 1,
            maxItems: 1024,
          }),
        ),
        where: Type.Optional(Conditions('Events are taken only when all these conditions hold (e.g. `{path: properties.revenue, gt: 0}`); others are skipped and counted with reason event_filter.')),
      },
      { description: 'Which events this Integration takes.', default: {}, additionalProperties: false },
    ),
    consent: Type.Object(
      {
        categories: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
          description:
            "Consent categories this destination needs, as named in the events' context.consent.categoryPreferences (Segment's consent shape, e.g. Advertising). An event that opts out of one is skipped and counted with reason consent_denied; an event without a preference for one follows its Source's consent.missing setting. Default: none (every event is taken).",
          default: [],
          maxItems: 32,
          uniqueItems: true,
          'x-kubernetes-list-type': 'set',
        }),
      },
      { description: 'Consent this destination needs.', default: {}, additionalProperties: false },
    ),
    delivery: Type.Object(
      {
        batchSize: Type.Optional(
          Type.Integer({
            description: "Most events per send to the destination (at most the vendor's per-request limit). Default: the destination type's (webhook 1, ga4 25, google-ads 200, others 100; see `switchyard destinations list`).",
            minimum: 1,
            maximum: 2000,
          }),
        ),
        concurrency: Type.Integer({ description: 'Destination requests in flight at once, per replica.', default: 8, minimum: 1, maximum: 256 }),
        timeout: PositiveDuration({ description: 'Time allowed for one destination request (more than zero).', default: '10s' }),
        retrySchedule: Type.Array(Duration(), {
          description:
            'Delay before each redelivery after a retryable failure (a Retry-After from the destination wins when longer). Its length is the number of retries; an event still failing after the last one is dead-lettered.',
          default: DEFAULT_RETRY_SCHEDULE,
          minItems: 0,
          maxItems: 20,
        }),
        rateLimit: Type.Optional(
          Type.Object(
            {
              eventsPerSecond: Type.Optional(Type.Number({ description: 'Most events sent per second by this Integration (at least 0.001).', minimum: 0.001, maximum: 1_000_000 })),
              requestsPerSecond: Type.Optional(Type.Number({ description: 'Most destination requests per second by this Integration (at least 0.001).', minimum: 0.001, maximum: 100_000 })),
            },
            {
              description:
                'Per-Integration rate limit. Each of the forwarder.replicas pods takes an equal share (1/replicas of each figure), so the Integration as a whole stays under it. Events wait in the stream meanwhile. Default: none.',
              additionalProperties: false,
            },
          ),
        ),
        circuitBreaker: Type.Object(
          {
            failures: Type.Integer({ description: 'Consecutive failed requests (network errors, timeouts, 5xx; not throttling) that open the circuit. 0 turns the breaker off.', default: 5, minimum: 0, maximum: 1000 }),
            halfOpenAfter: PositiveDuration({ description: 'While open, one probe request is sent after this long; success closes the circuit, failure keeps it open for another period.', default: '30s' }),
          },
          {
            description: 'Circuit breaker per Integration and replica: a destination that keeps failing is probed, not hammered; events wait in the stream (their ack wait kept alive) and spend no retries while it is open.',
            default: {},
            additionalProperties: false,
          },
        ),
        startAt: Type.Optional(
          Type.String({
            format: 'date-time',
            description: 'Backfill: take stored events from this time on when the Integration is first created. Default: only events arriving after creation.',
          }),
        ),
      },
      { description: 'How events are delivered.', default: {}, additionalProperties: false },
    ),
    forwarder: Type.Object(
      {
        replicas: Type.Integer({
          description: 'Forwarder pods. Each pulls from the one shared consumer, so replicas share the load; delivery.concurrency applies per replica.',
          default: 1,
          minimum: 1,
          maximum: 64,
        }),
        resources: Type.Optional(Type.Object(
          {
            requests: Type.Optional(Type.Record(Type.String({ pattern: '^(cpu|memory|ephemeral-storage)$' }), Quantity(), { description: 'Resources reserved per pod, e.g. {cpu: 100m, memory: 128Mi}.', 'x-kubernetes-validations': RESOURCE_NAMES_RULE })),
            limits: Type.Optional(Type.Record(Type.String({ pattern: '^(cpu|memory|ephemeral-storage)$' }), Quantity(), { description: 'Most resources a pod may use, e.g. {memory: 512Mi}.', 'x-kubernetes-validations': RESOURCE_NAMES_RULE })),
          },
          {
            description: "Compute resources of each forwarder pod (https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/). Default: the operator's forwarder.resources setting.",
            additionalProperties: false,
          },
        )),
      },
      { description: 'The forwarder Deployment the operator runs for this Integration.', default: {}, additionalProperties: false },
    ),
    paused: Type.Boolean({ description: 'Stop delivering: the forwarder is scaled to zero and events wait in the stream (the consumer is kept).', default: false }),
  },
  { description: 'One destination fed by one or more Sources.', additionalProperties: false },
);
export type IntegrationSpec = Static<typeof IntegrationSpec>;

/** Integration status: conditions, backlog and the consumer as last observed. */
export const IntegrationStatus = CommonStatus({
  backlog: Type.Optional(Type.Integer({ description: 'Events waiting for delivery, refreshed periodically.', minimum: 0 })),
  consumer: Type.Optional(
    Type.Object(
      {
        name: Type.String({ description: 'The durable JetStream consumer on the events stream.' }),
        ackFloor: Type.Integer({
          description: 'Stream sequence up to which every event was acknowledged, as last observed. A consumer that is lost (deleted by hand, or with the server state) is re-created to resume right after it.',
          minimum: 0,
        }),
        streamCreated: Type.Optional(Type.String({ description: 'Creation time of the events stream ackFloor counts in; a stream created since (lost server state) is read from its start.' })),
      },
      { description: "The Integration's JetStream consumer, as last observed.", additionalProperties: false },
    ),
  ),
});

export const Integration = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('Integration'),
    metadata: ObjectMeta,
    spec: IntegrationSpec,
    status: Type.Optional(IntegrationStatus),
  },
  { additionalProperties: false },
);
export type Integration = Static<typeof Integration>;
