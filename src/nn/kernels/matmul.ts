// The matmul family by use: linear layers (weights [out, in], f32 or f16) and LoRA adapters (f32).
// Shapes: N rows (B·T), IC / OC in / out features, r the LoRA rank.
// Write semantics: forward outputs `=` (loraForward's `out` is `+=`: it adds to the base layer's output);
// gradients `+=`, except loraBackward's scratch `dh` (`=`).

import matmulWgsl from '../../../shaders/matmul.wgsl?raw';
import biasWgsl from '../../../shaders/bias.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, f32, grid1D, rowsOf, u32, type KernelLib, type KernelSource } from './lib';

export interface MatmulArgs {
  /** (M, N) */
  c: Tensor;
  /** (M, K), or (K, M) when transA */
  a: Tensor;
  /** (K, N), or (N, K) when transB; f16 allowed (a weight) */
  b: Tensor;
  /** (N) */
  bias?: Tensor | null;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  /** c += … instead of c = … */
  accumulate?: boolean;
  alpha?: number;
}

/** c (=|+=) alpha · op(a) · op(b) (+ bias): the one generic matmul the named uses below are built from. */
export function matmul(lib: KernelLib, label: string, args: MatmulArgs): KernelCall {
  const { c, a, b, M, N, K } = args;
  expectNumel(c, M * N, label);
  expectNumel(a, M * K, label);
  expectNumel(b, K * N, label);
  expectDType(c, ['f32'], label);
  expectDType(a, ['f32'], label);
  expectDType(b, lib.shaderF16 ? ['f32', 'f16'] : ['f32'], label);
  if (args.bias) expectNumel(args.bias, N, label);
  const f16 = b.dtype === 'f16';
  const wg = lib.tuning.matmulWorkgroup;
  const src: KernelSource = {
    label: f16 ? 'matmul_f16' : 'matmul',
    code: matmulWgsl,
    weights: f16 ? 'f16' : 'f32',
    entryPoint: 'matmul',
    bindings: ['write', 'read', 'read', 'read', 'uniform'],
    constants: { TRANS_A: args.transA ? 1 : 0, TRANS_B: args.transB ? 1 : 0, WG_X: wg, WG_Y: wg },
    common: false,
  };
  const tile = 4 * wg;
  const grid: [number, number] = [Math.ceil(N / tile), Math.ceil(M / tile)];
  if (Math.max(...grid) > 65535) throw new Error(`${label}: (${M}, ${N}) needs ${grid.join(' × ')} workgroups, over 65535 in a dimension`);
  return lib.call(src, label, [c, a, b, args.bias ?? lib.unused], grid, [
    u32(M),
    u32(N),
    u32(K),
    u32(args.accumulate ? 1 : 0),
    f32(args.alpha ?? 1),
    u32(args.bias ? 1 : 0),
  ]);
}

function linearDims(weight: Tensor): [number, number] {
  if (weight.shape.length !== 2) throw new Error(`linear weight ${weight.label} must be 2-D [out, in], got [${weight.shape.join(', ')}]`);
  return [weight.shape[0], weight.shape[1]];
}

/** out (N, OC) = inp (N, IC) · weight (OC, IC)ᵀ + bias (OC). weight f32 or f16. */
export function linearForward(lib: KernelLib, out: Tensor, inp: Tensor, weight: Tensor, bias: Tensor | null): KernelCall[] {
  const [OC, IC] = linearDims(weight);
  const N = rowsOf(inp, IC, 'linearForward');
  return [matmul(lib, `linearForward(${out.label})`, { c: out, a: inp, b: weight, bias, M: N, N: OC, K: IC, transB: true })];
}

/**
 * dinp (N, IC) += dout (N, OC) · weight (OC, IC); dweight (OC, IC) += doutᵀ · inp; dbias (OC) += Σ_rows dout.
 * Pass null for gradients not wanted (a frozen weight has no dweight; the first layer's input needs no dinp).
 */
export function linearBackward(
  lib: KernelLib,
  dinp: Tensor | null,
  dweight: Tensor | null,
  dbias: Tensor | null,
  dout: Tensor,
  inp: Tensor,
  weight: Tensor,
): KernelCall[] {
  const [OC, IC] = linearDims(weight);
  const N = rowsOf(dout, OC, 'linearBackward');
  const calls: KernelCall[] = [];
  if (dinp) calls.push(matmul(lib, `linearBackward.dinp(${dinp.label})`, { c: dinp, a: dout, b: weight, M: N, N: IC, K: OC, accumulate: true }));
  if (dweight) {
    calls.push(matmul(lib, `linearBackward.dweight(${dweight.label})`, { c: dweight, a: dout, b: inp, M: OC, N: IC, K: N, transA: true, accumulate: true }));
  }
  if (dbias) calls.push(...biasBackward(lib, dbias, dout));
  return calls;
}

/** dbias (OC) += Σ_rows dout (N, OC). */
export function biasBackward(lib: KernelLib, dbias: Tensor, dout: Tensor): KernelCall[] {
  const OC = dbias.numel;
  const N = rowsOf(dout, OC, 'biasBackward');
  const src: KernelSource = { label: 'biasBackward', code: biasWgsl, entryPoint: 'biasBackward', bindings: ['write', 'read', 'uniform'] };
  return [lib.call(src, `biasBackward(${dbias.label})`, [dbias, dout], grid1D(OC, 64), [u32(N), u32(OC)])];
}

function loraDims(loraA: Tensor, loraB: Tensor): { r: number; IC: number; OC: number } {
  const [r, IC] = linearDims(loraA);
  const [OC, rB] = linearDims(loraB);
  if (r !== rB) throw new Error(`LoRA ${loraA.label} [${loraA.shape}] and ${loraB.label} [${loraB.shape}] disagree on the rank`);
  return { r, IC, OC };
}

/**
 * h (N, r) = inp (N, IC) · loraA (r, IC)ᵀ; out (N, OC) += scale · h · loraB (OC, r)ᵀ.
 * h is kept for the backward pass.
 */
export function loraForward(lib: KernelLib, out: Tensor, h: Tensor, inp: Tensor, loraA: Tensor, loraB: Tensor, scale: number): KernelCall[] {
  const { r, IC, OC } = loraDims(loraA, loraB);
  const N = rowsOf(inp, IC, 'loraForward');
  return [
    matmul(lib, `loraForward.h(${h.label})`, { c: h, a: inp, b: loraA, M: N, N: r, K: IC, transB: true }),
    matmul(lib, `loraForward.out(${out.label})`, { c: out, a: h, b: loraB, M: N, N: OC, K: r, transB: true, accumulate: true, alpha: scale }),
  ];
}

/**
 * dloraB (OC, r) += scale · doutᵀ · h; dh (N, r) = scale · dout · loraB (scratch);
 * dloraA (r, IC) += dhᵀ · inp; dinp (N, IC) += dh · loraA (null when the input needs no gradient).
 */
export function loraBackward(
  lib: KernelLib,
  dinp: Tensor | null,
  dloraA: Tensor,
  dloraB: Tensor,
  dh: Tensor,
  dout: Tensor,
  inp: Tensor,
  h: Tensor,
  loraA: Tensor,
  loraB: Tensor,
  scale: number,
): KernelCall[] {
  const { r, IC, OC } = loraDims(loraA, loraB);
  const N = rowsOf(inp, IC, 'loraBackward');
  const calls = [
    matmul(lib, `loraBackward.dB(${dloraB.label})`, { c: dloraB, a: dout, b: h, M: OC, N: r, K: N, transA: true, accumulate: true, alpha: scale }),
    matmul(lib, `loraBackward.dh(${dh.label})`, { c: dh, a: dout, b: loraB, M: N, N: r, K: OC, alpha: scale }),
    matmul(lib, `loraBackward.dA(${dloraA.label})`, { c: dloraA, a: dh, b: inp, M: r, N: IC, K: N, transA: true, accumulate: true }),
  ];
  if (dinp) calls.push(matmul(lib, `loraBackward.dinp(${dinp.label})`, { c: dinp, a: dh, b: loraA, M: N, N: IC, K: r, accumulate: true }));
  return calls;
}
