// Writes crds/*.yaml and their Helm-template copies in charts/switchyard/templates/crds/ from the API
// definitions. Run with `npm run crds`.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChartCrds, renderCrds } from './crds.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
for (const [dir, files] of [
  ['crds', renderCrds()],
  ['charts/switchyard/templates/crds', renderChartCrds()],
] as const) {
  await mkdir(path.join(repoRoot, dir), { recursive: true });
  for (const [name, text] of files) {
    await writeFile(path.join(repoRoot, dir, name), text);
    console.log(`wrote ${dir}/${name}`);
  }
}
