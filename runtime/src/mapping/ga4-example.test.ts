import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Mapping } from '../api/index.js';
import { loadResources } from '../api/resources.js';
import { DESTINATIONS } from '../destinations/index.js';
import { compileMappingResource } from '../forward/route.js';
import { compileMapping, type MappingResult, type SegmentEvent } from './index.js';
import { compileOutputValidator } from './output-schema.js';

// The GA4 example Mapping and its `switchyard test` cases (examples/mappings), run here too so
// `npm test` covers them without the CLI. Only the expectations those cases use are supported
// (output, dropped, failed); any other kind fails the test instead of passing silently.

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../examples/mappings');
const testsDir = path.join(examples, 'tests');

interface Expect {
  output?: { name: string; payload: Record<string, unknown> };
  dropped?: string;
  failed?: { rule?: string; field?: string; message?: string };
}
interface Case {
  name?: string;
  mapping?: string;
  event?: SegmentEvent;
  eventFile?: string;
  expect: Expect;
}

/** Every case of every `*.test.yaml` file, with its event loaded. */
function loadCases(): { title: string; event: SegmentEvent; expect: Expect }[] {
  const out: { title: string; event: SegmentEvent; expect: Expect }[] = [];
  for (const file of readdirSync(testsDir).filter((f) => /\.test\.ya?ml$/.test(f)).sort()) {
    const doc = parse(readFileSync(path.join(testsDir, file), 'utf8')) as Case & { cases?: Case[] };
    const cases = doc.cases ?? [doc];
    cases.forEach((c, i) => {
      const mapping = c.mapping ?? doc.mapping;
      if (mapping !== 'ga4-ecommerce') throw new Error(`${file} case ${i}: mapping ${String(mapping)}, expected ga4-ecommerce`);
      const kinds = Object.keys(c.expect ?? {});
      if (kinds.length !== 1 || !['output', 'dropped', 'failed'].includes(kinds[0]!)) throw new Error(`${file} case ${i}: unsupported expect ${kinds.join(', ')}`);
      if ((c.event === undefined) === (c.eventFile === undefined)) throw new Error(`${file} case ${i}: needs exactly one of event and eventFile`);
      const event = c.event ?? (JSON.parse(readFileSync(path.resolve(testsDir, c.eventFile!), 'utf8')) as SegmentEvent);
      out.push({ title: `${file} › ${c.name ?? `#${i}`}`, event, expect: c.expect });
    });
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const loaded = await loadResources([path.join(examples, 'ga4-ecommerce.yaml')]);
const spec = (loaded.resources[0]?.resource as Mapping | undefined)?.spec;
const cases = loadCases();

describe('examples/mappings/ga4-ecommerce.yaml', () => {
  it('is a valid Mapping resource that compiles', () => {
    expect(loaded.problems).toEqual([]);
    expect(loaded.resources.map((r) => `${r.resource.kind}/${r.resource.metadata.name}`)).toEqual(['Mapping/ga4-ecommerce']);
    expect(() => compileMapping(spec!)).not.toThrow();
  });

  it('has a case mapping each of its event parts', () => {
    const mapping = compileMapping(spec!);
    const covered = new Set<string>();
    for (const c of cases) {
      const result = mapping.apply(c.event, { explain: true });
      if (c.expect.output && result.ok && result.explain?.part) covered.add(result.explain.part);
    }
    const parts = Object.keys(spec!.eventSpecific ?? {}).map((k) => `/eventSpecific/${k}`);
    expect(parts.filter((p) => !covered.has(p))).toEqual([]);
  });

  it.each(cases)('$title', ({ event, expect: want }) => {
    const result: MappingResult = compileMapping(spec!).apply(deepFreeze(JSON.parse(JSON.stringify(event)) as SegmentEvent));
    if (want.output) {
      expect(result).toEqual({ ok: true, name: want.output.name, payload: want.output.payload });
    } else if (want.dropped) {
      expect(result).toMatchObject({ ok: false, dropped: want.dropped });
    } else {
      expect(result.ok).toBe(false);
      const failed = result.ok ? undefined : result.failed;
      expect(failed).toBeDefined();
      if (want.failed!.rule !== undefined) expect(failed!.rule).toBe(want.failed!.rule);
      if (want.failed!.field !== undefined) expect(failed!.field).toBe(want.failed!.field);
      if (want.failed!.message !== undefined) expect(failed!.message).toContain(want.failed!.message);
    }
  });
});

// GA4 Measurement Protocol limits (https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations)
// are the ga4 destination's output schema: the example declares `destinationType: ga4`, so it is
// compiled against that schema (what can never pass is a compile error) and every output of its
// cases is validated with it here, as the forwarder does before delivery.
const ga4Schema = DESTINATIONS.ga4.outputSchema!(undefined)!;
const ga4Violations = (payload: unknown): string[] => (compileOutputValidator(ga4Schema)(payload) ?? []).map((v) => `${v.path}: ${v.rule}`);

describe('GA4 limits', () => {
  const outputs = cases.filter((c) => c.expect.output);

  it('the example declares the ga4 type and compiles against its output schema', () => {
    expect(spec!.destinationType).toBe('ga4');
    expect(() => compileMappingResource(loaded.resources[0]!.resource as Mapping)).not.toThrow();
  });

  it.each(outputs)('$title: the output respects them', ({ event }) => {
    const result = compileMapping(spec!).apply(event);
    if (!result.ok) throw new Error(`not mapped: ${result.dropped ?? result.failed?.message}`);
    expect(ga4Violations(result.payload)).toEqual([]);
  });

  it('the check finds violations', () => {
    const payload = {
      client_id: '',
      timestamp_micros: 1.5,
      user_properties: { plan: { value: 'x'.repeat(37) } },
      events: [{ name: '1bad', params: { value: '25', page_title: 'x'.repeat(301), items: [{ price: '1' }] } }],
    };
    expect(ga4Violations(payload)).toEqual([
      'client_id: minLength',
      'timestamp_micros: type',
      'user_properties.plan.value: maxLength',
      'events[0].name: pattern',
      'events[0].params.page_title: maxLength',
      'events[0].params.items[0].item_id: required',
      'events[0].params.items[0].item_name: required',
      'events[0].params.items[0]: anyOf',
      'events[0].params.items[0].price: type',
      'events[0].params.value: type',
      'events[0].params.currency: dependentRequired',
    ]);
  });
});
