// Next-token cross-entropy over the vocabulary with a loss mask (position t counts iff mask[t+1] == 1),
// fused with the softmax; the mean over counted positions is reduced on the GPU. Whole (logits (B·T, V) in one
// buffer) or chunked (the crossentropyChunk* kernels: one (rows, Vp) logits chunk at a time; src/nn/loss-head.ts
// drives them). Write semantics in shaders/crossentropy.wgsl's header.

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
    ...crossentropyReduce(lib, stats, losses, mask, T),
  ];
}

/** stats (2) = [mean of losses (B, T) over counted positions, count] (one workgroup: a fixed summation order). */
export function crossentropyReduce(lib: KernelLib, stats: Tensor, losses: Tensor, mask: Tensor, T: number): KernelCall[] {
  const rows = losses.numel;
  if (rows % T !== 0) throw new Error(`crossentropyReduce: losses ${losses.label} [${losses.shape}] is not (B, T=${T})`);
  expectNumel(mask, rows, 'crossentropyReduce');
  expectNumel(stats, 2, 'crossentropyReduce');
  expectDType(mask, ['i32'], 'crossentropyReduce');
  const u = [u32(rows), u32(T), u32(0), f32(1)];
  return [lib.call(src('crossentropyReduce', ['write', 'read', 'read', 'uniform']), `crossentropyReduce(${stats.label})`, [stats, losses, mask], [1], u)];
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

// ── chunked: one logits chunk (rows [r0, r0 + R) × vocabulary ids [v0, v0 + Vp)) at a time ────────────────────

/** Where a logits chunk lies in the whole (B·T, V) logits, and the sequence length T that maps rows to (b, t). */
export interface LogitsChunk {
  /** Global row of the chunk's row 0. */
  r0: number;
  /** First vocabulary id of the chunk's column 0. */
  v0: number;
  /** The whole vocabulary. */
  V: number;
  T: number;
}

function chunkDims(what: string, chunk: Tensor, ids: Tensor, mask: Tensor, c: LogitsChunk): { R: number; Vp: number } {
  if (chunk.shape.length !== 2) throw new Error(`${what}: logits chunk ${chunk.label} must be (R, Vp), got [${chunk.shape.join(', ')}]`);
  const [R, Vp] = chunk.shape;
  const N = ids.numel;
  if (N % c.T !== 0) throw new Error(`${what}: ids ${ids.label} [${ids.shape}] is not (B, T=${c.T})`);
  if (c.r0 < 0 || c.r0 + R > N) throw new Error(`${what}: rows [${c.r0}, ${c.r0 + R}) are outside the ${N} rows of ${ids.label}`);
  if (c.v0 < 0 || c.v0 + Vp > c.V) throw new Error(`${what}: vocabulary ids [${c.v0}, ${c.v0 + Vp}) are outside [0, ${c.V})`);
  expectNumel(mask, N, what);
  expectDType(ids, ['i32'], what);
  expectDType(mask, ['i32'], what);
  expectDType(chunk, ['f32'], what);
  return { R, Vp };
}

const chunkUniforms = (R: number, Vp: number, c: LogitsChunk, first: boolean, dloss: number) => [
  u32(R),
  u32(c.r0),
  u32(c.T),
  u32(c.V),
  u32(Vp),
  u32(c.v0),
  u32(first ? 1 : 0),
  f32(dloss),
];

/**
 * Fold a logits chunk (R, Vp) into state (≥ R, 3) = per row [running max, running Σ exp(x − max), target logit]
 * (the target logit is taken when ids[r + 1] falls in [v0, v0 + Vp)). `first` (a chunk's first part) overwrites.
 */
export function crossentropyChunkForward(lib: KernelLib, state: Tensor, logits: Tensor, ids: Tensor, mask: Tensor, chunk: LogitsChunk, first: boolean): KernelCall[] {
  const { R, Vp } = chunkDims('crossentropyChunkForward', logits, ids, mask, chunk);
  expectNumel(state, R * 3, 'crossentropyChunkForward');
  return [
    lib.call(
      src('crossentropyChunkForward', ['write', 'read', 'read', 'read', 'uniform']),
      `crossentropyChunkForward(${state.label}, r0=${chunk.r0}, v0=${chunk.v0})`,
      [state, logits, ids, mask],
      grid1D(R),
      chunkUniforms(R, Vp, chunk, first, 1),
    ),
  ];
}

/** lse, losses (B, T) rows [r0, r0 + R) from the folded state (R, 3) (after the chunk's last part). */
export function crossentropyChunkFinish(lib: KernelLib, losses: Tensor, lse: Tensor, state: Tensor, ids: Tensor, mask: Tensor, chunk: Omit<LogitsChunk, 'v0'>, R: number): KernelCall[] {
  const N = ids.numel;
  if (N % chunk.T !== 0 || chunk.r0 < 0 || chunk.r0 + R > N) throw new Error(`crossentropyChunkFinish: rows [${chunk.r0}, ${chunk.r0 + R}) do not fit ${ids.label} [${ids.shape}] with T=${chunk.T}`);
  expectNumel(losses, N, 'crossentropyChunkFinish');
  expectNumel(lse, N, 'crossentropyChunkFinish');
  expectNumel(mask, N, 'crossentropyChunkFinish');
  expectNumel(state, R * 3, 'crossentropyChunkFinish');
  return [
    lib.elementwise(
      { label: 'crossentropyChunkFinish', code: crossentropyWgsl, entryPoint: 'crossentropyChunkFinish', bindings: ['write', 'write', 'read', 'read', 'read', 'uniform'] },
      `crossentropyChunkFinish(${losses.label}, r0=${chunk.r0})`,
      [losses, lse, state, ids, mask],
      R,
      chunkUniforms(R, 0, { ...chunk, v0: 0 }, false, 1),
    ),
  ];
}

/** dlogits chunk (R, Vp) = dloss · (softmax − onehot) / count from the logits chunk, 0 on rows that do not count (overwrites). */
export function crossentropyChunkBackward(lib: KernelLib, dlogits: Tensor, logits: Tensor, lse: Tensor, stats: Tensor, ids: Tensor, mask: Tensor, chunk: LogitsChunk, dloss = 1): KernelCall[] {
  const { R, Vp } = chunkDims('crossentropyChunkBackward', logits, ids, mask, chunk);
  expectNumel(dlogits, R * Vp, 'crossentropyChunkBackward');
  expectNumel(lse, ids.numel, 'crossentropyChunkBackward');
  expectNumel(stats, 2, 'crossentropyChunkBackward');
  const [y, z = 1] = grid1D(R);
  const wg = lib.tuning.elementwiseWorkgroup;
  return [
    lib.call(
      { ...src('crossentropyChunkBackward', ['write', 'read', 'read', 'read', 'read', 'read', 'uniform']), constants: { WG: wg } },
      `crossentropyChunkBackward(${dlogits.label}, r0=${chunk.r0}, v0=${chunk.v0})`,
      [dlogits, logits, lse, stats, ids, mask],
      [Math.ceil(Vp / wg), y, z],
      chunkUniforms(R, Vp, chunk, false, dloss),
    ),
  ];
}
