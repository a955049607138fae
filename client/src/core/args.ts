/**
 * Argument juggling of the analytics.js calls (Segment analytics-next `resolveArguments`,
 * `resolvePageArguments`, `resolveUserArguments`, `resolveAliasArguments`): optional leading
 * arguments may be left out, a callback may come at any position after the required ones.
 */

/** A plain object argument. */
export type Fields = Record<string, unknown>;
/** A call's callback, as the caller passed it. */
export type CallCallback = (...args: unknown[]) => unknown;

/** What every call ends with: its options and callback. */
export interface ResolvedTail {
  options: Fields;
  callback: CallCallback | undefined;
}

/** Whether `value` is a plain object (not null, not an array, not a Date). */
export function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function isId(value: unknown): value is string | number {
  return typeof value === 'string' || typeof value === 'number';
}

/** The first function among `args`, and the arguments before it. */
function splitCallback(args: readonly unknown[]): [unknown[], CallCallback | undefined] {
  const at = args.findIndex((arg) => typeof arg === 'function');
  return at < 0 ? [[...args], undefined] : [args.slice(0, at), args[at] as CallCallback];
}

/** `track(event, properties?, options?, callback?)`; `track({event, properties…}, options?)` too. */
export function resolveTrackArguments(args: readonly unknown[]): ResolvedTail & { event: string; properties: Fields } {
  const [values, callback] = splitCallback(args);
  if (isFields(values[0])) {
    const call = values[0];
    return { event: String(call.event ?? ''), properties: isFields(call.properties) ? call.properties : {}, options: isFields(values[1]) ? values[1] : {}, callback };
  }
  return { event: values[0] == null ? '' : String(values[0]), properties: isFields(values[1]) ? values[1] : {}, options: isFields(values[2]) ? values[2] : {}, callback };
}

/**
 * `page(category?, name?, properties?, options?, callback?)` (and `screen`): two leading strings
 * are category and name, one is the name; then properties and options, the plain objects in order.
 */
export function resolvePageArguments(args: readonly unknown[]): ResolvedTail & { category: string | undefined; name: string | undefined; properties: Fields } {
  const [values, callback] = splitCallback(args);
  const strings = values.filter((arg): arg is string => typeof arg === 'string');
  const objects = values.filter(isFields);
  const two = strings.length >= 2;
  return { category: two ? strings[0] : undefined, name: two ? strings[1] : strings[0], properties: objects[0] ?? {}, options: objects[1] ?? {}, callback };
}

/**
 * `identify(userId?, traits?, options?, callback?)` (and `group(groupId?, …)`): an id is a string or
 * a number (made a string); a leading null or undefined holds its place; then traits and options by
 * position (null or undefined: none).
 */
export function resolveUserArguments(args: readonly unknown[]): ResolvedTail & { id: string | undefined; traits: Fields | undefined } {
  const [values, callback] = splitCallback(args);
  let id: string | undefined;
  if (isId(values[0])) id = String(values.shift());
  else if (values[0] == null && values.length > 0) values.shift();
  return { id, traits: isFields(values[0]) ? values[0] : undefined, options: isFields(values[1]) ? values[1] : {}, callback };
}

/** `alias(userId, previousId?, options?, callback?)`. */
export function resolveAliasArguments(args: readonly unknown[]): ResolvedTail & { userId: string | undefined; previousId: string | undefined } {
  const [values, callback] = splitCallback(args);
  const userId = isId(values[0]) ? String(values[0]) : undefined;
  const previousId = isId(values[1]) ? String(values[1]) : undefined;
  return { userId, previousId, options: values.slice(1).find(isFields) ?? {}, callback };
}

/** Options of a call that set event fields; every other option goes into `context`. */
const EVENT_OPTIONS = ['timestamp', 'messageId', 'anonymousId', 'integrations'] as const;

/**
 * Splits a call's options the way analytics.js does: `timestamp`, `messageId`, `anonymousId` and
 * `integrations` become event fields; `context` and every other key (`traits`, `ip`, `locale`…)
 * are merged into the event's context (`context` keys win over loose ones).
 */
export function splitOptions(options: Fields): { fields: Fields; context: Fields } {
  const fields: Fields = {};
  const context: Fields = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || key === 'context') continue;
    if ((EVENT_OPTIONS as readonly string[]).includes(key)) fields[key] = value;
    else context[key] = value;
  }
  return { fields, context: isFields(options.context) ? { ...context, ...options.context } : context };
}
