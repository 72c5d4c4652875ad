// npm run bench: the benchmark suite on this machine's WebGPU adapter (Dawn in Node), or with --browser in
// Chromium. Prints each section as a table and writes bench-results/bench-<runtime>-<time>.json.
// Shapes scale with --size (software adapters default to small). Compare ratios within one run: these machines
// are noisy.
//   npm run bench -- [--size tiny|small|medium|large] [--reps N] [--steps N] [--only <kernel name part>]
//                    [--sections kernels,training,igia,prune,onnxruntime,export,load,streaming,losshead,qwen05,longrun,hidden]
//                    [--max-step-seconds S] [--no-ort] [--browser] [--long-run-steps N] [--long-run-batch B]
// The 'export' and 'load' sections (Node only, no GPU: the streamed export's memory vs its largest tensor; checkpoint
// read throughput and memory) and 'longrun' (a --long-run-steps LoRA run, default 1000, whose GPU buffers and JS heap
// must stay flat) run after the suite. 'qwen05' runs by default from --size small up.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requestGpu } from '../gpu/device';
import { SHARED } from '../testing/paths';
import { SIZES, type SizeName } from './cases';
import { formatReport, section, SECTION_KEYS, type BenchReport, type SectionKey } from './report';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const num = (name: string) => (arg(name) === undefined ? undefined : Number(arg(name)));

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const sizeArg = arg('size');
if (sizeArg !== undefined && !(sizeArg in SIZES)) fail(`--size must be one of ${Object.keys(SIZES).join(', ')}`);
const sections = arg('sections')?.split(',') as SectionKey[] | undefined;
const badSection = sections?.find((s) => !(SECTION_KEYS as readonly string[]).includes(s));
if (badSection) fail(`--sections: unknown section "${badSection}"; choose from ${SECTION_KEYS.join(', ')}`);
const options = {
  size: sizeArg as SizeName | undefined,
  reps: num('reps'),
  steps: num('steps'),
  only: arg('only'),
  sections,
  maxStepSeconds: num('max-step-seconds'),
  noOrt: flag('no-ort'),
};

const qwenPath = path.join(SHARED, 'configs', 'qwen2.5-0.5b.json');
const qwen05Config = existsSync(qwenPath) ? (JSON.parse(readFileSync(qwenPath, 'utf8')) as Record<string, unknown>) : null;

let report: BenchReport;
if (flag('browser')) {
  const { runInBrowser } = await import('./browser-runner');
  report = await runInBrowser({ ...options, qwen05Config }, (l) => console.log(l));
} else {
  const { runBenchSuite } = await import('./suite');
  const { loadOrtInNode } = await import('./ort-node');
  const gpu = await requestGpu();
  const size = options.size ?? (gpu.adapter.isSoftware ? 'small' : 'large');
  console.log(`adapter: ${gpu.adapter.name}${gpu.adapter.isSoftware ? ' (software)' : ''}; size ${size}`);
  report = await runBenchSuite(gpu, {
    ...options,
    size,
    loadOrt: options.noOrt ? null : loadOrtInNode,
    ortUnavailable: 'onnxruntime-web: skipped (--no-ort)',
    qwen05Config,
    runtime: 'node',
    userAgent: `Node ${process.versions.node}, webgpu (Dawn) ${process.env.VK_ICD_FILENAMES ? `with ${path.basename(process.env.VK_ICD_FILENAMES)}` : ''}`.trim(),
    log: (l) => console.log(l),
  });
}

if (!flag('browser') && (!sections || sections.includes('export'))) {
  const { benchExport } = await import('./export');
  const s = (report.sections.export = section('6. export: JS memory while a sparse checkpoint is exported tensor by tensor (Node)', ['model', 'largest tensor MiB', 'written MiB', 'held / largest', 'JS heap+buffers growth / largest', 's']));
  await benchExport(s, (l) => console.log(l));
}
if (!flag('browser') && (!sections || sections.includes('load'))) {
  const { benchLoad } = await import('./load');
  const s = (report.sections.load = section('7. checkpoint load: reading every tensor through TensorStore vs raw Blob bytes (Node)', ['checkpoint', 'read', 'reads', 's', 'MB/s', 'time / raw', 'largest tensor MiB', 'largest read MiB', 'JS growth MiB', 'growth / largest tensor']));
  await benchLoad(s, { size: report.size as SizeName, log: (l) => console.log(l) });
}

if (!flag('browser') && (!sections || sections.includes('longrun'))) {
  const { benchLongRun, LONG_RUN_COLUMNS } = await import('./long-run');
  const steps = num('long-run-steps') ?? 1000;
  if (!(Number.isInteger(steps) && steps >= 2)) fail('--long-run-steps must be a whole number of steps, 2 or more');
  const s = (report.sections.longrun = section(`11. long run: ${steps} LoRA steps on a fixture, live GPU buffers and JS heap every ${Math.ceil(steps / 10)} steps (Node)`, LONG_RUN_COLUMNS));
  const gpu = await requestGpu();
  const batchSize = num('long-run-batch');
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1)) fail('--long-run-batch must be a whole number of rows, 1 or more');
  await benchLongRun(gpu, { steps, every: Math.ceil(steps / 10), batchSize, log: (l) => console.log(l) }, s);
  gpu.device.destroy();
}

console.log('');
for (const line of formatReport(report)) console.log(line);
const dir = path.resolve('bench-results');
mkdirSync(dir, { recursive: true });
const file = path.join(dir, `bench-${report.runtime}-${report.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
process.exit(0);
