import type { FieldRule, MappingSpec } from '../api/index.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { compileMapping, type SegmentEvent } from '../mapping/index.js';

/** A track event named `event` with `properties`, messageId `m1` and userId `u1`; `extra` overrides. */
export const track = (event: string, properties: Record<string, unknown> = {}, extra: SegmentEvent = {}): SegmentEvent => ({
  type: 'track',
  event,
  messageId: 'm1',
  userId: 'u1',
  properties,
  ...extra,
});

/** Applies `fields` as the default part to `event` and returns the payload. @throws Error when the event is not mapped. */
export function payloadOf(fields: FieldRule[], event: SegmentEvent): Record<string, unknown> {
  const result = compileMapping({ default: { fields } }).apply(event);
  if (!result.ok) throw new Error(`not mapped: ${JSON.stringify(result)}`);
  return result.payload;
}

/** The compile problems of `spec`, asserting they come as one INVALID_MAPPING error. @throws Error when it compiles. */
export function problemsOf(spec: unknown): Problem[] {
  try {
    compileMapping(spec as MappingSpec);
  } catch (e) {
    expect(e).toBeInstanceOf(SwitchyardError);
    expect((e as SwitchyardError).code).toBe(ErrorCodes.INVALID_MAPPING);
    return (e as SwitchyardError).details as Problem[];
  }
  throw new Error('compiled without error');
}
