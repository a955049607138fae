import { Command, CommanderError } from 'commander';
import { RUNTIME_VERSION } from '../destinations/index.js';
import { SwitchyardError } from '../errors.js';
import { registerDeadLetters } from './deadletters.js';
import { registerDestinations } from './destinations.js';
import { registerDev } from './dev.js';
import { registerForward } from './forward.js';
import { registerIngest } from './ingest.js';
import { registerMap } from './map.js';
import { registerReceiver } from './receiver.js';
import { registerSnippet } from './snippet.js';
import { registerTest } from './test-command.js';
import { registerValidate } from './validate.js';

/** Output sinks of the CLI; tests capture them. */
export interface CliIo {
  out(s: string): void;
  err(s: string): void;
}

const stdio: CliIo = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) };

/**
 * Runs the `switchyard` CLI with `argv` (as process.argv: node, script, args…).
 * @returns the process exit code (0 ok, 1 invalid input or failure, 2 usage error).
 */
export async function main(argv: string[], io: CliIo = stdio): Promise<number> {
  const program = new Command('switchyard')
    .description('Switchyard: self-hosted customer-event router')
    .version(RUNTIME_VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  registerDev(program, io.out, io.err);
  registerValidate(program, io.out, io.err);
  registerMap(program, io.out, io.err);
  registerTest(program, io.out, io.err);
  registerIngest(program);
  registerForward(program);
  registerReceiver(program, io.out);
  registerDestinations(program, io.out);
  registerSnippet(program, io.out);
  registerDeadLetters(program, io.out, io.err);
  process.exitCode = 0;
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof SwitchyardError) {
      io.err(`error ${e.code}: ${e.message}`);
      return 1;
    }
    // Anything else (a port in use, an unreadable file…): one line; the stack with LOG_LEVEL=debug.
    io.err(`error: ${(e as Error).message ?? String(e)}`);
    if (process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace') io.err(String((e as Error).stack));
    return 1;
  }
}
