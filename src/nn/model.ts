// One job of the GPU engine on a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) with LoRA adapters: the
// activations of one (B, T) shape and every KernelCall over them, built once (./decoder.ts), on weights that live
// apart (./weights.ts: uploaded once per device and shared by every job; resident, or streamed layer by layer).
// The step loop only writes the batch and uniforms and encodes the prepared calls: forward → zero grads → backward.
// Frozen weights get no gradients; the gradient flows through them (dx = dy·W) — except those of the layers a job
// asks for (`weightGrads`: Taylor importances), whose dW accumulate over batches (./weight-grads.ts).
// With gradient checkpointing a layer keeps only its input (the residual stream); its internals live in one
// shared set of buffers and the backward pass re-runs the layer's forward calls before its backward calls.
// Streamed weights imply checkpointing: each layer is submitted on its own, after its weights are queued.

import type { TokenBatch } from '../data/types';
import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { KernelCall } from '../gpu/kernel';
import { createTensor, readback, upload, type GpuDType, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { packBatch } from './batch-input';
import { buildDecoder, type DecoderCalls, type GpuAdapter } from './decoder';
import { HiddenStateCollector, type HiddenStatePair } from './hidden-stats';
import { jobPlanOf, validateOptions, type EngineOptions, type JobOptions } from './job-options';
import { kernelLib, type KernelLib } from './kernels';
import { adapterName, type LoraAdapter, type LoraConfig } from './lora';
import { checkJobMemory, planResidency, type MemoryPlan } from './memory';
import { resolveWeightStorage, type WeightStorage } from './precision';
import { allocLmHeadGrad, allocWeightGrads, type FrozenWeightGrad, type LmHeadGrad } from './weight-grads';
import { ModelWeights, type LayerParams } from './weights';

export type { WeightPrecision, WeightStorage } from './precision';
export type { LayerParams, LinearParams, Residency } from './weights';
export type { GpuAdapter } from './decoder';
export type { EngineOptions, JobOptions } from './job-options';

/** f16 weight storage when the device has shader-f16 (half the memory), else f32: what 'auto' resolves to. */
export const preferredWeightStorage = (gpu: Gpu): WeightStorage => resolveWeightStorage('auto', gpu.adapter).storage;

/**
 * Weights already on the device for a job (a worker's cache: each checkpoint uploaded once per device and storage),
 * given the storage the job resolved and its memory plan, so the source can choose resident or streamed and make
 * room. A job on them leaves them when it is destroyed.
 */
export type WeightsSource = (storage: WeightStorage, job: MemoryPlan) => Promise<ModelWeights>;

/** The engine's batch is src/data's: (B, T) rows, right-padded with the batch's pad id (loss mask 0). */
export type Batch = TokenBatch;

/** Work for one submit: when streamed, the layer whose weights must be queued first. */
interface Segment {
  layer: number | null;
  calls: KernelCall[];
}

export class GpuModel {
  /** The device's kernel library (shared with every other job on the device). */
  readonly kernels: KernelLib;
  readonly gpu: Gpu;
  readonly config: ModelConfig;
  readonly B: number;
  readonly T: number;
  readonly weightStorage: WeightStorage;
  readonly checkpointing: boolean;
  readonly training: boolean;
  readonly lora: LoraConfig | null;
  adapters: GpuAdapter[] = [];
  /** The frozen-weight gradient sums (opts.weightGrads), keyed by linearWeightName; empty when not asked for. */
  frozenGrads: ReadonlyMap<string, FrozenWeightGrad> = new Map();
  /** The trained lm_head and its gradient (opts.trainLmHead); null when not asked for. */
  lmHeadGrad: LmHeadGrad | null = null;

  // Batch inputs and outputs.
  readonly ids: Tensor; // (B, T) i32
  readonly lossMask: Tensor; // (B, T) i32
  readonly stats: Tensor; // (2): mean loss, count
  /** Per-position loss of the last forward: −log p(ids[t+1] | ids[..t]) where lossMask[t+1] == 1, else 0 (eval reads it). */
  readonly tokenLosses: Tensor; // (B, T)

  /** Every call of the job, built once (./decoder.ts); the loss head runs lm_head + cross-entropy in row chunks. */
  private calls!: DecoderCalls;
  /** Hidden-state statistics recorded after the last layer's forward of every pass (collectHiddenStates). */
  private hiddenStates: HiddenStateCollector | null = null;

  /** Bytes of every GPU buffer this job allocated (kernel uniforms and the kernels' own scratch aside; weights apart). */
  jobBytes = 0;
  private readonly owned: Tensor[] = [];
  private readonly hostIds: Int32Array;
  private readonly hostMask: Int32Array;

  private constructor(
    readonly weights: ModelWeights,
    opts: JobOptions,
    /** Whether destroy() also frees the weights (a model loaded by GpuModel.load owns its weights). */
    private readonly ownsWeights: boolean,
  ) {
    this.gpu = weights.gpu;
    this.config = weights.config;
    this.kernels = kernelLib(this.gpu);
    this.B = opts.batchSize;
    this.T = opts.seqLen;
    this.weightStorage = weights.storage;
    this.checkpointing = weights.streamed || (opts.checkpointing ?? false);
    this.lora = opts.lora;
    this.training = opts.training ?? opts.lora !== null;
    const N = this.B * this.T;
    this.ids = this.alloc('ids', [this.B, this.T], 'i32');
    this.lossMask = this.alloc('lossMask', [this.B, this.T], 'i32');
    this.stats = this.alloc('loss.stats', [2]);
    this.tokenLosses = this.alloc('loss.per_position', [this.B, this.T]);
    this.hostIds = new Int32Array(N);
    this.hostMask = new Int32Array(N);
  }

  /**
   * Load the weights (resident when they fit beside the job, else streamed) and set up the job on them; the job
   * owns the weights. Throws GradPruneError('memory') before any allocation when neither fits.
   */
  static async load(gpu: Gpu, config: ModelConfig, store: TensorStore, opts: EngineOptions): Promise<GpuModel> {
    validateOptions(config, opts);
    const storage = resolveWeightStorage(opts.weights ?? 'f32', gpu.adapter).storage;
    const { residency } = planResidency(config, jobPlanOf(opts, storage), gpu.adapter, opts.residency ?? 'auto', opts.memoryBudget);
    const weights = await ModelWeights.load(gpu, config, store, { storage, residency, hostCacheBytes: opts.hostCacheBytes, onProgress: opts.onProgress });
    try {
      return GpuModel.create(weights, opts, true);
    } catch (e) {
      weights.destroy();
      throw e;
    }
  }

  /**
   * A job on weights already on the device (shared: destroying the job leaves them). Throws GradPruneError('memory')
   * before allocating when the job does not fit beside them.
   */
  static create(weights: ModelWeights, opts: JobOptions, ownsWeights = false): GpuModel {
    validateOptions(weights.config, opts);
    const checkpointing = weights.streamed || (opts.checkpointing ?? false);
    checkJobMemory(weights, jobPlanOf({ ...opts, checkpointing }, weights.storage), opts.memoryBudget);
    const model = new GpuModel(weights, opts, ownsWeights);
    if (opts.lora) model.uploadAdapters(opts.lora, opts.adapters);
    if (opts.weightGrads) {
      if (!model.training) throw new Error('weightGrads: the job must be set up for training (gradients and backward buffers)');
      model.frozenGrads = allocWeightGrads(model.config, opts.weightGrads, (label, shape) => model.alloc(label, shape));
    }
    if (opts.trainLmHead) {
      if (!model.training) throw new Error('trainLmHead: the job must be set up for training (gradients and backward buffers)');
      model.lmHeadGrad = allocLmHeadGrad(weights, (label, shape) => model.alloc(label, shape));
    }
    model.calls = buildDecoder({
      kernels: model.kernels, weights, device: model.gpu.device, B: model.B, T: model.T, lora: model.lora, adapters: model.adapters,
      training: model.training, checkpointing: model.checkpointing, ids: model.ids, lossMask: model.lossMask, stats: model.stats,
      tokenLosses: model.tokenLosses, lossChunkRows: opts.lossChunkRows, weightGrads: model.frozenGrads, lmHeadGrad: model.lmHeadGrad, alloc: (label, shape, dtype) => model.alloc(label, shape, dtype),
    });
    model.jobBytes += model.calls.lossHead.bytes;
    return model;
  }

  /** GPU bytes this job runs on: the weights (shared or not) and its own buffers; nn/memory.ts estimates the same. */
  get allocatedBytes(): number {
    return this.weights.allocatedBytes + this.jobBytes;
  }

  /** The layers' tensors as a job binds them (when streamed, the two slots). */
  get layers(): LayerParams[] {
    return Array.from({ length: this.config.numLayers }, (_, l) => this.weights.layer(l));
  }
  get finalNorm(): Tensor {
    return this.weights.finalNorm;
  }

  /** The whole forward pass as one list of calls (resident weights only; for benchmarks and timing). */
  get forwardCalls(): KernelCall[] {
    return this.passCalls(false);
  }

  /** Forward (and zero grads and backward) as one list of calls, as submitPasses encodes them on resident weights. */
  passCalls(grads: boolean): KernelCall[] {
    if (this.weights.streamed) throw new Error('passCalls: streamed weights need their uploads between layers; use submitPasses');
    return this.segments(grads)[0].calls;
  }

  private alloc(label: string, shape: readonly number[], dtype: GpuDType = 'f32'): Tensor {
    const t = createTensor(this.gpu.device, label, shape, dtype);
    this.jobBytes += t.buffer.size;
    this.owned.push(t);
    return t;
  }

  private uploadAdapters(lora: LoraConfig, given?: readonly LoraAdapter[]): void {
    const r = lora.rank;
    const byName = new Map((given ?? []).map((a) => [a.name, a]));
    for (let l = 0; l < this.config.numLayers; l++) {
      for (const m of LINEAR_MODULES) {
        if (!lora.modules.includes(m)) continue;
        const name = adapterName(l, m);
        const [out, inp] = linearShape(this.config, m);
        const host = byName.get(name);
        if (!host) {
          throw new GradPruneError('input', `No initial values for the LoRA adapter ${name}.`, {
            subject: name,
            hint: 'Pass adapters from initLoraAdapters(config, lora, seed) or loadLoraAdapters.',
          });
        }
        const t = (suffix: string, shape: number[]) => this.alloc(`${name}.${suffix}`, shape);
        const a: GpuAdapter = {
          layer: l, module: m, name, inFeatures: inp, outFeatures: out,
          A: t('lora_A', [r, inp]), B: t('lora_B', [out, r]),
          dA: t('grad_A', [r, inp]), dB: t('grad_B', [out, r]),
          mA: t('adam_m_A', [r, inp]), vA: t('adam_v_A', [r, inp]),
          mB: t('adam_m_B', [out, r]), vB: t('adam_v_B', [out, r]),
        };
        upload(this.gpu.device, a.A, host.A);
        upload(this.gpu.device, a.B, host.B);
        this.adapters.push(a);
      }
    }
  }

  /**
   * The submits of one pass in order. Resident: everything in one. Streamed: each decoder layer on its own, after
   * its weights; the backward walks the layers down again, re-running each layer's forward (checkpointing).
   */
  private segments(grads: boolean): Segment[] {
    const L = this.config.numLayers;
    const layers = Array.from({ length: L }, (_, l) => l);
    const forward: Segment[] = [
      { layer: null, calls: this.calls.embed },
      ...layers.map((l) => ({ layer: l, calls: this.calls.layerForward[l] })),
      { layer: null, calls: [...(this.hiddenStates?.calls ?? []), ...this.calls.headForward, ...(grads ? [...this.calls.zeroGrad, ...this.calls.headBackward] : [])] },
    ];
    // Without adapters, only frozen-weight gradients are wanted: the backward stops at the lowest layer that has them.
    const lowest = !this.lora && this.frozenGrads.size > 0 ? Math.min(...[...this.frozenGrads.values()].map((g) => g.layer)) : 0;
    const backward: Segment[] = grads
      ? layers.filter((l) => l >= lowest).reverse().map((l) => ({ layer: l, calls: this.checkpointing ? [...this.calls.layerForward[l], ...this.calls.layerBackward[l]] : this.calls.layerBackward[l] }))
      : [];
    const all = [...forward, ...backward];
    return this.weights.streamed ? all : [{ layer: null, calls: all.flatMap((s) => s.calls) }];
  }

  /**
   * Submit the forward pass of the batch set by setBatch (and, when `grads`, zero the gradients and run the backward
   * pass). `tail` records more work (a trainer's clip and update) into the last command encoder.
   * Streamed weights: at most two submits are in flight, which bounds the upload staging to two layers; a true
   * `stopRequested` between submits ends the passes before the tail (resolves false once the submitted work is done).
   */
  async submitPasses(grads: boolean, tail?: (encoder: GPUCommandEncoder) => void, stopRequested?: () => boolean): Promise<boolean> {
    if (grads && !this.training) throw new Error('This model was loaded for inference; load it with training enabled to compute gradients.');
    const { device } = this.gpu;
    const segments = this.segments(grads);
    const inFlight: Promise<void>[] = [];
    for (const [i, seg] of segments.entries()) {
      if (i > 0 && stopRequested?.()) return Promise.all(inFlight).then(() => false);
      if (seg.layer !== null) await this.weights.ensureLayer(seg.layer);
      const label = grads ? 'forward+backward' : 'forward';
      const encoder = device.createCommandEncoder({ label });
      const pass = encoder.beginComputePass({ label });
      GpuModel.encode(pass, seg.calls);
      pass.end();
      if (i === segments.length - 1) tail?.(encoder);
      device.queue.submit([encoder.finish()]);
      const next = segments.slice(i + 1).find((s) => s.layer !== null);
      if (next) this.weights.prefetch(next.layer!);
      if (segments.length > 1) {
        inFlight.push(device.queue.onSubmittedWorkDone());
        if (inFlight.length > 2) await inFlight.shift();
      }
    }
    return true;
  }

  /**
   * Write a batch of at most B rows of at most T tokens into the model's (B, T) buffers, as it is: positions past its
   * T and rows past its B are padding (its pad id, loss mask 0).
   */
  setBatch(batch: Batch): void {
    packBatch(batch, { B: this.B, T: this.T, vocabSize: this.config.vocabSize }, this.hostIds, this.hostMask);
    upload(this.gpu.device, this.ids, this.hostIds);
    upload(this.gpu.device, this.lossMask, this.hostMask);
  }

  /**
   * From now on, gather the distances between these pairs of residual-stream states in every forward pass (after the
   * last layer, before the head: once per pass, never in a checkpointed backward's recomputation). The job owns the
   * collector and destroys it with itself.
   */
  collectHiddenStates(pairs: readonly HiddenStatePair[]): HiddenStateCollector {
    if (this.hiddenStates) throw new Error('collectHiddenStates: this job already gathers hidden-state statistics');
    this.hiddenStates = new HiddenStateCollector(this.kernels, this.gpu.device, this.calls.resid, this.lossMask, this.T, pairs);
    return this.hiddenStates;
  }

  /** Encode calls into a pass in order. */
  static encode(pass: GPUComputePassEncoder, calls: readonly KernelCall[]): void {
    for (const c of calls) c.encode(pass);
  }

  /** Forward the batch (and, when `grads`, zero the gradients and run the backward pass); returns the mean loss. */
  async run(batch: Batch, grads = false): Promise<{ loss: number; count: number }> {
    this.setBatch(batch);
    await this.submitPasses(grads);
    const [loss, count] = await readback(this.gpu.device, this.stats);
    this.gpu.throwIfFailed();
    return { loss, count };
  }

  /**
   * The logits of the last forward pass, (B, T, V), recomputed chunk by chunk from the final hidden states: N·V floats
   * in host memory, for tests and small models.
   */
  readLogits(): Promise<Float32Array> {
    return this.calls.lossHead.readLogits(this.gpu.device);
  }

  /** Per-position losses (B, T) of the last forward pass: position t's loss predicts token t+1 (0 where not counted). */
  readTokenLosses(): Promise<Float32Array> {
    return readback(this.gpu.device, this.tokenLosses);
  }

  /** The adapters' current values and gradients on the host (for checks and export). */
  async readAdapters(): Promise<Array<{ name: string; A: Float32Array; B: Float32Array; dA: Float32Array; dB: Float32Array }>> {
    const out = [];
    for (const a of this.adapters) {
      const dev = this.gpu.device;
      out.push({ name: a.name, A: await readback(dev, a.A), B: await readback(dev, a.B), dA: await readback(dev, a.dA), dB: await readback(dev, a.dB) });
    }
    return out;
  }

  /** Bytes of the model's weights as stored on the GPU when resident (the model's size, streamed or not). */
  weightBytes(): number {
    return this.weights.modelBytes();
  }

  destroy(): void {
    for (const t of this.owned) t.buffer.destroy();
    const calls = [this.calls.embed, ...this.calls.layerForward, this.calls.headForward, this.calls.zeroGrad, this.calls.headBackward, ...this.calls.layerBackward];
    for (const c of calls.flat()) c.destroy();
    this.calls.lossHead.destroy();
    this.hiddenStates?.destroy();
    if (this.ownsWeights) this.weights.destroy();
  }
}
