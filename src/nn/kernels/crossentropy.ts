// Next-token cross-entropy over the vocabulary with a loss mask (position t counts iff mask[t+1] == 1),
// fused with the softmax; the mean over counted positions is reduced on the GPU.

import crossentropyWgsl from '../../../shaders/crossentropy.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, f32, grid1D, u32, type KernelLib, type KernelSource } from './lib';

const src = (entryPoint: string, bindings: KernelSource['bindings']): KernelSource => ({ label: entryPoint, code: crossentropyWgsl, entryPoint, bindings});

function dims(what: string, logits: Tensor, ids: Tensor, mask: Tensor, T: number): { rows: number; V: number } {
  const V = logits.shape[logits.shape.length - 1];
  const rows = ids.numel;
  if (rows % T !== 0) throw new Error(`${what}: ids ${ids.label} [${ids.shape}] is not (B, T=${T})`);
  expectNumel(logits, rows * V, what);
  expectNumel(mask, rows, what);
  expectDType(ids, ['i32'], what);
  expectDType(mask, ['i32'], what);
  return { rows, V };
}

/**
 * losses (B, T) = −log softmax(logits)[ids[t+1]] on counted positions, 0 elsewhere; lse (B, T) kept for the
 * backward pass; stats (2) = [mean loss over counted positions, count].
 */
export function crossentropyForward(lib: KernelLib, losses: Tensor, lse: Tensor, stats: Tensor, logits: Tensor, ids: Tensor, mask: Tensor, T: number): KernelCall[] {
  const { rows, V } = dims('crossentropyForward', logits, ids, mask, T);
  expectNumel(losses, rows, 'crossentropyForward');
  expectNumel(lse, rows, 'crossentropyForward');
  expectNumel(stats, 2, 'crossentropyForward');
  const u = [u32(rows), u32(T), u32(V), f32(1)];
  return [
    lib.call(src('crossentropyForward', ['write', 'write', 'read', 'read', 'read', 'uniform']), `crossentropyForward(${losses.label})`, [losses, lse, logits, ids, mask], grid1D(rows), u),
    lib.call(src('crossentropyReduce', ['write', 'read', 'read', 'uniform']), `crossentropyReduce(${stats.label})`, [stats, losses, mask], [1], u),
  ];
}

/** dlogits (B, T, V) = dloss · (softmax − onehot) / count on counted rows, 0 elsewhere (overwrites). */
export function crossentropyBackward(lib: KernelLib, dlogits: Tensor, logits: Tensor, lse: Tensor, stats: Tensor, ids: Tensor, mask: Tensor, T: number, dloss = 1): KernelCall[] {
  const { rows, V } = dims('crossentropyBackward', logits, ids, mask, T);
  expectNumel(dlogits, rows * V, 'crossentropyBackward');
  const [y, z = 1] = grid1D(rows);
  // One invocation per logit, no barriers: the elementwise workgroup size.
  const wg = lib.tuning.elementwiseWorkgroup;
  return [
    lib.call(
      { ...src('crossentropyBackward', ['write', 'read', 'read', 'read', 'read', 'read', 'uniform']), constants: { WG: wg } },
      `crossentropyBackward(${dlogits.label})`,
      [dlogits, logits, lse, stats, ids, mask],
      [Math.ceil(V / wg), y, z],
      [u32(rows), u32(T), u32(V), f32(dloss)],
    ),
  ];
}
