import type { Command } from 'commander';
import { Document, parseDocument } from 'yaml';
import { DEFINITIONS, starterMapping, type DestinationDefinition } from '../destinations/index.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';

/** The settings a type needs given (required, without a default), comma-separated; GA4's either-or is in its description. */
function requiredSettings(d: DestinationDefinition): string {
  const schema = d.settingsSchema as { required?: string[]; properties?: Record<string, { default?: unknown }> };
  return (schema.required ?? []).filter((k) => schema.properties?.[k]?.default === undefined).join(',');
}

/** The `switchyard destinations list` table: one line per type. */
export function formatDestinations(): string {
  const rows = Object.values(DEFINITIONS).map((d) => [
    d.type,
    d.title,
    `destination.${d.settingsField}${requiredSettings(d) ? ` {${requiredSettings(d)}}` : ''}`,
    `${d.batch.default}/${d.batch.max}`,
    Object.entries(d.credentials)
      .map(([k, c]) => (c.required ? k : `${k}?`))
      .join(',') || '-',
    d.docsUrl,
  ]);
  const head = ['TYPE', 'TITLE', 'SETTINGS {required}', 'BATCH (default/max)', 'SECRET KEYS (? optional)', 'API'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/**
 * The starter Mapping of `type` as YAML, renamed to `name` and put in `namespace` when given
 * (comments kept).
 * @throws SwitchyardError MISSING_REFERENCE for an unknown type.
 */
export function starterYaml(type: string, options: { name?: string; namespace?: string } = {}): string {
  const doc: Document = parseDocument(starterMapping(type));
  if (options.name) doc.setIn(['metadata', 'name'], options.name);
  if (options.namespace) doc.setIn(['metadata', 'namespace'], options.namespace);
  return doc.toString();
}

/** `switchyard destinations list` and `switchyard destinations starter <type>`. */
export function registerDestinations(program: Command, out: (s: string) => void): void {
  const cmd = program.command('destinations').description('destination types: list them, print their starter Mappings');
  cmd
    .command('list')
    .description('list destination types: settings field, batch sizes, credentials Secret keys, vendor API')
    .action(() => out(formatDestinations()));
  cmd
    .command('starter <type>')
    .description('print the starter Mapping of a destination type (YAML, ready to edit and apply)')
    .option('--name <name>', 'metadata.name of the printed Mapping (default: <type>-starter)')
    .option('-n, --namespace <namespace>', 'metadata.namespace of the printed Mapping (default: the one in the starter)')
    .action((type: string, opts: { name?: string; namespace?: string }) => {
      if (!Object.hasOwn(DEFINITIONS, type)) throw new SwitchyardError(ErrorCodes.MISSING_REFERENCE, `unknown destination type ${JSON.stringify(type)}; types: ${Object.keys(DEFINITIONS).join(', ')}`);
      out(starterYaml(type, opts).trimEnd());
    });
}
