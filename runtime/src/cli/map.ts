import path from 'node:path';
import { Option, type Command } from 'commander';
import { parse } from 'yaml';
import { TEST_FILE, capProblems, readTextFile, expandPaths, formatResourceProblems, formatSkipped, formatUnread, loadResources, objectKey, DEFAULT_NAMESPACE } from '../api/index.js';
import type { Integration, LoadedResource, Mapping, ResourceProblem } from '../api/index.js';
import { DESTINATIONS, checkDestination, destinationDefinition } from '../destinations/index.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import { describeViolations } from '../forward/forwarder.js';
import { compileIntegrationRoute, compileMappingResource, type ConsentMissing, type SkipReason } from '../forward/route.js';
import { describeValue } from '../mapping/conditions.js';
import {
  compileOutputValidator,
  type CompiledMapping,
  type DropReason,
  type Explanation,
  type FieldExplanation,
  type MappingFailure,
  type OutputValidator,
  type OutputViolation,
  type SegmentEvent,
} from '../mapping/index.js';

/**
 * What became of one event, the way the forwarder would treat it:
 * - `output`: mapped (and, when an output schema applies, valid): the name and payload sent;
 * - `skipped`: the Integration does not take it (events filter or consent);
 * - `dropped`: the Mapping drops it on purpose (`no_matching_rule`, `filtered`);
 * - `failed`: the Mapping failed (dead-lettered as mapping_failed);
 * - `invalid`: the payload fails the destination output schema (dead-lettered as invalid_output).
 */
export type EventOutcome =
  | { kind: 'output'; name: string; payload: Record<string, unknown> }
  | { kind: 'skipped'; reason: SkipReason }
  | { kind: 'dropped'; reason: DropReason; message: string }
  | { kind: 'failed'; failure: MappingFailure }
  | { kind: 'invalid'; name: string; payload: Record<string, unknown>; violations: readonly OutputViolation[]; error: string };

/** A Mapping (and optionally the Integration using it) compiled for offline runs. */
export interface MappingRunner {
  /** `Mapping ns/name`, or `Integration ns/name (Mapping ns/name)`. */
  readonly label: string;
  /** `ns/name` of the Integration, when one applies. */
  readonly integration: string | undefined;
  /** Whether payloads are checked against an output schema (an Integration's destination, or the Mapping's destinationType). */
  readonly checksOutput: boolean;
  /** Runs one event through the Integration's filters (when there is one), the Mapping and the output check, as the forwarder does. */
  run(event: SegmentEvent, consentMissing: ConsentMissing, options?: { explain?: boolean }): { outcome: EventOutcome; explain?: Explanation };
  /**
   * Why the Integration's destination would refuse this payload for its age when sent at `now`
   * (dead letter `stale_event`), or undefined. Only with an Integration whose type has an age rule.
   */
  staleAt(payload: Record<string, unknown>, now: number): string | undefined;
}


/** The Mapping chosen for a run, and the Integration when one was named. */
export interface MappingTarget {
  mapping: LoadedResource & { resource: Mapping };
  integration?: LoadedResource & { resource: Integration };
}

/** `name`, or `namespace/name` outside the default namespace. */
function shortName(r: { metadata: { name: string; namespace?: string } }): string {
  const ns = r.metadata.namespace ?? DEFAULT_NAMESPACE;
  return ns === DEFAULT_NAMESPACE ? r.metadata.name : `${ns}/${r.metadata.name}`;
}

function namesOf(list: readonly LoadedResource[]): string {
  return list.length > 0 ? list.map((l) => shortName(l.resource)).join(', ') : 'none';
}

/** Finds a resource by `name` or `namespace/name`; `option` names where the user chooses, for messages. */
function findNamed(resources: readonly LoadedResource[], kind: 'Mapping' | 'Integration', name: string | undefined, option: string): LoadedResource {
  const all = resources.filter((l) => l.resource.kind === kind);
  if (name === undefined) {
    if (all.length === 1) return all[0]!;
    if (all.length === 0) throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `no ${kind} found among the loaded files`);
    throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `${all.length} ${kind}s found (${namesOf(all)}): choose one with ${option}`);
  }
  const slash = name.indexOf('/');
  const matches = all.filter((l) =>
    slash >= 0 ? l.resource.metadata.namespace === name.slice(0, slash) && l.resource.metadata.name === name.slice(slash + 1) : l.resource.metadata.name === name,
  );
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `no ${kind} named ${JSON.stringify(name)}; ${kind}s found: ${namesOf(all)}`);
  throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `${kind} ${JSON.stringify(name)} exists in several namespaces (${matches.map((l) => objectKey(l.resource)).join(', ')}): write namespace/name`);
}

/**
 * Chooses the Mapping (by `mapping`, else the Integration's `mappingRef`, else the only one) and
 * the Integration (by `integration`, optional) among loaded resources. Names are `name` or
 * `namespace/name`. `options` name the flags in messages (e.g. `--mapping`).
 * @throws SwitchyardError MISSING_REFERENCE when a name matches nothing or several resources, or
 * no name is given and there is not exactly one Mapping; the message lists the names found.
 */
export function selectTarget(
  resources: readonly LoadedResource[],
  names: { mapping?: string | undefined; integration?: string | undefined },
  options: { mappingOption: string } = { mappingOption: '--mapping' },
): MappingTarget {
  const integration = names.integration !== undefined ? (findNamed(resources, 'Integration', names.integration, '--integration') as MappingTarget['integration']) : undefined;
  if (integration && names.mapping === undefined) {
    const ns = integration.resource.metadata.namespace ?? DEFAULT_NAMESPACE;
    const ref = integration.resource.spec.mappingRef.name;
    const mapping = resources.find((l) => l.resource.kind === 'Mapping' && l.resource.metadata.name === ref && (l.resource.metadata.namespace ?? DEFAULT_NAMESPACE) === ns);
    if (!mapping) {
      const found = resources.filter((l) => l.resource.kind === 'Mapping');
      throw new SwitchyardError(
        ErrorCodes.MISSING_REFERENCE,
        `Integration ${ns}/${integration.resource.metadata.name} uses Mapping ${ns}/${ref}, which is not among the loaded files; Mappings found: ${namesOf(found)}`,
      );
    }
    return { mapping: mapping as MappingTarget['mapping'], integration };
  }
  const mapping = findNamed(resources, 'Mapping', names.mapping, options.mappingOption) as MappingTarget['mapping'];
  return integration ? { mapping, integration } : { mapping };
}

/** Turns a compile error into resource problems: Mapping rule problems point into the Mapping, Integration problems into the Integration. */
function compileProblems(e: unknown, target: MappingTarget): ResourceProblem[] {
  if (!(e instanceof SwitchyardError)) throw e;
  const details = Array.isArray(e.details) ? (e.details as Problem[]) : [];
  const owner = e.code === ErrorCodes.INVALID_MAPPING || !target.integration ? target.mapping : target.integration;
  const at = (p: string) => (owner === target.mapping ? `/spec${p === '/' ? '' : p}` : p);
  const base = { origin: owner.origin, object: objectKey(owner.resource) };
  if (details.length === 0) return [{ ...base, path: owner === target.mapping ? '/spec' : '/spec/mappingRef/name', rule: 'compile', message: e.message }];
  return details.map((d) => ({ ...base, path: at(d.path), rule: d.rule, message: d.message }));
}

/**
 * Compiles the target the way the forwarder does: with an Integration, its route
 * (compileIntegrationRoute: events filter, consent, output schema of its destination); without,
 * the Mapping alone (compileMappingResource), checked against its `destinationType`'s output
 * schema when that type has one.
 * @returns the runner, or the problems (JSON pointers into the Mapping or Integration resource).
 */
export function compileRunner(target: MappingTarget): { runner: MappingRunner; problems?: undefined } | { runner?: undefined; problems: ResourceProblem[] } {
  const mappingKey = objectKey(target.mapping.resource).replace(/^Mapping\//, '');
  let mapping: CompiledMapping;
  let validateOutput: OutputValidator | undefined;
  let skip: ((event: SegmentEvent, consentMissing: ConsentMissing) => SkipReason | undefined) | undefined;
  let label = `Mapping ${mappingKey}`;
  try {
    if (target.integration) {
      const route = compileIntegrationRoute(target.integration.resource, target.mapping.resource);
      mapping = route.mapping;
      validateOutput = route.validateOutput;
      skip = (event, consentMissing) => route.skip(event, consentMissing);
      label = `Integration ${objectKey(target.integration.resource).replace(/^Integration\//, '')} (Mapping ${mappingKey})`;
    } else {
      mapping = compileMappingResource(target.mapping.resource);
      const type = target.mapping.resource.spec.destinationType;
      const schema = type && Object.hasOwn(DESTINATIONS, type) ? DESTINATIONS[type].outputSchema?.(undefined) : undefined;
      validateOutput = schema ? compileOutputValidator(schema) : undefined;
    }
  } catch (e) {
    return { problems: compileProblems(e, target) };
  }
  const integration = target.integration ? objectKey(target.integration.resource).replace(/^Integration\//, '') : undefined;
  const definition = target.integration ? destinationDefinition(target.integration.resource.spec.destination.type) : undefined;
  let refuse: ((payload: Record<string, unknown>, now: number) => string | undefined) | undefined;
  if (target.integration && definition?.refuse) {
    try {
      const settings = checkDestination(definition, target.integration.resource, undefined);
      const context = { settings, credentials: {}, integration: integration!, batchSize: 1, cache: new Map(), fetch: () => Promise.reject(new Error('offline')) };
      refuse = (payload, now) => definition.refuse!(payload, { ...context, now });
    } catch {
      refuse = undefined; // settings problems are reported by validate; the age check just does not apply
    }
  }
  return {
    runner: {
      label,
      integration,
      staleAt: (payload, now) => refuse?.(payload, now),
      checksOutput: validateOutput !== undefined,
      run(event, consentMissing, options) {
        const reason = skip?.(event, consentMissing);
        if (reason) return { outcome: { kind: 'skipped', reason } };
        const result = mapping.apply(event, options?.explain ? { explain: true } : undefined);
        const explain = result.explain ? { explain: result.explain } : {};
        if (!result.ok) {
          if (result.failed) return { outcome: { kind: 'failed', failure: result.failed }, ...explain };
          return { outcome: { kind: 'dropped', reason: result.dropped, message: result.message }, ...explain };
        }
        const violations = validateOutput?.(result.payload);
        if (violations && violations.length > 0) {
          return { outcome: { kind: 'invalid', name: result.name, payload: result.payload, violations, error: describeViolations(mapping, event, violations) }, ...explain };
        }
        return { outcome: { kind: 'output', name: result.name, payload: result.payload }, ...explain };
      },
    },
  };
}

/** The JSON `switchyard map` prints for an outcome: `{name, payload}`, `{skipped}`, `{dropped, message}`, `{failed}` or `{invalid, error}`. */
export function outcomeJson(outcome: EventOutcome): Record<string, unknown> {
  switch (outcome.kind) {
    case 'output':
      return { name: outcome.name, payload: outcome.payload };
    case 'skipped':
      return { skipped: outcome.reason };
    case 'dropped':
      return { dropped: outcome.reason, message: outcome.message };
    case 'failed':
      return { failed: outcome.failure };
    case 'invalid':
      return { invalid: outcome.violations, error: outcome.error };
  }
}

/** One line saying what happened to an event, e.g. `the event was dropped: filtered (drop condition /drop/0 holds)`. */
export function describeOutcome(outcome: EventOutcome, runner?: Pick<MappingRunner, 'integration'>): string {
  switch (outcome.kind) {
    case 'output':
      return `the event was mapped to ${JSON.stringify(outcome.name)}`;
    case 'skipped':
      return `the event was skipped${runner?.integration ? ` by Integration ${runner.integration}` : ''}: ${outcome.reason}`;
    case 'dropped':
      return `the event was dropped: ${outcome.reason} (${outcome.message})`;
    case 'failed':
      return `the mapping failed: ${outcome.failure.field}: ${outcome.failure.message} (rule ${outcome.failure.rule})`;
    case 'invalid':
      return `the output is invalid: ${outcome.error}`;
  }
}

/** Explanations write `[n element(s)]` as the value of an `each` rule; it is shown as is, not as a JSON string. */
const EACH_SUMMARY = /^\[\d+ element\(s\)\]$/;

function shownValue(v: unknown): string {
  return typeof v === 'string' && EACH_SUMMARY.test(v) ? v : describeValue(v);
}

function fieldHead(f: FieldExplanation): string {
  const tried = f.tried ?? [];
  switch (f.outcome) {
    case 'written':
      if (f.from === 'value') return `${f.to} ← value ${shownValue(f.value)}`;
      return `${f.to} ← ${f.from ?? '?'} = ${shownValue(f.value)}`;
    case 'default':
      return `${f.to} ← default ${shownValue(f.value)}`;
    case 'left out':
      return `${f.to} — left out: ${tried.length === 1 ? tried[0] : (f.reason ?? 'absent')}`;
    case 'skipped':
      return `${f.to} — skipped: ${f.reason ?? 'its when does not hold'}`;
    case 'failed':
      return `${f.to} ✗ failed: ${f.reason ?? 'failed'}`;
  }
}

/** The sources tried, when the head line does not already say it all. */
function triedLine(f: FieldExplanation): string | undefined {
  const tried = f.tried ?? [];
  const shown = f.outcome === 'default' || f.outcome === 'failed' ? tried.length > 0 : tried.length > 1;
  return shown ? `tried: ${tried.join('; ')}` : undefined;
}

/** Moves the entry of an `each` rule (explained after its elements) before them. */
function parentsFirst(fields: readonly FieldExplanation[]): FieldExplanation[] {
  const out: FieldExplanation[] = [];
  for (const f of fields) {
    let at = out.length;
    while (at > 0 && out[at - 1]!.to.startsWith(`${f.to}[`)) at--;
    out.splice(at, 0, f);
  }
  return out;
}

/**
 * A readable account of one event for a terminal: the part chosen and the output name, then one
 * line per rule (`to ← source = value`, `← default`, `— left out`, `— skipped`, `✗ failed`, with
 * the rule's JSON pointer), and indented detail lines for the sources tried and the transform
 * steps; last, the outcome when it is not a plain output.
 * @returns lines, each indented by `indent`.
 */
export function formatExplanation(outcome: EventOutcome, explain: Explanation | undefined, runner?: Pick<MappingRunner, 'integration'>, indent = ''): string[] {
  const lines: string[] = [];
  if (outcome.kind === 'skipped') return [`${indent}${describeOutcome(outcome, runner)} (no rule ran)`];
  if (explain?.drop) lines.push(`drop condition ${explain.drop.rule} ${explain.drop.message} → dropped (filtered)`);
  else if (explain?.part) lines.push(`part ${explain.part}${outcome.kind === 'output' || outcome.kind === 'invalid' ? ` → name ${outcome.name}` : ''}`);
  else if (outcome.kind === 'dropped') lines.push(`no part matches → dropped (${outcome.reason}: ${outcome.message})`);
  const fields = parentsFirst(explain?.fields ?? []);
  const heads = fields.map(fieldHead);
  // Align the rule pointers when that stays compact.
  const width = Math.min(56, Math.max(0, ...heads.map((h) => h.length)));
  fields.forEach((f, i) => {
    lines.push(`  ${heads[i]!.padEnd(width)}   (rule ${f.rule})`);
    const tried = triedLine(f);
    if (tried) lines.push(`      ${tried}`);
    if (f.steps && f.steps.length > 0) lines.push(`      steps: ${f.steps.join(' → ')}`);
  });
  if (outcome.kind === 'failed') lines.push(`→ ${describeOutcome(outcome)}`);
  if (outcome.kind === 'invalid') lines.push(`→ ${outcome.error}`);
  return lines.map((l) => indent + l);
}

/**
 * Parses the text of an events file: one event (a JSON object), an array of events, or a Segment
 * batch body `{batch: [...]}` (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#batch),
 * in JSON or YAML.
 * @throws SwitchyardError BAD_FILE when the text does not parse, holds no event, or an event is not an object.
 */
export function parseEvents(text: string, label: string): SegmentEvent[] {
  let value: unknown;
  try {
    value = parse(text);
  } catch (cause) {
    throw new SwitchyardError(ErrorCodes.BAD_FILE, `cannot parse events in ${label}: ${(cause as Error).message}`, { cause });
  }
  const isObject = (v: unknown): v is SegmentEvent => v !== null && typeof v === 'object' && !Array.isArray(v);
  const list = Array.isArray(value) ? value : isObject(value) && Array.isArray(value.batch) ? (value.batch as unknown[]) : [value];
  if (list.length === 0 || value === null || value === undefined) throw new SwitchyardError(ErrorCodes.BAD_FILE, `${label} holds no event`);
  list.forEach((e, i) => {
    if (!isObject(e)) throw new SwitchyardError(ErrorCodes.BAD_FILE, `${label}: event ${i} is not a JSON object`);
  });
  return list as SegmentEvent[];
}

/**
 * Reads events from a file, or from `stdin` when `file` is `-` (see {@link parseEvents}).
 * @throws SwitchyardError BAD_FILE when the file cannot be read or parsed.
 */
export async function readEvents(file: string, stdin: AsyncIterable<string | Buffer> = process.stdin): Promise<SegmentEvent[]> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    return parseEvents(Buffer.concat(chunks).toString('utf8'), 'standard input');
  }
  const text = await readTextFile(file);
  return parseEvents(text, file);
}

interface MapOptions {
  filename: string[];
  event: string;
  mapping?: string;
  integration?: string;
  explain: boolean;
  recursive: boolean;
  consentMissing: ConsentMissing;
  now?: string;
}

/**
 * `switchyard map -f <files or folders…> --event <file|-> [--mapping NAME] [--integration NAME]
 * [--explain] [--consent-missing allow|deny] [--now ISO]`: runs events through a Mapping (and an Integration's
 * filters, consent and output schema) offline, printing for each event the JSON the forwarder
 * would send, or why it would not (see {@link outcomeJson}); `--explain` adds a rule-by-rule
 * account. Exit code 0 when every event was mapped, skipped or dropped; 1 when one failed or was
 * invalid, or on resource problems.
 */
export function registerMap(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command('map')
    .description('run events through a Mapping (and an Integration) offline and print the payloads')
    .requiredOption('-f, --filename <paths...>', 'files or folders (*.yaml, *.yml, *.json) holding the Mapping (and Integration)')
    .requiredOption('--event <file>', 'events file (one event, an array, or a Segment batch body; JSON or YAML), or - for standard input')
    .option('--mapping <name>', 'Mapping to run (name or namespace/name); default: the Integration\'s, or the only one')
    .option('--integration <name>', 'Integration whose events filter, consent and output schema apply (name or namespace/name)')
    .option('--explain', 'after each output, tell rule by rule where each field came from', false)
    .option('-R, --recursive', 'also read the subfolders of the folders given', false)
    .option('--now <time>', "with --integration: the send time (ISO-8601) the destination's age rules (Meta's 7 days, GA4's 72 hours…) are judged at; default: now")
    .addOption(new Option('--consent-missing <policy>', "the Source's consent.missing: events without a consent preference are allowed or denied").choices(['allow', 'deny']).default('allow'))
    .action(async (opts: MapOptions) => {
      // The events file and test files may sit in a folder given with -f; they are not resources.
      const eventFile = opts.event === '-' ? undefined : path.resolve(opts.event);
      const expanded = await expandPaths(opts.filename, { recursive: opts.recursive });
      const note = formatUnread(expanded.unread);
      if (note) err(note);
      const files = expanded.filter((f) => path.resolve(f) !== eventFile && !TEST_FILE.test(path.basename(f)));
      const { resources, problems, skipped } = await loadResources(files, { recursive: opts.recursive });
      if (problems.length > 0) {
        err(formatResourceProblems(capProblems(problems)));
        err(`${problems.length} problem(s) in ${opts.filename.join(', ')}`);
        process.exitCode = 1;
        return;
      }
      if (resources.length === 0) {
        err(`no Switchyard resources found in ${opts.filename.join(', ')}${skipped.length > 0 ? `; ${formatSkipped(skipped)}` : ''}`);
        process.exitCode = 1;
        return;
      }
      const target = selectTarget(resources, { mapping: opts.mapping, integration: opts.integration });
      const compiled = compileRunner(target);
      if (!compiled.runner) {
        err(formatResourceProblems(compiled.problems));
        err(`${compiled.problems.length} problem(s) in ${opts.filename.join(', ')}`);
        process.exitCode = 1;
        return;
      }
      const runner = compiled.runner;
      const now = opts.now === undefined ? Date.now() : Date.parse(opts.now);
      if (Number.isNaN(now)) throw new SwitchyardError(ErrorCodes.BAD_FILE, `--now ${JSON.stringify(opts.now)} is not an ISO-8601 time`);
      const events = await readEvents(opts.event);
      let bad = 0;
      for (const event of events) {
        const { outcome, explain } = runner.run(event, opts.consentMissing, { explain: opts.explain });
        if (outcome.kind === 'failed' || outcome.kind === 'invalid') bad++;
        out(JSON.stringify(outcomeJson(outcome), null, 2));
        const stale = outcome.kind === 'output' ? runner.staleAt(outcome.payload, now) : undefined;
        if (stale) err(`warning: sent at ${new Date(now).toISOString()}, this event would be dead-lettered as stale_event: ${stale}`);
        if (opts.explain) out(formatExplanation(outcome, explain, runner).join('\n'));
      }
      if (bad > 0) {
        err(`${bad} of ${events.length} event(s) failed or were invalid`);
        process.exitCode = 1;
      }
    });
}
