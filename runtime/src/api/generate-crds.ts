// Writes crds/*.yaml from the API definitions. Run with `npm run crds`.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrds } from './crds.js';

const outDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../crds');
await mkdir(outDir, { recursive: true });
for (const [name, text] of renderCrds()) {
  await writeFile(path.join(outDir, name), text);
  console.log(`wrote crds/${name}`);
}
