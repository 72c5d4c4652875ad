// The CPU reference of a Llama-family decoder with LoRA: forward to logits, masked cross-entropy, and backward to
// dA/dB of every adapter; the frozen linear weights (and Qwen2's q/k/v biases) of the layers asked for get their
// gradients too (dW = doutᵀ·x, db = Σ_rows dout: the Taylor importances of gradprune/importance/taylor.ts).
// Float32 storage (as PyTorch rounds), double accumulation; or Float64 storage for finite-difference checks, where
// nothing is rounded between ops. Slow by design: tiny models only (tests and validation of the GPU engine).
// Qwen3's q/k norm: each head of the q and k projections is RMS-normalised over head_dim (weights q_norm / k_norm,
// frozen) after the projection and before RoPE; the same rmsnorm pair as the hidden-size norms, on rows N·NH (N·NKV)
// of width HD.

import type { LinearModule } from '../../model/config';
import { linearShape, linearWeightName } from '../../model/config';
import { GradPruneError } from '../../errors';
import { adapterName, type LoraAdapter } from '../lora';
import { ropeTables } from '../rope';
import type { AttentionShape } from '../kernels/attention';
import type { Vec } from '../kernels/cpu-storage';
import { attentionBackward, attentionForward } from '../kernels/attention.cpu';
import { crossentropyBackward, crossentropyForward } from '../kernels/crossentropy.cpu';
import { swigluBackward, swigluForward } from '../kernels/elementwise.cpu';
import { embeddingForward } from '../kernels/embedding.cpu';
import { linearBackward, linearForward, loraBackward, loraForward } from '../kernels/matmul.cpu';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.cpu';
import { ropeBackward, ropeForward } from '../kernels/rope.cpu';
import type { ModelWeights } from './weights';

export interface AdapterGrad {
  dA: Float32Array; // (r, in)
  dB: Float32Array; // (out, r)
}

/** dLoss/dW and dLoss/db of one frozen linear module. */
export interface LinearGrad {
  dW: Float64Array; // (out, in)
  db: Float64Array | null; // (out), where the module has a bias
}

/** Frozen-weight gradients asked of a backward pass: the layers, and where they accumulate (keyed by linearWeightName). */
export interface FrozenGrads {
  layers: ReadonlySet<number>;
  grads: Map<string, LinearGrad>;
  /** When set, lm_head's dW (V, C) accumulates (+=) here too (partial-layer fine-tuning trains it). */
  lmHead?: Float64Array;
}

/** Activation storage: f32 as PyTorch rounds (the fixtures' numbers), or f64 for finite differences. */
export type ReferenceStorage = 'f32' | 'f64';

export interface LoraState {
  scale: number; // alpha / r
  rank: number;
  /** Keyed by adapterName(layer, module). */
  adapters: ReadonlyMap<string, LoraAdapter>;
}

export function loraState(adapters: readonly LoraAdapter[], rank: number, alpha: number): LoraState {
  return { scale: alpha / rank, rank, adapters: new Map(adapters.map((a) => [a.name, a])) };
}

interface LinearTape {
  x: Vec; // (N, in): the module's input
  xa: Vec | null; // (N, r): x·Aᵀ, when the module has an adapter
}

interface LayerTape {
  x: Vec; // (N, C) residual stream in
  h1: Vec; rstd1: Vec; // (N, C), (N)
  q: Vec; k: Vec; v: Vec; // (N, NH·HD), (N, NKV·HD) ×2, after RoPE
  /** Qwen3 q/k norm: the projections before the norm and the per-head 1/rms, null without q/k norm. */
  qkNorm: { qLin: Vec; kLin: Vec; rstdQ: Vec; rstdK: Vec } | null; // (N, NH·HD), (N, NKV·HD), (N·NH), (N·NKV)
  att: Vec; // (B, NH, T, T)
  y: Vec; // (N, NH·HD) attention output
  x2: Vec; // (N, C)
  h2: Vec; rstd2: Vec;
  gate: Vec; up: Vec; act: Vec; // (N, F)
  lin: Record<LinearModule, LinearTape>;
}

export interface ForwardTape {
  B: number;
  T: number;
  layers: LayerTape[];
  xf: Vec; // (N, C) final residual
  hf: Vec; rstdf: Vec; // final norm out, (N)
}

/** A zeroed array of n in the storage of `a` (f32 or f64). */
const storageLike = (a: Vec, n: number): Vec => (a instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));

export class ReferenceModel {
  private readonly cos: Float32Array;
  private readonly sin: Float32Array;

  constructor(
    readonly w: ModelWeights,
    readonly lora: LoraState | null = null,
    maxPositions = 512,
    /** Of lossAndGrads' activations (forward() stores in f32 always: its logits are what callers compare). */
    readonly storage: ReferenceStorage = 'f32',
  ) {
    const c = w.config;
    ({ cos: this.cos, sin: this.sin } = ropeTables(c.rope, c.headDim, maxPositions));
    this.maxPositions = maxPositions;
  }

  private readonly maxPositions: number;

  /** y = x·Wᵀ (+b) + s·(x·Aᵀ)·Bᵀ; returns the tape entry. */
  private linear(vec: (n: number) => Vec, out: Vec, x: Vec, layer: number, m: LinearModule, N: number): LinearTape {
    const [O, I] = linearShape(this.w.config, m);
    const { W, b } = this.w.layers[layer].linear[m];
    linearForward(out, x, W, b, N, I, O);
    const ad = this.lora?.adapters.get(adapterName(layer, m));
    if (!ad || !this.lora) return { x, xa: null };
    const r = this.lora.rank;
    const xa = vec(N * r);
    loraForward(out, xa, x, ad.A, ad.B, N, I, O, r, this.lora.scale);
    return { x, xa };
  }

  /** dx += dout·(W + s·B·A); grads of A and B accumulate into `grads`, of W (and b) into `frozen` for its layers. */
  private linearBackward(dx: Vec, dout: Vec, layer: number, m: LinearModule, tape: LinearTape, N: number, grads: Map<string, AdapterGrad>, frozen?: FrozenGrads): void {
    const [O, I] = linearShape(this.w.config, m);
    const { W, b } = this.w.layers[layer].linear[m];
    let wg: LinearGrad | null = null;
    if (frozen?.layers.has(layer)) {
      const key = linearWeightName(layer, m);
      wg = frozen.grads.get(key) ?? null;
      if (!wg) frozen.grads.set(key, (wg = { dW: new Float64Array(O * I), db: b ? new Float64Array(O) : null }));
    }
    linearBackward(dx, wg?.dW ?? null, wg?.db ?? null, dout, tape.x, W, N, I, O);
    const name = adapterName(layer, m);
    const ad = this.lora?.adapters.get(name);
    if (!ad || !this.lora || !tape.xa) return;
    const r = this.lora.rank;
    const s = this.lora.scale;
    let g = grads.get(name);
    if (!g) grads.set(name, (g = { dA: new Float32Array(r * I), dB: new Float32Array(O * r) }));
    loraBackward(dx, g.dA, g.dB, storageLike(dout, N * r), dout, tape.x, tape.xa, ad.A, ad.B, N, I, O, r, s);
  }

  /** logits (B, T, V) for ids (B, T) at positions 0..T-1, and the tape for `backward` (stored in f32). */
  forward(ids: Int32Array, B: number, T: number): { logits: Float32Array; tape: ForwardTape } {
    const { logits, tape } = this.forwardIn((n) => new Float32Array(n), ids, B, T);
    return { logits: logits as Float32Array, tape };
  }

  /** The activations' arrays of lossAndGrads, in the model's storage. */
  private readonly vec = (n: number): Vec => (this.storage === 'f64' ? new Float64Array(n) : new Float32Array(n));

  private forwardIn(vec: (n: number) => Vec, ids: Int32Array, B: number, T: number): { logits: Vec; tape: ForwardTape } {
    const c = this.w.config;
    const C = c.hiddenSize, V = c.vocabSize, NH = c.numHeads, NKV = c.numKvHeads, HD = c.headDim, F = c.intermediateSize;
    const N = B * T;
    if (ids.length !== N) throw new Error(`ids has ${ids.length} entries, expected B·T = ${N}.`);
    if (T > this.maxPositions) throw new Error(`Sequence length ${T} exceeds the ${this.maxPositions} positions prepared.`);
    let x: Vec = vec(N * C);
    for (let n = 0; n < N; n++) {
      const id = ids[n];
      if (id < 0 || id >= V) throw new GradPruneError('input', `Token id ${id} at position ${n} is outside the vocabulary (0..${V - 1}).`);
    }
    embeddingForward(x, ids, this.w.embed, V, C);
    const layers: LayerTape[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      const lw = this.w.layers[l];
      const h1 = vec(N * C), rstd1 = vec(N);
      rmsnormForward(h1, rstd1, x, lw.inputNorm, N, C, c.rmsNormEps);
      const q = vec(N * NH * HD), k = vec(N * NKV * HD), v = vec(N * NKV * HD);
      const lin = {} as Record<LinearModule, LinearTape>;
      lin.q_proj = this.linear(vec, q, h1, l, 'q_proj', N);
      lin.k_proj = this.linear(vec, k, h1, l, 'k_proj', N);
      lin.v_proj = this.linear(vec, v, h1, l, 'v_proj', N);
      let qkNorm: LayerTape['qkNorm'] = null;
      if (lw.qNorm && lw.kNorm) {
        qkNorm = { qLin: q.slice(), kLin: k.slice(), rstdQ: vec(N * NH), rstdK: vec(N * NKV) };
        rmsnormForward(q, qkNorm.rstdQ, qkNorm.qLin, lw.qNorm, N * NH, HD, c.rmsNormEps);
        rmsnormForward(k, qkNorm.rstdK, qkNorm.kLin, lw.kNorm, N * NKV, HD, c.rmsNormEps);
      }
      ropeForward(q, q, this.cos, this.sin, T, NH, HD);
      ropeForward(k, k, this.cos, this.sin, T, NKV, HD);
      const att = vec(B * NH * T * T), y = vec(N * NH * HD);
      attentionForward(y, null, att, q, k, v, this.attentionShape(B, T));
      const o = vec(N * C);
      lin.o_proj = this.linear(vec, o, y, l, 'o_proj', N);
      const x2 = vec(N * C);
      for (let i = 0; i < x2.length; i++) x2[i] = x[i] + o[i];
      const h2 = vec(N * C), rstd2 = vec(N);
      rmsnormForward(h2, rstd2, x2, lw.postNorm, N, C, c.rmsNormEps);
      const gate = vec(N * F), up = vec(N * F), act = vec(N * F);
      lin.gate_proj = this.linear(vec, gate, h2, l, 'gate_proj', N);
      lin.up_proj = this.linear(vec, up, h2, l, 'up_proj', N);
      swigluForward(act, gate, up);
      const down = vec(N * C);
      lin.down_proj = this.linear(vec, down, act, l, 'down_proj', N);
      const x3 = vec(N * C);
      for (let i = 0; i < x3.length; i++) x3[i] = x2[i] + down[i];
      layers.push({ x, h1, rstd1, q, k, v, qkNorm, att, y, x2, h2, rstd2, gate, up, act, lin });
      x = x3;
    }
    const hf = vec(N * C), rstdf = vec(N);
    rmsnormForward(hf, rstdf, x, this.w.finalNorm, N, C, c.rmsNormEps);
    const logits = vec(N * V);
    linearForward(logits, hf, this.w.lmHead, null, N, C, V);
    return { logits, tape: { B, T, layers, xf: x, hf, rstdf } };
  }

  /**
   * dLoss/dA and dLoss/dB of every adapter, keyed by adapter name, from dlogits (B, T, V); the gradients of the
   * frozen linear weights of `frozen.layers` accumulate (+=) into `frozen.grads`.
   */
  backward(tape: ForwardTape, dlogits: Vec, frozen?: FrozenGrads): Map<string, AdapterGrad> {
    const vec = (n: number): Vec => storageLike(dlogits, n);
    const c = this.w.config;
    const C = c.hiddenSize, V = c.vocabSize, NH = c.numHeads, NKV = c.numKvHeads, HD = c.headDim, F = c.intermediateSize;
    const { B, T } = tape;
    const N = B * T;
    const grads = new Map<string, AdapterGrad>();
    const dhf = vec(N * C);
    linearBackward(dhf, frozen?.lmHead ?? null, null, dlogits, tape.hf, this.w.lmHead, N, C, V);
    let dx = vec(N * C); // gradient of the residual stream
    rmsnormBackward(dx, null, dhf, tape.xf, this.w.finalNorm, tape.rstdf, N, C);
    for (let l = c.numLayers - 1; l >= 0; l--) {
      const t = tape.layers[l];
      const lw = this.w.layers[l];
      // x3 = x2 + down(act): dx is d(x3); it flows on to x2 unchanged.
      const dact = vec(N * F);
      this.linearBackward(dact, dx, l, 'down_proj', t.lin.down_proj, N, grads, frozen);
      const dgate = vec(N * F), dup = vec(N * F);
      swigluBackward(dgate, dup, dact, t.gate, t.up);
      const dh2 = vec(N * C);
      this.linearBackward(dh2, dgate, l, 'gate_proj', t.lin.gate_proj, N, grads, frozen);
      this.linearBackward(dh2, dup, l, 'up_proj', t.lin.up_proj, N, grads, frozen);
      const dx2 = dx; // accumulate the norm's gradient onto the residual's
      rmsnormBackward(dx2, null, dh2, t.x2, lw.postNorm, t.rstd2, N, C);
      // x2 = x + o_proj(y)
      const dy = vec(N * NH * HD);
      this.linearBackward(dy, dx2, l, 'o_proj', t.lin.o_proj, N, grads, frozen);
      const dq = vec(N * NH * HD), dk = vec(N * NKV * HD), dv = vec(N * NKV * HD);
      attentionBackward(dq, dk, dv, dy, t.q, t.k, t.v, t.att, this.attentionShape(B, T));
      const dqPre = vec(N * NH * HD), dkPre = vec(N * NKV * HD); // d(RoPE inputs)
      ropeBackward(dqPre, dq, this.cos, this.sin, T, NH, HD);
      ropeBackward(dkPre, dk, this.cos, this.sin, T, NKV, HD);
      let dqLin = dqPre, dkLin = dkPre; // d(projection outputs)
      if (t.qkNorm) {
        dqLin = vec(N * NH * HD);
        dkLin = vec(N * NKV * HD);
        rmsnormBackward(dqLin, null, dqPre, t.qkNorm.qLin, lw.qNorm!, t.qkNorm.rstdQ, N * NH, HD);
        rmsnormBackward(dkLin, null, dkPre, t.qkNorm.kLin, lw.kNorm!, t.qkNorm.rstdK, N * NKV, HD);
      }
      const dh1 = vec(N * C);
      this.linearBackward(dh1, dqLin, l, 'q_proj', t.lin.q_proj, N, grads, frozen);
      this.linearBackward(dh1, dkLin, l, 'k_proj', t.lin.k_proj, N, grads, frozen);
      this.linearBackward(dh1, dv, l, 'v_proj', t.lin.v_proj, N, grads, frozen);
      rmsnormBackward(dx2, null, dh1, t.x, lw.inputNorm, t.rstd1, N, C);
      dx = dx2;
    }
    return grads;
  }

  /** The masked mean cross-entropy of one forward, in the model's storage (finite differences). */
  loss(ids: Int32Array, lossMask: Int32Array, B: number, T: number): number {
    const { logits } = this.forwardIn(this.vec, ids, B, T);
    const losses = new Float64Array(B * T), lse = new Float64Array(B * T);
    return crossentropyForward(losses, lse, logits, ids, lossMask, T, this.w.config.vocabSize).loss;
  }

  /** One forward + masked cross-entropy + backward; the frozen weights of `frozen.layers` get gradients (+=). */
  lossAndGrads(ids: Int32Array, lossMask: Int32Array, B: number, T: number, frozen?: FrozenGrads): { loss: number; grads: Map<string, AdapterGrad> } {
    const { logits, tape } = this.forwardIn(this.vec, ids, B, T);
    const V = this.w.config.vocabSize;
    const losses = new Float64Array(B * T), lse = new Float64Array(B * T), dlogits = this.vec(B * T * V);
    const { loss, count } = crossentropyForward(losses, lse, logits, ids, lossMask, T, V);
    crossentropyBackward(dlogits, logits, lse, ids, lossMask, T, V, count);
    return { loss, grads: this.backward(tape, dlogits, frozen) };
  }

  private attentionShape(B: number, T: number): AttentionShape {
    const c = this.w.config;
    return { B, T, NH: c.numHeads, NKV: c.numKvHeads, HD: c.headDim, window: c.slidingWindow };
  }
}
