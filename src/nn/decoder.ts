// The calls of one decoder job, built once: embedding → layers → final norm and the chunked loss head, and the
// backward as the forward in reverse (per layer: MLP, then attention; q/k through Qwen3's per-head norm where the
// model has one). Activations are allocated here for one (B, T), through the job's `alloc`; the weights are
// bound through `weights.layer(l)` (a streamed model's slots). Write semantics as in ./kernels/index.ts.
// Shapes: B, T batch; C hidden; NH, NKV heads; HD head_dim; F intermediate; r LoRA rank.

import type { KernelCall } from '../gpu/kernel';
import { upload, type GpuDType, type Tensor } from '../gpu/tensor';
import { linearWeightName, type LinearModule } from '../model/config';
import {
  attentionBackward, attentionForward, embeddingForwardParts, fill, linearBackward, linearForward, loraBackward, loraForward,
  residualForward, rmsnormBackward, rmsnormForward, ropeBackward, ropeForward, ropeTables, swigluBackward, swigluForward,
  type AttentionShape, type KernelLib,
} from './kernels';
import { LossHead } from './loss-head';
import { adapterName, loraScale, type LoraConfig } from './lora';
import { weightGradAccumulate, weightGradTargets, weightGradZero, type FrozenWeightGrad, type LmHeadGrad } from './weight-grads';
import type { ModelWeights } from './weights';

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

/** What a job gives the builder: its sizes, inputs and outputs, and its allocator. */
export interface DecoderJob {
  kernels: KernelLib;
  weights: ModelWeights;
  device: GPUDevice;
  B: number;
  T: number;
  lora: LoraConfig | null;
  adapters: readonly GpuAdapter[];
  training: boolean;
  checkpointing: boolean;
  ids: Tensor; // (B, T) i32
  lossMask: Tensor; // (B, T) i32
  stats: Tensor; // (2)
  tokenLosses: Tensor; // (B, T)
  lossChunkRows?: number;
  /** Frozen linear weights that get gradients (./weight-grads.ts), keyed by linearWeightName; none by default. */
  weightGrads?: ReadonlyMap<string, FrozenWeightGrad>;
  /** A trained lm_head (./weight-grads.ts LmHeadGrad): the loss head binds its parts and adds their dW; none by default. */
  lmHeadGrad?: LmHeadGrad | null;
  alloc: (label: string, shape: readonly number[], dtype?: GpuDType) => Tensor;
}

export interface DecoderCalls {
  embed: KernelCall[];
  layerForward: KernelCall[][];
  headForward: KernelCall[];
  zeroGrad: KernelCall[];
  headBackward: KernelCall[];
  layerBackward: KernelCall[][];
  lossHead: LossHead;
  /** The residual stream, (L + 1) × (B, T, C): resid[l] is layer l's input, resid[L] the final hidden state (before the final norm). */
  resid: Tensor[];
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

/** Allocate the job's activations and build its forward, zero-grad and backward calls. */
export function buildDecoder(d: DecoderJob): DecoderCalls {
  const k = d.kernels;
  const w = d.weights;
  const alloc = d.alloc;
  const out: DecoderCalls = { embed: [], layerForward: [], headForward: [], zeroGrad: [], headBackward: [], layerBackward: [], lossHead: null!, resid: [] };
  const c = w.config;
          const { B, T } = d;
  const C = c.hiddenSize, NH = c.numHeads, NKV = c.numKvHeads, HD = c.headDim, F = c.intermediateSize;
  const r = d.lora?.rank ?? 0;
  const scale = d.lora ? loraScale(d.lora) : 0;
  const attnShape: AttentionShape = { B, T, NH, NKV, HD, window: c.slidingWindow };
  const adapterOf = new Map(d.adapters.map((a) => [a.name, a]));
  const qk = c.qkNorm;

  const tables = ropeTables(c.rope, HD, T);
  const cos = alloc('rope.cos', [T, HD]); // (T, HD)
  const sin = alloc('rope.sin', [T, HD]); // (T, HD)
  upload(d.device, cos, tables.cos);
  upload(d.device, sin, tables.sin);

  // Residual stream: resid[l] is layer l's input, resid[L] the final hidden state.
  const resid = Array.from({ length: c.numLayers + 1 }, (_, l) => alloc(`resid.${l}`, [B, T, C]));
  out.resid = resid;
  const makeActs = (tag: string): LayerActs => {
    const loraH: Partial<Record<LinearModule, Tensor>> = {};
    if (d.lora) for (const m of d.lora.modules) loraH[m] = alloc(`${tag}.lora_h.${m}`, [B, T, r]);
    return {
      h1: alloc(`${tag}.h1`, [B, T, C]), rstd1: alloc(`${tag}.rstd1`, [B, T]),
      q: alloc(`${tag}.q`, [B, T, NH, HD]), k: alloc(`${tag}.k`, [B, T, NKV, HD]), v: alloc(`${tag}.v`, [B, T, NKV, HD]),
      qLin: qk ? alloc(`${tag}.q_lin`, [B, T, NH, HD]) : null, kLin: qk ? alloc(`${tag}.k_lin`, [B, T, NKV, HD]) : null,
      rstdQ: qk ? alloc(`${tag}.rstd_q`, [B, T, NH]) : null, rstdK: qk ? alloc(`${tag}.rstd_k`, [B, T, NKV]) : null,
      att: alloc(`${tag}.att`, [B, T, NH, HD]), lse: alloc(`${tag}.lse`, [B, NH, T]),
      x2: alloc(`${tag}.x2`, [B, T, C]),
      h2: alloc(`${tag}.h2`, [B, T, C]), rstd2: alloc(`${tag}.rstd2`, [B, T]),
      gate: alloc(`${tag}.gate`, [B, T, F]), up: alloc(`${tag}.up`, [B, T, F]), act: alloc(`${tag}.act`, [B, T, F]),
      loraH,
    };
  };
  const shared = d.checkpointing ? makeActs('layer') : null;
  const acts = Array.from({ length: c.numLayers }, (_, l) => shared ?? makeActs(`layer.${l}`));
  // Forward scratch: q and k before RoPE, and the projections added onto the residual stream.
  const qPre = alloc('scratch.q_pre', [B, T, NH, HD]);
  const kPre = alloc('scratch.k_pre', [B, T, NKV, HD]);
  const proj = alloc('scratch.proj', [B, T, C]);

  /** out = inp·Wᵀ (+ b) (+ s·(inp·Aᵀ)·Bᵀ) */
  const linear = (l: number, m: LinearModule, out: Tensor, inp: Tensor, a: LayerActs): KernelCall[] => {
    const p = w.layer(l).linear[m];
    const calls = linearForward(k, out, inp, p.W, p.b);
    const ad = adapterOf.get(adapterName(l, m));
    if (ad) calls.push(...loraForward(k, out, a.loraH[m]!, inp, ad.A, ad.B, scale));
    return calls;
  };
  /** q (or k) projection into `pre` (RoPE's input): through Qwen3's per-head norm where the model has one. */
  const qkProjection = (l: number, m: 'q_proj' | 'k_proj', pre: Tensor, a: LayerActs): KernelCall[] => {
    const [lin, rstd, norm] = m === 'q_proj' ? [a.qLin, a.rstdQ, w.layer(l).qNorm] : [a.kLin, a.rstdK, w.layer(l).kNorm];
    if (!lin) return linear(l, m, pre, a.h1, a);
    return [...linear(l, m, lin, a.h1, a), ...rmsnormForward(k, pre, rstd!, lin, norm!, c.rmsNormEps)];
  };

  const layerForward = (l: number): KernelCall[] => {
    const p = w.layer(l);
    const a = acts[l];
    return [
      ...rmsnormForward(k, a.h1, a.rstd1, resid[l], p.inputNorm, c.rmsNormEps),
      ...qkProjection(l, 'q_proj', qPre, a),
      ...qkProjection(l, 'k_proj', kPre, a),
      ...linear(l, 'v_proj', a.v, a.h1, a),
      ...ropeForward(k, a.q, qPre, cos, sin, T, NH),
      ...ropeForward(k, a.k, kPre, cos, sin, T, NKV),
      ...attentionForward(k, a.att, a.lse, a.q, a.k, a.v, attnShape),
      ...linear(l, 'o_proj', proj, a.att, a),
      ...residualForward(k, a.x2, resid[l], proj),
      ...rmsnormForward(k, a.h2, a.rstd2, a.x2, p.postNorm, c.rmsNormEps),
      ...linear(l, 'gate_proj', a.gate, a.h2, a),
      ...linear(l, 'up_proj', a.up, a.h2, a),
      ...swigluForward(k, a.act, a.gate, a.up),
      ...linear(l, 'down_proj', proj, a.act, a),
      ...residualForward(k, resid[l + 1], a.x2, proj),
    ];
  };
  for (let l = 0; l < c.numLayers; l++) out.layerForward.push(layerForward(l));

  const hf = alloc('final.h', [B, T, C]);
  const rstdf = alloc('final.rstd', [B, T]);
  const lossLse = alloc('loss.lse', [B, T]);
  const dh = d.training ? alloc('grad.h', [B, T, C]) : null; // d of a norm's output
  out.lossHead = new LossHead(k, {
    hf, ids: d.ids, mask: d.lossMask, lmHeadParts: d.lmHeadGrad?.parts ?? w.lmHeadParts, V: c.vocabSize, T,
    losses: d.tokenLosses, lse: lossLse, stats: d.stats, training: d.training, dh: dh ?? undefined, chunkRows: d.lossChunkRows,
    dLmHeadParts: d.lmHeadGrad?.grads,
  });
  out.embed.push(...embeddingForwardParts(k, resid[0], d.ids, w.embedParts));
  out.headForward.push(...rmsnormForward(k, hf, rstdf, resid[c.numLayers], w.finalNorm, c.rmsNormEps), ...out.lossHead.forwardCalls);
  if (!d.training || !dh) return out;

  for (const a of d.adapters) out.zeroGrad.push(...fill(k, a.dA), ...fill(k, a.dB));
  for (const g of d.weightGrads?.values() ?? []) out.zeroGrad.push(...weightGradZero(k, g));

  // Backward scratch, shared by every layer (each is zeroed before the kernels that accumulate into it).
  const dresid = alloc('grad.resid', [B, T, C]); // d(loss)/d(residual stream), carried down the layers
  const datt = alloc('grad.att', [B, T, NH, HD]);
  const dq = alloc('grad.q', [B, T, NH, HD]);
  const dk = alloc('grad.k', [B, T, NKV, HD]);
  const dv = alloc('grad.v', [B, T, NKV, HD]);
  const dqPre = alloc('grad.q_pre', [B, T, NH, HD]);
  const dkPre = alloc('grad.k_pre', [B, T, NKV, HD]);
  const dqLin = qk ? alloc('grad.q_lin', [B, T, NH, HD]) : null;
  const dkLin = qk ? alloc('grad.k_lin', [B, T, NKV, HD]) : null;
  const delta = alloc('grad.att_delta', [B, NH, T]);
  const dact = alloc('grad.act', [B, T, F]);
  const dgate = alloc('grad.gate', [B, T, F]);
  const dup = alloc('grad.up', [B, T, F]);
  const dloraH = r > 0 ? alloc('grad.lora_h', [B, T, r]) : null;

  /** dinp += dout·(W + s·B·A); the adapter's dA, dB accumulate, and the frozen W's (and b's) where asked for. */
  const linearBack = (l: number, m: LinearModule, dinp: Tensor, dout: Tensor, inp: Tensor, a: LayerActs): KernelCall[] => {
    const p = w.layer(l).linear[m];
    const wg = d.weightGrads?.get(linearWeightName(l, m));
    const target = wg ? weightGradTargets(wg) : null;
    const calls = linearBackward(k, dinp, target?.dW ?? null, p.b ? (target?.db ?? null) : null, dout, inp, p.W);
    if (wg) calls.push(...weightGradAccumulate(k, wg));
    const ad = adapterOf.get(adapterName(l, m));
    if (ad) calls.push(...loraBackward(k, dinp, ad.dA, ad.dB, dloraH!, dout, inp, a.loraH[m]!, ad.A, ad.B, scale));
    return calls;
  };
  /** The q (or k) projection's backward from d(RoPE input): through the per-head norm first where there is one. */
  const qkProjectionBack = (l: number, m: 'q_proj' | 'k_proj', dpre: Tensor, a: LayerActs): KernelCall[] => {
    const [lin, rstd, norm, dlin] = m === 'q_proj' ? [a.qLin, a.rstdQ, w.layer(l).qNorm, dqLin] : [a.kLin, a.rstdK, w.layer(l).kNorm, dkLin];
    if (!lin) return linearBack(l, m, dh, dpre, a.h1, a);
    return [...rmsnormBackward(k, dlin!, null, dpre, lin, norm!, rstd!), ...linearBack(l, m, dh, dlin!, a.h1, a)];
  };
  const zero = (...ts: Array<Tensor | null>) => ts.flatMap((t) => (t ? fill(k, t) : []));

  out.headBackward.push(
    ...zero(dh, dresid),
    ...out.lossHead.backwardCalls,
    ...rmsnormBackward(k, dresid, null, dh, resid[c.numLayers], w.finalNorm, rstdf),
  );
  for (let l = 0; l < c.numLayers; l++) {
    const p = w.layer(l);
    const a = acts[l];
    out.layerBackward.push([
      // resid[l+1] = x2 + down(act): dresid flows on to x2 unchanged
      ...zero(dact, dgate, dup, dh),
      ...linearBack(l, 'down_proj', dact, dresid, a.act, a),
      ...swigluBackward(k, dgate, dup, dact, a.gate, a.up),
      ...linearBack(l, 'gate_proj', dh, dgate, a.h2, a),
      ...linearBack(l, 'up_proj', dh, dup, a.h2, a),
      ...rmsnormBackward(k, dresid, null, dh, a.x2, p.postNorm, a.rstd2),
      // x2 = resid[l] + o_proj(att)
      ...zero(datt, dq, dk, dv, dqPre, dkPre, dqLin, dkLin, dh),
      ...linearBack(l, 'o_proj', datt, dresid, a.att, a),
      ...attentionBackward(k, dq, dk, dv, delta, datt, a.att, a.q, a.k, a.v, a.lse, attnShape),
      ...ropeBackward(k, dqPre, dq, cos, sin, T, NH),
      ...ropeBackward(k, dkPre, dk, cos, sin, T, NKV),
      ...qkProjectionBack(l, 'q_proj', dqPre, a),
      ...qkProjectionBack(l, 'k_proj', dkPre, a),
      ...linearBack(l, 'v_proj', dh, dv, a.h1, a),
      // The embedding is frozen: layer 0's input needs no gradient.
      ...(l > 0 ? rmsnormBackward(k, dresid, null, dh, resid[l], p.inputNorm, a.rstd1) : []),
    ]);
  }
  return out;
}
