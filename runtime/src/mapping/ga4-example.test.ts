import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Mapping } from '../api/index.js';
import { loadResources } from '../api/resources.js';
import { compileMapping, type MappingResult, type SegmentEvent } from './index.js';

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

// GA4 Measurement Protocol limits (https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events#limitations):
// event and parameter names ≤ 40 characters (letters, digits, underscores, starting with a
// letter), ≤ 25 parameters per event, parameter values ≤ 100 characters (page_title 300,
// page_referrer 420, page_location 1000), ≤ 200 items, user property values ≤ 36 characters.
const NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
const LONG_PARAMS: Record<string, number> = { page_title: 300, page_referrer: 420, page_location: 1000 };
const codePoints = (s: string): number => [...s].length;

function ga4LimitViolations(payload: Record<string, unknown>): string[] {
  const bad: string[] = [];
  if (typeof payload.client_id !== 'string' || payload.client_id === '') bad.push('client_id: not a non-empty string');
  if (!Number.isSafeInteger(payload.timestamp_micros)) bad.push('timestamp_micros: not an integer');
  for (const [name, prop] of Object.entries((payload.user_properties ?? {}) as Record<string, { value?: unknown }>)) {
    if (name.length > 24 || !NAME.test(name)) bad.push(`user_properties.${name}: bad name`);
    if (typeof prop.value === 'string' && codePoints(prop.value) > 36) bad.push(`user_properties.${name}: value over 36 characters`);
  }
  const events = payload.events as { name: string; params: Record<string, unknown> }[];
  if (!Array.isArray(events) || events.length !== 1) bad.push('events: not one event');
  for (const [i, e] of (events ?? []).entries()) {
    if (!NAME.test(e.name)) bad.push(`events[${i}].name: ${e.name}`);
    const params = Object.entries(e.params ?? {});
    if (params.length > 25) bad.push(`events[${i}].params: ${params.length} parameters`);
    for (const [key, value] of params) {
      if (!NAME.test(key)) bad.push(`events[${i}].params.${key}: bad name`);
      if (typeof value === 'string' && codePoints(value) > (LONG_PARAMS[key] ?? 100)) bad.push(`events[${i}].params.${key}: too long`);
      if (key === 'items') {
        const items = value as Record<string, unknown>[];
        if (items.length > 200) bad.push(`events[${i}].params.items: ${items.length} items`);
        for (const [j, item] of items.entries()) {
          if (item.item_id === undefined && item.item_name === undefined) bad.push(`events[${i}].params.items[${j}]: neither item_id nor item_name`);
          for (const [k, v] of Object.entries(item)) {
            if (typeof v === 'string' && codePoints(v) > 100) bad.push(`events[${i}].params.items[${j}].${k}: too long`);
            if (['price', 'quantity', 'index'].includes(k) && typeof v !== 'number') bad.push(`events[${i}].params.items[${j}].${k}: not a number`);
          }
        }
      } else if (['value', 'tax', 'shipping'].includes(key) && typeof value !== 'number') bad.push(`events[${i}].params.${key}: not a number`);
    }
    if (e.params?.value !== undefined && typeof e.params.currency !== 'string') bad.push(`events[${i}].params: value without currency`);
  }
  return bad;
}

describe('GA4 limits', () => {
  const outputs = cases.filter((c) => c.expect.output);

  it.each(outputs)('$title: the output respects them', ({ event }) => {
    const result = compileMapping(spec!).apply(event);
    if (!result.ok) throw new Error(`not mapped: ${result.dropped ?? result.failed?.message}`);
    expect(ga4LimitViolations(result.payload)).toEqual([]);
  });

  it('the check finds violations', () => {
    const payload = {
      client_id: '',
      timestamp_micros: 1.5,
      user_properties: { plan: { value: 'x'.repeat(37) } },
      events: [{ name: '1bad', params: { value: '25', page_title: 'x'.repeat(301), items: [{ price: '1' }] } }],
    };
    expect(ga4LimitViolations(payload)).toEqual([
      'client_id: not a non-empty string',
      'timestamp_micros: not an integer',
      'user_properties.plan: value over 36 characters',
      'events[0].name: 1bad',
      'events[0].params.value: not a number',
      'events[0].params.page_title: too long',
      'events[0].params.items[0]: neither item_id nor item_name',
      'events[0].params.items[0].price: not a number',
      'events[0].params: value without currency',
    ]);
  });
});
