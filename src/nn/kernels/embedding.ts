// Token embedding lookup (forward only: the embedding stays frozen under LoRA). wte f32 or f16, whole or in row
// parts (an embedding larger than one storage binding: tensor.ts createRowParts).
// Write semantics: out `=` (see embeddingForward for a single part).

import embeddingWgsl from '../../../shaders/embedding.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import { rowPartsRows, type RowPart, type Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, grid1D, u32, type KernelLib } from './lib';

/**
 * out (B, T, C) = wte (Vp, C)[ids (B, T) − rowStart].
 * rowStart undefined: wte is the whole table; a row whose id is outside [0, Vp) is zeroed.
 * rowStart given: wte holds rows [rowStart, rowStart + Vp) of a larger table; only rows of out whose id falls in
 * that range are written, the others are left as they are (one call per part fills every row).
 */
export function embeddingForward(lib: KernelLib, out: Tensor, ids: Tensor, wte: Tensor, rowStart?: number): KernelCall[] {
  return [embeddingCall(lib, out, ids, wte, rowStart ?? 0, rowStart === undefined)];
}

/** out (B, T, C) = wte[ids] over a table held as row parts; ids outside the table give zero rows. */
export function embeddingForwardParts(lib: KernelLib, out: Tensor, ids: Tensor, parts: readonly RowPart[]): KernelCall[] {
  rowPartsRows(parts, 'embeddingForwardParts');
  // The first call also zeroes every row not in its part; the later parts, dispatched after it, overwrite theirs.
  return parts.map((p, i) => embeddingCall(lib, out, ids, p.tensor, p.rowStart, i === 0));
}

function embeddingCall(lib: KernelLib, out: Tensor, ids: Tensor, wte: Tensor, rowStart: number, zeroOutside: boolean): KernelCall {
  const [Vp, C] = wte.shape;
  expectNumel(wte, Vp * C, 'embeddingForward');
  expectNumel(out, ids.numel * C, 'embeddingForward');
  expectDType(ids, ['i32'], 'embeddingForward');
  expectDType(out, ['f32'], 'embeddingForward');
  expectDType(wte, lib.shaderF16 ? ['f32', 'f16'] : ['f32'], 'embeddingForward');
  const f16 = wte.dtype === 'f16';
  const n = out.numel;
  return lib.call(
    { label: f16 ? 'embedding_f16' : 'embedding', code: embeddingWgsl, weights: f16 ? 'f16' : 'f32', entryPoint: 'embeddingForward', bindings: ['write', 'read', 'read', 'uniform'], common: false },
    `embeddingForward(${out.label}, ${wte.label})`,
    [out, ids, wte],
    grid1D(n, 256),
    [u32(n), u32(C), u32(Vp), u32(rowStart), u32(zeroOutside ? 1 : 0)],
  );
}
