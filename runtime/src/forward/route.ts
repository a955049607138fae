import type { Integration, Mapping } from '../api/index.js';
import { DESTINATIONS } from '../destinations/index.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { compileConditions, compileMapping, compileOutputValidator, type CompiledConditions, type CompiledMapping, type OutputValidator, type SegmentEvent } from '../mapping/index.js';

/**
 * Why an Integration does not take an event (acknowledged and counted, never delivered):
 * - `event_type`: its type is not in `events.types`; `event_name`: a track event whose name is
 *   not in `events.names`; `event_filter`: an `events.where` condition does not hold;
 * - `consent_denied`: it opts out of a category in `consent.categories`, or states no preference
 *   for one while its Source's `consent.missing` is deny.
 */
export type SkipReason = 'event_type' | 'event_name' | 'event_filter' | 'consent_denied';

/** What the Source's consent policy says of events without a preference (the Sy-Consent-Missing header). */
export type ConsentMissing = 'allow' | 'deny';

/**
 * Whether an event's consent allows a destination needing `categories`. The event's preferences
 * are Segment's `context.consent.categoryPreferences` (category → boolean,
 * https://segment.com/docs/privacy/consent-management/consent-in-segment-connections/). Category
 * names match ignoring case, so an opt-out spelled `advertising` still denies `Advertising`; when
 * several spellings are present, any false denies. A category set to false denies; one missing (or
 * not a boolean) denies only when `missing` is deny.
 * @returns true when every category is allowed.
 */
export function consentAllows(event: SegmentEvent, categories: readonly string[], missing: ConsentMissing): boolean {
  if (categories.length === 0) return true;
  const context = event.context as { consent?: { categoryPreferences?: unknown } } | undefined;
  const prefs = context?.consent?.categoryPreferences;
  const entries = prefs !== null && typeof prefs === 'object' && !Array.isArray(prefs) ? Object.entries(prefs as Record<string, unknown>) : [];
  for (const category of categories) {
    const wanted = category.toLowerCase();
    let granted = false;
    for (const [key, v] of entries) {
      if (key.toLowerCase() !== wanted) continue;
      if (v === false) return false;
      if (v === true) granted = true;
    }
    if (!granted && missing === 'deny') return false;
  }
  return true;
}

/**
 * Compiles a Mapping resource on its own: its rules, and, when it declares `destinationType`,
 * its output against that type's fixed output schema (if the type has one).
 * @throws SwitchyardError INVALID_MAPPING with problems whose paths are JSON pointers into the spec.
 */
export function compileMappingResource(mapping: Mapping): CompiledMapping {
  const type = mapping.spec.destinationType;
  const destination = type && Object.hasOwn(DESTINATIONS, type) ? DESTINATIONS[type] : undefined;
  const schema = destination?.outputSchema?.(undefined);
  return compileMapping(mapping.spec, schema ? { outputSchema: { schema, label: `destination ${type}` } } : {});
}

/** An Integration's routing, compiled once: which events it takes, its Mapping, and the check of each payload. */
export interface IntegrationRoute {
  readonly mapping: CompiledMapping;
  /** Why the Integration does not take this event, or undefined when it does. */
  skip(event: SegmentEvent, consentMissing: ConsentMissing): SkipReason | undefined;
  /** Checks one mapped payload against the destination's output schema; undefined when the destination has none. */
  readonly validateOutput: OutputValidator | undefined;
  /** The destination's output schema, when it has one. */
  readonly outputSchema: object | undefined;
}

/**
 * Compiles an Integration's routing: `events` (types, names, where), `consent.categories`, and its
 * Mapping, checked against the destination's output schema (DestinationType.outputSchema) when
 * there is one.
 * @throws SwitchyardError INVALID_RESOURCE when the Mapping is written for another destination type
 * or `events.where` is invalid (details: problems with pointers into the Integration);
 * INVALID_MAPPING when the Mapping does not compile or can never satisfy the output schema.
 */
export function compileIntegrationRoute(integration: Integration, mapping: Mapping): IntegrationRoute {
  const label = `${integration.metadata.namespace ?? 'default'}/${integration.metadata.name}`;
  const type = integration.spec.destination.type;
  if (mapping.spec.destinationType && mapping.spec.destinationType !== type) {
    throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${label}: Mapping ${mapping.metadata.name} is written for ${mapping.spec.destinationType}, not ${type}`);
  }
  const destination = Object.hasOwn(DESTINATIONS, type) ? DESTINATIONS[type] : undefined;
  const outputSchema = destination?.outputSchema?.(integration);
  const compiled = compileMapping(mapping.spec, outputSchema ? { outputSchema: { schema: outputSchema, label: `Integration ${label} (${type})` } } : {});
  const events = integration.spec.events ?? { types: undefined };
  const types = events.types ? new Set<string>(events.types) : undefined;
  const names = events.names ? new Set(events.names) : undefined;
  let where: CompiledConditions | undefined;
  if (events.where && events.where.length > 0) {
    const problems: Problem[] = [];
    where = compileConditions(events.where, '/spec/events/where', problems, 'event');
    if (!where) {
      throw new SwitchyardError(ErrorCodes.INVALID_RESOURCE, `Integration ${label}: invalid events.where:\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`, { details: problems });
    }
  }
  const categories = integration.spec.consent?.categories ?? [];
  const validateOutput = outputSchema ? compileOutputValidator(outputSchema) : undefined;
  return Object.freeze({
    mapping: compiled,
    outputSchema,
    validateOutput,
    skip(event: SegmentEvent, consentMissing: ConsentMissing): SkipReason | undefined {
      const eventType = typeof event.type === 'string' ? event.type : '';
      if (types && !types.has(eventType)) return 'event_type';
      if (eventType === 'track' && names && !names.has(String(event.event))) return 'event_name';
      if (!consentAllows(event, categories, consentMissing)) return 'consent_denied';
      if (where) {
        const name = eventType === 'track' ? (typeof event.event === 'string' ? event.event : 'track') : eventType;
        if (!where.test(event, { event, name, type: eventType })) return 'event_filter';
      }
      return undefined;
    },
  });
}
