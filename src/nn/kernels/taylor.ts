// Taylor importance of frozen linear weights from their accumulated gradients (shaders/taylor.wgsl): the per-batch
// accumulation of g and g², and the per-row / per-column sums of LLM-Pruner's three saliences. The gradients
// themselves come from linearBackward's dweight (dW += doutᵀ·inp), the backward of linearForward.
// Write semantics: taylorAccumulate `+=`; taylorRowSums / taylorColumnSums `=`.

import taylorWgsl from '../../../shaders/taylor.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, f32, grid1D, u32, type KernelLib, type KernelSource } from './lib';

/** Saliences in the order the sums hold them (shaders/taylor.wgsl). */
export const SALIENCES = ['first', 'second', 'mix'] as const;
export type Salience = (typeof SALIENCES)[number];

/** first += grad; second += grad² (all f32, same size). */
export function taylorAccumulate(lib: KernelLib, first: Tensor, second: Tensor, grad: Tensor): KernelCall[] {
  for (const t of [first, second, grad]) {
    expectDType(t, ['f32'], 'taylorAccumulate');
    expectNumel(t, grad.numel, 'taylorAccumulate');
  }
  // The file declares the sums' weight binding (array<W>), so it needs W even here: f32 (nothing reads it).
  const src = { label: 'taylorAccumulate', code: taylorWgsl, weights: 'f32' as const, entryPoint: 'taylorAccumulate', bindings: ['write', 'write', 'read', 'uniform'] as const };
  return [lib.elementwise(src, `taylorAccumulate(${first.label})`, [first, second, grad], grad.numel, [u32(grad.numel)])];
}

export interface TaylorSumArgs {
  /** (OC, IC), f32 or f16 */
  weight: Tensor;
  /** (OC, IC): Σ over batches of the gradient; scaled by firstScale (1 / batches: the mean gradient) */
  first: Tensor;
  /** (OC, IC): Σ over batches of the squared gradient, scaled by secondScale; null: first-order only */
  second: Tensor | null;
  firstScale: number;
  secondScale: number;
}

function sumCall(lib: KernelLib, entryPoint: 'taylorRowSums' | 'taylorColumnSums', sums: Tensor, a: TaylorSumArgs): KernelCall {
  const [OC, IC] = a.weight.shape;
  const what = `${entryPoint}(${a.weight.label})`;
  expectNumel(a.first, OC * IC, what);
  if (a.second) expectNumel(a.second, OC * IC, what);
  expectNumel(sums, 3 * (entryPoint === 'taylorRowSums' ? OC : IC), what);
  expectDType(a.weight, lib.shaderF16 ? ['f32', 'f16'] : ['f32'], what);
  const f16 = a.weight.dtype === 'f16';
  const src: KernelSource = {
    label: `${entryPoint}${f16 ? '_f16' : ''}`,
    code: taylorWgsl,
    weights: f16 ? 'f16' : 'f32',
    entryPoint,
    bindings: ['write', 'read', 'read', 'read', 'uniform'],
  };
  // Rows: a workgroup each (the reduction workgroup, WG of common.wgsl); columns: an invocation each.
  const grid = entryPoint === 'taylorRowSums' ? grid1D(OC) : grid1D(IC, lib.wg);
  return lib.call(src, what, [sums, a.weight, a.first, a.second ?? lib.unused], grid, [
    u32(OC),
    u32(IC),
    f32(a.firstScale),
    f32(a.secondScale),
    u32(a.second ? 1 : 0),
  ]);
}

/** rows (3, OC) = Σ_i of each salience over row o's elements (first, second, mix: SALIENCES). */
export function taylorRowSums(lib: KernelLib, rows: Tensor, a: TaylorSumArgs): KernelCall[] {
  return [sumCall(lib, 'taylorRowSums', rows, a)];
}

/** columns (3, IC) = Σ_o of each salience over column i's elements. */
export function taylorColumnSums(lib: KernelLib, columns: Tensor, a: TaylorSumArgs): KernelCall[] {
  return [sumCall(lib, 'taylorColumnSums', columns, a)];
}
