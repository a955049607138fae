import type { Command } from 'commander';
import { capProblems, formatResourceProblems, formatSkipped, formatUnread, loadResources } from '../api/index.js';
import { resolveLocal } from '../local/resolve.js';

/**
 * `switchyard validate -f <files or folders…>`: checks resources offline against the schemas,
 * compiles every Mapping and checks references between them (Secrets only with
 * `--require-secrets`). Other Kubernetes objects among the files (Deployments, ConfigMaps…) are
 * skipped and counted. Exit code 0 when all are valid, 1 otherwise (for GitOps CI).
 */
export function registerValidate(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command('validate')
    .description('check Source, Integration, Mapping (and Secret) YAML offline: schemas, mapping rules, references')
    .requiredOption('-f, --filename <paths...>', 'files or folders (*.yaml, *.yml, *.json) to check')
    .option('-R, --recursive', 'also read the subfolders of the folders given (like kubectl apply -R)', false)
    .option('--require-secrets', 'also fail when a referenced Secret is not among the files (Secrets usually live outside Git)', false)
    .action(async (opts: { filename: string[]; requireSecrets: boolean; recursive: boolean }) => {
      const { resources, problems, invalid, skipped, unread } = await loadResources(opts.filename, { recursive: opts.recursive });
      const note = formatUnread(unread);
      if (note) err(note);
      problems.push(...resolveLocal(resources, { requireSecrets: opts.requireSecrets, invalid }).problems);
      // Naming what was skipped lets a typo in a switchyard.io apiVersion be noticed.
      const skippedNote = skipped.length > 0 ? `; ${formatSkipped(skipped)}` : '';
      if (resources.length === 0 && problems.length === 0) {
        // Still a failure, so a wrong path in CI cannot pass.
        err(`no Switchyard resources found in ${opts.filename.join(', ')} (files ending in .yaml, .yml or .json)${skippedNote}`);
        process.exitCode = 1;
        return;
      }
      if (problems.length > 0) {
        err(formatResourceProblems(capProblems(problems)));
        err(`${problems.length} problem(s) in ${opts.filename.join(', ')}`);
        process.exitCode = 1;
        return;
      }
      out(`${resources.length} resource(s) valid${skippedNote}`);
    });
}
