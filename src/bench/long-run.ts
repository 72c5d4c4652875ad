// Long runs stay flat: a 1000-step LoRA run on a fixture model (testing/long-run.ts), with the live GPU buffers,
// their bytes and the JS heap sampled every 100 steps. Ratios to the first samples, not timings: a flat run reads
// 1 in the buffer columns throughout and a heap ratio near 1. Node only (it reads the fixture from ../shared).

import { existsSync } from 'node:fs';
import type { Gpu } from '../gpu/device';
import { fixtureDir } from '../testing/paths';
import { longLoraRun } from '../testing/long-run';
import { fixed, mib, type BenchSection } from './report';

export const LONG_RUN_COLUMNS = ['step', 'buffers', 'buffers / first', 'GPU MiB', 'GPU bytes / first', 'heap MiB', 'heap / second', 'loss'];

export async function benchLongRun(gpu: Gpu, opts: { steps: number; every: number; batchSize?: number; log: (line: string) => void }, out: BenchSection): Promise<void> {
  const fixture = 'tiny-llama';
  if (!existsSync(fixtureDir(fixture))) {
    out.notes.push(`not run: the fixture ${fixtureDir(fixture)} is missing`);
    return;
  }
  opts.log(`long run: ${opts.steps} steps on ${fixture}, sampled every ${opts.every}…`);
  const run = await longLoraRun(gpu, { fixture, steps: opts.steps, every: opts.every, batchSize: opts.batchSize, log: opts.log });
  const [first] = run.samples;
  // The heap is compared with the second sample: the first one still holds the load's and first step's garbage.
  const heapBase = (run.samples[1] ?? first).heapBytes;
  for (const s of run.samples) {
    out.rows.push({
      step: s.step,
      buffers: s.liveBuffers,
      'buffers / first': fixed(s.liveBuffers / first.liveBuffers, 3),
      'GPU MiB': mib(s.liveBufferBytes),
      'GPU bytes / first': fixed(s.liveBufferBytes / first.liveBufferBytes, 3),
      'heap MiB': mib(s.heapBytes),
      'heap / second': fixed(s.heapBytes / heapBase, 3),
      loss: fixed(run.losses[s.step - 1], 4),
    });
  }
  const last = run.samples.at(-1)!;
  const flat = run.samples.every((s) => s.liveBuffers === first.liveBuffers && s.liveBufferBytes === first.liveBufferBytes);
  out.notes.push(
    `${fixture}, batches of ${run.batch.B}×${run.batch.T} (its ${run.batch.distinct} recorded scoring batches in turn${run.batch.B < run.batch.recordedB ? `, their first ${run.batch.B} of ${run.batch.recordedB} rows` : ''}), the scoring defaults (rank 8, all modules, AdamW, clip 1), f32 weights`,
    `GPU buffers ${flat ? 'flat' : 'NOT flat'} after step ${first.step}: ${first.liveBuffers} buffers, ${first.liveBufferBytes} bytes at step ${first.step}, ${last.liveBuffers} buffers, ${last.liveBufferBytes} bytes at step ${last.step}`,
    `JS heap from step ${(run.samples[1] ?? first).step} to ${last.step}: ${fixed((last.heapBytes - heapBase) / 2 ** 10, 1)} KiB (${fixed((last.heapBytes - heapBase) / Math.max(1, last.step - (run.samples[1] ?? first).step), 1)} bytes/step)${run.gcForced ? ', after a forced gc' : ', gc could not be forced (noisy)'}`,
    `after the run: ${run.afterRun.liveBuffers} buffers (${run.afterRun.liveBufferBytes} bytes) left allocated${run.afterRun.labels.length ? ` (${run.afterRun.labels.join(', ')}; 'unused' is the kernel library's placeholder, made once per device)` : ''}`,
  );
}
