// Hidden-state statistics gathered from a job's own forward passes (Block Influence, angular distance): for chosen
// pairs (from, to) of residual-stream states h_from, h_to (h_0 = the embeddings, h_ℓ+1 = layer ℓ's output; the
// final norm is not applied to h_L), a per-token distance between the two (B, T, C) states at the positions the
// loss counts (those whose next token is a target), summed over the batches of the run and counted.
//   'cosine'  1 − cos(h_from, h_to)            (ShortGPT's Block Influence when to = from + 1)
//   'angular' arccos(cos(h_from, h_to)) / π     (Gromov et al.'s angular distance, per token, then averaged)
// Cost: per pass, one kernel per pair reading two (B, T, C) states (a few % of one layer's forward) and one small
// reduction; GPU memory (P·B·T + P + 2) f32. Only the pairs asked for are gathered (Block Influence: (ℓ, ℓ+1);
// angular distance for n: (ℓ, ℓ+n)), so 2L pairs at most, never all (L+1)L/2.

import { GradPruneError } from '../errors';
import type { KernelCall } from '../gpu/kernel';
import { createTensor, readback, upload, type Tensor } from '../gpu/tensor';
import { hiddenDistanceAccumulate, hiddenDistanceForward } from './kernels/hidden-distance';
import type { KernelLib } from './kernels/lib';

/** One pair of residual-stream states and the per-token distance gathered between them. */
export interface HiddenStatePair {
  /** Residual-stream indices: 0 = embeddings, ℓ + 1 = the output of layer ℓ; from < to ≤ numLayers. */
  from: number;
  to: number;
  measure: 'cosine' | 'angular';
}

/** What the collector gives back after a run. */
export interface HiddenStateStats {
  pairs: HiddenStatePair[];
  /** mean[i]: pairs[i]'s distance averaged over every counted token of every batch. */
  mean: number[];
  /** Tokens counted (positions whose next token is a target), over all batches. */
  tokens: number;
  /** Forward passes the statistics were gathered from. */
  passes: number;
  /** GPU bytes the collector allocated (per-pair sums and the per-token scratch). */
  gpuBytes: number;
  /** Seconds its kernels take per forward pass, measured once after the run (one standalone submit); times `passes` is its share of the run. */
  secondsPerPass: number;
}

/**
 * Gathers HiddenStateStats on the GPU: one hiddenDistanceForward per pair and one hiddenDistanceAccumulate per
 * forward pass, recorded by the job (GpuModel.collectHiddenStates) after the last layer's forward, when every
 * residual-stream state h_0..h_L of the pass is still in its own buffer (resident and streamed weights alike).
 */
export class HiddenStateCollector {
  readonly pairs: HiddenStatePair[];
  /** The calls of one pass, in order. */
  readonly calls: KernelCall[];
  private readonly dist: Tensor; // (P, N)
  private readonly sums: Tensor; // (P + 2): per-pair sums, counted positions, passes

  constructor(
    lib: KernelLib,
    private readonly device: GPUDevice,
    resid: readonly Tensor[], // (L + 1) × (B, T, C)
    mask: Tensor, // (B, T) i32
    T: number,
    pairs: readonly HiddenStatePair[],
  ) {
    if (pairs.length === 0) throw new Error('HiddenStateCollector: no pairs to gather');
    checkPairs(pairs, resid.length - 1);
    this.pairs = pairs.map((p) => ({ ...p }));
    const N = mask.numel;
    this.dist = createTensor(device, 'hidden.dist', [pairs.length, N]);
    this.sums = createTensor(device, 'hidden.sums', [pairs.length + 2]);
    this.calls = [
      ...this.pairs.flatMap((p, slot) => hiddenDistanceForward(lib, this.dist, resid[p.from], resid[p.to], mask, T, slot, p.measure)),
      ...hiddenDistanceAccumulate(lib, this.sums, this.dist, mask, T),
    ];
  }

  get gpuBytes(): number {
    return this.dist.buffer.size + this.sums.buffer.size;
  }

  /** The accumulated sums (for a run snapshot) and their restoring. */
  readSums(): Promise<Float32Array> {
    return readback(this.device, this.sums);
  }
  restoreSums(values: Float32Array): void {
    if (values.length !== this.pairs.length + 2) {
      throw new GradPruneError('input', `The snapshot's hidden-state sums have ${values.length} values; ${this.pairs.length} pairs need ${this.pairs.length + 2}.`, {
        subject: 'hidden.sums',
        hint: 'The snapshot was taken with other hidden-state pairs: start afresh.',
      });
    }
    upload(this.device, this.sums, values);
  }

  /**
   * The means over every counted position of every pass so far; then the kernels' time per pass, measured by one
   * standalone submit of them (after the sums are read; they are put back after it, so reading again, or more
   * passes, go on from the same sums).
   */
  async read(): Promise<HiddenStateStats> {
    const sums = await this.readSums();
    const P = this.pairs.length;
    const tokens = sums[P];
    const passes = sums[P + 1];
    if (passes === 0 || tokens === 0) {
      throw new GradPruneError('input', passes === 0 ? 'No forward pass gathered hidden-state statistics.' : 'No batch had a target token, so no hidden-state statistics were gathered.', {
        subject: 'hidden states',
        hint: 'Run at least one step on data with target tokens.',
      });
    }
    const start = performance.now();
    const encoder = this.device.createCommandEncoder({ label: 'hidden.timing' });
    const pass = encoder.beginComputePass({ label: 'hidden.timing' });
    for (const c of this.calls) c.encode(pass);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    const secondsPerPass = (performance.now() - start) / 1000;
    upload(this.device, this.sums, sums); // the timing pass added to the sums: put back what was read
    return { pairs: this.pairs.map((p) => ({ ...p })), mean: Array.from(sums.subarray(0, P), (s) => s / tokens), tokens, passes, gpuBytes: this.gpuBytes, secondsPerPass };
  }

  destroy(): void {
    for (const c of this.calls) c.destroy();
    this.dist.buffer.destroy();
    this.sums.buffer.destroy();
  }
}

/** Pairs must name residual-stream states 0..numLayers with from < to. */
export function checkPairs(pairs: readonly HiddenStatePair[], numLayers: number): void {
  for (const p of pairs) {
    if (!(Number.isInteger(p.from) && Number.isInteger(p.to) && p.from >= 0 && p.from < p.to && p.to <= numLayers)) {
      throw new GradPruneError('input', `The hidden-state pair (${p.from}, ${p.to}) is not two states 0 ≤ from < to ≤ ${numLayers} of this ${numLayers}-layer model.`, {
        subject: 'hidden states',
      });
    }
    if (p.measure !== 'cosine' && p.measure !== 'angular') throw new GradPruneError('input', `Unknown hidden-state measure '${String(p.measure)}' (cosine or angular).`, { subject: 'hidden states' });
  }
}
