#!/usr/bin/env node
// Entry point of the installed CLI: the compiled TypeScript lives in dist/ (built by scripts/setup.sh).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('tacmesh: dist/ is missing; run `bash scripts/setup.sh` (or `npm run build`) first');
  process.exit(1);
}
await import(main.href);
