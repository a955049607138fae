/**
 * `@switchyard/client`: the Node server-side SDK of Switchyard, call-compatible with
 * `@segment/analytics-node` 3.x. See README.md.
 */
export {
  Analytics,
  CLIENT_VERSION,
  DEFAULT_CLOSE_TIMEOUT_MS,
  LIBRARY,
  MESSAGE_ID_PREFIX,
  type AliasParams,
  type AnalyticsEvents,
  type CallOutcome,
  type Callback,
  type CommonParams,
  type DeliveryInfo,
  type FlushResult,
  type GroupParams,
  type HttpRequestInfo,
  type HttpResponseInfo,
  type Id,
  type Identity,
  type IdentifyParams,
  type PageParams,
  type RetryInfo,
  type TrackParams,
} from './analytics.js';
export { AnalyticsError, AnalyticsErrorCodes, type AnalyticsErrorCode, type EventProblem } from './errors.js';
export { ANALYTICS_DEFAULTS, resolveSettings, type AnalyticsClock, type AnalyticsSettings, type ResolvedSettings } from './settings.js';
export type { SegmentEvent, CallType } from '../core/event.js';
