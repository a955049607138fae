import type { Command } from 'commander';
import { formatResourceProblems, loadResources } from '../api/index.js';
import { resolveLocal } from '../local/resolve.js';

/**
 * `switchyard validate -f <files or folders…>`: checks resources offline against the schemas,
 * compiles every Mapping and checks references between them (Secrets only with
 * `--require-secrets`). Exit code 0 when all are valid, 1
 * otherwise (for GitOps CI).
 */
export function registerValidate(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command('validate')
    .description('check Source, Integration, Mapping (and Secret) YAML offline: schemas, mapping rules, references')
    .requiredOption('-f, --filename <paths...>', 'files or folders (*.yaml, *.yml, *.json) to check')
    .option('--require-secrets', 'also fail when a referenced Secret is not among the files (Secrets usually live outside Git)', false)
    .action(async (opts: { filename: string[]; requireSecrets: boolean }) => {
      const { resources, problems, invalid } = await loadResources(opts.filename);
      problems.push(...resolveLocal(resources, { requireSecrets: opts.requireSecrets, invalid }).problems);
      if (resources.length === 0 && problems.length === 0) {
        err(`no resources found in ${opts.filename.join(', ')} (files ending in .yaml, .yml or .json)`);
        process.exitCode = 1;
        return;
      }
      if (problems.length > 0) {
        err(formatResourceProblems(problems));
        err(`${problems.length} problem(s) in ${opts.filename.join(', ')}`);
        process.exitCode = 1;
        return;
      }
      out(`${resources.length} resource(s) valid`);
    });
}
