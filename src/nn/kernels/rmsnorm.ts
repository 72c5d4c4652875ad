// RMSNorm over the last axis (hidden size; or head_dim for Qwen3's per-head q/k norm: same kernel, rows = B·T·NH).

import rmsnormWgsl from '../../../shaders/rmsnorm.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectNumel, f32, grid1D, rowsOf, u32, type KernelLib, type KernelSource } from './lib';

const src = (entryPoint: string, bindings: KernelSource['bindings']): KernelSource => ({ label: entryPoint, code: rmsnormWgsl, entryPoint, bindings});

/** out (rows, C) = weight (C) ⊙ inp · rstd; rstd (rows) = 1/sqrt(mean(inp²) + eps), kept for the backward pass. */
export function rmsnormForward(lib: KernelLib, out: Tensor, rstd: Tensor, inp: Tensor, weight: Tensor, eps: number): KernelCall[] {
  const C = weight.numel;
  const rows = rowsOf(inp, C, 'rmsnormForward');
  expectNumel(out, rows * C, 'rmsnormForward');
  expectNumel(rstd, rows, 'rmsnormForward');
  return [lib.call(src('rmsnormForward', ['write', 'write', 'read', 'read', 'uniform']), `rmsnormForward(${out.label})`, [out, rstd, inp, weight], grid1D(rows), [u32(rows), u32(C), f32(eps)])];
}

/** dinp (rows, C) += ∂/∂inp; dweight (C) += Σ_rows dout ⊙ inp · rstd (null: frozen norm weight). */
export function rmsnormBackward(lib: KernelLib, dinp: Tensor, dweight: Tensor | null, dout: Tensor, inp: Tensor, weight: Tensor, rstd: Tensor): KernelCall[] {
  const C = weight.numel;
  const rows = rstd.numel;
  for (const t of [dinp, dout, inp]) expectNumel(t, rows * C, 'rmsnormBackward');
  const uniforms = [u32(rows), u32(C), f32(0)];
  const calls = [
    lib.call(src('rmsnormBackward', ['write', 'read', 'read', 'read', 'read', 'uniform']), `rmsnormBackward(${dinp.label})`, [dinp, dout, inp, weight, rstd], grid1D(rows), uniforms),
  ];
  if (dweight) {
    expectNumel(dweight, C, 'rmsnormBackward');
    // One invocation per column, no barriers: the elementwise workgroup size.
    const weightSrc = { ...src('rmsnormBackwardWeight', ['write', 'read', 'read', 'read', 'uniform']), constants: { WG: lib.tuning.elementwiseWorkgroup } };
    calls.push(lib.call(weightSrc, `rmsnormBackwardWeight(${dweight.label})`, [dweight, dout, inp, rstd], grid1D(C, lib.tuning.elementwiseWorkgroup), uniforms));
  }
  return calls;
}
