// The whole benchmark, runtime-neutral (Node with Dawn, or a browser page): kernels, LoRA training steps,
// IGIA's overhead, pruned vs dense inference, and onnxruntime-web's matmul on the same device. Returns plain
// JSON; main.ts (Node) and browser/page.ts print and save it.

import type { Gpu } from '../gpu/device';
import { kernelCases, SIZES, type BenchShape, type SizeName } from './cases';
import { benchHiddenStates } from './hidden-states';
import { benchLossHead } from './losshead';
import { benchOrt, type OrtLoader } from './ort';
import { benchPrune } from './prune';
import { benchQwen05 } from './qwen05';
import { LLAMA_3_2_1B, type TrainingShape } from './random-model';
import { fixed, section, SECTION_KEYS, type BenchReport, type BenchSection, type SectionKey } from './report';
import { benchStreaming } from './streaming';
import { createTimer } from './timing';
import { benchTraining } from './training';

/** The LoRA-training / inference shapes of each size. */
export const MODEL_SIZES: Record<SizeName, TrainingShape[]> = {
  tiny: [{ model: { name: 'tiny', layers: 4, hidden: 64, heads: 4, kvHeads: 2, intermediate: 176, vocab: 512 }, batchSize: 2, seqLen: 32 }],
  small: [{ model: { name: 'small', layers: 4, hidden: 256, heads: 4, kvHeads: 2, intermediate: 688, vocab: 4000 }, batchSize: 2, seqLen: 64 }],
  medium: [{ model: { name: 'h512-L8', layers: 8, hidden: 512, heads: 8, kvHeads: 4, intermediate: 1376, vocab: 32000 }, batchSize: 4, seqLen: 256 }],
  large: [
    { model: { name: 'h512-L8', layers: 8, hidden: 512, heads: 8, kvHeads: 4, intermediate: 1376, vocab: 32000 }, batchSize: 4, seqLen: 256 },
    { model: LLAMA_3_2_1B, batchSize: 4, seqLen: 256 },
  ],
};

export interface SuiteOptions {
  size: SizeName;
  /** Repetitions per kernel / forward / matmul timing (default: 2 on software adapters, 20 otherwise). */
  reps?: number;
  /** Timed training-step pairs (plain + IGIA) per model (default 10; on software adapters 8 at tiny, else 4). */
  steps?: number;
  /** Skip work predicted to take longer than this (default 120 s on software adapters, no limit otherwise). */
  maxStepSeconds?: number;
  /** Only kernels whose name contains this. */
  only?: string;
  sections?: readonly SectionKey[];
  /** onnxruntime-web for this runtime; null: the section says why it did not run. */
  loadOrt: OrtLoader | null;
  ortUnavailable?: string;
  /** ../shared/configs/qwen2.5-0.5b.json for the qwen05 section (null or absent: the section says why it did not run). */
  qwen05Config?: Record<string, unknown> | null;
  runtime: BenchReport['runtime'];
  userAgent: string;
  log?: (line: string) => void;
}

async function benchKernels(gpu: Gpu, shape: BenchShape, reps: number, only: string | undefined, tooSlow: (flops: number) => boolean, out: BenchSection, log: (line: string) => void): Promise<number | null> {
  const timer = createTimer(gpu.device);
  const seconds = new Map<string, number>();
  let linearFlopsPerSecond: number | null = null;
  for (const c of kernelCases(gpu, shape)) {
    if (only && !c.name.includes(only)) continue;
    if (tooSlow(c.flops * (reps + 1))) {
      out.notes.push(`skipped ${c.name} ${c.shape}: predicted over --max-step-seconds at the speed probed here`);
      continue;
    }
    log(`  ${c.name} ${c.shape}`);
    const built = c.build();
    const t = await timer.time(built.calls, reps);
    gpu.throwIfFailed();
    seconds.set(c.name, t.seconds);
    if (c.name === 'linearForward gate_proj') linearFlopsPerSecond = c.flops / t.seconds;
    const base = c.baseline ? seconds.get(c.baseline) : undefined;
    out.rows.push({
      kernel: c.name,
      shape: c.shape,
      ms: fixed(t.seconds * 1e3, 3),
      'GFLOP/s': c.flops ? fixed(c.flops / t.seconds / 1e9, 2) : null,
      'GB/s': fixed(c.bytes / t.seconds / 1e9, 2),
      'time ratio': base ? `${fixed(t.seconds / base, 2)}× ${c.baseline}` : null,
      timing: t.method,
    });
    built.destroy();
  }
  return linearFlopsPerSecond;
}

/** FLOP/s of one mid-sized linearForward: predicts training-step times when the kernel table was not run. */
async function probeLinearFlops(gpu: Gpu): Promise<number> {
  for (const c of kernelCases(gpu, SIZES.small)) {
    if (c.name !== 'linearForward gate_proj') continue;
    const built = c.build();
    const t = await createTimer(gpu.device).time(built.calls, 1);
    built.destroy();
    return c.flops / t.seconds;
  }
  throw new Error('no linearForward gate_proj case');
}

export async function runBenchSuite(gpu: Gpu, opts: SuiteOptions): Promise<BenchReport> {
  const log = opts.log ?? (() => {});
  const soft = gpu.adapter.isSoftware;
  const reps = opts.reps ?? (soft ? 2 : 20);
  const steps = opts.steps ?? (!soft ? 10 : opts.size === 'tiny' ? 8 : 4);
  // qwen05 (a 0.5B-parameter model) is not cheap: by default it runs from --size small up.
  const want = new Set(opts.sections ?? SECTION_KEYS.filter((k) => k !== 'qwen05' || opts.size !== 'tiny'));
  const shape = SIZES[opts.size];
  const models = MODEL_SIZES[opts.size];
  const report: BenchReport = { runtime: opts.runtime, userAgent: opts.userAgent, adapter: gpu.adapter, size: opts.size, date: new Date().toISOString(), sections: {} };

  // Time guards apply on software adapters (or when asked for): a small probe underrates a real GPU.
  const maxSeconds = opts.maxStepSeconds ?? (soft ? 120 : Infinity);
  const probed = await probeLinearFlops(gpu);
  /** Whether work of this many FLOPs is predicted to take longer than --max-step-seconds on this adapter. */
  const tooSlow = (flops: number) => flops / probed > maxSeconds;
  log(`probe: linearForward at ${fixed(probed / 1e9, 2)} GFLOP/s`);
  let linearFlops: number | null = null;
  if (want.has('kernels')) {
    const s = (report.sections.kernels = section(`1. kernels at ${JSON.stringify(shape)}`, ['kernel', 'shape', 'ms', 'GFLOP/s', 'GB/s', 'time ratio', 'timing']));
    log('kernels…');
    linearFlops = await benchKernels(gpu, shape, reps, opts.only, tooSlow, s, log);
  }
  if (want.has('training') || want.has('igia')) {
    const training = section('2. LoRA training step (rank 8, all 7 modules, AdamW, clip 1; random weights)', ['model', 'weights', 'step ms', 'tokens/s', '≈GFLOP/s', 'engine MiB', 'estimate MiB', 'first loss', 'ln V']);
    const igia = section('3. IGIA overhead: the same steps with IGIA recorded after clipping (medians of interleaved steps)', ['model', 'steps', 'plain ms', 'IGIA ms', 'wall ratio', 'GPU plain ms', 'GPU IGIA ms', 'GPU ratio', 'IGIA alone ms', 'alone / GPU plain', 'IGIA MiB', 'timing']);
    igia.notes.push(
      'plain / IGIA ms: medians of Trainer.trainStep with and without IGIA, interleaved (wall clock, submit to readback); GPU: the same step encoded as trainStep encodes it, GPU timestamps; IGIA alone: only its Gram, score and factor-copy work',
    );
    training.notes.push('tokens/s counts every position of the B×T batch; ≈GFLOP/s: matmul + attention FLOPs of forward and input-gradient backward (the frozen weights get no weight gradients)');
    training.notes.push('engine MiB: every buffer GpuModel allocated (weights, adapters with gradients and AdamW moments, activations, backward scratch); estimate MiB: nn/memory.ts estimateMemory for the same job');
    await benchTraining(gpu, models, { steps, maxStepSeconds: maxSeconds, flopsPerSecondHint: linearFlops ?? probed, log }, training, igia);
    if (want.has('training')) report.sections.training = training;
    if (want.has('igia')) report.sections.igia = igia;
  }
  if (want.has('prune')) {
    const s = (report.sections.prune = section('4. pruned vs dense forward (inference, random weights)', ['model', 'layers', 'forward ms', 'µs/token', 'weights MiB', 'time ratio', 'memory ratio', 'timing']));
    await benchPrune(gpu, models[0], { reps, pruneFraction: 0.4, tooSlow, log }, s);
  }
  if (want.has('onnxruntime')) {
    const s = (report.sections.onnxruntime = section('5. the same matmuls through onnxruntime-web (webgpu EP, same device)', ['matmul', 'shape', 'ours ms', 'ORT ms', 'ours GFLOP/s', 'ORT GFLOP/s', 'ORT/ours time', 'max |Δ| / max |y|']));
    if (opts.loadOrt) await benchOrt(gpu, shape, opts.loadOrt, reps, tooSlow, s, log);
    else s.notes.push(opts.ortUnavailable ?? 'onnxruntime-web: not available in this runtime');
  }
  if (opts.runtime === 'browser') {
    // Both read and write files through Node's fs: main.ts runs them after the suite in Node.
    if (want.has('export')) report.sections.export = { ...section('6. export (Node only)', []), notes: ['not run in the browser: the export bench writes a sparse temp file (npm run bench without --browser)'] };
    if (want.has('load')) report.sections.load = { ...section('7. checkpoint load (Node only)', []), notes: ['not run in the browser: the load bench reads a temp checkpoint through NodeFileBlob (npm run bench without --browser)'] };
  }
  if (want.has('streaming')) {
    const s = (report.sections.streaming = section('8. streamed vs resident weights: the same LoRA training step (medians of interleaved steps)', ['model', 'weights', 'step ms', 'time / resident', 'engine MiB', 'estimate MiB', 'host MiB', 'uploaded MiB/step', 'estimate MiB/step', 'max |Δloss| vs resident']));
    await benchStreaming(gpu, models[0], { steps, maxStepSeconds: maxSeconds, flopsPerSecond: linearFlops ?? probed, log }, s);
  }
  if (want.has('losshead')) {
    const s = (report.sections.losshead = section('9. loss head at a large vocabulary: chunked vs unchunked lm_head + cross-entropy (forward, backward to dh)', ['head', 'shape', 'forward ms', 'backward ms', 'time / unchunked', 'scratch MiB', 'memory / (N,V) logits+dlogits', 'loss', 'max |Δdh| / max |dh|', 'timing']));
    await benchLossHead(gpu, opts.size, { reps, tooSlow, log }, s);
  }
  if (want.has('hidden')) {
    const s = (report.sections.hidden = section('11. hidden-state statistics (Block Influence + angular distance) beside a forward pass (random weights)', ['model', 'pairs', 'forward ms', 'statistics ms', 'statistics / forward', 'statistics KiB', 'timing']));
    await benchHiddenStates(gpu, models, { reps, tooSlow, log }, s);
  }
  const qwen = section('10. Qwen2.5-0.5B shape: one LoRA + IGIA step end to end (random weights)', ['model', 'weights', 'load s', 'step 1 s', 'step 2 s', 'predicted s', 'tokens/s', 'engine MiB', 'estimate MiB', 'IGIA MiB', 'host MiB', 'first loss', 'ln V']);
  if (want.has('qwen05')) {
    report.sections.qwen05 = qwen;
    await benchQwen05(gpu, { rawConfig: opts.qwen05Config ?? null, batchSize: 1, seqLen: 16, maxStepSeconds: maxSeconds, flopsPerSecond: linearFlops ?? probed, log }, qwen);
  } else if (!opts.sections) {
    report.sections.qwen05 = qwen;
    qwen.notes.push('not run by default at --size tiny (it builds a 0.5B-parameter model); --sections qwen05 runs it');
  }
  return report;
}
