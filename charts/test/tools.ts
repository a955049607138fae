import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cached = new Map<string, string>();

/**
 * Path of a pinned test binary (or generated folder) already built by scripts/test-binaries.sh
 * (`--cached NAME`), e.g. `helm`, `kubectl`, `glua`, `monitoring-crds`.
 * @throws Error naming the build command when it is not built yet.
 */
export function testBinary(name: string): string {
  const known = cached.get(name);
  if (known) return known;
  let found: string;
  try {
    found = execFileSync(path.join(repoRoot, 'scripts/test-binaries.sh'), ['--cached', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    throw new Error(`${name} is not built: run scripts/test-binaries.sh ${name} (builds it into ~/.cache/switchyard/bin once)`);
  }
  cached.set(name, found);
  return found;
}

/** What a finished tool run printed, and its exit code. */
export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin` with `args` (stdin: `input`, else empty). Resolves with the exit code and output,
 * never rejecting on a non-zero exit (`kubectl diff` exits 1 when it found differences).
 * @throws Error when the program cannot be started at all.
 */
export function runTool(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, args, { env: opts.env, cwd: opts.cwd, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
    child.stdin!.on('error', () => undefined); // the program may exit before reading all of it
    child.stdin!.end(opts.input ?? '');
  });
}
