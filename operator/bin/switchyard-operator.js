#!/usr/bin/env node
import { main } from '../dist/cli.js';

main(process.argv).catch((err) => {
  process.stderr.write(`switchyard-operator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
