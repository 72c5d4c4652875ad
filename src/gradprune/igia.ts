// GradPruner's importance (IGIA) gathered on the GPU from the clipped LoRA gradients of each training step.
//
// The trainer records `scorer.record(encoder)` into its step's command encoder after clipping (before the
// next zeroing of gradients). Per module and step, with gA (r, in) and gB (out, r):
//   igiaGram   GA = gA·gAᵀ, GB = gBᵀ·gB               (r, r) each, never the (out, in) product S = gB·gA
//   igiaScore  ‖S‖²_F = Σ GA ⊙ GB, accumulated per (layer, module), plus Σ ‖S‖_F (the released script's score)
//   copies     this step's ‖S‖²_F into a (steps, modules) history; gA and gB into the module's factor store
// After the run, `readScores()` gives the paper's layer score (1/t) Σ_s ‖S_s‖²_F (= Σ over elements of F), the
// module split, the code's score, and the per-step history; `rebuildImportance(layer, module)` rebuilds the
// element-wise F = (1/t) Σ_s (gB_s·gA_s)² on the GPU from the stored factors, for the layers being merged.
//
// Memory: factors live on the GPU, one buffer per stored module of maxSteps × r × (in + out) f32
// (`factorBytes`); layer 0 is never merged, so its factors are not kept. The total is checked against
// `maxFactorBytes` at construction (a GradPruneError says how many steps would fit).

import gramCode from '../../shaders/igia_gram.wgsl?raw';
import rebuildCode from '../../shaders/igia_rebuild.wgsl?raw';
import scoreCode from '../../shaders/igia_score.wgsl?raw';
import { GradPruneError } from '../errors';
import { ceilDiv, Kernel, type KernelCall } from '../gpu/kernel';
import { createTensor, readback, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, type LinearModule, type ModelConfig } from '../model/config';
import { kendallTau } from './scores';

/** Where one LoRA gradient lives: a buffer (or tensor) and the element offset of its first value. */
export interface GradView {
  buffer: GPUBuffer | Tensor;
  /** f32 elements from the start of the buffer. */
  offset?: number;
}

export interface IgiaModuleGrads {
  layer: number;
  module: LinearModule;
  /** dLoss/dA, (r, in), after clipping. */
  gA: GradView;
  /** dLoss/dB, (out, r), after clipping. */
  gB: GradView;
}

export interface IgiaOptions {
  rank: number;
  /** The most steps that will be recorded (sizes the history and the factor store). */
  maxSteps: number;
  /** Keep per-step factors so F can be rebuilt for merged layers (default true). */
  keepFactors?: boolean;
  /** Layers whose factors are kept (default: every layer but 0, which is never pruned). */
  factorLayers?: number[];
  /** Refuse to allocate more than this for factors (default 512 MiB). */
  maxFactorBytes?: number;
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

const f32 = (x: number) => ({ f32: x });
const u32 = (x: number) => ({ u32: x });
const bufferOf = (b: GPUBuffer | Tensor): GPUBuffer => ('buffer' in b ? b.buffer : b);

/** Bytes of stored factors for one module over `steps` steps. */
export const factorBytes = (c: ModelConfig, m: LinearModule, rank: number, steps: number): number => {
  const [out, inp] = linearShape(c, m);
  return steps * rank * (inp + out) * 4;
};

export class IgiaScorer {
  readonly modules: IgiaModuleGrads[];
  private readonly gram: Tensor; // (modules, 2, r, r)
  private readonly sums: Tensor; // (2, modules)
  private readonly stepScore: Tensor; // (modules)
  private readonly history: Tensor; // (maxSteps, modules)
  private readonly gramCalls: KernelCall[];
  private readonly scoreCall: KernelCall;
  private readonly factors = new Map<number, Tensor>(); // module slot → (maxSteps, r·(in + out))
  private readonly rebuildKernel: Kernel;
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
    this.gram = createTensor(device, 'igia.gram', [n, 2, rank, rank]);
    this.sums = createTensor(device, 'igia.sums', [2, n]);
    this.stepScore = createTensor(device, 'igia.stepScore', [n]);
    this.history = createTensor(device, 'igia.history', [maxSteps, n]);

    const gram = new Kernel(device, { label: 'igiaGram', code: gramCode, entryPoint: 'igiaGram', bindings: ['write', 'read', 'read', 'uniform'] });
    const score = new Kernel(device, { label: 'igiaScore', code: scoreCode, entryPoint: 'igiaScore', bindings: ['write', 'write', 'read', 'uniform'] });
    this.rebuildKernel = new Kernel(device, { label: 'igiaRebuild', code: rebuildCode, entryPoint: 'igiaRebuild', bindings: ['write', 'read', 'uniform'] });

    this.gramCalls = grads.map((g, slot) => {
      const [out, inp] = linearShape(config, g.module);
      return gram.call(`igiaGram.${g.layer}.${g.module}`, [this.gram, bufferOf(g.gA.buffer), bufferOf(g.gB.buffer)], [2], [
        u32(rank), u32(inp), u32(out), u32(g.gA.offset ?? 0), u32(g.gB.offset ?? 0), u32(slot),
      ]);
    });
    this.scoreCall = score.call('igiaScore', [this.sums, this.stepScore, this.gram], [ceilDiv(n, 64)], [u32(rank), u32(n)]);

    if (opts.keepFactors ?? true) {
      const layers = new Set(opts.factorLayers ?? Array.from({ length: config.numLayers - 1 }, (_, i) => i + 1));
      const slots = grads.map((g, slot) => ({ g, slot })).filter(({ g }) => layers.has(g.layer));
      const perStep = slots.reduce((s, { g }) => s + factorBytes(config, g.module, rank, 1), 0);
      const limit = opts.maxFactorBytes ?? 512 * 2 ** 20;
      if (perStep * maxSteps > limit) {
        throw new GradPruneError(
          'memory',
          `Keeping the gradient factors of ${maxSteps} steps needs ${(perStep * maxSteps / 2 ** 20).toFixed(0)} MiB of GPU memory, over the ${(limit / 2 ** 20).toFixed(0)} MiB allowed.`,
          { subject: 'steps', hint: `Score with at most ${Math.max(1, Math.floor(limit / perStep))} steps, or a lower LoRA rank.` },
        );
      }
      for (const { g, slot } of slots) {
        const [out, inp] = linearShape(config, g.module);
        this.factors.set(slot, createTensor(device, `igia.factors.${g.layer}.${g.module}`, [maxSteps, rank * (inp + out)]));
      }
    }
  }

  /** Bytes the scorer holds on the GPU (factor store included). */
  get gpuBytes(): number {
    let total = this.gram.buffer.size + this.sums.buffer.size + this.stepScore.buffer.size + this.history.buffer.size;
    for (const t of this.factors.values()) total += t.buffer.size;
    return total;
  }

  get stepsRecorded(): number {
    return this.step;
  }

  /** Record one step's scoring into the trainer's encoder (outside any open pass); call after clipping. */
  record(encoder: GPUCommandEncoder): void {
    const { rank, maxSteps } = this.opts;
    if (this.step >= maxSteps) {
      throw new GradPruneError('input', `IGIA was set up for ${maxSteps} steps; step ${this.step + 1} cannot be recorded.`, { subject: 'steps' });
    }
    const pass = encoder.beginComputePass({ label: 'igia' });
    for (const c of this.gramCalls) c.encode(pass);
    this.scoreCall.encode(pass);
    pass.end();
    const n = this.modules.length;
    encoder.copyBufferToBuffer(this.stepScore.buffer, 0, this.history.buffer, this.step * n * 4, n * 4);
    for (const [slot, store] of this.factors) {
      const g = this.modules[slot];
      const [out, inp] = linearShape(this.config, g.module);
      const base = this.step * rank * (inp + out) * 4;
      encoder.copyBufferToBuffer(bufferOf(g.gA.buffer), (g.gA.offset ?? 0) * 4, store.buffer, base, rank * inp * 4);
      encoder.copyBufferToBuffer(bufferOf(g.gB.buffer), (g.gB.offset ?? 0) * 4, store.buffer, base + rank * inp * 4, out * rank * 4);
    }
    this.step++;
  }

  async readScores(): Promise<IgiaScores> {
    const t = this.step;
    if (t === 0) throw new GradPruneError('input', 'No IGIA steps were recorded yet.', { subject: 'steps' });
    const n = this.modules.length;
    const L = this.config.numLayers;
    const sums = await readback(this.device, this.sums);
    const hist = await readback(this.device, this.history);
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

  /** Layer and module of every stored factor set (the modules whose F can be rebuilt). */
  get factorModules(): { layer: number; module: LinearModule }[] {
    return [...this.factors.keys()].map((slot) => ({ layer: this.modules[slot].layer, module: this.modules[slot].module }));
  }

  /** The stored factors of one module for the recorded steps, (steps, r·(in + out)): per step gA (r, in) then gB (out, r). */
  async readFactors(layer: number, module: LinearModule): Promise<Float32Array> {
    const slot = this.modules.findIndex((g) => g.layer === layer && g.module === module);
    const store = this.factors.get(slot);
    if (!store) throw new GradPruneError('input', `No gradient factors were kept for layer ${layer} ${module}.`, { subject: `layer ${layer}` });
    const [out, inp] = linearShape(this.config, module);
    return (await readback(this.device, store)).slice(0, this.step * this.opts.rank * (inp + out));
  }

  /** F = (1/t) Σ_s (gB_s·gA_s)² of one module, (out, in), on the GPU. The caller owns (and destroys) the tensor. */
  rebuildImportance(layer: number, module: LinearModule): Tensor {
    const slot = this.modules.findIndex((g) => g.layer === layer && g.module === module);
    const store = this.factors.get(slot);
    if (!store) {
      throw new GradPruneError('input', `No gradient factors were kept for layer ${layer} ${module}, so its importance cannot be rebuilt.`, {
        subject: `layer ${layer}`,
        hint: 'Score again with factors kept for this layer.',
      });
    }
    if (this.step === 0) throw new GradPruneError('input', 'No IGIA steps were recorded yet.', { subject: 'steps' });
    const [out, inp] = linearShape(this.config, module);
    const importance = createTensor(this.device, `igia.F.${layer}.${module}`, [out, inp]);
    const call = this.rebuildKernel.call(`igiaRebuild.${layer}.${module}`, [importance, store], [ceilDiv(inp, 16), ceilDiv(out, 16)], [
      u32(this.opts.rank), u32(inp), u32(out), u32(this.step), f32(1 / this.step),
    ]);
    const encoder = this.device.createCommandEncoder({ label: 'igiaRebuild' });
    const pass = encoder.beginComputePass({ label: 'igiaRebuild' });
    call.encode(pass);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    call.destroy();
    return importance;
  }

  destroy(): void {
    for (const c of [...this.gramCalls, this.scoreCall]) c.destroy();
    for (const t of [this.gram, this.sums, this.stepScore, this.history, ...this.factors.values()]) t.buffer.destroy();
  }
}
