// Causal grouped-query attention (optional sliding window). q (B, T, NH, HD), k and v (B, T, NKV, HD): the
// layouts the q/k/v projections produce, so no permutes. The forward keeps lse (B, NH, T); the backward
// recomputes the probabilities from it. Generation's one-token step over a KV cache is AttentionDecode.
// All entry points share shaders/attention_common.wgsl's bindings: outputs at 0 and 1, then q, k, v, the
// uniforms, and the backward's inputs (null: a binding this entry point does not use).
// Write semantics: attentionForward out, lse `=`; attentionBackward dq, dk, dv `+=` (delta: scratch `=`).

import commonWgsl from '../../../shaders/attention_common.wgsl?raw';
import attentionWgsl from '../../../shaders/attention.wgsl?raw';
import attentionRowwiseWgsl from '../../../shaders/attention_rowwise.wgsl?raw';
import attentionDecodeWgsl from '../../../shaders/attention_decode.wgsl?raw';
import type { BindingLayout, KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectNumel, f32, u32, type KernelLib } from './lib';

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

const FORWARD: BindingLayout = ['write', 'write', 'read', 'read', 'read', 'uniform']; // out, lse | q, k, v
const BACKWARD_QUERY: BindingLayout = [...FORWARD, 'read', 'read', 'read']; // dq, delta | q, k, v | dout, lse, out
const BACKWARD_KEY_VALUE: BindingLayout = [...FORWARD, 'read', 'read', null, 'read']; // dk, dv | q, k, v | dout, lse, delta

/** One KernelCall over `rows` rows (B·NH·T query rows or B·NKV·T key rows) in the library's attention variant. */
function attentionCall(lib: KernelLib, entryPoint: string, bindings: BindingLayout, label: string, buffers: Tensor[], s: AttentionShape, heads: number): KernelCall {
  const u = uniforms(s, s.T, s.B, 0);
  if (lib.tuning.attention === 'rowwise') {
    return lib.elementwise({ label: `${entryPoint}.rowwise`, code: attentionRowwiseWgsl, prelude: commonWgsl, entryPoint, bindings }, label, buffers, s.B * heads * s.T, u);
  }
  return lib.call({ label: entryPoint, code: attentionWgsl, prelude: commonWgsl, entryPoint, bindings, constants: { WG: 64 } }, label, buffers, [s.T, heads, s.B], u);
}

function checkHeads(what: string, s: Pick<AttentionShape, 'NH' | 'NKV' | 'HD'>): void {
  if (s.HD > MAX_HD) throw new Error(`${what}: head_dim ${s.HD} is over the kernel's ${MAX_HD}`);
  if (s.NH % s.NKV !== 0) throw new Error(`${what}: NH ${s.NH} is not a multiple of NKV ${s.NKV}`);
}

function check(what: string, s: AttentionShape, q: Tensor[], kv: Tensor[], stats: Tensor[]): void {
  checkHeads(what, s);
  if (s.T > 65535 || s.NH > 65535 || s.B > 65535) throw new Error(`${what}: B, T, NH must each be ≤ 65535`);
  for (const t of q) expectNumel(t, s.B * s.T * s.NH * s.HD, what);
  for (const t of kv) expectNumel(t, s.B * s.T * s.NKV * s.HD, what);
  for (const t of stats) expectNumel(t, s.B * s.NH * s.T, what);
}

/** attention_common.wgsl's Params. */
const uniforms = (s: Omit<AttentionShape, 'B' | 'T'>, T: number, B: number, pos: number) => [
  u32(T), u32(s.NH), u32(s.NKV), u32(s.HD), u32(s.window ?? 0), f32(1 / Math.sqrt(s.HD)), u32(B), u32(pos),
];

/** out (B, T, NH, HD) = softmax(q·kᵀ/sqrt(HD) + mask)·v; lse (B, NH, T) = log-sum-exp of each score row. */
export function attentionForward(lib: KernelLib, out: Tensor, lse: Tensor, q: Tensor, k: Tensor, v: Tensor, s: AttentionShape): KernelCall[] {
  check('attentionForward', s, [out, q], [k, v], [lse]);
  return [attentionCall(lib, 'attentionForward', FORWARD, `attentionForward(${out.label})`, [out, lse, q, k, v], s, s.NH)];
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
  return [
    attentionCall(lib, 'attentionBackwardQuery', BACKWARD_QUERY, `attentionBackwardQuery(${dq.label})`, [dq, delta, q, k, v, dout, lse, out], s, s.NH),
    attentionCall(lib, 'attentionBackwardKeyValue', BACKWARD_KEY_VALUE, `attentionBackwardKeyValue(${dk.label})`, [dk, dv, q, k, v, dout, lse, delta], s, s.NKV),
  ];
}

/** The heads of a decode step; P = rows of the KV cache (the positions it holds). */
export type DecodeShape = Omit<AttentionShape, 'B' | 'T'> & { P: number };

/**
 * One new token's attention over a KV cache (generation): out (NH, HD) = softmax(q (NH, HD)·K[..pos]ᵀ/sqrt(HD))·V[..pos]
 * with kCache, vCache (P, NKV, HD) holding positions 0..pos; scores (NH, P) is scratch. setPosition before each submit.
 */
export class AttentionDecode {
  readonly call: KernelCall;

  constructor(lib: KernelLib, out: Tensor, scores: Tensor, q: Tensor, kCache: Tensor, vCache: Tensor, private readonly s: DecodeShape) {
    checkHeads('attentionDecode', s);
    for (const t of [out, q]) expectNumel(t, s.NH * s.HD, 'attentionDecode');
    for (const t of [kCache, vCache]) expectNumel(t, s.P * s.NKV * s.HD, 'attentionDecode');
    expectNumel(scores, s.NH * s.P, 'attentionDecode');
    const src = { label: 'attentionDecode', code: attentionDecodeWgsl, prelude: commonWgsl, entryPoint: 'attentionDecode', bindings: FORWARD, constants: { WG: 64 } };
    this.call = lib.call(src, `attentionDecode(${out.label})`, [out, scores, q, kCache, vCache], [s.NH], uniforms(s, s.P, 1, 0));
  }

  /** The new token's position: it attends to cache rows ≤ pos. */
  setPosition(pos: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.s.P) throw new Error(`attentionDecode: position ${pos} is outside the cache's ${this.s.P} rows`);
    this.call.setUniforms(uniforms(this.s, this.s.P, 1, pos));
  }
}
