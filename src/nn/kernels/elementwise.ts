// Kernels that touch each element once: SwiGLU, residual connections, fill / copy.
// Write semantics are in each WGSL header: forwards `=`, backwards `+=`.

import swigluWgsl from '../../../shaders/swiglu.wgsl?raw';
import residualWgsl from '../../../shaders/residual.wgsl?raw';
import fillWgsl from '../../../shaders/fill.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, f32, u32, type ElementwiseSource, type KernelLib, type KernelSource } from './lib';


function same(what: string, first: Tensor, ...rest: Tensor[]): number {
  for (const t of [first, ...rest]) expectDType(t, ['f32'], what);
  for (const t of rest) expectNumel(t, first.numel, what);
  return first.numel;
}

const src = (code: string, entryPoint: string, bindings: KernelSource['bindings']): ElementwiseSource => ({ label: entryPoint, code, entryPoint, bindings });

/** out (B, T, I) = silu(gate) ⊙ up */
export function swigluForward(lib: KernelLib, out: Tensor, gate: Tensor, up: Tensor): KernelCall[] {
  const n = same('swigluForward', out, gate, up);
  return [lib.elementwise(src(swigluWgsl, 'swigluForward', ['write', 'read', 'read', 'uniform']), `swigluForward(${out.label})`, [out, gate, up], n, [u32(n)])];
}

/** dgate += dout ⊙ up ⊙ silu'(gate); dup += dout ⊙ silu(gate) */
export function swigluBackward(lib: KernelLib, dgate: Tensor, dup: Tensor, dout: Tensor, gate: Tensor, up: Tensor): KernelCall[] {
  const n = same('swigluBackward', dgate, dup, dout, gate, up);
  const s = src(swigluWgsl, 'swigluBackward', ['write', 'write', 'read', 'read', 'read', 'uniform']);
  return [lib.elementwise(s, `swigluBackward(${dgate.label})`, [dgate, dup, dout, gate, up], n, [u32(n)])];
}

/** out = a + b */
export function residualForward(lib: KernelLib, out: Tensor, a: Tensor, b: Tensor): KernelCall[] {
  const n = same('residualForward', out, a, b);
  return [lib.elementwise(src(residualWgsl, 'residualForward', ['write', 'read', 'read', 'uniform']), `residualForward(${out.label})`, [out, a, b], n, [u32(n)])];
}

/** da += dout; db += dout */
export function residualBackward(lib: KernelLib, da: Tensor, db: Tensor, dout: Tensor): KernelCall[] {
  const n = same('residualBackward', da, db, dout);
  return [lib.elementwise(src(residualWgsl, 'residualBackward', ['write', 'write', 'read', 'uniform']), `residualBackward(${da.label})`, [da, db, dout], n, [u32(n)])];
}

/** acc += inp (in place) */
export function accumulate(lib: KernelLib, acc: Tensor, inp: Tensor): KernelCall[] {
  const n = same('accumulate', acc, inp);
  return [lib.elementwise(src(residualWgsl, 'accumulate', ['write', 'read', 'uniform']), `accumulate(${acc.label})`, [acc, inp], n, [u32(n)])];
}

/** out = value (f32, i32 or u32 tensors: the value is written as an f32 bit pattern, so use 0 for integer tensors) */
export function fill(lib: KernelLib, out: Tensor, value = 0): KernelCall[] {
  if (out.dtype === 'f16') throw new Error(`fill: ${out.label} is f16; fill f32 tensors`);
  if (out.dtype !== 'f32' && value !== 0) throw new Error(`fill: ${out.label} is ${out.dtype}; only 0 can fill an integer tensor`);
  const n = out.numel;
  return [lib.elementwise(src(fillWgsl, 'fill', ['write', 'uniform']), `fill(${out.label})`, [out], n, [u32(n), f32(value)])];
}

/** out = inp */
export function copy(lib: KernelLib, out: Tensor, inp: Tensor): KernelCall[] {
  const n = same('copy', out, inp);
  return [lib.elementwise(src(fillWgsl, 'copy', ['write', 'read', 'uniform']), `copy(${out.label})`, [out, inp], n, [u32(n), f32(0)])];
}
