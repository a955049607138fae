// examples/cluster/ingestion.yaml must fit an operator running with default settings, as the
// quick start runs it: same namespace as the sources Secret, which it mounts.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { parseOperatorSettings } from './settings.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('the example ingestion runs where the default operator writes the sources Secret, with NATS from ConfigMap switchyard-nats', async () => {
  const { ingestion } = parseOperatorSettings({}, {});
  const docs = parseAllDocuments(await readFile(path.join(repoRoot, 'examples/cluster/ingestion.yaml'), 'utf8')).map((d) => d.toJS());
  expect(docs.map((d) => [d.kind, d.metadata.namespace])).toEqual([
    ['Deployment', ingestion.namespace],
    ['Service', ingestion.namespace],
  ]);
  const pod = docs[0].spec.template.spec;
  expect(pod.volumes).toContainEqual({ name: 'sources', secret: { secretName: ingestion.sourcesSecret } });
  expect(pod.containers[0].env).toContainEqual({ name: 'NATS_URL', valueFrom: { configMapKeyRef: { name: 'switchyard-nats', key: 'url' } } });
});
