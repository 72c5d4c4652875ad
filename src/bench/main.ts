// npm run bench: each kernel's time, GFLOP/s and GB/s at transformer shapes on this machine's WebGPU adapter,
// printed as a table and written to bench-results/kernels-<time>.json. Shapes are scaled down on software
// adapters (SwiftShader runs at ~1 GFLOP/s). Compare ratios within one run: these machines are noisy.
//   node bin/run-ts.mjs src/bench/main.ts [--size tiny|small|medium|large] [--reps N] [--only <name part>]

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requestGpu } from '../gpu/device';
import { kernelCases, SIZES, type SizeName } from './cases';
import { createTimer } from './timing';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const gpu = await requestGpu();
const sizeName = (arg('size') ?? (gpu.adapter.isSoftware ? 'small' : 'large')) as SizeName;
if (!(sizeName in SIZES)) {
  console.error(`--size must be one of ${Object.keys(SIZES).join(', ')}`);
  process.exit(2);
}
const shape = SIZES[sizeName];
const timer = createTimer(gpu.device);
console.log(`adapter: ${gpu.adapter.name}${gpu.adapter.isSoftware ? ' (software)' : ''}; shader-f16 ${gpu.adapter.shaderF16}`);
console.log(`shapes (${sizeName}): ${JSON.stringify(shape)}`);

const rows: Record<string, string | number>[] = [];
const seconds = new Map<string, number>();
const only = arg('only');
for (const c of kernelCases(gpu, shape)) {
  if (only && !c.name.includes(only)) {
    c.destroy();
    continue;
  }
  const reps = Number(arg('reps') ?? (gpu.adapter.isSoftware ? 2 : 20));
  const t = await timer.time(c.calls, reps);
  gpu.throwIfFailed();
  seconds.set(c.name, t.seconds);
  const base = c.baseline ? seconds.get(c.baseline) : undefined;
  rows.push({
    kernel: c.name,
    shape: c.shape,
    ms: +(t.seconds * 1e3).toFixed(3),
    gflops: c.flops ? +(c.flops / t.seconds / 1e9).toFixed(2) : '',
    gbps: +(c.bytes / t.seconds / 1e9).toFixed(2),
    'time ratio': base ? `${(t.seconds / base).toFixed(2)}× ${c.baseline}` : '',
    timing: t.method,
  });
  c.destroy();
}

const cols = ['kernel', 'shape', 'ms', 'gflops', 'gbps', 'time ratio', 'timing'];
const width = cols.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
const line = (r: Record<string, string | number>) => cols.map((k, i) => String(r[k]).padEnd(width[i])).join('  ');
console.log(line(Object.fromEntries(cols.map((k) => [k, k]))));
for (const r of rows) console.log(line(r));

const dir = path.resolve('bench-results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `kernels-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ adapter: gpu.adapter, size: sizeName, shape, date: new Date().toISOString(), results: rows }, null, 2));
console.log(`wrote ${path.relative(process.cwd(), file)}`);
process.exit(0);
