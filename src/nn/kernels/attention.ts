// Causal grouped-query attention (optional sliding window). q (B, T, NH, HD), k and v (B, T, NKV, HD): the
// layouts the q/k/v projections produce, so no permutes. The forward keeps lse (B, NH, T); the backward
// recomputes the probabilities from it.

import attentionWgsl from '../../../shaders/attention.wgsl?raw';
import attentionRowwiseWgsl from '../../../shaders/attention_rowwise.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectNumel, f32, u32, type KernelLib, type KernelSource } from './lib';

export interface AttentionShape {
  B: number;
  T: number;
  NH: number;
  NKV: number;
  HD: number;
  /** Sliding window (keys t − window < j ≤ t); null or 0: full causal attention. */
  window?: number | null;
}

const MAX_HD = 256;

/** One KernelCall over `rows` rows (B·NH·T query rows or B·NKV·T key rows) in the library's attention variant. */
function attentionCall(lib: KernelLib, entryPoint: string, bindings: KernelSource['bindings'], label: string, buffers: Tensor[], s: AttentionShape, heads: number): KernelCall {
  if (lib.tuning.attention === 'rowwise') {
    return lib.elementwise({ label: `${entryPoint}.rowwise`, code: attentionRowwiseWgsl, entryPoint, bindings }, label, buffers, s.B * heads * s.T, uniforms(s));
  }
  return lib.call({ label: entryPoint, code: attentionWgsl, entryPoint, bindings, constants: { WG: 64 } }, label, buffers, [s.T, heads, s.B], uniforms(s));
}

function check(what: string, s: AttentionShape, q: Tensor[], kv: Tensor[], stats: Tensor[]): void {
  if (s.HD > MAX_HD) throw new Error(`${what}: head_dim ${s.HD} is over the kernel's ${MAX_HD}`);
  if (s.NH % s.NKV !== 0) throw new Error(`${what}: NH ${s.NH} is not a multiple of NKV ${s.NKV}`);
  if (s.T > 65535 || s.NH > 65535 || s.B > 65535) throw new Error(`${what}: B, T, NH must each be ≤ 65535`);
  for (const t of q) expectNumel(t, s.B * s.T * s.NH * s.HD, what);
  for (const t of kv) expectNumel(t, s.B * s.T * s.NKV * s.HD, what);
  for (const t of stats) expectNumel(t, s.B * s.NH * s.T, what);
}

const uniforms = (s: AttentionShape) => [u32(s.T), u32(s.NH), u32(s.NKV), u32(s.HD), u32(s.window ?? 0), f32(1 / Math.sqrt(s.HD)), u32(s.B)];

/** out (B, T, NH, HD) = softmax(q·kᵀ/sqrt(HD) + mask)·v; lse (B, NH, T) = log-sum-exp of each score row. */
export function attentionForward(lib: KernelLib, out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, s: AttentionShape): KernelCall[] {
  check('attentionForward', s, [out, q], [k, v], [lse]);
  return [attentionCall(lib, 'attentionForward', ['write', 'write', 'read', 'read', 'read', 'uniform'], `attentionForward(${out.label})`, [out, lse, q, k, v], s, s.NH)];
}

/**
 * dq += ∂/∂q; dk, dv += ∂/∂k, ∂/∂v (summed over the query heads sharing a kv head).
 * delta (B, NH, T) is scratch (Σ_d dout·out per row), written by the first call and read by the second.
 */
export function attentionBackward(
  lib: KernelLib,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  delta: Tensor,
  dout: Tensor,
  out: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lse: Tensor,
  s: AttentionShape,
): KernelCall[] {
  check('attentionBackward', s, [dq, dout, out, q], [dk, dv, k, v], [delta, lse]);
  const bindings: KernelSource['bindings'] = ['write', 'write', 'read', 'read', 'read', 'read', 'read', 'read', 'uniform'];
  return [
    attentionCall(lib, 'attentionBackwardQuery', bindings, `attentionBackwardQuery(${dq.label})`, [dq, delta, dout, out, q, k, v, lse], s, s.NH),
    attentionCall(lib, 'attentionBackwardKeyValue', bindings, `attentionBackwardKeyValue(${dk.label})`, [dk, dv, dout, q, k, v, lse, delta], s, s.NKV),
  ];
}
