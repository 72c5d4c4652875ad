// IGIA, step 1 of 2: the r×r Gram matrices of one module's clipped LoRA gradients.
// Write semantics: `=` into this module's slot of `gram` (overwritten every step).
//   GA = gA · gAᵀ    GB = gBᵀ · gB    so that    ‖gB · gA‖²_F = Σ GB ⊙ GA   (no [out, in] matrix is formed).
// One workgroup per Gram matrix: workgroup 0 computes GA, workgroup 1 GB; its threads take the r² entries in turn
// (r = 8: one entry per thread). Each entry is a serial sum over in (or out) terms — ≤ 14336 multiply-adds per
// thread for a 7B model — negligible beside the step's matmuls, and far cheaper than r² small workgroups each
// with a barrier-heavy tree reduction (18 vs 318 ms per step for tiny-llama on SwiftShader).
// gA and gB are read at element offsets so the trainer may keep all LoRA gradients in one packed buffer.

struct GramParams {
  rank: u32,
  inDim: u32,
  outDim: u32,
  offsetA: u32, // element offset of gA in its buffer
  offsetB: u32, // element offset of gB in its buffer
  slot: u32, // this module's index in `gram`
}

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> gram: array<f32>; // (modules, 2, r, r)
@group(0) @binding(1) var<storage, read> gA: array<f32>; // (r, in) at offsetA
@group(0) @binding(2) var<storage, read> gB: array<f32>; // (out, r) at offsetB
@group(0) @binding(3) var<uniform> p: GramParams;

@compute @workgroup_size(WG)
fn igiaGram(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = p.rank;
  let which = wid.x; // 0: GA, 1: GB
  for (var e = lid.x; e < r * r; e += WG) {
    let i = e / r;
    let j = e % r;
    var acc = 0.0;
    if (which == 0u) {
      let rowI = p.offsetA + i * p.inDim;
      let rowJ = p.offsetA + j * p.inDim;
      for (var k = 0u; k < p.inDim; k++) {
        acc += gA[rowI + k] * gA[rowJ + k];
      }
    } else {
      for (var o = 0u; o < p.outDim; o++) {
        let row = p.offsetB + o * r;
        acc += gB[row + i] * gB[row + j];
      }
    }
    gram[((p.slot * 2u + which) * r + i) * r + j] = acc;
  }
}
