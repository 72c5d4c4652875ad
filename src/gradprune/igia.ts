// GradPruner's importance (IGIA) gathered on the GPU from the clipped LoRA gradients of each training step.
//
// The trainer records `scorer.record(encoder)` into its step's command encoder after clipping (before the
// next zeroing of gradients). Per module and step, with gA (r, in) and gB (out, r):
//   igiaGram   GA = gA·gAᵀ, GB = gBᵀ·gB               (r, r) each, never the (out, in) product S = gB·gA
//   igiaScore  ‖S‖²_F = Σ GA ⊙ GB, accumulated per (layer, module), plus Σ ‖S‖_F (the released script's score)
//   copies     this step's ‖S‖²_F into a (steps, modules) history; gA and gB into a staging slot bound for host memory
// After the run, `readScores()` gives the paper's layer score (1/t) Σ_s ‖S_s‖²_F (= Σ over elements of F), the
// module split, the code's score, and the per-step history; `rebuildImportance(layer, module)` rebuilds the
// element-wise F = (1/t) Σ_s (gB_s·gA_s)² on the GPU from the stored factors, for the layers being merged.
//
// Memory: the factors of every step live in host memory (./factor-store.ts): each step's gA and gB go into a
// small ring of GPU staging buffers inside the trainer's encoder and reach the host asynchronously, so the GPU
// holds a few steps' worth (`stagingSlots`) however long the run. Layer 0 is never merged, so its factors are not
// kept. The host total, maxSteps × Σ_modules r·(in + out) f32 (`factorBytes`), is checked against
// `maxFactorBytes` at construction (a GradPruneError says how many steps would fit).

import gramCode from '../../shaders/igia_gram.wgsl?raw';
import scoreCode from '../../shaders/igia_score.wgsl?raw';
import { GradPruneError } from '../errors';
import { ceilDiv, type KernelCall } from '../gpu/kernel';
import { createTensor, readback, upload, view, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { kernelLib, u32 } from '../nn/kernels/lib';
import {
  bufferOf, DEFAULT_MAX_HOST_FACTOR_BYTES, DEFAULT_MAX_STAGING_BYTES, DEFAULT_STAGING_SLOTS, FactorStore, factorRowLength, type IgiaModuleGrads,
} from './factor-store';
import { IgiaRebuilder, type IgiaState } from './igia-state';
import { kendallTau } from './scores';

export type { GradView, IgiaModuleGrads } from './factor-store';

/** The names of IgiaScorer.snapshot()'s arrays: the score sums, the per-step history, one factor set per module. */
const SNAPSHOT_SUMS = 'igia.sums';
const SNAPSHOT_HISTORY = 'igia.history';
const SNAPSHOT_FACTORS = 'igia.factors.';

export interface IgiaOptions {
  rank: number;
  /** The most steps that will be recorded (sizes the history and the factor store). */
  maxSteps: number;
  /** Keep per-step factors so F can be rebuilt for merged layers (default true). */
  keepFactors?: boolean;
  /** Layers whose factors are kept (default: every layer but 0, which is never pruned). */
  factorLayers?: number[];
  /** Refuse to keep more than this in host memory for factors (default 4 GiB). */
  maxFactorBytes?: number;
  /** GPU staging slots, one step of factors each, that a loop awaiting ready() keeps to (default 2). */
  stagingSlots?: number;
  /** The most GPU memory for staging when steps are recorded without awaiting ready() (default 256 MiB). */
  maxStagingBytes?: number;
}

export interface IgiaScores {
  steps: number;
  /** (1/t) Σ_s Σ_modules ‖S_s‖²_F per layer: the paper's score, Σ of the elements of F. */
  layerScore: number[];
  /** The same split by module, [layer][module] in LINEAR_MODULES order. */
  moduleScore: number[][];
  /** Σ_s Σ_modules ‖S_s‖_F per layer: the authors' released script's score. */
  layerScoreCode: number[];
  /** history[s][layer]: the paper's layer score from steps 0..s (cumulative mean). */
  history: number[][];
  /** kendall[s]: Kendall τ-b between the layer ranking after step s and after the last step (NaN while every score is 0, e.g. before B has moved). */
  kendall: number[];
}

/** Bytes of stored factors for one module over `steps` steps (host memory). */
export const factorBytes = (c: ModelConfig, m: LinearModule, rank: number, steps: number): number => steps * factorRowLength(c, m, rank) * 4;

/**
 * What a scoring run's IGIA takes: host memory for the factors of `steps` steps of every layer but 0, and GPU
 * memory for the staging ring (the Gram and score buffers are negligible beside them).
 */
export function igiaMemory(c: ModelConfig, modules: readonly LinearModule[], rank: number, steps: number, opts: Pick<IgiaOptions, 'stagingSlots'> = {}): { hostBytes: number; gpuBytes: number } {
  let perStep = 0;
  for (let l = 1; l < c.numLayers; l++) for (const m of modules) perStep += factorBytes(c, m, rank, 1);
  return { hostBytes: perStep * steps, gpuBytes: perStep * Math.min(steps, opts.stagingSlots ?? DEFAULT_STAGING_SLOTS) };
}

export class IgiaScorer {
  readonly modules: IgiaModuleGrads[];
  private readonly gram: Tensor; // (modules, 2, r, r)
  private readonly sums: Tensor; // (2, modules)
  private readonly stepScore: Tensor; // (modules)
  private readonly history: Tensor; // (maxSteps, modules)
  private readonly gramCalls: KernelCall[];
  private readonly scoreCall: KernelCall;
  private readonly factors: FactorStore | null = null;
  private readonly rebuilder: IgiaRebuilder | null = null;
  private step = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly config: ModelConfig,
    grads: IgiaModuleGrads[],
    private readonly opts: IgiaOptions,
  ) {
    const { rank, maxSteps } = opts;
    if (!Number.isInteger(rank) || rank < 1) throw new GradPruneError('input', `The LoRA rank ${rank} must be a positive integer.`, { subject: 'rank' });
    if (!Number.isInteger(maxSteps) || maxSteps < 1) throw new GradPruneError('input', `The number of scoring steps ${maxSteps} must be ≥ 1.`, { subject: 'steps' });
    this.modules = grads;
    const n = grads.length;
    if (opts.keepFactors ?? true) {
      const layers = new Set(opts.factorLayers ?? Array.from({ length: config.numLayers - 1 }, (_, i) => i + 1));
      this.factors = new FactorStore(device, config, grads.filter((g) => layers.has(g.layer)), {
        rank,
        maxSteps,
        stagingSlots: opts.stagingSlots,
        maxStagingBytes: opts.maxStagingBytes ?? DEFAULT_MAX_STAGING_BYTES,
        maxHostBytes: opts.maxFactorBytes ?? DEFAULT_MAX_HOST_FACTOR_BYTES,
      });
      this.rebuilder = new IgiaRebuilder(device, config, () => this.hostState(''));
    }
    this.gram = createTensor(device, 'igia.gram', [n, 2, rank, rank]);
    this.sums = createTensor(device, 'igia.sums', [2, n]);
    this.stepScore = createTensor(device, 'igia.stepScore', [n]);
    this.history = createTensor(device, 'igia.history', [maxSteps, n]);

    const lib = kernelLib(device);
    const gram = lib.kernel({ label: 'igiaGram', code: gramCode, entryPoint: 'igiaGram', bindings: ['write', 'read', 'read', 'uniform'], common: false });
    const score = lib.kernel({ label: 'igiaScore', code: scoreCode, entryPoint: 'igiaScore', bindings: ['write', 'write', 'read', 'uniform'], common: false });

    this.gramCalls = grads.map((g, slot) => {
      const [out, inp] = linearShape(config, g.module);
      return gram.call(`igiaGram.${g.layer}.${g.module}`, [this.gram, bufferOf(g.gA.buffer), bufferOf(g.gB.buffer)], [2], [
        u32(rank), u32(inp), u32(out), u32(g.gA.offset ?? 0), u32(g.gB.offset ?? 0), u32(slot),
      ]);
    });
    this.scoreCall = score.call('igiaScore', [this.sums, this.stepScore, this.gram], [ceilDiv(n, 64)], [u32(rank), u32(n)]);
  }

  /** Bytes the scorer holds on the GPU now (the factor staging ring included). */
  get gpuBytes(): number {
    return this.gram.buffer.size + this.sums.buffer.size + this.stepScore.buffer.size + this.history.buffer.size + (this.factors?.gpuBytes ?? 0);
  }

  /** Bytes of host memory the factors take (maxSteps steps, allocated at the first step). */
  get hostBytes(): number {
    return this.factors?.hostBytes ?? 0;
  }

  get stepsRecorded(): number {
    return this.step;
  }

  /**
   * Record one step's scoring into the trainer's encoder (outside any open pass); call after clipping, and submit
   * the encoder before awaiting anything (the step's factors are mapped for the host once it is submitted).
   */
  record(encoder: GPUCommandEncoder): void {
    const { maxSteps } = this.opts;
    if (this.step >= maxSteps) {
      throw new GradPruneError('input', `IGIA was set up for ${maxSteps} steps; step ${this.step + 1} cannot be recorded.`, { subject: 'steps' });
    }
    this.factors?.stage(encoder, this.step); // first: it throws when no staging slot is free
    const pass = encoder.beginComputePass({ label: 'igia' });
    for (const c of this.gramCalls) c.encode(pass);
    this.scoreCall.encode(pass);
    pass.end();
    const n = this.modules.length;
    encoder.copyBufferToBuffer(this.stepScore.buffer, 0, this.history.buffer, this.step * n * 4, n * 4);
    this.step++;
  }

  /** Resolves once the next step has a staging slot; a training loop awaits it before each step. */
  async ready(): Promise<void> {
    await this.factors?.ready();
  }

  /** Resolves once the factors of every recorded step are in host memory. */
  async flush(): Promise<void> {
    await this.factors?.flush();
  }

  async readScores(): Promise<IgiaScores> {
    const t = this.step;
    if (t === 0) throw new GradPruneError('input', 'No IGIA steps were recorded yet.', { subject: 'steps' });
    const n = this.modules.length;
    const L = this.config.numLayers;
    const sums = await readback(this.device, this.sums);
    const hist = await readback(this.device, this.history);
    await this.flush(); // long done by now; surfaces a failed readback early
    const moduleScore = Array.from({ length: L }, () => new Array<number>(LINEAR_MODULES.length).fill(0));
    const layerScoreCode = new Array<number>(L).fill(0);
    const cumulative = new Array<number>(L).fill(0);
    const history: number[][] = [];
    this.modules.forEach((g, slot) => {
      moduleScore[g.layer][LINEAR_MODULES.indexOf(g.module)] += sums[slot] / t;
      layerScoreCode[g.layer] += sums[n + slot];
    });
    for (let s = 0; s < t; s++) {
      this.modules.forEach((g, slot) => (cumulative[g.layer] += hist[s * n + slot]));
      history.push(cumulative.map((c) => c / (s + 1)));
    }
    const layerScore = moduleScore.map((row) => row.reduce((a, b) => a + b, 0));
    const kendall = history.map((h) => kendallTau(h, history[t - 1]));
    return { steps: t, layerScore, moduleScore, layerScoreCode, history, kendall };
  }

  /**
   * What a resumed run needs to go on as if never stopped (nn/run-snapshot.ts): the accumulated sums (2, modules),
   * the per-step history (steps, modules) and every kept factor set (steps, r·(in + out)), as named arrays.
   */
  async snapshot(): Promise<Map<string, Float32Array>> {
    await this.flush();
    const n = this.modules.length;
    const out = new Map<string, Float32Array>([
      [SNAPSHOT_SUMS, await readback(this.device, this.sums)],
      [SNAPSHOT_HISTORY, (await readback(this.device, this.history)).slice(0, this.step * n)],
    ]);
    // Views: the rows of finished steps are never written again.
    for (const [name, values] of this.factors?.values() ?? []) out.set(`${SNAPSHOT_FACTORS}${name}`, values);
    return out;
  }

  /** Continue from `snapshot()`'s arrays after `steps` steps, before recording any step. */
  restore(state: ReadonlyMap<string, Float32Array>, steps: number): void {
    if (this.step > 0) throw new Error('IgiaScorer.restore after steps were recorded.');
    const n = this.modules.length;
    const sized = (name: string, length: number): Float32Array => {
      const values = state.get(name);
      if (values?.length !== length) {
        throw new GradPruneError('input', `The snapshot's IGIA ${name} has ${values ? values.length : 'no'} values; ${steps} steps of ${n} modules need ${length}.`, {
          subject: name,
          hint: 'The snapshot does not belong to this run: start afresh.',
        });
      }
      return values;
    };
    if (steps > this.opts.maxSteps) throw new GradPruneError('input', `The snapshot has ${steps} IGIA steps, more than the ${this.opts.maxSteps} this run records.`, { subject: 'steps' });
    const sums = sized(SNAPSHOT_SUMS, 2 * n);
    const history = sized(SNAPSHOT_HISTORY, steps * n);
    const factors = new Map([...state].filter(([k]) => k.startsWith(SNAPSHOT_FACTORS)).map(([k, v]) => [k.slice(SNAPSHOT_FACTORS.length), v]));
    this.factors?.restore(factors, steps);
    upload(this.device, this.sums, sums);
    if (steps > 0) upload(this.device, view(this.history, 0, [steps, n]), history);
    this.step = steps;
  }

  /** Layer and module of every stored factor set (the modules whose F can be rebuilt). */
  get factorModules(): { layer: number; module: LinearModule }[] {
    return this.factors?.stored ?? [];
  }

  /**
   * The factors as an IGIA state (the form scores.igia.safetensors stores): views of the host store, not copies.
   * Every recorded step's factors must have reached the host (await flush() first).
   */
  hostState(modelFingerprint: string): IgiaState {
    const { rank } = this.opts;
    return { rank, steps: this.step, numLayers: this.config.numLayers, modelFingerprint, factors: this.factors?.values() ?? new Map() };
  }

  /** A copy of one module's factors for the recorded steps, (steps, r·(in + out)): per step gA (r, in) then gB (out, r). */
  async readFactors(layer: number, module: LinearModule): Promise<Float32Array> {
    await this.flush();
    const values = this.hostState('').factors.get(linearWeightName(layer, module));
    if (!values) throw new GradPruneError('input', `No gradient factors were kept for layer ${layer} ${module}.`, { subject: `layer ${layer}` });
    return values.slice();
  }

  /**
   * F = (1/t) Σ_s (gB_s·gA_s)² of one module, (out, in), on the GPU, from the host factors (the same path as a
   * saved state). Await readScores() or flush() after the last step first. The caller owns (and destroys) the tensor.
   */
  rebuildImportance(layer: number, module: LinearModule): Tensor {
    if (!this.rebuilder) {
      throw new GradPruneError('input', `No gradient factors were kept for layer ${layer} ${module}, so its importance cannot be rebuilt.`, {
        subject: `layer ${layer}`,
        hint: 'Score again with factors kept for this layer.',
      });
    }
    return this.rebuilder.importance(layer, module);
  }

  destroy(): void {
    for (const c of [...this.gramCalls, this.scoreCall]) c.destroy();
    for (const t of [this.gram, this.sums, this.stepScore, this.history]) t.buffer.destroy();
    this.factors?.destroy();
  }
}
