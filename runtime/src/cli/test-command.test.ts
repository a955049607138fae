import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTempDirs } from '../test-support/temp.js';
import { main } from './index.js';
import { compareOutcome, formatPath, parseTestFile, type Expectation } from './test-command.js';
import type { EventOutcome } from './map.js';

const tempDir = useTempDirs('sy-test-');

const shop = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'testdata/shop');

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'switchyard', ...args], { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err: err.join('\n') };
}

/** A temp folder holding the shop Mapping and Integration, its events, and the given test files (and no other test file). */
async function project(tests: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  await cp(path.join(shop, 'shop.yaml'), path.join(dir, 'shop.yaml'));
  await cp(path.join(shop, 'events'), path.join(dir, 'events'), { recursive: true });
  for (const [name, text] of Object.entries(tests)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

const purchase = '{type: track, event: Order Completed, userId: u1, properties: {revenue: 25}}';

describe('switchyard test', () => {
  it('passes the bundled folder: every expectation kind, inline events and event files, YAML and JSON', async () => {
    const r = await run('test', shop);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toEqual([
      `✓ ${shop}/shop.test.yaml › purchase with two items`,
      `✓ ${shop}/shop.test.yaml › a coupon is copied`,
      `✓ ${shop}/shop.test.yaml › test orders are dropped`,
      `✓ ${shop}/shop.test.yaml › page calls have no rule`,
      `✓ ${shop}/shop.test.yaml › an order needs its revenue`,
      `✓ ${shop}/shop.test.yaml › views without revenue are filtered by the Integration`,
      `✓ ${shop}/shop.test.yaml › no consent preference while the Source denies missing ones`,
      `✓ ${shop}/shop.test.yaml › revenue as a string fails the webhook payloadSchema`,
      `✓ ${shop}/view.test.json › view.test.json #1`,
      '9 passed, 0 failed (2 files)',
    ]);
  });

  it('recurses into folders but not into node_modules or dot-folders', async () => {
    const failing = 'mapping: shop\nevent: {type: page}\nexpect: {output: {name: x, payload: {}}}\n';
    const dir = await project({
      'sub/deeper/ok.test.yaml': `mapping: shop\nevent: {type: page}\nexpect: {dropped: no_matching_rule}\n`,
      'node_modules/pkg/bad.test.yaml': failing,
      '.git/bad.test.yaml': failing,
    });
    const r = await run('test', dir);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([`✓ ${dir}/sub/deeper/ok.test.yaml › ok.test.yaml #1`, '1 passed, 0 failed (1 file)']);
  });

  it.each([
    ['output', `{output: {name: purchase, payload: {user_id: u1, value: "25", currency: USD}}}`, ['payload.value: expected "25", got 25']],
    ['output (missing and extra fields)', `{output: {name: buy, payload: {user_id: u1, value: 25, coupon: X}}}`, [
      'name: expected "buy", got "purchase"',
      'payload.coupon: expected "X", got (missing)',
      'payload.currency: expected (missing), got "USD"',
    ]],
    ['contains', `{contains: {payload: {value: 26}}}`, ['payload.value: expected 26, got 25']],
    ['dropped', `{dropped: filtered}`, ['expected dropped: filtered, but the event was mapped to "purchase"']],
    ['skipped', `{skipped: event_filter}`, ['expected skipped: event_filter, but the event was mapped to "purchase"']],
    ['failed', `{failed: {field: value}}`, ['expected the mapping to fail, but the event was mapped to "purchase"']],
    ['invalid', `{invalid: {}}`, ['expected invalid output, but the event was mapped to "purchase"']],
  ])('a failing %s case prints the differences and an explain account, and exits 1', async (_kind, expectation, lines) => {
    const dir = await project({ 'case.test.yaml': `integration: shop-webhook\nevent: ${purchase}\nexpect: ${expectation}\n` });
    const r = await run('test', dir);
    expect(r.code).toBe(1);
    const file = path.join(dir, 'case.test.yaml');
    expect(r.out[0]).toBe(`✗ ${file} › case.test.yaml #1`);
    expect(r.out.slice(1, 1 + lines.length)).toEqual(lines.map((l) => `    ${l}`));
    expect(r.out[1 + lines.length]).toBe('    account (Integration default/shop-webhook (Mapping default/shop)):');
    expect(r.out[2 + lines.length]).toBe('      part /eventSpecific/Order Completed → name purchase');
    expect(r.out).toContainEqual(expect.stringMatching(/^ {8}value ← properties\.revenue = 25 +\(rule \/eventSpecific\/Order Completed\/fields\/0\)$/));
    expect(r.out[r.out.length - 1]).toBe('0 passed, 1 failed (1 file)');
  });

  it.each([
    ['a dropped event expected as output', 'event: {type: page}\nexpect: {output: {name: page, payload: {}}}', 'expected output, but the event was dropped: no_matching_rule (no eventSpecific key "page" and no default)'],
    ['a filtered event expected as output', 'event: {type: track, event: X, properties: {test: true}}\nexpect: {contains: {}}', 'expected output, but the event was dropped: filtered (drop condition /drop/0 holds)'],
    ['a wrong failure rule', 'event: {type: track, event: Order Completed}\nexpect: {failed: {rule: /x, message: nope}}', 'failed.rule: expected "/x", got "/eventSpecific/Order Completed/fields/0"'],
    ['a skip expected without an integration', 'event: {type: page}\nexpect: {skipped: event_type}', 'expect.skipped needs an integration: the Integration decides which events it skips'],
    ['invalid expected without an output schema', 'event: {type: page}\nexpect: {invalid: {}}', 'expect.invalid needs an output schema, but Mapping default/shop has none'],
    ['an unknown Mapping', 'mapping: nope\nevent: {type: page}\nexpect: {dropped: filtered}', 'no Mapping named "nope"; Mappings found: shop'],
    ['an event file with two events', 'eventFile: events/batch.json\nexpect: {dropped: filtered}', '/events/batch.json holds 4 events; a case takes one'],
  ])('says what happened instead: %s', async (_what, body, message) => {
    const dir = await project({ 'x.test.yaml': body.startsWith('mapping:') ? body : `mapping: shop\n${body}` });
    const r = await run('test', dir);
    expect(r.code).toBe(1);
    expect(r.out[0]).toMatch(/^✗ /);
    expect(r.out[1]).toContain(message);
  });

  it('--update rewrites a failing expect.output, keeps comments and other cases, and the next run passes', async () => {
    const text = [
      '# shop tests',
      'mapping: shop',
      'cases:',
      '  - name: wrong',
      `    event: ${purchase}`,
      '    expect:',
      '      output: {name: purchase, payload: {}}  # to fill',
      '  - name: wrong but not an output # kept failing',
      `    event: ${purchase}`,
      '    expect: { dropped: filtered }',
      '  - name: right',
      '    event: {type: page}',
      '    expect: {dropped: no_matching_rule}',
      '',
    ].join('\n');
    const dir = await project({ 'a.test.yaml': text, 'b.test.json': JSON.stringify({ mapping: 'shop', event: { type: 'track', event: 'Product Viewed', properties: { sku: 'A' } }, expect: { output: { name: 'x', payload: {} } } }) });
    const r = await run('test', dir, '--update');
    expect(r.code).toBe(1);
    expect(r.out).toContain(`✎ ${dir}/a.test.yaml › wrong: expect.output rewritten`);
    expect(r.out).toContain(`✎ ${dir}/b.test.json › b.test.json #1: expect.output rewritten`);
    expect(r.out).toContain(`✗ ${dir}/a.test.yaml › wrong but not an output`);
    expect(r.out[r.out.length - 1]).toBe('1 passed, 1 failed, 2 rewritten (2 files)');
    const rewritten = await readFile(path.join(dir, 'a.test.yaml'), 'utf8');
    expect(rewritten).toContain('# shop tests\n');
    expect(rewritten).toContain('  - name: wrong but not an output # kept failing\n');
    expect(rewritten).toContain('    expect: { dropped: filtered }\n');
    expect(rewritten).toContain('        payload:\n          user_id: u1\n          value: 25\n          currency: USD\n');
    expect(JSON.parse(await readFile(path.join(dir, 'b.test.json'), 'utf8'))).toMatchObject({ expect: { output: { name: 'view_item', payload: { item_id: 'A' } } } });

    await writeFile(path.join(dir, 'a.test.yaml'), rewritten.replace('expect: { dropped: filtered }', 'expect: { contains: {name: purchase} }'));
    const again = await run('test', dir);
    expect(again.code).toBe(0);
    expect(again.out[again.out.length - 1]).toBe('4 passed, 0 failed (2 files)');
  });

  it.each([
    ['two expectations', 'event: {type: page}\nexpect: {dropped: filtered, skipped: event_type}', '    /expect: expect takes exactly one of output, contains, dropped, skipped, failed, invalid (maxProperties)'],
    ['no expectation', 'event: {type: page}\nexpect: {}', '    /expect: expect takes exactly one of output, contains, dropped, skipped, failed, invalid (minProperties)'],
    ['an unknown reason', 'cases:\n  - event: {type: page}\n    expect: {dropped: gone}', '    /cases/0/expect/dropped: must be one of "no_matching_rule", "filtered" (enum)'],
    ['an unknown field', 'cases:\n  - event: {type: page}\n    expect: {dropped: filtered}\n    when: now', '    /cases/0/when: is not a known field (additionalProperties)'],
    ['both event and eventFile', 'cases:\n  - event: {type: page}\n    eventFile: e.json\n    expect: {dropped: filtered}', '    /cases/0: a case needs exactly one of event and eventFile (oneOf)'],
    ['no expect', 'event: {type: page}', '    /expect: is required (required)'],
    ['an output without payload', 'event: {type: page}\nexpect: {output: {name: x}}', '    /expect/output/payload: is required (required)'],
    ['a YAML syntax error', 'event: {type: page\nexpect: x', '    /: '],
    ['a list', '- a', '    /: a test file holds one case (an object with expect) or cases: [...] (type)'],
  ])('refuses an invalid test file (%s) with the file and the JSON pointer of the problem', async (_what, body, line) => {
    const dir = await project({ 'bad.test.yaml': body, 'good.test.yaml': 'mapping: shop\nevent: {type: page}\nexpect: {dropped: no_matching_rule}\n' });
    const r = await run('test', dir);
    expect(r.code).toBe(1);
    expect(r.out[0]).toBe(`✗ ${dir}/bad.test.yaml: invalid test file`);
    expect(r.out[1]!.startsWith(line)).toBe(true);
    expect(r.out).toContain(`✓ ${dir}/good.test.yaml › good.test.yaml #1`);
    expect(r.out.slice(-3)).toEqual(['failed:', `  ✗ ${dir}/bad.test.yaml: invalid test file`, '1 passed, 1 failed (2 files)']);
  });

  it('fails when no test file is found, so a wrong path in CI cannot pass', async () => {
    const dir = await project({});
    const r = await run('test', dir);
    expect(r).toMatchObject({ code: 1, out: [] });
    expect(r.err).toBe(`no test files found in ${dir} (files ending in .test.yaml, .test.yml or .test.json)`);
    expect((await run('test', path.join(dir, 'missing'))).err).toMatch(/^error SY_BAD_FILE: cannot read .*missing/);
  });

  it('says to give the Mappings too when only test files are given', async () => {
    const dir = await project({ 'tests/a.test.yaml': `mapping: shop\nevent: ${purchase}\nexpect: {dropped: filtered}\n` });
    const r = await run('test', path.join(dir, 'tests'));
    expect(r).toMatchObject({ code: 1, out: [] });
    expect(r.err).toMatch(/^no Mapping found under .*tests: give the folder or file holding the Mappings too/);
    expect((await run('test', path.join(dir, 'tests'), path.join(dir, 'shop.yaml'))).out.at(-1)).toMatch(/^\d+ passed, \d+ failed \(1 file\)$/);
  });

  it('reports resource problems and runs no test; other Kubernetes objects and non-resource files are left alone', async () => {
    const dir = await project({
      'ok.test.yaml': 'mapping: shop\nevent: {type: page}\nexpect: {dropped: no_matching_rule}\n',
      'deploy.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n',
      'package.json': '{"name": "x"}',
      'chart/template.yaml': 'metadata: {{ .Values.name }}\n',
    });
    expect((await run('test', dir)).code).toBe(0);
    await writeFile(path.join(dir, 'broken.yaml'), 'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: broken}\nspec: {default: {fields: [{to: a}]}, extra: 1}\n');
    const r = await run('test', dir);
    expect(r.code).toBe(1);
    expect(r.out).toEqual([]);
    expect(r.err).toContain(`${dir}/broken.yaml#0 (Mapping/default/broken): /spec/extra: is not a known field (additionalProperties)`);
    expect(r.err).toMatch(/1 problem\(s\) in the resources under .*; no test ran$/);
  });

  it('names the compile problems of a Mapping a case uses', async () => {
    const dir = await project({ 'm.test.yaml': 'mapping: m\nevent: {type: page}\nexpect: {dropped: no_matching_rule}\n' });
    await writeFile(path.join(dir, 'm.yaml'), 'apiVersion: switchyard.io/v1alpha1\nkind: Mapping\nmetadata: {name: m}\nspec: {default: {fields: [{to: a, from: x, value: 1}]}}\n');
    const r = await run('test', dir);
    expect(r.code).toBe(1);
    expect(r.out[1]).toBe('    the Mapping does not compile:');
    expect(r.out[2]).toContain('(Mapping/default/m): /spec/default/fields/0/value: a rule takes exactly one of from, value and expr');
  });
});

describe('comparing outcomes', () => {
  const mapped = (payload: Record<string, unknown>): EventOutcome => ({ kind: 'output', name: 'n', payload });
  const runner = { integration: undefined };

  it.each<[string, Expectation, Record<string, unknown>, string[]]>([
    ['extra keys of objects pass contains', { contains: { payload: { a: { b: 1 } } } }, { a: { b: 1, c: 2 }, d: 3 }, []],
    ['arrays must have the same length', { contains: { payload: { a: [{ b: 1 }] } } }, { a: [{ b: 1, c: 2 }, { b: 2 }] }, ['payload.a[1]: expected (missing), got {"b":2}']],
    ['arrays are compared element by element', { contains: { payload: { a: [1, 2] } } }, { a: [2, 1] }, ['payload.a[0]: expected 1, got 2', 'payload.a[1]: expected 2, got 1']],
    ['a name given must match', { contains: { name: 'm' } }, {}, ['name: expected "m", got "n"']],
    ['an array is not an object', { output: { name: 'n', payload: { a: {} } } }, { a: [] }, ['payload.a: expected {}, got []']],
    ['output is exact', { output: { name: 'n', payload: { a: 1 } } }, { a: 1, b: null }, ['payload.b: expected (missing), got null']],
  ])('%s', (_what, expectation, payload, lines) => {
    expect(compareOutcome(expectation, mapped(payload), runner)).toEqual(lines);
  });

  it.each([
    [['payload', 'a', 0, 'b'], 'payload.a[0].b'],
    [['payload', 'price.eur', 'x y'], 'payload["price.eur"]["x y"]'],
    [[], '(root)'],
  ])('writes diff path %j as %s', (segments, text) => {
    expect(formatPath(segments)).toBe(text);
  });

  it('matches failures by exact rule and field and a message substring', () => {
    const failed: EventOutcome = { kind: 'failed', failure: { rule: '/default/fields/0', field: 'a', message: 'required field a has no value' } };
    expect(compareOutcome({ failed: { rule: '/default/fields/0', field: 'a', message: 'has no value' } }, failed, runner)).toEqual([]);
    expect(compareOutcome({ failed: { field: 'b', message: 'missing' } }, failed, runner)).toEqual([
      'failed.field: expected "b", got "a"',
      'failed.message: expected to contain "missing", got "required field a has no value"',
    ]);
  });

  it('matches invalid output by violation path', () => {
    const invalid: EventOutcome = { kind: 'invalid', name: 'n', payload: {}, violations: [{ instancePath: '/a', path: 'a', rule: 'type', message: 'must be number' }], error: 'e' };
    expect(compareOutcome({ invalid: { path: 'a' } }, invalid, runner)).toEqual([]);
    expect(compareOutcome({ invalid: { path: 'b' } }, invalid, runner)).toEqual(['invalid.path: expected a violation at "b", got "a"']);
  });

  it('gives a default name to each case and resolves event files next to the test file', () => {
    const parsed = parseTestFile('mapping: m\ncases:\n  - {eventFile: e/x.json, expect: {dropped: filtered}}\n  - {name: named, mapping: o, event: {}, consentMissing: deny, expect: {dropped: filtered}}\n', '/p/t.test.yaml');
    expect(parsed.problems).toEqual([]);
    expect(parsed.cases.map((c) => [c.name, c.mapping, c.eventFile, c.consentMissing, c.pointer])).toEqual([
      ['t.test.yaml #1', 'm', '/p/e/x.json', 'allow', '/cases/0'],
      ['named', 'o', undefined, 'deny', '/cases/1'],
    ]);
  });
});
