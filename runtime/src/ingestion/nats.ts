/** NATS header naming the Source (`<namespace>/<name>`) of a stored event; the event itself carries nothing foreign. */
export const SOURCE_HEADER = 'Sy-Source';

/**
 * NATS header set to `deny` on events of a Source whose `consent.missing` is deny (opt-in regimes):
 * the forwarder then skips them for Integrations needing a consent category the event states no
 * preference for. Absent means allow. Set at ingestion, so an event keeps the policy it was collected under.
 */
export const CONSENT_MISSING_HEADER = 'Sy-Consent-Missing';
