#!/usr/bin/env node
// Copies the runtime's non-TypeScript assets next to the compiled files: each destination's
// starter Mapping (runtime/src/destinations/<type>/mapping.yaml → runtime/dist/destinations/<type>/),
// which `switchyard destinations starter` and the catalog read. tsc does not copy them.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'runtime/src/destinations');
const dist = path.join(root, 'runtime/dist/destinations');
for (const type of readdirSync(src, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
  const from = path.join(src, type, 'mapping.yaml');
  if (!existsSync(from)) continue;
  mkdirSync(path.join(dist, type), { recursive: true });
  copyFileSync(from, path.join(dist, type, 'mapping.yaml'));
}
