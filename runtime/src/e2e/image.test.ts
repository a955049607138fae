// The container images as the Dockerfile makes them, without a Docker engine. The production-
// dependency stages are replayed for real (their COPY of the package manifests and their `npm ci`,
// read from the Dockerfile) in temp folders, the built files the final stages copy from the build
// stage are added from this checkout (the suite runs after `npm run build`), and the CLIs are run
// from there: an import of a devDependency, a missing workspace or a tag bundle left out fails
// here as it would in the image. What the Dockerfile states (pinned bases, the non-root user, the
// entrypoints, the labels) is checked by reading it.
import { jest } from '@jest/globals';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { freePort } from '../local/nats-server.js';
import { eventually } from '../test-support/http-receiver.js';
import { natsFixture } from '../test-support/nats.js';
import { useTempDirs } from '../test-support/temp.js';

// Two npm installs and a dozen node processes on a shared two-core machine.
jest.setTimeout(120_000);

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The image's working folder; its content maps onto a temp folder (replay) or onto the checkout (build stage). */
const APP = '/app';
const USER = '10001:10001';
const DEV_ONLY = [/^typescript$/, /^jest$/, /^@jest\//, /^esbuild$/, /^@esbuild\//, /^@swc\//, /^tsx$/, /^playwright-core$/, /^@types\/jest$/];
const OPERATOR_ONLY = [/^@kubernetes\/client-node$/];

/** One Dockerfile instruction: its keyword (upper case) and the rest of its line(s), continuations joined. */
interface Instruction {
  keyword: string;
  args: string;
}

/** One build stage: the image it starts from (as written), its name (`AS …`) and its instructions. */
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** A Dockerfile read into the global ARG defaults (before the first FROM) and its stages. */
interface Dockerfile {
  globalArgs: Map<string, string>;
  stages: Stage[];
}

/**
 * Reads Dockerfile text: comment lines dropped, backslash continuations joined, instructions
 * grouped into stages by FROM. Enough for this repository's Dockerfile (no heredocs, no parser
 * directives beyond comments). @throws Error on an instruction before the first FROM other than ARG.
 */
function parseDockerfile(text: string): Dockerfile {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(`${pending}${line}`.trim());
    pending = '';
  }
  if (pending) logical.push(pending.trim());
  const parsed: Dockerfile = { globalArgs: new Map(), stages: [] };
  for (const line of logical.filter((l) => l !== '')) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line)!;
    const instruction = { keyword: keyword.toUpperCase(), args };
    if (instruction.keyword === 'FROM') {
      const [from = '', as, name] = args.split(/\s+/);
      parsed.stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (parsed.stages.length > 0) {
      parsed.stages.at(-1)!.instructions.push(instruction);
    } else if (instruction.keyword === 'ARG') {
      const [key = '', value = ''] = args.split('=');
      parsed.globalArgs.set(key, value);
    } else {
      throw new Error(`Dockerfile: ${instruction.keyword} before the first FROM`);
    }
  }
  return parsed;
}

/** The stage named `name`. @throws Error when the Dockerfile has none. */
function stageNamed(dockerfile: Dockerfile, name: string): Stage {
  const stage = dockerfile.stages.find((s) => s.name === name);
  if (!stage) throw new Error(`Dockerfile has no stage ${name}`);
  return stage;
}

/** `${NAME}` and `$NAME` replaced by the value in `args` (unknown names are left as written). */
function expand(text: string, args: Map<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => args.get((braced ?? bare)!) ?? whole);
}

/** A COPY instruction split into its `--from` stage (if any), sources and destination (shell form only). */
function parseCopy(instruction: Instruction): { from: string | undefined; sources: string[]; dest: string } {
  if (instruction.args.startsWith('[')) throw new Error(`COPY in JSON form is not replayed: ${instruction.args}`);
  const words = instruction.args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
}

/** The stage's WORKDIR; this Dockerfile keeps everything under /app. @throws Error when it is not APP. */
function workdirOf(stage: Stage): string {
  const workdir = stage.instructions.find((i) => i.keyword === 'WORKDIR')?.args;
  if (workdir !== APP) throw new Error(`stage ${stage.name} works in ${workdir ?? '/'}, not ${APP}`);
  return workdir;
}

/** `container` (an absolute path under APP) as a path under `root`. @throws Error for paths outside APP. */
function underApp(root: string, container: string): string {
  const relative = path.posix.relative(APP, container);
  if (relative.startsWith('..') || path.posix.isAbsolute(relative)) throw new Error(`${container} is outside ${APP}`);
  return path.join(root, relative);
}

/**
 * Copies `source` to `dest` as Docker's COPY does: a folder's content merges into `dest`; a file
 * lands in `dest` when it names a folder (trailing slash), else becomes `dest`. Symlinks are kept
 * as they are (npm's workspace links are relative).
 */
async function copyLikeDocker(source: string, dest: string, destIsFolder: boolean): Promise<void> {
  const isFolder = (await stat(source)).isDirectory();
  const target = !isFolder && destIsFolder ? path.join(dest, path.basename(source)) : dest;
  await mkdir(isFolder ? target : path.dirname(target), { recursive: true });
  await cp(source, target, { recursive: true, verbatimSymlinks: true });
}

/** The `npm ci …` command of a RUN instruction, as argv without `npm`, or undefined when it runs none. */
function npmCiArgs(instruction: Instruction): string[] | undefined {
  const command = instruction.args.split('&&').map((part) => part.trim()).find((part) => /^npm ci(\s|$)/.test(part));
  if (command === undefined) return undefined;
  // Split on whitespace below: anything a shell would read differently must not be there.
  if (/["'`$;|<>\\]/.test(command)) throw new Error(`npm ci command with shell syntax is not replayed: ${command}`);
  return command.split(/\s+/).slice(1);
}

/** Whether `stage` installs production dependencies (a RUN of `npm ci --omit=dev`), as opposed to the build stage. */
function installsProductionDependencies(stage: Stage): boolean {
  return stage.instructions.some((i) => i.keyword === 'RUN' && npmCiArgs(i)?.includes('--omit=dev') === true);
}

/**
 * Replays a dependency stage into `root` (standing for its /app): its COPY instructions from the
 * build context (this checkout) and its `npm ci`, with `--prefer-offline` added so npm's cache
 * serves what it has. Resolves to the npm arguments run.
 * @throws Error on any other RUN, or when npm fails (its output in the message).
 */
async function replayDependencyStage(stage: Stage, root: string): Promise<string[]> {
  const workdir = workdirOf(stage);
  let npmArgs: string[] | undefined;
  for (const instruction of stage.instructions) {
    if (instruction.keyword === 'COPY') {
      const copy = parseCopy(instruction);
      if (copy.from) throw new Error(`dependency stage ${stage.name} copies from ${copy.from}`);
      const dest = underApp(root, path.posix.resolve(workdir, copy.dest));
      for (const source of copy.sources) await copyLikeDocker(path.join(repoRoot, source), dest, copy.dest.endsWith('/') || copy.sources.length > 1);
    } else if (instruction.keyword === 'RUN') {
      npmArgs = npmCiArgs(instruction);
      if (!npmArgs) throw new Error(`dependency stage ${stage.name} runs more than npm ci: ${instruction.args}`);
      const args = ['ci', ...npmArgs, '--prefer-offline'];
      try {
        await execFileAsync('npm', args, { cwd: root, env: { ...process.env, npm_config_update_notifier: 'false' }, maxBuffer: 16 << 20 });
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string; message: string };
        throw new Error(`npm ${args.join(' ')} failed in the replay of ${stage.name}: ${err.stderr ?? err.message}`);
      }
    }
  }
  if (!npmArgs) throw new Error(`dependency stage ${stage.name} runs no npm ci`);
  return npmArgs;
}

/**
 * Builds in `root` the /app of final stage `name`: the dependency stage it copies whole is replayed
 * there, and what it copies from the build stage comes from this checkout's built files.
 * Resolves to the npm ci arguments of the replayed dependency stage.
 */
async function assembleFinalStage(dockerfile: Dockerfile, name: string, root: string): Promise<string[]> {
  const stage = stageNamed(dockerfile, name);
  let npmArgs: string[] | undefined;
  for (const instruction of stage.instructions.filter((i) => i.keyword === 'COPY')) {
    const copy = parseCopy(instruction);
    if (!copy.from) throw new Error(`final stage ${name} copies from the build context: ${instruction.args}`);
    const from = stageNamed(dockerfile, copy.from);
    if (installsProductionDependencies(from)) {
      // The whole /app of the dependency stage, first, so the replay can run in place.
      expect({ sources: copy.sources, dest: copy.dest, first: npmArgs === undefined }).toEqual({ sources: [APP], dest: APP, first: true });
      expect(await readdir(root)).toEqual([]);
      npmArgs = await replayDependencyStage(from, root);
    } else {
      // The build stage's /app is this checkout, built.
      workdirOf(from);
      for (const source of copy.sources) {
        await copyLikeDocker(underApp(repoRoot, source), underApp(root, copy.dest), copy.dest.endsWith('/'));
      }
    }
  }
  if (!npmArgs) throw new Error(`final stage ${name} copies no dependency stage`);
  return npmArgs;
}

/** Every package installed under `root`'s node_modules folders (nested ones too): its name and folder. */
async function installedPackages(root: string): Promise<Array<{ name: string; dir: string }>> {
  const found: Array<{ name: string; dir: string }> = [];
  async function walkNodeModules(modules: string): Promise<void> {
    for (const entry of await readdir(modules, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const names = entry.name.startsWith('@') ? (await readdir(path.join(modules, entry.name))).map((n) => `${entry.name}/${n}`) : [entry.name];
      for (const name of names) {
        const dir = path.join(modules, name);
        found.push({ name, dir });
        // Workspace links point into the tree itself: their node_modules are walked below, once.
        if ((await lstat(dir)).isSymbolicLink()) continue;
        if (existsSync(path.join(dir, 'node_modules'))) await walkNodeModules(path.join(dir, 'node_modules'));
      }
    }
  }
  await walkNodeModules(path.join(root, 'node_modules'));
  for (const workspace of ['runtime', 'operator', 'client']) {
    const nested = path.join(root, workspace, 'node_modules');
    if (existsSync(nested)) await walkNodeModules(nested);
  }
  return found;
}

/** Runs `node <args>` in `cwd` with only the image's environment; resolves with its exit code and output. */
async function runNode(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env: imageEnv(), maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

/** The environment of a container of these images: NODE_ENV from the Dockerfile, no NODE_PATH or NODE_OPTIONS of ours. */
function imageEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: '/nonexistent', NODE_ENV: 'production', LOG_LEVEL: 'warn' };
}

const exitCode = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('container images (Dockerfile)', () => {
  const tempDir = useTempDirs('sy-image-');
  let dockerfile: Dockerfile;
  let runtimeVersion: string;
  /** The root package.json's `engines.node`, e.g. `>=20.18`. */
  let enginesNode: string;
  const trees: Record<'runtime' | 'operator', { root: string; npmArgs: string[] }> = {} as never;

  beforeAll(async () => {
    dockerfile = parseDockerfile(await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8'));
    runtimeVersion = (JSON.parse(await readFile(path.join(repoRoot, 'runtime/package.json'), 'utf8')) as { version: string }).version;
    enginesNode = (JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    await Promise.all(
      (['runtime', 'operator'] as const).map(async (target) => {
        const root = await tempDir();
        trees[target] = { root, npmArgs: await assembleFinalStage(dockerfile, target, root) };
      }),
    );
  }, 240_000);

  describe('as written', () => {
    it('starts every stage from an image pinned to an exact Node 20 release, or from an earlier stage', () => {
      const stageNames = new Set(dockerfile.stages.map((s) => s.name));
      const engines = /(\d+)\.(\d+)/.exec(enginesNode)!;
      for (const stage of dockerfile.stages) {
        const image = expand(stage.from, dockerfile.globalArgs);
        if (stageNames.has(image)) continue;
        const match = /^[a-z0-9./_-]+:(\d+)\.(\d+)\.(\d+)(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/.exec(image);
        expect({ image, pinned: match !== null }).toEqual({ image, pinned: true });
        const [major, minor] = [Number(match![1]), Number(match![2])];
        expect(major).toBe(Number(process.versions.node.split('.')[0]));
        expect(major * 1000 + minor).toBeGreaterThanOrEqual(Number(engines[1]) * 1000 + Number(engines[2]));
      }
    });

    it.each(['runtime', 'operator'])('final stage %s runs as 10001:10001 in production mode, its CLI as entrypoint, nothing installed in it', (target) => {
      const stage = stageNamed(dockerfile, target);
      const of = (keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
      expect(of('USER').at(-1)).toBe(USER);
      expect(of('ENV')).toContain('NODE_ENV=production');
      const cli = target === 'runtime' ? '/app/runtime/bin/switchyard.js' : '/app/operator/bin/switchyard-operator.js';
      expect(JSON.parse(of('ENTRYPOINT').at(-1)!)).toEqual(['node', cli]);
      // npm runs only in the dependency stages: their cache never reaches a final image.
      expect(of('RUN')).toEqual([]);
    });

    it.each(['runtime', 'operator'])('final stage %s carries the OCI labels, its version defaulting to the packages’ version', (target) => {
      const stage = stageNamed(dockerfile, target);
      const args = new Map(stage.instructions.filter((i) => i.keyword === 'ARG').map((i) => i.args.split('=') as [string, string]));
      const labels = new Map<string, string>();
      for (const label of stage.instructions.filter((i) => i.keyword === 'LABEL')) {
        for (const [, key, value] of label.args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) labels.set(key!, expand(value!.replace(/^"|"$/g, ''), args));
      }
      expect(Object.fromEntries(labels)).toMatchObject({
        'org.opencontainers.image.source': expect.stringMatching(/^https:\/\//),
        'org.opencontainers.image.version': runtimeVersion,
        'org.opencontainers.image.licenses': 'Apache-2.0',
      });
    });

    it('keeps host installs and builds out of the build context', async () => {
      const ignored = (await readFile(path.join(repoRoot, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim());
      expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', '**/dist', '**/*.tsbuildinfo', '.git']));
    });
  });

  describe('replayed', () => {
    it('installs production dependencies only, with --ignore-scripts, none of which needs an install script', async () => {
      for (const target of ['runtime', 'operator'] as const) {
        expect(trees[target].npmArgs).toEqual(expect.arrayContaining(['--omit=dev', '--ignore-scripts']));
        const packages = await installedPackages(trees[target].root);
        expect(packages.length).toBeGreaterThan(50);
        const names = packages.map((p) => p.name);
        expect(names.filter((n) => DEV_ONLY.some((re) => re.test(n)))).toEqual([]);
        if (target === 'runtime') expect(names.filter((n) => OPERATOR_ONLY.some((re) => re.test(n)))).toEqual([]);
        else expect(names).toContain('@kubernetes/client-node');
        // --ignore-scripts would leave a package with an install step (a native addon) broken.
        const withInstallStep: string[] = [];
        for (const p of packages) {
          const manifest = JSON.parse(await readFile(path.join(p.dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string>; gypfile?: boolean };
          const scripts = Object.keys(manifest.scripts ?? {}).filter((s) => ['preinstall', 'install', 'postinstall'].includes(s));
          if (scripts.length > 0 || manifest.gypfile || existsSync(path.join(p.dir, 'binding.gyp'))) withInstallStep.push(p.name);
        }
        expect(withInstallStep).toEqual([]);
      }
    });

    it('runtime image: the switchyard CLI loads, validates the examples and finds the browser tag', async () => {
      const { root } = trees.runtime;
      const cli = path.join(root, 'runtime/bin/switchyard.js');
      const version = await runNode(root, [cli, '--version']);
      expect(version).toMatchObject({ code: 0, stdout: `${runtimeVersion}\n` });
      const validate = await runNode(root, [cli, 'validate', '-f', path.join(repoRoot, 'examples/')]);
      expect(validate).toMatchObject({ code: 0, stdout: expect.stringMatching(/\d+ resource\(s\) valid/) });
      const ingestHelp = await runNode(root, [cli, 'ingest', '--help']);
      expect(ingestHelp).toMatchObject({ code: 0, stdout: expect.stringContaining('--settings') });
      // The starter Mappings are assets copied next to the compiled files.
      const starter = await runNode(root, [cli, 'destinations', 'starter', 'ga4']);
      expect(starter).toMatchObject({ code: 0, stdout: expect.stringContaining('kind: Mapping') });
      // Resolved as the ingestion resolves it (from runtime/dist), to the bundle inside the tree.
      const resolver = `import { createRequire } from 'node:module'; process.stdout.write(createRequire(process.argv[1]).resolve('@switchyard/client/tag'))`;
      const tag = await runNode(root, ['--input-type=module', '-e', resolver, path.join(root, 'runtime/dist/ingestion/tag.js')]);
      expect(tag.code).toBe(0);
      expect(tag.stdout).toBe(path.join(root, 'client/dist/tag/switchyard.min.js'));
      expect((await stat(tag.stdout)).size).toBeGreaterThan(1000);
    });

    it('runtime image: `switchyard ingest` stores events in NATS and serves the browser tag', async () => {
      const { root } = trees.runtime;
      const fx = await natsFixture();
      const dir = await tempDir();
      const settings = path.join(dir, 'settings.yaml');
      await writeFile(settings, JSON.stringify({ nats: { servers: [process.env.NATS_URL] }, streams: fx.streams }));
      const sources = path.join(dir, 'sources.yaml');
      await writeFile(sources, JSON.stringify({ sources: [{ namespace: 'shop', name: 'web', writeKey: 'wk_image_test_01', allowedOrigins: [], limits: {} }] }));
      const port = await freePort();
      const ingest = spawn(process.execPath, [path.join(root, 'runtime/bin/switchyard.js'), 'ingest', '--sources', sources, '--settings', settings, '--port', String(port), '--host', '127.0.0.1'], {
        cwd: root,
        env: imageEnv(),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      ingest.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      try {
        await eventually(
          async () => {
            if (ingest.exitCode !== null) throw new Error(`ingest exited ${ingest.exitCode}: ${stderr}`);
            return (await request(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.statusCode === 200;
          },
          20_000,
          'ingest ready',
        );
        const tag = await request(`http://127.0.0.1:${port}/tag/wk_image_test_01.js`);
        expect(tag.statusCode).toBe(200);
        expect(await tag.body.text()).toContain('__sy_config');
        const track = await request(`http://127.0.0.1:${port}/v1/track`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ writeKey: 'wk_image_test_01', event: 'Image Tested', userId: 'u1', messageId: 'image-1' }),
        });
        expect(track.statusCode).toBe(200);
        await track.body.dump();
        expect((await fx.jsm.streams.info(fx.streams.events.name)).state.messages).toBe(1);
        ingest.kill('SIGTERM');
        expect(await exitCode(ingest)).toBe(0);
      } finally {
        if (ingest.exitCode === null) ingest.kill('SIGKILL');
        await fx.cleanup();
      }
    });

    it('operator image: both CLIs load', async () => {
      const { root } = trees.operator;
      const operator = await runNode(root, [path.join(root, 'operator/bin/switchyard-operator.js'), '--version']);
      expect(operator).toMatchObject({ code: 0, stdout: `${runtimeVersion}\n` });
      const runtime = await runNode(root, [path.join(root, 'runtime/bin/switchyard.js'), '--version']);
      expect(runtime).toMatchObject({ code: 0, stdout: `${runtimeVersion}\n` });
    });
  });
});
