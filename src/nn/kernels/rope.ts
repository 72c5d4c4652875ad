// Rotary position embedding: the rotate-half kernels (tables from ../rope.ts, built on the host as Hugging Face does).

import ropeWgsl from '../../../shaders/rope.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectNumel, u32, type ElementwiseSource, type KernelLib } from './lib';

// The tables are host-side and shared with the CPU reference.
export { ropeInvFreq, ropeTables } from '../rope';

const src = (entryPoint: string): ElementwiseSource => ({ label: entryPoint, code: ropeWgsl, entryPoint, bindings: ['write', 'read', 'read', 'read', 'uniform'] });

function ropeDims(what: string, x: Tensor, cos: Tensor, sin: Tensor, T: number, H: number): number {
  const HD = cos.numel / T;
  if (!Number.isInteger(HD) || HD % 2 !== 0) throw new Error(`${what}: cos table ${cos.label} [${cos.shape}] is not (T=${T}, even HD)`);
  expectNumel(sin, T * HD, what);
  if (x.numel % (T * H * HD) !== 0) throw new Error(`${what}: ${x.label} [${x.shape}] is not (B, T=${T}, H=${H}, HD=${HD})`);
  return HD;
}

/** out (B, T, H, HD) = rope(inp); cos, sin (T, HD) from ropeTables; H = NH for q, NKV for k. */
export function ropeForward(lib: KernelLib, out: Tensor, inp: Tensor, cos: Tensor, sin: Tensor, T: number, H: number): KernelCall[] {
  const HD = ropeDims('ropeForward', inp, cos, sin, T, H);
  expectNumel(out, inp.numel, 'ropeForward');
  return [lib.elementwise(src('ropeForward'), `ropeForward(${out.label})`, [out, inp, cos, sin], inp.numel, [u32(inp.numel), u32(T), u32(H), u32(HD)])];
}

/** dinp (B, T, H, HD) += ropeᵀ(dout) */
export function ropeBackward(lib: KernelLib, dinp: Tensor, dout: Tensor, cos: Tensor, sin: Tensor, T: number, H: number): KernelCall[] {
  const HD = ropeDims('ropeBackward', dout, cos, sin, T, H);
  expectNumel(dinp, dout.numel, 'ropeBackward');
  return [lib.elementwise(src('ropeBackward'), `ropeBackward(${dinp.label})`, [dinp, dout, cos, sin], dout.numel, [u32(dout.numel), u32(T), u32(H), u32(HD)])];
}
