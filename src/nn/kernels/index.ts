// The kernel library's public API: one Kernels object per device. Every method builds the KernelCalls of one
// use (once, at setup) and returns them in dispatch order; encode them into a compute pass in order.
// Argument order: outputs first, then gradients (prefixed d), then inputs; shapes are read from the tensors
// (T, H and the attention shape are passed where a flat tensor cannot tell them).
// Write semantics: forward outputs `=`; gradients `+=` (zero them with fill first), except where noted:
// loraForward's out `+=` (it adds to the base output), loraBackward's dh `=`, crossentropyBackward's dlogits `=`,
// embeddingForward over one part of a row-split table writes only the rows whose id is in that part.
//
// Shapes: N = B·T rows; C hidden; NH, NKV heads; HD head_dim; I intermediate; V vocab; r LoRA rank.
// Linear weights are [out, in] (f32, or f16 on a device with shader-f16); everything else is f32; ids i32.
// Workgroup shapes follow the adapter (lib.ts Tuning): software adapters get barrier-light variants.
// The f16 kernels run where the adapter has shader-f16 (not SwiftShader): to test them in Node, point
// VK_ICD_FILENAMES at Mesa ≥ 25 lavapipe's ICD JSON (Debian bookworm-backports mesa-vulkan-drivers).

import type { Gpu } from '../../gpu/device';
import type { KernelCall } from '../../gpu/kernel';
import type { RowPart, Tensor } from '../../gpu/tensor';
import { attentionBackward, attentionForward, type AttentionShape } from './attention';
import {
  crossentropyBackward,
  crossentropyChunkBackward,
  crossentropyChunkFinish,
  crossentropyChunkForward,
  crossentropyForward,
  crossentropyReduce,
  type LogitsChunk,
} from './crossentropy';
import { accumulate, copy, fill, residualBackward, residualForward, swigluBackward, swigluForward } from './elementwise';
import { embeddingForward, embeddingForwardParts } from './embedding';
import { GPU_TUNING, KernelLib, SOFTWARE_TUNING, type Tuning } from './lib';
import { biasBackward, linearBackward, linearForward, loraBackward, loraForward, matmul, type MatmulArgs } from './matmul';
import { AdamWUpdate, GlobalGradNorm, type AdamWHyper } from './optimizer';
import { rmsnormBackward, rmsnormForward } from './rmsnorm';
import { ropeBackward, ropeForward } from './rope';

export type { AttentionShape, AdamWHyper, LogitsChunk, MatmulArgs, Tuning };
export { AdamWUpdate, GlobalGradNorm, GPU_TUNING, KernelLib, SOFTWARE_TUNING };
export { ropeInvFreq, ropeTables } from './rope';

export class Kernels {
  readonly lib: KernelLib;

  /** With a Gpu, workgroup shapes follow the adapter (software or not); with a bare device, GPU shapes. */
  constructor(gpuOrDevice: Gpu | GPUDevice, tuning?: Tuning) {
    const gpu = 'device' in gpuOrDevice ? gpuOrDevice : null;
    const device = gpu ? gpu.device : (gpuOrDevice as GPUDevice);
    this.lib = new KernelLib(device, tuning ?? (gpu?.adapter.isSoftware ? SOFTWARE_TUNING : GPU_TUNING));
  }

  get device(): GPUDevice {
    return this.lib.device;
  }

  /** Whether linear / embedding weights may be f16 tensors on this device. */
  get shaderF16(): boolean {
    return this.lib.shaderF16;
  }

  // ── matmul family ────────────────────────────────────────────────────────────────────────────────────────
  /** Generic: c (=|+=) alpha · op(a) · op(b) (+ bias). */
  matmul(label: string, args: MatmulArgs): KernelCall[] {
    return [matmul(this.lib, label, args)];
  }
  /** out (N, OC) = inp (N, IC) · weight (OC, IC)ᵀ + bias (OC | null) */
  linearForward(out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null): KernelCall[] {
    return linearForward(this.lib, out, inp, weight, bias);
  }
  /** dinp (N, IC) += dout·weight; dweight (OC, IC) += doutᵀ·inp; dbias (OC) += Σ_rows dout — each optional. */
  linearBackward(dinp: Tensor | null, dweight: Tensor | null, dbias: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor): KernelCall[] {
    return linearBackward(this.lib, dinp, dweight, dbias, dout, inp, weight);
  }
  /** dbias (OC) += Σ_rows dout (N, OC) */
  biasBackward(dbias: Tensor, dout: Tensor): KernelCall[] {
    return biasBackward(this.lib, dbias, dout);
  }
  /** h (N, r) = inp · loraA (r, IC)ᵀ; out (N, OC) += scale · h · loraB (OC, r)ᵀ */
  loraForward(out: Tensor, h: Tensor, inp: Tensor, loraA: Tensor, loraB: Tensor, scale: number): KernelCall[] {
    return loraForward(this.lib, out, h, inp, loraA, loraB, scale);
  }
  /** dloraB += scale·doutᵀ·h; dh = scale·dout·loraB; dloraA += dhᵀ·inp; dinp (or null) += dh·loraA */
  loraBackward(dinp: Tensor | null, dloraA: Tensor, dloraB: Tensor, dh: Tensor, dout: Tensor, inp: Tensor, h: Tensor, loraA: Tensor, loraB: Tensor, scale: number): KernelCall[] {
    return loraBackward(this.lib, dinp, dloraA, dloraB, dh, dout, inp, h, loraA, loraB, scale);
  }

  // ── layers ───────────────────────────────────────────────────────────────────────────────────────────────
  /**
   * out (B, T, C) = wte (V, C)[ids (B, T)]; ids outside [0, V) give zero rows. With rowStart, wte (Vp, C) is rows
   * [rowStart, rowStart + Vp) of a row-split table and only rows of out whose id falls there are written.
   */
  embeddingForward(out: Tensor, ids: Tensor, wte: Tensor, rowStart?: number): KernelCall[] {
    return embeddingForward(this.lib, out, ids, wte, rowStart);
  }
  /** out (B, T, C) = wte[ids] over a table held as row parts (createRowParts); ids outside it give zero rows. */
  embeddingForwardParts(out: Tensor, ids: Tensor, parts: readonly RowPart[]): KernelCall[] {
    return embeddingForwardParts(this.lib, out, ids, parts);
  }
  /** out (rows, C) = weight ⊙ inp · rstd; rstd (rows). rows = N (or N·NH with C = HD for per-head q/k norm). */
  rmsnormForward(out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, eps: number): KernelCall[] {
    return rmsnormForward(this.lib, out, rstd, inp, weight, eps);
  }
  /** dinp += …; dweight (C | null) += … */
  rmsnormBackward(dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor): KernelCall[] {
    return rmsnormBackward(this.lib, dinp, dweight, dout, inp, weight, rstd);
  }
  /** out (B, T, H, HD) = rope(inp) with cos, sin (T, HD) from ropeTables; H = NH (q) or NKV (k). */
  ropeForward(out: Tensor, inp: Tensor, cos: Tensor, sin: Tensor, T: number, H: number): KernelCall[] {
    return ropeForward(this.lib, out, inp, cos, sin, T, H);
  }
  /** dinp (B, T, H, HD) += ropeᵀ(dout) */
  ropeBackward(dinp: Tensor, dout: Tensor, cos: Tensor, sin: Tensor, T: number, H: number): KernelCall[] {
    return ropeBackward(this.lib, dinp, dout, cos, sin, T, H);
  }
  /** out (B, T, NH, HD), lse (B, NH, T) from q (B, T, NH, HD), k, v (B, T, NKV, HD) */
  attentionForward(out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape): KernelCall[] {
    return attentionForward(this.lib, out, lse, q, k, v, shape);
  }
  /** dq, dk, dv += …; delta (B, NH, T) scratch */
  attentionBackward(dq: Tensor, dk: Tensor, dv: Tensor, delta: Tensor, dout: Tensor, out: Tensor, q: Tensor, k: Tensor, v: Tensor, lse: Tensor, shape: AttentionShape): KernelCall[] {
    return attentionBackward(this.lib, dq, dk, dv, delta, dout, out, q, k, v, lse, shape);
  }
  /** out (N, I) = silu(gate) ⊙ up */
  swigluForward(out: Tensor, gate: Tensor, up: Tensor): KernelCall[] {
    return swigluForward(this.lib, out, gate, up);
  }
  /** dgate, dup += … */
  swigluBackward(dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): KernelCall[] {
    return swigluBackward(this.lib, dgate, dup, dout, gate, up);
  }
  /** out = a + b */
  residualForward(out: Tensor, a: Tensor, b: Tensor): KernelCall[] {
    return residualForward(this.lib, out, a, b);
  }
  /** da += dout; db += dout */
  residualBackward(da: Tensor, db: Tensor, dout: Tensor): KernelCall[] {
    return residualBackward(this.lib, da, db, dout);
  }

  // ── loss ─────────────────────────────────────────────────────────────────────────────────────────────────
  /** losses, lse (B, T); stats (2) = [mean loss over counted positions, count]; logits (B, T, V); ids, mask (B, T) i32 */
  crossentropyForward(losses: Tensor, lse: Tensor, stats: Tensor, logits: Tensor, ids: Tensor, mask: Tensor, T: number): KernelCall[] {
    return crossentropyForward(this.lib, losses, lse, stats, logits, ids, mask, T);
  }
  /** dlogits (B, T, V) = dloss · (softmax − onehot) / count on counted rows, else 0 (overwrites) */
  crossentropyBackward(dlogits: Tensor, logits: Tensor, lse: Tensor, stats: Tensor, ids: Tensor, mask: Tensor, T: number, dloss = 1): KernelCall[] {
    return crossentropyBackward(this.lib, dlogits, logits, lse, stats, ids, mask, T, dloss);
  }

  /** stats (2) = [mean of losses (B, T) over counted positions, count] */
  crossentropyReduce(stats: Tensor, losses: Tensor, mask: Tensor, T: number): KernelCall[] {
    return crossentropyReduce(this.lib, stats, losses, mask, T);
  }
  /** state (R, 3) folds (= on `first`) the logits chunk (R, Vp) at rows r0…, vocabulary ids v0… (online log-sum-exp) */
  crossentropyChunkForward(state: Tensor, logits: Tensor, ids: Tensor, mask: Tensor, chunk: LogitsChunk, first: boolean): KernelCall[] {
    return crossentropyChunkForward(this.lib, state, logits, ids, mask, chunk, first);
  }
  /** losses, lse (B, T) rows [r0, r0 + R) = from state (R, 3) */
  crossentropyChunkFinish(losses: Tensor, lse: Tensor, state: Tensor, ids: Tensor, mask: Tensor, chunk: Omit<LogitsChunk, 'v0'>, R: number): KernelCall[] {
    return crossentropyChunkFinish(this.lib, losses, lse, state, ids, mask, chunk, R);
  }
  /** dlogits chunk (R, Vp) = dloss · (softmax − onehot) / count on counted rows, else 0 (overwrites) */
  crossentropyChunkBackward(dlogits: Tensor, logits: Tensor, lse: Tensor, stats: Tensor, ids: Tensor, mask: Tensor, chunk: LogitsChunk, dloss = 1): KernelCall[] {
    return crossentropyChunkBackward(this.lib, dlogits, logits, lse, stats, ids, mask, chunk, dloss);
  }

  // ── optimizer ────────────────────────────────────────────────────────────────────────────────────────────
  /** AdamW for one parameter; call .setStep(t, lr) before each submit. */
  adamw(param: Tensor, m: Tensor, v: Tensor, grad: Tensor, hyper: AdamWHyper): AdamWUpdate {
    return new AdamWUpdate(this.lib, param, m, v, grad, hyper);
  }
  /** Global L2 norm over grads → .norm = [norm, clip factor]; .normCalls then .clipCalls (in-place scaling). */
  globalGradNorm(grads: Tensor[], maxNorm: number): GlobalGradNorm {
    return new GlobalGradNorm(this.lib, grads, maxNorm);
  }

  // ── utilities ────────────────────────────────────────────────────────────────────────────────────────────
  /** out = value (zero gradients before backward) */
  fill(out: Tensor, value = 0): KernelCall[] {
    return fill(this.lib, out, value);
  }
  /** out = inp */
  copy(out: Tensor, inp: Tensor): KernelCall[] {
    return copy(this.lib, out, inp);
  }
  /** acc += inp */
  accumulate(acc: Tensor, inp: Tensor): KernelCall[] {
    return accumulate(this.lib, acc, inp);
  }
}
