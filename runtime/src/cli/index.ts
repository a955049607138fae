import { Command, CommanderError } from 'commander';
import { SwitchyardError } from '../errors.js';
import { registerDev } from './dev.js';
import { registerForward } from './forward.js';
import { registerIngest } from './ingest.js';
import { registerReceiver } from './receiver.js';
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
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  registerDev(program, io.out, io.err);
  registerValidate(program, io.out, io.err);
  registerIngest(program);
  registerForward(program);
  registerReceiver(program, io.out);
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
    throw e;
  }
}
