import type { BuildOptions } from 'esbuild';

/** The client package's version, compiled into the tag as `context.library.version`. */
export declare const TAG_VERSION: string;
/** esbuild options of the browser tag, shared by `build-tag.mjs` and the size test. */
export declare const tagBuildOptions: BuildOptions;
/** Largest minified + gzipped tag, in bytes (the Sync Injector included). */
export declare const TAG_GZIP_BUDGET: number;
