// One job of the GPU engine on a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3) with LoRA adapters: the
// activations of one (B, T) shape and every KernelCall over them, built once, on weights that live apart
// (./weights.ts: uploaded once per device and shared by every job; resident, or streamed layer by layer).
// The step loop only writes the batch and uniforms and encodes the prepared calls: forward → zero grads → backward.
// Frozen weights get no gradients; the gradient flows through them (dx = dy·W). Full fine-tuning would add
// dweight tensors to `LinearParams` and pass them to linearBackward where it now passes null.
// With gradient checkpointing a layer keeps only its input (the residual stream); its internals live in one
// shared set of buffers and the backward pass re-runs the layer's forward calls before its backward calls.
// Streamed weights imply checkpointing: each layer is submitted on its own, after its weights are queued.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { KernelCall } from '../gpu/kernel';
import { createTensor, readback, upload, type GpuDType, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, type LinearModule, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { Kernels, ropeTables, type AttentionShape } from './kernels';
import { LossHead } from './loss-head';
import { adapterName, loraScale, type LoraAdapter, type LoraConfig } from './lora';
import { checkJobMemory, planResidency, type ResidencyChoice } from './memory';
import { resolveWeightStorage, type WeightPrecision, type WeightStorage } from './precision';
import { ModelWeights, type LayerParams } from './weights';

export type { WeightPrecision, WeightStorage } from './precision';
export type { LayerParams, LinearParams, Residency } from './weights';

/** f16 weight storage when the device has shader-f16 (half the memory), else f32: what 'auto' resolves to. */
export const preferredWeightStorage = (gpu: Gpu): WeightStorage => resolveWeightStorage('auto', gpu.adapter).storage;

/** The shape and kind of one job on a model's weights. */
export interface JobOptions {
  /** Rows per batch (B) and tokens per row (T): activations are allocated for exactly this. */
  batchSize: number;
  seqLen: number;
  /** LoRA adapters (null: no adapters, forward only). */
  lora: LoraConfig | null;
  /** Initial adapter values (e.g. initLoraAdapters or a fixture); required when lora is set. */
  adapters?: readonly LoraAdapter[];
  /** Recompute each layer's forward in its backward pass, keeping only layer inputs (default false; always on when streamed). */
  checkpointing?: boolean;
  /** Allocate gradients and backward buffers (default: true when lora is set). */
  training?: boolean;
  /** GPU memory the weights and this job may use together (default: checkMemory's budget; `--max-gpu-memory`). */
  memoryBudget?: number;
  /** Rows per chunk of the lm_head + cross-entropy (default: what keeps a logits chunk under 64 MiB). */
  lossChunkRows?: number;
}

export interface EngineOptions extends JobOptions {
  /**
   * 'auto' (f16 with shader-f16, else f32), 'f32', or 'f16' (refused without shader-f16). Default f32, the precision
   * the fixtures are checked at: every setting a person chooses (run settings, eval engines, CLI, studio) passes
   * 'auto' unless told otherwise.
   */
  weights?: WeightPrecision;
  /** 'auto' (default): resident when weights and job fit the budget, else streamed; or forced. */
  residency?: ResidencyChoice;
  /** Streamed: host memory for layer weights; layers past it are re-read from the checkpoint at each upload. */
  hostCacheBytes?: number;
  /** Called after each tensor read from the checkpoint with (done, total) bytes. */
  onProgress?: (done: number, total: number) => void;
}

/** One adapter on the GPU: values, clipped gradients (after a step's clip), and AdamW moments. */
export interface GpuAdapter {
  layer: number;
  module: LinearModule;
  name: string;
  inFeatures: number;
  outFeatures: number;
  A: Tensor; // (r, in)
  B: Tensor; // (out, r)
  dA: Tensor; // (r, in)
  dB: Tensor; // (out, r)
  mA: Tensor; vA: Tensor; // (r, in)
  mB: Tensor; vB: Tensor; // (out, r)
}

/** The activations of one layer that its backward pass reads. Shared by every layer under checkpointing. */
interface LayerActs {
  h1: Tensor; rstd1: Tensor; // (B, T, C), (B, T)
  q: Tensor; k: Tensor; v: Tensor; // (B, T, NH, HD), (B, T, NKV, HD) ×2; q and k after RoPE
  /** Qwen3: q and k as projected (before the per-head norm) and the norms' rstd; null elsewhere. */
  qLin: Tensor | null; kLin: Tensor | null; // (B, T, NH, HD), (B, T, NKV, HD)
  rstdQ: Tensor | null; rstdK: Tensor | null; // (B, T, NH), (B, T, NKV)
  att: Tensor; lse: Tensor; // (B, T, NH, HD), (B, NH, T)
  x2: Tensor; // (B, T, C) residual stream after attention
  h2: Tensor; rstd2: Tensor; // (B, T, C), (B, T)
  gate: Tensor; up: Tensor; act: Tensor; // (B, T, F)
  loraH: Partial<Record<LinearModule, Tensor>>; // (B, T, r): x·Aᵀ
}

/** Host-side batch: rows of up to T tokens; shorter rows are right-padded (token 0, loss mask 0). */
export interface Batch {
  ids: ArrayLike<number>[];
  lossMask: ArrayLike<number>[];
}

/** Work for one submit: when streamed, the layer whose weights must be queued first. */
interface Segment {
  layer: number | null;
  calls: KernelCall[];
}

export class GpuModel {
  readonly kernels: Kernels;
  readonly gpu: Gpu;
  readonly config: ModelConfig;
  readonly B: number;
  readonly T: number;
  readonly weightStorage: WeightStorage;
  readonly checkpointing: boolean;
  readonly training: boolean;
  readonly lora: LoraConfig | null;
  adapters: GpuAdapter[] = [];

  // Batch inputs and outputs.
  readonly ids: Tensor; // (B, T) i32
  readonly lossMask: Tensor; // (B, T) i32
  readonly stats: Tensor; // (2): mean loss, count
  /** Per-position loss of the last forward: −log p(ids[t+1] | ids[..t]) where lossMask[t+1] == 1, else 0 (eval reads it). */
  readonly tokenLosses: Tensor; // (B, T)

  private readonly embedCalls: KernelCall[] = [];
  private readonly layerForwardCalls: KernelCall[][] = [];
  private readonly headForwardCalls: KernelCall[] = [];
  readonly zeroGradCalls: KernelCall[] = [];
  private readonly headBackwardCalls: KernelCall[] = [];
  private readonly layerBackwardCalls: KernelCall[][] = [];
  /** lm_head + cross-entropy in row chunks: the (B, T, V) logits are never whole. */
  private lossHead!: LossHead;

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
    this.kernels = new Kernels(this.gpu);
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
    model.build(opts.lossChunkRows);
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

  /** Allocate activations and build forward, zero-grad and backward calls. */
  private build(lossChunkRows?: number): void {
    const c = this.config;
    const k = this.kernels;
    const w = this.weights;
    const { B, T } = this;
    const C = c.hiddenSize, NH = c.numHeads, NKV = c.numKvHeads, HD = c.headDim, F = c.intermediateSize;
    const r = this.lora?.rank ?? 0;
    const scale = this.lora ? loraScale(this.lora) : 0;
    const attnShape: AttentionShape = { B, T, NH, NKV, HD, window: c.slidingWindow };
    const adapterOf = new Map(this.adapters.map((a) => [a.name, a]));
    const qk = c.qkNorm;

    const tables = ropeTables(c.rope, HD, T);
    const cos = this.alloc('rope.cos', [T, HD]); // (T, HD)
    const sin = this.alloc('rope.sin', [T, HD]); // (T, HD)
    upload(this.gpu.device, cos, tables.cos);
    upload(this.gpu.device, sin, tables.sin);

    // Residual stream: resid[l] is layer l's input, resid[L] the final hidden state.
    const resid = Array.from({ length: c.numLayers + 1 }, (_, l) => this.alloc(`resid.${l}`, [B, T, C]));
    const makeActs = (tag: string): LayerActs => {
      const loraH: Partial<Record<LinearModule, Tensor>> = {};
      if (this.lora) for (const m of this.lora.modules) loraH[m] = this.alloc(`${tag}.lora_h.${m}`, [B, T, r]);
      return {
        h1: this.alloc(`${tag}.h1`, [B, T, C]), rstd1: this.alloc(`${tag}.rstd1`, [B, T]),
        q: this.alloc(`${tag}.q`, [B, T, NH, HD]), k: this.alloc(`${tag}.k`, [B, T, NKV, HD]), v: this.alloc(`${tag}.v`, [B, T, NKV, HD]),
        qLin: qk ? this.alloc(`${tag}.q_lin`, [B, T, NH, HD]) : null, kLin: qk ? this.alloc(`${tag}.k_lin`, [B, T, NKV, HD]) : null,
        rstdQ: qk ? this.alloc(`${tag}.rstd_q`, [B, T, NH]) : null, rstdK: qk ? this.alloc(`${tag}.rstd_k`, [B, T, NKV]) : null,
        att: this.alloc(`${tag}.att`, [B, T, NH, HD]), lse: this.alloc(`${tag}.lse`, [B, NH, T]),
        x2: this.alloc(`${tag}.x2`, [B, T, C]),
        h2: this.alloc(`${tag}.h2`, [B, T, C]), rstd2: this.alloc(`${tag}.rstd2`, [B, T]),
        gate: this.alloc(`${tag}.gate`, [B, T, F]), up: this.alloc(`${tag}.up`, [B, T, F]), act: this.alloc(`${tag}.act`, [B, T, F]),
        loraH,
      };
    };
    const shared = this.checkpointing ? makeActs('layer') : null;
    const acts = Array.from({ length: c.numLayers }, (_, l) => shared ?? makeActs(`layer.${l}`));
    // Forward scratch: q and k before RoPE, and the projections added onto the residual stream.
    const qPre = this.alloc('scratch.q_pre', [B, T, NH, HD]);
    const kPre = this.alloc('scratch.k_pre', [B, T, NKV, HD]);
    const proj = this.alloc('scratch.proj', [B, T, C]);

    /** out = inp·Wᵀ (+ b) (+ s·(inp·Aᵀ)·Bᵀ) */
    const linear = (l: number, m: LinearModule, out: Tensor, inp: Tensor, a: LayerActs): KernelCall[] => {
      const p = w.layer(l).linear[m];
      const calls = k.linearForward(out, inp, p.W, p.b);
      const ad = adapterOf.get(adapterName(l, m));
      if (ad) calls.push(...k.loraForward(out, a.loraH[m]!, inp, ad.A, ad.B, scale));
      return calls;
    };
    /** q (or k) projection into `pre` (RoPE's input): through Qwen3's per-head norm where the model has one. */
    const qkProjection = (l: number, m: 'q_proj' | 'k_proj', pre: Tensor, a: LayerActs): KernelCall[] => {
      const [lin, rstd, norm] = m === 'q_proj' ? [a.qLin, a.rstdQ, w.layer(l).qNorm] : [a.kLin, a.rstdK, w.layer(l).kNorm];
      if (!lin) return linear(l, m, pre, a.h1, a);
      return [...linear(l, m, lin, a.h1, a), ...k.rmsnormForward(pre, rstd!, lin, norm!, c.rmsNormEps)];
    };

    const layerForward = (l: number): KernelCall[] => {
      const p = w.layer(l);
      const a = acts[l];
      return [
        ...k.rmsnormForward(a.h1, a.rstd1, resid[l], p.inputNorm, c.rmsNormEps),
        ...qkProjection(l, 'q_proj', qPre, a),
        ...qkProjection(l, 'k_proj', kPre, a),
        ...linear(l, 'v_proj', a.v, a.h1, a),
        ...k.ropeForward(a.q, qPre, cos, sin, T, NH),
        ...k.ropeForward(a.k, kPre, cos, sin, T, NKV),
        ...k.attentionForward(a.att, a.lse, a.q, a.k, a.v, attnShape),
        ...linear(l, 'o_proj', proj, a.att, a),
        ...k.residualForward(a.x2, resid[l], proj),
        ...k.rmsnormForward(a.h2, a.rstd2, a.x2, p.postNorm, c.rmsNormEps),
        ...linear(l, 'gate_proj', a.gate, a.h2, a),
        ...linear(l, 'up_proj', a.up, a.h2, a),
        ...k.swigluForward(a.act, a.gate, a.up),
        ...linear(l, 'down_proj', proj, a.act, a),
        ...k.residualForward(resid[l + 1], a.x2, proj),
      ];
    };
    for (let l = 0; l < c.numLayers; l++) this.layerForwardCalls.push(layerForward(l));

    const hf = this.alloc('final.h', [B, T, C]);
    const rstdf = this.alloc('final.rstd', [B, T]);
    const lossLse = this.alloc('loss.lse', [B, T]);
    const dh = this.training ? this.alloc('grad.h', [B, T, C]) : null; // d of a norm's output
    this.lossHead = new LossHead(k, {
      hf, ids: this.ids, mask: this.lossMask, lmHeadParts: w.lmHeadParts, V: c.vocabSize, T,
      losses: this.tokenLosses, lse: lossLse, stats: this.stats, training: this.training, dh: dh ?? undefined, chunkRows: lossChunkRows,
    });
    this.jobBytes += this.lossHead.bytes;
    this.embedCalls.push(...k.embeddingForwardParts(resid[0], this.ids, w.embedParts));
    this.headForwardCalls.push(...k.rmsnormForward(hf, rstdf, resid[c.numLayers], w.finalNorm, c.rmsNormEps), ...this.lossHead.forwardCalls);
    if (!this.training || !dh) return;

    for (const a of this.adapters) this.zeroGradCalls.push(...k.fill(a.dA), ...k.fill(a.dB));

    // Backward scratch, shared by every layer (each is zeroed before the kernels that accumulate into it).
    const dresid = this.alloc('grad.resid', [B, T, C]); // d(loss)/d(residual stream), carried down the layers
    const datt = this.alloc('grad.att', [B, T, NH, HD]);
    const dq = this.alloc('grad.q', [B, T, NH, HD]);
    const dk = this.alloc('grad.k', [B, T, NKV, HD]);
    const dv = this.alloc('grad.v', [B, T, NKV, HD]);
    const dqPre = this.alloc('grad.q_pre', [B, T, NH, HD]);
    const dkPre = this.alloc('grad.k_pre', [B, T, NKV, HD]);
    const dqLin = qk ? this.alloc('grad.q_lin', [B, T, NH, HD]) : null;
    const dkLin = qk ? this.alloc('grad.k_lin', [B, T, NKV, HD]) : null;
    const delta = this.alloc('grad.att_delta', [B, NH, T]);
    const dact = this.alloc('grad.act', [B, T, F]);
    const dgate = this.alloc('grad.gate', [B, T, F]);
    const dup = this.alloc('grad.up', [B, T, F]);
    const dloraH = r > 0 ? this.alloc('grad.lora_h', [B, T, r]) : null;

    /** dinp += dout·(W + s·B·A); the adapter's dA, dB accumulate. */
    const linearBack = (l: number, m: LinearModule, dinp: Tensor, dout: Tensor, inp: Tensor, a: LayerActs): KernelCall[] => {
      const calls = k.linearBackward(dinp, null, null, dout, inp, w.layer(l).linear[m].W);
      const ad = adapterOf.get(adapterName(l, m));
      if (ad) calls.push(...k.loraBackward(dinp, ad.dA, ad.dB, dloraH!, dout, inp, a.loraH[m]!, ad.A, ad.B, scale));
      return calls;
    };
    /** The q (or k) projection's backward from d(RoPE input): through the per-head norm first where there is one. */
    const qkProjectionBack = (l: number, m: 'q_proj' | 'k_proj', dpre: Tensor, a: LayerActs): KernelCall[] => {
      const [lin, rstd, norm, dlin] = m === 'q_proj' ? [a.qLin, a.rstdQ, w.layer(l).qNorm, dqLin] : [a.kLin, a.rstdK, w.layer(l).kNorm, dkLin];
      if (!lin) return linearBack(l, m, dh, dpre, a.h1, a);
      return [...k.rmsnormBackward(dlin!, null, dpre, lin, norm!, rstd!), ...linearBack(l, m, dh, dlin!, a.h1, a)];
    };
    const zero = (...ts: Array<Tensor | null>) => ts.flatMap((t) => (t ? k.fill(t) : []));

    this.headBackwardCalls.push(
      ...zero(dh, dresid),
      ...this.lossHead.backwardCalls,
      ...k.rmsnormBackward(dresid, null, dh, resid[c.numLayers], w.finalNorm, rstdf),
    );
    for (let l = 0; l < c.numLayers; l++) {
      const p = w.layer(l);
      const a = acts[l];
      this.layerBackwardCalls.push([
        // resid[l+1] = x2 + down(act): dresid flows on to x2 unchanged
        ...zero(dact, dgate, dup, dh),
        ...linearBack(l, 'down_proj', dact, dresid, a.act, a),
        ...k.swigluBackward(dgate, dup, dact, a.gate, a.up),
        ...linearBack(l, 'gate_proj', dh, dgate, a.h2, a),
        ...linearBack(l, 'up_proj', dh, dup, a.h2, a),
        ...k.rmsnormBackward(dresid, null, dh, a.x2, p.postNorm, a.rstd2),
        // x2 = resid[l] + o_proj(att)
        ...zero(datt, dq, dk, dv, dqPre, dkPre, dqLin, dkLin, dh),
        ...linearBack(l, 'o_proj', datt, dresid, a.att, a),
        ...k.attentionBackward(dq, dk, dv, delta, datt, a.att, a.q, a.k, a.v, a.lse, attnShape),
        ...k.ropeBackward(dqPre, dq, cos, sin, T, NH),
        ...k.ropeBackward(dkPre, dk, cos, sin, T, NKV),
        ...qkProjectionBack(l, 'q_proj', dqPre, a),
        ...qkProjectionBack(l, 'k_proj', dkPre, a),
        ...linearBack(l, 'v_proj', dh, dv, a.h1, a),
        // The embedding is frozen: layer 0's input needs no gradient.
        ...(l > 0 ? k.rmsnormBackward(dresid, null, dh, resid[l], p.inputNorm, a.rstd1) : []),
      ]);
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
      { layer: null, calls: this.embedCalls },
      ...layers.map((l) => ({ layer: l, calls: this.layerForwardCalls[l] })),
      { layer: null, calls: grads ? [...this.headForwardCalls, ...this.zeroGradCalls, ...this.headBackwardCalls] : this.headForwardCalls },
    ];
    const backward: Segment[] = grads
      ? layers.reverse().map((l) => ({ layer: l, calls: this.checkpointing ? [...this.layerForwardCalls[l], ...this.layerBackwardCalls[l]] : this.layerBackwardCalls[l] }))
      : [];
    const all = [...forward, ...backward];
    return this.weights.streamed ? all : [{ layer: null, calls: all.flatMap((s) => s.calls) }];
  }

  /**
   * Submit the forward pass of the batch set by setBatch (and, when `grads`, zero the gradients and run the backward
   * pass). `tail` records more work (a trainer's clip and update) into the last command encoder.
   * Streamed weights: at most two submits are in flight, which bounds the upload staging to two layers.
   */
  async submitPasses(grads: boolean, tail?: (encoder: GPUCommandEncoder) => void): Promise<void> {
    if (grads && !this.training) throw new GradPruneError('input', 'This model was loaded for inference; load it with training enabled to compute gradients.');
    const { device } = this.gpu;
    const segments = this.segments(grads);
    const inFlight: Promise<void>[] = [];
    for (const [i, seg] of segments.entries()) {
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
  }

/** Write a batch (right-padded to T with token 0 and loss mask 0; missing rows are all padding). */
  setBatch(batch: Batch): void {
    const { B, T } = this;
    if (batch.ids.length > B || batch.ids.length !== batch.lossMask.length) {
      throw new GradPruneError('input', `A batch has ${batch.ids.length} rows of ids and ${batch.lossMask.length} of loss masks; the engine was set up for at most ${B}.`, {
        subject: 'batch',
      });
    }
    this.hostIds.fill(0);
    this.hostMask.fill(0);
    const V = this.config.vocabSize;
    batch.ids.forEach((row, b) => {
      const mask = batch.lossMask[b];
      if (row.length > T || mask.length !== row.length) {
        throw new GradPruneError('input', `Row ${b} of the batch has ${row.length} tokens and ${mask.length} mask entries; at most ${T} tokens, one mask entry each.`, {
          subject: `row ${b}`,
          hint: 'Truncate examples to the sequence length.',
        });
      }
      for (let t = 0; t < row.length; t++) {
        const id = row[t];
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new GradPruneError('input', `Token id ${id} in row ${b}, position ${t} is outside the vocabulary (0..${V - 1}).`, {
            subject: `row ${b}`,
            hint: 'The tokenizer does not match the model.',
          });
        }
        this.hostIds[b * T + t] = id;
        this.hostMask[b * T + t] = mask[t] ? 1 : 0;
      }
    });
    upload(this.gpu.device, this.ids, this.hostIds);
    upload(this.gpu.device, this.lossMask, this.hostMask);
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
    return this.lossHead.readLogits(this.gpu.device);
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
    const calls = [this.embedCalls, ...this.layerForwardCalls, this.headForwardCalls, this.zeroGradCalls, this.headBackwardCalls, ...this.layerBackwardCalls];
    for (const c of calls.flat()) c.destroy();
    this.lossHead.destroy();
    this.kernels.lib.unused.buffer.destroy();
    if (this.ownsWeights) this.weights.destroy();
  }
}

/** The memory plan of a job (streamed weights force checkpointing; the memory module decides that too). */
function jobPlanOf(opts: JobOptions, weights: WeightStorage) {
  return {
    batchSize: opts.batchSize,
    seqLen: opts.seqLen,
    lora: opts.lora,
    weights,
    checkpointing: opts.checkpointing ?? false,
    training: opts.training ?? opts.lora !== null,
  };
}

function validateOptions(config: ModelConfig, opts: JobOptions): void {
  const positive = (v: number, what: string) => {
    if (!Number.isInteger(v) || v <= 0) throw new GradPruneError('input', `${what} must be a positive integer (got ${v}).`, { subject: what });
  };
  positive(opts.batchSize, 'batch size');
  positive(opts.seqLen, 'sequence length');
  if (opts.seqLen > config.maxPositionEmbeddings) {
    throw new GradPruneError('input', `Sequence length ${opts.seqLen} is longer than the model's ${config.maxPositionEmbeddings} positions.`, {
      subject: 'sequence length',
      hint: `Use at most ${config.maxPositionEmbeddings} tokens.`,
    });
  }
  if (config.headDim > 256) throw new GradPruneError('config', `head_dim ${config.headDim} is over the attention kernel's 256.`, { subject: 'config.json' });
}
