/** Mapping v2: compiles a Mapping spec into a function from events to destination payloads. */
export {
  compileMapping,
  checkMappingOutput,
  escapePointer,
  type CompiledMapping,
  type CompileOptions,
  type DropReason,
  type Explanation,
  type FieldExplanation,
  type MappingFailure,
  type MappingResult,
  type OutputSchemaTarget,
  type PartShape,
  type SegmentEvent,
} from './compile.js';
export { compileConditions, compileCondition, type CompiledConditions, type ConditionFn } from './conditions.js';
export { compileOutputValidator, trustOutputSchema, type OutputValidator, type OutputViolation } from './output-schema.js';
export { parsePath, readPath, writePath, FORBIDDEN_KEYS, MAX_WRITE_INDEX, type PathSegment } from './path.js';
