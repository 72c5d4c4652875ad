// Token embedding lookup (forward only: the embedding stays frozen under LoRA). wte f32 or f16.

import embeddingF32 from '../../../shaders/embedding.wgsl?raw';
import embeddingF16 from '../../../shaders/embedding_f16.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import type { Tensor } from '../../gpu/tensor';
import { expectDType, expectNumel, grid1D, u32, type KernelLib } from './lib';

/** out (B, T, C) = wte (V, C)[ids (B, T)] */
export function embeddingForward(lib: KernelLib, out: Tensor, ids: Tensor, wte: Tensor): KernelCall[] {
  const [V, C] = wte.shape;
  expectNumel(wte, V * C, 'embeddingForward');
  expectNumel(out, ids.numel * C, 'embeddingForward');
  expectDType(ids, ['i32'], 'embeddingForward');
  expectDType(out, ['f32'], 'embeddingForward');
  expectDType(wte, lib.shaderF16 ? ['f32', 'f16'] : ['f32'], 'embeddingForward');
  const f16 = wte.dtype === 'f16';
  const n = out.numel;
  return [
    lib.call(
      { label: f16 ? 'embedding_f16' : 'embedding', code: f16 ? embeddingF16 : embeddingF32, entryPoint: 'embeddingForward', bindings: ['write', 'read', 'read', 'uniform'], common: false },
      `embeddingForward(${out.label})`,
      [out, ids, wte],
      grid1D(n, 256),
      [u32(n), u32(C), u32(V)],
    ),
  ];
}
