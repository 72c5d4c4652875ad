// The kernel library's public API. kernelLib(gpu) is a device's one library (pipelines built once, shared by every
// job); each kernel function takes it first and builds the KernelCalls of one use (once, at setup), returned in
// dispatch order: encode them into a compute pass in order.
// Argument order: outputs first, then gradients (prefixed d), then inputs; shapes are read from the tensors
// (T, H and the attention shape are passed where a flat tensor cannot tell them).
// Write semantics: forward outputs `=`; gradients `+=` (zero them with fill first), except where noted:
// loraForward's out `+=` (it adds to the base output), loraBackward's dh `=`, crossentropyBackward's dlogits `=`,
// embeddingForward over one part of a row-split table writes only the rows whose id is in that part; taylorRowSums /
// taylorColumnSums `=` (reductions), taylorAccumulate `+=`.
//
// Shapes: N = B·T rows; C hidden; NH, NKV heads; HD head_dim; I intermediate; V vocab; r LoRA rank.
// Linear weights are [out, in] (f32, or f16 on a device with shader-f16); everything else is f32; ids i32.
// Workgroup shapes follow the adapter (lib.ts Tuning): software adapters get barrier-light variants.
// The f16 kernels run where the adapter has shader-f16 (not SwiftShader): to test them in Node, point
// VK_ICD_FILENAMES at Mesa ≥ 25 lavapipe's ICD JSON (Debian bookworm-backports mesa-vulkan-drivers).
// The CPU reference of each op (the one the Hugging Face-checked reference model runs) is beside its kernel: <op>.cpu.ts.

export { GPU_TUNING, KernelLib, kernelLib, SOFTWARE_TUNING, type Tuning } from './lib';
export { AttentionDecode, attentionBackward, attentionForward, type AttentionShape, type DecodeShape } from './attention';
export {
  crossentropyBackward,
  crossentropyChunkBackward,
  crossentropyChunkFinish,
  crossentropyChunkForward,
  crossentropyForward,
  crossentropyReduce,
  type LogitsChunk,
} from './crossentropy';
export { accumulate, copy, fill, residualBackward, residualForward, swigluBackward, swigluForward } from './elementwise';
export { embeddingForward, embeddingForwardParts } from './embedding';
export { biasBackward, linearBackward, linearForward, loraBackward, loraForward, matmul, type MatmulArgs } from './matmul';
export { AdamWUpdate, GlobalGradNorm, type AdamWHyper } from './optimizer';
export { rmsnormBackward, rmsnormForward } from './rmsnorm';
export { SALIENCES, taylorAccumulate, taylorColumnSums, taylorRowSums, type Salience, type TaylorSumArgs } from './taylor';
export { ropeBackward, ropeForward, ropeInvFreq, ropeTables } from './rope';
