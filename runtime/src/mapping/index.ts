/** Mapping v1: compiles a Mapping spec into a function from events to destination payloads. */
export { compileMapping, type CompiledMapping, type MappingResult, type SegmentEvent } from './compile.js';
export { parsePath, readPath, writePath, FORBIDDEN_KEYS, MAX_WRITE_INDEX, type PathSegment } from './path.js';
