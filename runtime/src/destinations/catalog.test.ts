import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { runTests } from '../cli/test-command.js';
import { main } from '../cli/index.js';
import { compileMappingResource } from '../forward/route.js';
import { compileStarter, starterResource } from '../test-support/destinations.js';
import { DEFINITIONS, DESTINATION_TYPES, SETTINGS_FIELDS, starterMapping } from './index.js';


describe('destination catalog', () => {
  it('has one definition per type, each in its own folder and settings field', () => {
    expect(Object.keys(DEFINITIONS).sort()).toEqual([...DESTINATION_TYPES].sort());
    for (const type of DESTINATION_TYPES) {
      const d = DEFINITIONS[type];
      expect(d.type).toBe(type);
      expect(d.settingsField).toBe(SETTINGS_FIELDS[type]);
      expect(d.batch.default).toBeGreaterThanOrEqual(1);
      expect(d.batch.default).toBeLessThanOrEqual(d.batch.max);
      expect(d.batch.max).toBeLessThanOrEqual(2000);
      expect(d.docsUrl).toMatch(/^https:\/\//);
      for (const c of Object.values(d.credentials)) expect(c.description.length).toBeGreaterThan(10);
    }
  });

  it.each([...DESTINATION_TYPES])('%s ships a starter Mapping for itself that compiles against its output schema', (type) => {
    const d = DEFINITIONS[type];
    // The webhook takes any JSON unless an Integration sets payloadSchema; vendors have a fixed schema.
    if (type !== 'webhook') expect(d.outputSchema(undefined)).toEqual(expect.any(Object));
    expect(existsSync(d.starterMapping!)).toBe(true);
    const resource = starterResource(d);
    expect(resource.kind).toBe('Mapping');
    expect(resource.spec.destinationType).toBe(type);
    expect(() => compileStarter(d)).not.toThrow();
    expect(starterMapping(type)).toContain(`destinationType: ${type}`);
  });

  it.each([...DESTINATION_TYPES])('%s starter Mapping passes its own switchyard test cases', async (type) => {
    const folder = fileURLToPath(new URL('.', DEFINITIONS[type].starterMapping!));
    const lines: string[] = [];
    const summary = await runTests([folder], { update: false }, (s) => lines.push(s), (s) => lines.push(s));
    expect(lines.filter((l) => /FAIL|problem/.test(l))).toEqual([]);
    expect(summary).toMatchObject({ failed: 0 });
    expect(summary!.passed).toBeGreaterThanOrEqual(3);
  });
});

describe('switchyard destinations', () => {
  async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['node', 'switchyard', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('lists every type with its settings field, batch sizes and Secret keys', async () => {
    const r = await run('destinations', 'list');
    expect(r.code).toBe(0);
    for (const type of DESTINATION_TYPES) expect(r.out).toMatch(new RegExp(`^${type}\\s+.*destination\\.${SETTINGS_FIELDS[type]}`, 'm'));
  });

  it('prints a starter Mapping, renamed, that compiles', async () => {
    const r = await run('destinations', 'starter', 'meta-capi', '--name', 'shop-meta', '-n', 'shop');
    expect(r.code).toBe(0);
    const mapping = parseYaml(r.out);
    expect(mapping.metadata).toMatchObject({ name: 'shop-meta', namespace: 'shop' });
    expect(() => compileMappingResource(mapping)).not.toThrow();
  });

  it('refuses an unknown type, naming the known ones', async () => {
    const r = await run('destinations', 'starter', 'nope');
    expect(r.code).toBe(1);
    expect(r.err).toContain('unknown destination type "nope"; types: webhook, ga4');
  });
});

describe('the built CLI (npm test builds before jest)', () => {
  it('prints each starter Mapping from runtime/dist: the build copies them next to the compiled code', () => {
    const bin = fileURLToPath(new URL('../../bin/switchyard.js', import.meta.url));
    for (const type of DESTINATION_TYPES) {
      const r = spawnSync(process.execPath, [bin, 'destinations', 'starter', type], { encoding: 'utf8' });
      expect({ type, status: r.status, stderr: r.stderr }).toEqual({ type, status: 0, stderr: '' });
      expect(parseYaml(r.stdout)).toMatchObject({ kind: 'Mapping', spec: { destinationType: type } });
    }
  });
});

