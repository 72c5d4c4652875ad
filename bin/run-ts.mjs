#!/usr/bin/env node
// Runs a TypeScript entry point of this package in Node: tsx for TypeScript, plus `?raw` imports (WGSL).
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('./raw-loader.mjs', import.meta.url);

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: run-ts.mjs <entry.ts> [args…]');
  process.exit(2);
}
process.argv = [process.argv[0], entry, ...rest];
await import(pathToFileURL(path.resolve(entry)).href);
