import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const clientDir = fileURLToPath(new URL('..', import.meta.url));

/** The client package's version, compiled into the tag as `context.library.version`. */
export const TAG_VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

/**
 * esbuild options of the browser tag, shared by `build-tag.mjs` and the size test so both measure
 * the same bundle: one IIFE (the ingestion wraps it in `(function(__sy_config){…})(config)`), ES2020
 * syntax (Safari 14+, Chrome 80+, Firefox 74+), `__SY_VERSION__` replaced by {@link TAG_VERSION}.
 * `minify` and `outfile`/`write` are left to the caller.
 * @type {import('esbuild').BuildOptions}
 */
export const tagBuildOptions = {
  absWorkingDir: clientDir,
  entryPoints: ['src/browser/index.ts'],
  bundle: true,
  format: 'iife',
  target: 'es2020',
  platform: 'browser',
  legalComments: 'none',
  charset: 'utf8',
  define: { __SY_VERSION__: JSON.stringify(TAG_VERSION) },
  logLevel: 'warning',
};

/** Largest minified + gzipped tag, in bytes (the Sync Injector included). */
export const TAG_GZIP_BUDGET = 12 * 1024;
