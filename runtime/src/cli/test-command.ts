import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import diff, { type Difference } from 'microdiff';
import { parseDocument } from 'yaml';
import { Type, type Static } from '@sinclair/typebox';
import { GROUP, TEST_FILE, expandPaths, readTextFile, StringEnum, formatResourceProblems, loadResources, objectKey } from '../api/index.js';
import type { LoadedResource, ResourceProblem } from '../api/index.js';
import { compileValidator, createAjv } from '../api/validate.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import type { ConsentMissing } from '../forward/route.js';
import type { SegmentEvent } from '../mapping/index.js';
import { compileRunner, describeOutcome, formatExplanation, parseEvents, selectTarget, type EventOutcome, type MappingRunner } from './map.js';

// ---- the test file format ------------------------------------------------------------------

const Name = Type.String({ minLength: 1, maxLength: 253, description: 'name, or namespace/name, of a resource among the loaded files' });

/**
 * What a case expects: exactly one outcome, the way the forwarder would treat the event. `output`:
 * mapped to exactly this name and payload; `contains`: mapped, and the name (when given) and payload
 * hold at least these values (objects key by key, arrays element by element with the same length);
 * `dropped`/`skipped`: with this reason; `failed`: the mapping fails (rule and field compared
 * exactly, message as a substring); `invalid`: the payload fails the output schema (with a violation
 * at `path` when given).
 */
export const Expectation = Type.Object(
  {
    output: Type.Optional(
      Type.Object(
        { name: Type.String(), payload: Type.Record(Type.String(), Type.Unknown()) },
        { additionalProperties: false, description: 'The event is mapped to exactly this name and payload (deep equality).' },
      ),
    ),
    contains: Type.Optional(
      Type.Object(
        { name: Type.Optional(Type.String()), payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
        { additionalProperties: false, description: 'The event is mapped; the payload holds at least these keys (arrays compared element by element, same length).' },
      ),
    ),
    dropped: Type.Optional(StringEnum(['no_matching_rule', 'filtered'] as const, { description: 'The Mapping drops the event with this reason.' })),
    skipped: Type.Optional(
      StringEnum(['event_type', 'event_name', 'event_filter', 'consent_denied'] as const, { description: 'The Integration does not take the event, for this reason.' }),
    ),
    failed: Type.Optional(
      Type.Object(
        { rule: Type.Optional(Type.String()), field: Type.Optional(Type.String()), message: Type.Optional(Type.String()) },
        { additionalProperties: false, description: 'The mapping fails (rule: exact JSON pointer, field: exact output path, message: a substring).' },
      ),
    ),
    invalid: Type.Optional(
      Type.Object({ path: Type.Optional(Type.String()) }, { additionalProperties: false, description: 'The payload fails the output schema (at this path, when given).' }),
    ),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1 },
);
export type Expectation = Static<typeof Expectation>;

const caseFields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  mapping: Type.Optional(Name),
  integration: Type.Optional(Name),
  event: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'The event, inline.' })),
  eventFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the event (JSON or YAML), relative to the test file.' })),
  consentMissing: Type.Optional(StringEnum(['allow', 'deny'] as const, { description: "The Source's consent.missing for this case. Default: allow." })),
  expect: Expectation,
};

/** A file holding one case. */
export const TestCaseFile = Type.Object(caseFields, { additionalProperties: false });
/** A file holding several cases; its `mapping` and `integration` are defaults for them. */
export const TestSuiteFile = Type.Object(
  {
    mapping: Type.Optional(Name),
    integration: Type.Optional(Name),
    cases: Type.Array(Type.Object(caseFields, { additionalProperties: false }), { minItems: 1 }),
  },
  { additionalProperties: false },
);
type CaseInput = Static<typeof TestCaseFile>;

/** One case, ready to run. */
export interface TestCase {
  /** Display name: the case's `name`, else `<file name> #<n>`. */
  name: string;
  /** JSON pointer of the case in its file (`` for a one-case file, `/cases/<i>`). */
  pointer: string;
  /** Path of the case inside the document, for rewriting it. */
  location: (string | number)[];
  mapping: string | undefined;
  integration: string | undefined;
  event: SegmentEvent | undefined;
  /** Absolute path of the event file. */
  eventFile: string | undefined;
  consentMissing: ConsentMissing;
  expect: Expectation;
}

/** A parsed test file: its cases, or the problems that make it invalid. */
export interface TestFile {
  file: string;
  cases: TestCase[];
  problems: Problem[];
}

let validators: { single: ReturnType<typeof compileValidator>; suite: ReturnType<typeof compileValidator> } | undefined;

const ONE_EXPECTATION = `expect takes exactly one of ${Object.keys(Expectation.properties).join(', ')}`;

/**
 * Parses and validates a test file (YAML or JSON): one case, or `cases: [...]` with default
 * `mapping` and `integration`. Validated with TypeBox schemas ({@link TestCaseFile},
 * {@link TestSuiteFile}) and the project's ajv; each case needs exactly one of `event` and `eventFile`.
 * @returns the cases, or problems whose paths are JSON pointers into the file.
 */
export function parseTestFile(text: string, file: string): TestFile {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) return { file, cases: [], problems: doc.errors.map((e) => ({ path: '/', rule: 'yaml', message: e.message })) };
  const value: unknown = doc.toJS();
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { file, cases: [], problems: [{ path: '/', rule: 'type', message: 'a test file holds one case (an object with expect) or cases: [...]' }] };
  }
  validators ??= { single: compileValidator(TestCaseFile, createAjv({ useDefaults: false })), suite: compileValidator(TestSuiteFile, createAjv({ useDefaults: false })) };
  const suite = Object.hasOwn(value, 'cases');
  const result = (suite ? validators.suite : validators.single)(value);
  if (!result.ok) {
    const problems = result.problems.map((p) =>
      /(^|\/)expect$/.test(p.path) && (p.rule === 'minProperties' || p.rule === 'maxProperties') ? { ...p, message: ONE_EXPECTATION } : p,
    );
    return { file, cases: [], problems };
  }
  const defaults = suite ? (value as Static<typeof TestSuiteFile>) : undefined;
  const inputs: CaseInput[] = defaults ? defaults.cases : [value as CaseInput];
  const problems: Problem[] = [];
  const base = path.basename(file);
  const cases = inputs.map((c, i): TestCase => {
    const pointer = defaults ? `/cases/${i}` : '';
    if ((c.event === undefined) === (c.eventFile === undefined)) problems.push({ path: pointer || '/', rule: 'oneOf', message: 'a case needs exactly one of event and eventFile' });
    return {
      name: c.name ?? `${base} #${i + 1}`,
      pointer,
      location: defaults ? ['cases', i] : [],
      mapping: c.mapping ?? defaults?.mapping,
      integration: c.integration ?? defaults?.integration,
      event: c.event as SegmentEvent | undefined,
      eventFile: c.eventFile !== undefined ? path.resolve(path.dirname(file), c.eventFile) : undefined,
      consentMissing: c.consentMissing ?? 'allow',
      expect: c.expect,
    };
  });
  return problems.length > 0 ? { file, cases: [], problems } : { file, cases, problems: [] };
}

// ---- finding and loading files -------------------------------------------------------------

/**
 * Lists the YAML and JSON files under `paths`, recursing into folders but not into
 * `node_modules` or folders whose name starts with a dot. A file given by name is listed whatever
 * its extension.
 * @returns the paths (the given path joined with the names found), sorted, without duplicates.
 * @throws SwitchyardError BAD_FILE when a path cannot be read.
 */
export async function findFiles(paths: readonly string[]): Promise<string[]> {
  const files = await expandPaths([...paths], { recursive: true, testFiles: true });
  const byPath = new Map(files.map((f) => [path.resolve(f), f]));
  return [...byPath.values()].sort();
}

const OUR_KINDS = new Set(['Source', 'Integration', 'Mapping']);
const MAY_BE_OURS = new RegExp(`${GROUP.replaceAll('.', '\\.')}|\\bkind["']?\\s*:\\s*["']?(${[...OUR_KINDS].join('|')})\\b`);

/**
 * Reads the Switchyard resources among `files` with {@link loadResources}, leaving alone the files
 * that cannot hold one (package.json, event fixtures, templates): only files mentioning
 * switchyard.io or a `kind` of ours are loaded, so their problems are real ones.
 * @returns the valid resources and the problems of the others (schema, duplicates, syntax).
 */
export async function loadTestResources(files: readonly string[]): Promise<{ resources: LoadedResource[]; problems: ResourceProblem[] }> {
  const candidates: string[] = [];
  for (const file of files) {
    const text = await readTextFile(file);
    if (MAY_BE_OURS.test(text)) candidates.push(file);
  }
  if (candidates.length === 0) return { resources: [], problems: [] };
  const { resources, problems } = await loadResources(candidates);
  return { resources, problems };
}

// ---- comparing -----------------------------------------------------------------------------

const KEY = /^[A-Za-z0-9_$@-]+$/;

/** A diff path as a Mapping path: `payload.events[0]["a.b"]`. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (KEY.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out || '(root)';
}

function show(v: unknown): string {
  if (v === undefined) return '(missing)';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

const MAX_DIFF_LINES = 20;

function diffLines(differences: readonly Difference[]): string[] {
  const lines = differences.slice(0, MAX_DIFF_LINES).map((d) => {
    const at = formatPath(d.path);
    if (d.type === 'CHANGE') return `${at}: expected ${show(d.oldValue)}, got ${show(d.value)}`;
    if (d.type === 'REMOVE') return `${at}: expected ${show(d.oldValue)}, got (missing)`;
    return `${at}: expected (missing), got ${show(d.value)}`;
  });
  if (differences.length > MAX_DIFF_LINES) lines.push(`… and ${differences.length - MAX_DIFF_LINES} more difference(s)`);
  return lines;
}

/**
 * Compares an outcome with an expectation.
 * @returns lines saying what differs (empty when the case passes).
 */
export function compareOutcome(expect: Expectation, outcome: EventOutcome, runner: Pick<MappingRunner, 'integration'>): string[] {
  const instead = (what: string) => [`expected ${what}, but ${describeOutcome(outcome, runner)}`];
  if (expect.output) {
    if (outcome.kind !== 'output') return instead('output');
    return diffLines(diff(expect.output, { name: outcome.name, payload: outcome.payload }));
  }
  if (expect.contains) {
    if (outcome.kind !== 'output') return instead('output');
    const wanted: Record<string, unknown> = {};
    if (expect.contains.name !== undefined) wanted.name = expect.contains.name;
    if (expect.contains.payload !== undefined) wanted.payload = expect.contains.payload;
    // Extra keys of objects are fine; extra array elements (numeric paths) are not.
    const differences = diff(wanted, { name: outcome.name, payload: outcome.payload }).filter((d) => d.type !== 'CREATE' || typeof d.path[d.path.length - 1] === 'number');
    return diffLines(differences);
  }
  if (expect.dropped !== undefined) {
    return outcome.kind === 'dropped' && outcome.reason === expect.dropped ? [] : instead(`dropped: ${expect.dropped}`);
  }
  if (expect.skipped !== undefined) {
    return outcome.kind === 'skipped' && outcome.reason === expect.skipped ? [] : instead(`skipped: ${expect.skipped}`);
  }
  if (expect.failed) {
    if (outcome.kind !== 'failed') return instead('the mapping to fail');
    const f = outcome.failure;
    const lines: string[] = [];
    if (expect.failed.rule !== undefined && f.rule !== expect.failed.rule) lines.push(`failed.rule: expected ${show(expect.failed.rule)}, got ${show(f.rule)}`);
    if (expect.failed.field !== undefined && f.field !== expect.failed.field) lines.push(`failed.field: expected ${show(expect.failed.field)}, got ${show(f.field)}`);
    if (expect.failed.message !== undefined && !f.message.includes(expect.failed.message)) lines.push(`failed.message: expected to contain ${show(expect.failed.message)}, got ${show(f.message)}`);
    return lines;
  }
  if (expect.invalid) {
    if (outcome.kind !== 'invalid') return instead('invalid output');
    const want = expect.invalid.path;
    if (want === undefined || outcome.violations.some((v) => v.path === want)) return [];
    return [`invalid.path: expected a violation at ${show(want)}, got ${outcome.violations.map((v) => show(v.path)).join(', ')}`];
  }
  return [];
}

// ---- running -------------------------------------------------------------------------------

/** Results of {@link runTests}. */
export interface TestRunSummary {
  passed: number;
  failed: number;
  rewritten: number;
  files: number;
}

interface Rewrite {
  location: (string | number)[];
  output: { name: string; payload: Record<string, unknown> };
}

/** Sets `value` at `location` in a parsed JSON value. */
function setIn(root: unknown, location: readonly (string | number)[], value: unknown): void {
  let cur = root as Record<string | number, unknown>;
  for (const key of location.slice(0, -1)) cur = cur[key] as Record<string | number, unknown>;
  cur[location[location.length - 1]!] = value;
}

/** Rewrites `expect.output` of some cases of a file: YAML through the Document API (comments and layout of the rest survive), JSON re-indented by 2. */
async function rewriteFile(file: string, rewrites: readonly Rewrite[]): Promise<void> {
  const text = await readFile(file, 'utf8');
  if (file.endsWith('.json')) {
    const value: unknown = JSON.parse(text);
    for (const r of rewrites) setIn(value, [...r.location, 'expect', 'output'], r.output);
    await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const doc = parseDocument(text);
  for (const r of rewrites) doc.setIn([...r.location, 'expect', 'output'], doc.createNode(r.output));
  await writeFile(file, doc.toString({ lineWidth: 0 }));
}

/**
 * Runs every test file under `paths` (see {@link findFiles}) against the Mappings and
 * Integrations among the other files there, printing one line per case and a summary.
 * @returns the counts, or undefined when the run could not start (no test file, resource problems;
 * already reported through `err`).
 */
export async function runTests(
  paths: readonly string[],
  options: { update: boolean },
  out: (s: string) => void,
  err: (s: string) => void,
): Promise<TestRunSummary | undefined> {
  const files = await findFiles(paths);
  const testFiles = files.filter((f) => TEST_FILE.test(path.basename(f)));
  if (testFiles.length === 0) {
    err(`no test files found in ${paths.join(', ')} (files ending in .test.yaml, .test.yml or .test.json)`);
    return undefined;
  }
  const parsed: TestFile[] = [];
  for (const file of testFiles) {
    const text = await readTextFile(file);
    parsed.push(parseTestFile(text, file));
  }
  // Event files referenced by cases are not resources.
  const eventFiles = new Set(parsed.flatMap((t) => t.cases.flatMap((c) => (c.eventFile ? [c.eventFile] : []))));
  const resourceFiles = files.filter((f) => !TEST_FILE.test(path.basename(f)) && !eventFiles.has(path.resolve(f)));
  const { resources, problems } = await loadTestResources(resourceFiles);
  if (problems.length > 0) {
    err(formatResourceProblems(problems));
    err(`${problems.length} problem(s) in the resources under ${paths.join(', ')}; no test ran`);
    return undefined;
  }
  if (!resources.some((r) => r.resource.kind === 'Mapping')) {
    err(`no Mapping found under ${paths.join(', ')}: give the folder or file holding the Mappings too (e.g. switchyard test mappings/, or switchyard test tests/ mapping.yaml); no test ran`);
    return undefined;
  }

  const runners = new Map<string, ReturnType<typeof compileRunner>>();
  const summary: TestRunSummary = { passed: 0, failed: 0, rewritten: 0, files: testFiles.length };
  // Repeated under the summary, so a long report still ends with what to look at.
  const failedTitles: string[] = [];
  for (const testFile of parsed) {
    const file = testFile.file;
    if (testFile.problems.length > 0) {
      summary.failed++;
      failedTitles.push(`${file}: invalid test file`);
      out(`✗ ${file}: invalid test file`);
      for (const p of testFile.problems) out(`    ${p.path}: ${p.message} (${p.rule})`);
      continue;
    }
    const rewrites: Rewrite[] = [];
    for (const testCase of testFile.cases) {
      const title = `${file} › ${testCase.name}`;
      const result = await runCase(testCase, resources, runners);
      if (result.lines.length === 0) {
        summary.passed++;
        out(`✓ ${title}`);
        continue;
      }
      const actual = result.outcome;
      if (options.update && testCase.expect.output && actual?.kind === 'output') {
        rewrites.push({ location: testCase.location, output: { name: actual.name, payload: actual.payload } });
        summary.rewritten++;
        out(`✎ ${title}: expect.output rewritten`);
        for (const line of result.lines) out(`    ${line}`);
        continue;
      }
      summary.failed++;
      failedTitles.push(title);
      out(`✗ ${title}`);
      for (const line of result.lines) out(`    ${line}`);
      if (result.explain) {
        out(`    account (${result.explain.label}):`);
        for (const line of result.explain.lines) out(`      ${line}`);
      }
    }
    if (rewrites.length > 0) await rewriteFile(file, rewrites);
  }
  if (failedTitles.length > 0 && summary.passed + summary.failed > 1) {
    out('failed:');
    for (const t of failedTitles) out(`  ✗ ${t}`);
  }
  out(`${summary.passed} passed, ${summary.failed} failed${options.update ? `, ${summary.rewritten} rewritten` : ''} (${summary.files} file${summary.files === 1 ? '' : 's'})`);
  return summary;
}

/** Runs one case. @returns what differs (empty lines: passed), the outcome, and the explain account for failures. */
async function runCase(
  testCase: TestCase,
  resources: readonly LoadedResource[],
  runners: Map<string, ReturnType<typeof compileRunner>>,
): Promise<{ lines: string[]; outcome?: EventOutcome; explain?: { label: string; lines: string[] } }> {
  let event = testCase.event;
  if (testCase.eventFile) {
    let events: SegmentEvent[];
    try {
      events = parseEvents(await readFile(testCase.eventFile, 'utf8'), testCase.eventFile);
    } catch (e) {
      return { lines: [`${testCase.pointer}/eventFile: ${(e as Error).message}`] };
    }
    if (events.length !== 1) return { lines: [`${testCase.pointer}/eventFile: ${testCase.eventFile} holds ${events.length} events; a case takes one`] };
    event = events[0];
  }
  let target;
  try {
    target = selectTarget(resources, { mapping: testCase.mapping, integration: testCase.integration }, { mappingOption: 'mapping: in the test file' });
  } catch (e) {
    if (!(e instanceof SwitchyardError)) throw e;
    return { lines: [e.message] };
  }
  const key = `${objectKey(target.mapping.resource)}|${target.integration ? objectKey(target.integration.resource) : ''}`;
  let compiled = runners.get(key);
  if (!compiled) runners.set(key, (compiled = compileRunner(target)));
  if (!compiled.runner) return { lines: ['the Mapping does not compile:', ...formatResourceProblems(compiled.problems).split('\n').map((l) => `  ${l}`)] };
  const runner = compiled.runner;
  if (testCase.expect.skipped !== undefined && !runner.integration) {
    return { lines: ['expect.skipped needs an integration: the Integration decides which events it skips'] };
  }
  if (testCase.expect.invalid && !runner.checksOutput) {
    return { lines: [`expect.invalid needs an output schema, but ${runner.label} has none (name an integration whose destination has one, or a Mapping destinationType with one)`] };
  }
  const { outcome } = runner.run(event!, testCase.consentMissing);
  const lines = compareOutcome(testCase.expect, outcome, runner);
  if (lines.length === 0) return { lines, outcome };
  const explained = runner.run(event!, testCase.consentMissing, { explain: true });
  return { lines, outcome, explain: { label: runner.label, lines: formatExplanation(explained.outcome, explained.explain, runner) } };
}

/**
 * `switchyard test [paths…]` (default `.`): runs Mapping test cases offline. Test files are
 * `*.test.yaml|yml|json` (one case, or `cases: [...]`; format: {@link TestCaseFile},
 * {@link TestSuiteFile}); Mappings and Integrations come from the other YAML/JSON files under the
 * same paths. Prints `✓`/`✗ <file> › <case>` per case with the differences and an explain account
 * for failures, then `N passed, M failed (K files)`. `--update` rewrites the `expect.output` of
 * failing cases with the actual output. Exit code 0 when all pass; 1 when one fails, a test file
 * is invalid, a resource has problems, or no test file is found.
 */
export function registerTest(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command('test')
    .description('run Mapping test cases (*.test.yaml, *.test.yml, *.test.json) offline against the Mappings and Integrations under the paths')
    .argument('[paths...]', 'files or folders, searched recursively (node_modules and dot-folders are skipped)', ['.'])
    .option('--update', 'rewrite expect.output of failing cases with the actual output', false)
    .action(async (paths: string[], opts: { update: boolean }) => {
      const summary = await runTests(paths.length > 0 ? paths : ['.'], opts, out, err);
      process.exitCode = summary && summary.failed === 0 ? 0 : 1;
    });
}
