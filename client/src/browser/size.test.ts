// The tag's size budget: the bundle the build writes (same esbuild options), minified and gzipped.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { TAG_GZIP_BUDGET, tagBuildOptions } from '../../scripts/tag-build-options.mjs';

it('stays within the gzip budget, Sync Injector included', async () => {
  const result = await build({ ...tagBuildOptions, minify: true, write: false, outfile: 'switchyard.min.js' });
  const minified = result.outputFiles[0]!.contents;
  const gzip = gzipSync(minified, { level: 9 }).length;
  console.log(`tag: ${minified.length} min, ${gzip} gzip (budget ${TAG_GZIP_BUDGET})`);
  expect(gzip).toBeLessThanOrEqual(TAG_GZIP_BUDGET);
});
