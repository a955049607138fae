import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import type { BuiltinSyncs, SyncConfig, TagConfig } from '@switchyard/client/core';
import { TagSpec, tagProblems } from '../api/source.js';
import { parseSettings } from '../api/validate.js';
import { parseDuration } from '../duration.js';
import { ErrorCodes, SwitchyardError, type Problem } from '../errors.js';
import type { IngestionSource } from './sources.js';

/** A Source's tag as the ingestion serves it, worked out once each time the Sources are set. */
export interface ResolvedTag {
  /** `spec.tag` with every default filled in (a Source without one gets all defaults). */
  spec: TagSpec;
  /** The configuration embedded in the served script; syncs with {@link problems} left out. */
  config: TagConfig;
  /** What {@link tagProblems} found; the syncs concerned are not served. Empty when fine. */
  problems: Problem[];
}

/**
 * The `spec.tag` of a Source checked against its schema, with every default filled in (a Source
 * without one gets all defaults).
 * @throws SwitchyardError INVALID_SETTINGS naming the Source and each failing field.
 */
function defaultedTagSpec(source: IngestionSource): TagSpec {
  return parseSettings<TagSpec>(TagSpec, source.tag ?? {}, `spec.tag of Source ${source.namespace}/${source.name}`) as TagSpec;
}

/** Copies `value` without its undefined fields (the served JSON states only what is set). */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Maps a Source's `spec.tag` onto the tag's {@link TagConfig}: durations become milliseconds,
 * `consent.missing` comes from the Source's `spec.consent.missing`, `apiHost` loses a trailing
 * slash, and syncs breaking {@link tagProblems} are left out (the rest of the tag still works).
 * @throws SwitchyardError INVALID_SETTINGS when `tag` breaks the `TagSpec` schema.
 */
export function resolveTag(source: IngestionSource): ResolvedTag {
  const spec = defaultedTagSpec(source);
  const problems = tagProblems(spec);
  const badSyncs = new Set(problems.map((p) => Number(/^\/syncs\/(\d+)\//.exec(p.path)?.[1])));
  const { cookie, transport, consent, builtinSyncs } = spec;
  const builtins: BuiltinSyncs = {
    meta: defined({ ...builtinSyncs.meta }),
    google: defined({ ...builtinSyncs.google }),
    tiktok: defined({ ...builtinSyncs.tiktok }),
    microsoft: defined({ ...builtinSyncs.microsoft }),
    pinterest: defined({ ...builtinSyncs.pinterest }),
    snapchat: defined({ ...builtinSyncs.snapchat }),
    crossDomain: defined({ ...builtinSyncs.crossDomain, domains: [...builtinSyncs.crossDomain.domains] }),
  };
  const config: TagConfig = defined({
    writeKey: source.writeKey,
    apiHost: spec.apiHost?.replace(/\/+$/, ''),
    cookie: defined({ ...cookie }),
    serverCookie: spec.serverCookie.enabled,
    serverCookieTimeoutMs: Math.round(parseDuration(spec.serverCookie.timeout)),
    transport: {
      maxEvents: transport.maxEvents,
      maxBytes: transport.maxBytes,
      flushIntervalMs: Math.round(parseDuration(transport.flushInterval)),
      retryMinDelayMs: Math.round(parseDuration(transport.retryMinDelay)),
      retryMaxDelayMs: Math.round(parseDuration(transport.retryMaxDelay)),
      maxAttempts: transport.maxAttempts,
      maxAgeMs: Math.round(parseDuration(transport.maxAge)),
      leaseMs: Math.round(parseDuration(transport.lease)),
    },
    consent: defined({
      missing: source.consent?.missing ?? 'allow',
      cookie: consent.cookie ? { name: consent.cookie.name, format: consent.cookie.format, categories: { ...consent.cookie.categories } } : undefined,
      defaults: { ...consent.defaults },
    }),
    builtinSyncs: builtins,
    syncs: spec.syncs.filter((_, i) => !badSyncs.has(i)).map((s) => defined({ ...s }) as SyncConfig),
  });
  return { spec, config, problems };
}

/**
 * The served script: `(function(__sy_config){<bundle>\n})(<config JSON>);`. The bundle reads the
 * free identifier `__sy_config`. In the JSON, `<` is written `\u003c` (no `</script>` or `<!--`
 * when the script is inlined in HTML) and U+2028/U+2029 are escaped (line terminators in
 * JavaScript before ES2019).
 */
export function renderTagScript(bundle: string, config: TagConfig): string {
  const json = JSON.stringify(config).replace(/[<\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `(function(__sy_config){${bundle}\n})(${json});`;
}

/** Encodings the tag is served in, best first after the client's own refusals. */
export type TagEncoding = 'br' | 'gzip' | 'identity';

/** One Source's served script in every encoding, with a strong ETag per encoding. */
export interface TagAsset {
  bodies: Record<TagEncoding, Buffer>;
  etags: Record<TagEncoding, string>;
}

/** Why the tag cannot be served: the bundle file is not there (not built). */
export class TagBundleMissingError extends SwitchyardError {
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(ErrorCodes.TAG_BUNDLE_MISSING, `the browser tag bundle ${file} is missing: build it with \`npm run build\` (or \`node client/scripts/build-tag.mjs\`)`, { cause });
    this.name = 'TagBundleMissingError';
  }
}

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/** Where `@switchyard/client/tag` (the minified bundle) is, or a not-found error. */
function bundleFile(): string {
  return createRequire(import.meta.url).resolve('@switchyard/client/tag');
}

/**
 * The tag bundle and the per-Source scripts built from it. The bundle is read once, on first use
 * (a failed read is retried on the next request, so building it fixes a running ingestion); each
 * distinct configuration is rendered and compressed once (gzip level 9, brotli quality 11) and kept
 * while a Source uses it.
 */
export class TagAssets {
  private bundle: Promise<string> | undefined;
  private readonly assets = new Map<string, Promise<TagAsset>>();

  /** @param file the bundle file; default `@switchyard/client/tag`, resolved from this package. */
  constructor(private readonly file?: string) {}

  /** The bundle text. @throws TagBundleMissingError when the file cannot be read. */
  private async loadBundle(): Promise<string> {
    this.bundle ??= (async () => {
      let file = this.file ?? '@switchyard/client/tag';
      try {
        if (this.file === undefined) file = bundleFile();
        return await readFile(file, 'utf8');
      } catch (cause) {
        throw new TagBundleMissingError(file, cause);
      }
    })();
    try {
      return await this.bundle;
    } catch (e) {
      this.bundle = undefined;
      throw e;
    }
  }

  /**
   * The served script of `config` in every encoding.
   * @throws TagBundleMissingError when the bundle is not built.
   */
  async asset(config: TagConfig): Promise<TagAsset> {
    const key = JSON.stringify(config);
    let asset = this.assets.get(key);
    if (!asset) {
      asset = this.build(config);
      this.assets.set(key, asset);
      asset.catch(() => this.assets.delete(key));
    }
    return asset;
  }

  /** Forgets the assets of configurations no Source serves any more. */
  retain(configs: readonly TagConfig[]): void {
    const keep = new Set(configs.map((c) => JSON.stringify(c)));
    for (const key of this.assets.keys()) if (!keep.has(key)) this.assets.delete(key);
  }

  private async build(config: TagConfig): Promise<TagAsset> {
    const identity = Buffer.from(renderTagScript(await this.loadBundle(), config), 'utf8');
    const [gz, br] = await Promise.all([
      gzipAsync(identity, { level: 9 }),
      brotliAsync(identity, {
        params: {
          [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
          [zlibConstants.BROTLI_PARAM_QUALITY]: zlibConstants.BROTLI_MAX_QUALITY,
          [zlibConstants.BROTLI_PARAM_SIZE_HINT]: identity.length,
        },
      }),
    ]);
    const hash = createHash('sha256').update(identity).digest('base64url').slice(0, 27);
    return {
      bodies: { identity, gzip: gz, br },
      // A strong validator names one representation: each encoding has its own.
      etags: { identity: `"${hash}"`, gzip: `"${hash}-gzip"`, br: `"${hash}-br"` },
    };
  }
}

/**
 * Whether an `If-None-Match` header value matches `etag` (weak comparison, as RFC 9110 §13.1.2
 * prescribes for If-None-Match; `*` matches any).
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((raw) => {
    const tag = raw.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}
