import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

/**
 * Spawns `command args…` so that the kernel sends it SIGTERM when this process dies, even by
 * SIGKILL (setpriv --pdeathsig, which execs, so the pid is the command's; without setpriv the
 * command is spawned as is). `options` are node:child_process spawn options.
 */
export function spawnTied(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  return existsSync(SETPRIV) ? spawn(SETPRIV, ['--pdeathsig', 'TERM', command, ...args], options) : spawn(command, args, options);
}

/**
 * Stops `child`: `signal` (SIGTERM by default) to it, or to its whole process group when
 * `group` is true (it was spawned detached), then SIGKILL after `graceMs` milliseconds.
 * Resolves once it has exited; at once when it already had.
 */
export async function stopChild(child: ChildProcess, graceMs: number, options: { group?: boolean; signal?: NodeJS.Signals } = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const send = (signal: NodeJS.Signals) => {
    try {
      if (options.group) process.kill(-child.pid!, signal);
      else child.kill(signal);
    } catch {
      // Already gone (ESRCH): the exit event follows.
    }
  };
  send(options.signal ?? 'SIGTERM');
  const timer = setTimeout(() => send('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  // The group may outlive its leader (a shell's children): make sure nothing of it stays.
  if (options.group) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // No such group left.
    }
  }
}

/** The last lines a child wrote, kept in memory (at most `maxLines`), for error messages. */
export class OutputTail {
  private lines: string[] = [];
  private partial = '';

  constructor(private readonly maxLines = 60) {}

  /** Adds a chunk of output. */
  push(chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
  }

  /** The kept lines joined with newlines (the unfinished last line included). */
  text(): string {
    return [...this.lines, this.partial].filter((l) => l !== '').join('\n');
  }
}
