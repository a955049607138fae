import type { Problem } from '../errors.js';
import type { CelInput } from './cel.js';
import { parsePath, readPath, type PathSegment } from './path.js';

/** Where a path is read: at the top level of a Mapping (`event`) or inside `each` (`item`). */
export type Scope = 'event' | 'item';

/**
 * A parsed source path:
 * - `name`: `$name`, the output event name; `type`: `$type`, the event type;
 * - `path`: a path from the root (the event, or the element inside `each`);
 * - `item`: `$item`, the element itself (inside `each` only);
 * - `event`: `$event.<path>`, a path from the event while inside `each`.
 */
export type Source =
  | { kind: 'name' }
  | { kind: 'type' }
  | { kind: 'item' }
  | { kind: 'path'; segments: PathSegment[] }
  | { kind: 'event'; segments: PathSegment[] };

/**
 * Parses a source path once.
 * @returns the source, or undefined with a problem at `where` (bad path, `$name.x`, `$item`
 * outside `each`…).
 */
export function compileSource(text: string, where: string, problems: Problem[], scope: Scope): Source | undefined {
  if (text === '$name') return { kind: 'name' };
  if (text === '$type') return { kind: 'type' };
  if (/^\$(name|type)[.[]/.test(text)) {
    problems.push({ path: where, rule: 'path', message: `${text.slice(0, 5)} takes no sub-path` });
    return undefined;
  }
  const parsed = parsePath(text);
  if (typeof parsed === 'string') {
    problems.push({ path: where, rule: 'path', message: parsed });
    return undefined;
  }
  const head = parsed[0]!.key;
  if (head !== undefined && head.startsWith('$') && head !== '$item' && head !== '$event') {
    problems.push({ path: where, rule: 'path', message: `unknown source ${head}: the sources starting with $ are $name, $type, and inside each $item and $event.<path> (a first key starting with $ is reserved for them)` });
    return undefined;
  }
  if (head === '$item' || head === '$event') {
    if (scope !== 'item') {
      problems.push({ path: where, rule: 'path', message: `${head} is only available inside each` });
      return undefined;
    }
    if (head === '$item') {
      if (parsed.length > 1) {
        problems.push({ path: where, rule: 'path', message: '$item takes no sub-path: paths inside each are already relative to the element' });
        return undefined;
      }
      return { kind: 'item' };
    }
    if (parsed.length === 1) {
      problems.push({ path: where, rule: 'path', message: '$event needs a sub-path, e.g. $event.properties.currency' });
      return undefined;
    }
    return { kind: 'event', segments: parsed.slice(1) };
  }
  return { kind: 'path', segments: parsed };
}

/** Reads a source: `root` is the event, or the element inside `each`; `input` gives the event, `$name` and `$type`. */
export function readSource(source: Source, root: unknown, input: CelInput): unknown {
  switch (source.kind) {
    case 'path':
      return readPath(root, source.segments);
    case 'name':
      return input.name;
    case 'type':
      return input.type;
    case 'item':
      return root;
    default:
      return readPath(input.event, source.segments);
  }
}
