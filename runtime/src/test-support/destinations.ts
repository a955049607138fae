import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { Integration, Mapping } from '../api/index.js';
import { main } from '../cli/index.js';
import { normalizeIntegration } from '../forward/consumer.js';
import { compileMappingResource } from '../forward/route.js';
import { DESTINATIONS, settingsOf, type DestinationDefinition, type RequestContext, type SendResult, type VendorRequest, type VendorResponse } from '../destinations/index.js';
import type { CompiledMapping, SegmentEvent } from '../mapping/index.js';

/** The pinned `now` of golden tests: a few minutes after the project fixtures' timestamps (2026-11-20T15:04Z). */
export const GOLDEN_NOW = Date.parse('2026-11-20T15:10:00.000Z');

const FIXTURES = fileURLToPath(new URL('./fixtures/events/', import.meta.url));

/** The project's Segment-spec fixture events (test-support/fixtures/events/*.json), by file name without `.json`, in name order. */
export function fixtureEvents(): { name: string; event: SegmentEvent }[] {
  return readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f.replace(/\.json$/, ''), event: JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')) as SegmentEvent }));
}

/** The starter Mapping resource of a definition (its mapping.yaml). @throws Error when it has none. */
export function starterResource(definition: DestinationDefinition): Mapping {
  if (!definition.starterMapping) throw new Error(`${definition.type} has no starter Mapping`);
  return parseYaml(readFileSync(definition.starterMapping, 'utf8')) as Mapping;
}

/** The starter Mapping compiled as the product does (checked against the type's output schema). */
export function compileStarter(definition: DestinationDefinition): CompiledMapping {
  return compileMappingResource(starterResource(definition));
}

/** A project fixture event the starter Mapping maps, with its payload. */
export interface MappedFixture {
  name: string;
  event: SegmentEvent;
  payload: Record<string, any>;
}

/**
 * The project fixture events ({@link fixtureEvents}) through a definition's starter Mapping: those
 * it maps, in name order, and why each other one was not (its drop reason, or `failed: <message>`).
 */
export function mapFixtures(definition: DestinationDefinition): { mapped: MappedFixture[]; notMapped: Record<string, string> } {
  const mapping = compileStarter(definition);
  const mapped: MappedFixture[] = [];
  const notMapped: Record<string, string> = {};
  for (const { name, event } of fixtureEvents()) {
    const r = mapping.apply(event);
    if (r.ok) mapped.push({ name, event, payload: r.payload });
    else notMapped[name] = r.dropped ?? `failed: ${r.failed?.message}`;
  }
  return { mapped, notMapped };
}

/** A built request as golden files hold it: the body parsed. */
export const wire = (r: Pick<VendorRequest, 'method' | 'url' | 'headers' | 'body'>) => ({ method: r.method, url: r.url, headers: r.headers, body: JSON.parse(r.body) as Record<string, any> });

/**
 * Runs `switchyard test` on a destination's folder (its `tests/*.test.yaml` against its starter
 * Mapping), as a user would.
 * @returns the exit code, what went to stderr, and the output lines that are not passes (the
 * failures, then the summary line).
 */
export async function runFolderTests(folder: URL): Promise<{ code: number; err: string; notPassed: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'switchyard', 'test', fileURLToPath(folder)], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, err: err.join('\n'), notPassed: out.filter((l) => !l.startsWith('✓')) };
}

/**
 * A {@link RequestContext} for calling a definition's pure functions directly: settings get their
 * schema defaults; `fetch` goes to `fetch` when given, else rejects.
 */
export function requestContext<S>(
  definition: DestinationDefinition<S>,
  settings: unknown,
  options: { credentials?: Record<string, string>; now?: number; batchSize?: number; fetch?: RequestContext<S>['fetch'] } = {},
): RequestContext<S> {
  return {
    settings: settingsOf(definition, settings, 'test'),
    credentials: options.credentials ?? {},
    now: options.now ?? GOLDEN_NOW,
    integration: 'default/test',
    batchSize: options.batchSize ?? definition.batch.default,
    cache: new Map(),
    fetch: options.fetch ?? (() => Promise.reject(new Error('no fetch in this test'))),
  };
}

/**
 * Compares `actual` with the golden file `file` (JSON, pretty-printed), or writes it when
 * SWITCHYARD_UPDATE_GOLDEN=1 (review the diff before committing). Golden files are the exact
 * requests we promise to send: a change to one is a change of the wire format.
 */
export function expectGolden(file: URL, actual: unknown): void {
  const target = fileURLToPath(file);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (process.env.SWITCHYARD_UPDATE_GOLDEN === '1' || !existsSync(target)) {
    if (process.env.SWITCHYARD_UPDATE_GOLDEN !== '1') throw new Error(`golden file ${target} is missing: run with SWITCHYARD_UPDATE_GOLDEN=1 to write it, then review it`);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
    return;
  }
  expect(JSON.parse(text)).toEqual(JSON.parse(readFileSync(target, 'utf8')));
}

/** A VendorResponse for classify tests. */
export function vendorResponse(status: number, body: unknown = '', headers: Record<string, string> = {}): VendorResponse {
  return { status, headers, body: typeof body === 'string' ? body : JSON.stringify(body) };
}

/** An Integration of the given destination type and settings (defaults applied), for creating destinations in tests. */
export function destinationIntegration(type: string, settingsField: string, settings: unknown, delivery: Partial<Integration['spec']['delivery']> = {}): Integration {
  return normalizeIntegration({
    apiVersion: 'switchyard.io/v1alpha1',
    kind: 'Integration',
    metadata: { name: 'test', namespace: 'default' },
    spec: {
      sourceRefs: [{ name: 'web' }],
      mappingRef: { name: 'starter' },
      destination: { type, [settingsField]: settings } as Integration['spec']['destination'],
      delivery: { concurrency: 2, timeout: '2s', retrySchedule: ['200ms'], ...delivery },
    } as Integration['spec'],
  });
}

/**
 * Creates the real destination (HttpDestination over undici) of `definition` and sends `payloads`
 * with the clock pinned at `now`; closes it after.
 */
export async function sendWith(
  definition: DestinationDefinition,
  settings: unknown,
  payloads: readonly unknown[],
  options: { credentials?: Record<string, string>; now?: number; delivery?: Partial<Integration['spec']['delivery']>; timeoutMs?: number } = {},
): Promise<SendResult> {
  const integration = destinationIntegration(definition.type, definition.settingsField, settings, options.delivery);
  const type = DESTINATIONS[definition.type as keyof typeof DESTINATIONS];
  const destination = type.create({ integration, credentials: options.credentials ?? {}, timeoutMs: options.timeoutMs ?? 2000, clock: { now: () => options.now ?? GOLDEN_NOW } });
  try {
    return await destination.send(payloads);
  } finally {
    await destination.close();
  }
}
