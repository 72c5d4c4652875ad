// Rotary position embedding: the frequency tables (built on the host, as Hugging Face builds them in float32)
// and the rotate-half kernels.

import ropeWgsl from '../../../shaders/rope.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import type { RopeConfig } from '../../model/config';
import { expectNumel, u32, type ElementwiseSource, type KernelLib } from './lib';

const f = Math.fround;

/** inv_freq (HD/2) for a head dimension, with the config's scaling, rounded to float32 at each step as torch does. */
export function ropeInvFreq(rope: RopeConfig, headDim: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(rope.theta ** f((2 * i) / headDim)));
  if (rope.type === 'linear') for (let i = 0; i < half; i++) inv[i] = f(inv[i] / rope.factor);
  if (rope.type === 'llama3') {
    const old = rope.originalMaxPositionEmbeddings;
    const lowWavelen = old / rope.lowFreqFactor;
    const highWavelen = old / rope.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] = f(inv[i] / rope.factor);
      else if (wavelen >= highWavelen) {
        const smooth = (old / wavelen - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
        inv[i] = f((1 - smooth) * (inv[i] / rope.factor) + smooth * inv[i]);
      }
    }
  }
  return inv;
}

/** cos, sin (T, HD) for positions 0..T−1: the angles position·inv_freq repeated over both halves of a head. */
export function ropeTables(rope: RopeConfig, headDim: number, T: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(rope, headDim);
  const half = headDim / 2;
  const cos = new Float32Array(T * headDim);
  const sin = new Float32Array(T * headDim);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = f(t * inv[i]);
      cos[t * headDim + i] = cos[t * headDim + i + half] = Math.cos(angle);
      sin[t * headDim + i] = sin[t * headDim + i + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

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
