#!/usr/bin/env node
// `npx gradprune …`: the studio's engine from a terminal (Node + Dawn through the `webgpu` package).
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('./raw-loader.mjs', import.meta.url);
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
