import type { Command } from 'commander';
import { snippet } from '@switchyard/client/core';

/**
 * The HTML a page puts in its `<head>` to load a Source's browser tag from the ingestion at `host`
 * (the snippet of `@switchyard/client/core`, in a `<script>` element).
 */
export function snippetHtml(host: string, writeKey: string): string {
  return `<script>\n${snippet(host, writeKey)}\n</script>`;
}

/** `switchyard snippet --host <url> --write-key <key>`: prints a Source's snippet. */
export function registerSnippet(program: Command, out: (s: string) => void): void {
  program
    .command('snippet')
    .description("print the <script> a site puts in its pages' <head> to load a Source's browser tag from the ingestion")
    .requiredOption('--host <url>', 'the ingestion as pages reach it, e.g. https://data.shop.example')
    .requiredOption('--write-key <key>', "the Source's write key")
    .action((opts: { host: string; writeKey: string }) => out(snippetHtml(opts.host, opts.writeKey)));
}
