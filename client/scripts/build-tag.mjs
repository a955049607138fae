#!/usr/bin/env node
// Builds the browser tag: dist/tag/switchyard.min.js (served by the ingestion) and the unminified
// dist/tag/switchyard.js (for reading and debugging). Prints the sizes the budget is about.
import { build } from 'esbuild';
import { mkdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { tagBuildOptions, TAG_GZIP_BUDGET } from './tag-build-options.mjs';

const outDir = fileURLToPath(new URL('../dist/tag/', import.meta.url));
mkdirSync(outDir, { recursive: true });

await Promise.all([
  build({ ...tagBuildOptions, minify: true, outfile: `${outDir}switchyard.min.js` }),
  build({ ...tagBuildOptions, minify: false, outfile: `${outDir}switchyard.js` }),
]);

const minified = readFileSync(`${outDir}switchyard.min.js`);
const gzip = gzipSync(minified, { level: 9 }).length;
console.log(`tag: ${minified.length} min, ${gzip} gzip`);
// The size test fails over budget; the build only warns, so a heavy tag can still be inspected.
if (gzip > TAG_GZIP_BUDGET) console.warn(`tag: over the budget of ${TAG_GZIP_BUDGET} bytes gzip`);
