// Per-position distance between two residual-stream states and its sum over a pass (../hidden-stats.ts).
// Write semantics (shaders/hidden_distance.wgsl): dist `=`; sums `+=`.

import code from '../../../shaders/hidden_distance.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, grid1D, u32, type KernelLib, type KernelSource } from './lib';

export type HiddenDistanceMeasure = 'cosine' | 'angular';

const src = (entryPoint: string, bindings: KernelSource['bindings']): KernelSource => ({ label: entryPoint, code, entryPoint, bindings });

/**
 * dist[slot] (N) = 1 − cos(a, b) ('cosine') or arccos(cos(a, b)) / π ('angular') per row of a, b (B, T, C), at the
 * positions the loss counts (t < T−1 and mask[b, t+1] == 1), 0 elsewhere. dist is (P, N).
 */
export function hiddenDistanceForward(lib: KernelLib, dist: Tensor, a: Tensor, b: Tensor, mask: Tensor, T: number, slot: number, measure: HiddenDistanceMeasure): KernelCall[] {
  const N = mask.numel;
  const C = a.numel / N;
  expectNumel(b, N * C, 'hiddenDistanceForward');
  expectDType(mask, ['i32'], 'hiddenDistanceForward');
  if (!Number.isInteger(C) || dist.numel < (slot + 1) * N) throw new Error(`hiddenDistanceForward: ${a.label} is not (N, C) over ${N} rows, or ${dist.label} has no slot ${slot}`);
  const uniforms = [u32(N), u32(T), u32(C), u32(slot), u32(measure === 'angular' ? 1 : 0)];
  return [lib.call(src('hiddenDistanceForward', ['write', 'read', 'read', 'read', 'uniform']), `hiddenDistanceForward(${a.label}, ${b.label})`, [dist, a, b, mask], grid1D(N), uniforms)];
}

/** sums (P + 2) += [Σ_rows dist[p] for each slot p, positions counted, 1 pass]; dist is (P, N). */
export function hiddenDistanceAccumulate(lib: KernelLib, sums: Tensor, dist: Tensor, mask: Tensor, T: number): KernelCall[] {
  const N = mask.numel;
  const P = dist.numel / N;
  expectNumel(sums, P + 2, 'hiddenDistanceAccumulate');
  return [lib.call(src('hiddenDistanceAccumulate', ['write', 'read', 'read', 'uniform']), `hiddenDistanceAccumulate(${sums.label})`, [sums, dist, mask], [P + 1], [u32(N), u32(T), u32(P)])];
}
