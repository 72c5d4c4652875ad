// Token embedding: out (B, T, C) = wte[ids]; wte (V, C) of element type W (f32 or f16: weights_*.wgsl, prepended).
// No backward: embeddings stay frozen under LoRA.
// An embedding too large for one binding is held in row parts (part p = rows [row_start, row_start + Vp) of the
// whole): a call over one part writes only the rows of out whose id falls in that part, so one call per part fills
// them all. With zero_outside == 1 (a whole table, row_start 0) a token id outside [0, V) gives a zero row (the data
// pipeline validates ids before they reach the GPU).
// Write semantics: embeddingForward: out `=` on rows whose id is in the part; other rows untouched, or `= 0` when
// zero_outside == 1.

struct Params {
  n: u32, // B·T·C
  C: u32,
  Vp: u32, // rows of this part (V for a whole table)
  row_start: u32, // first row of the whole table this part holds
  zero_outside: u32, // 1: rows whose id is not in the part are zeroed; 0: left untouched
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (B, T, C)
@group(0) @binding(1) var<storage, read> ids: array<i32>; // (B, T)
@group(0) @binding(2) var<storage, read> wte: array<W>; // (Vp, C): rows [row_start, row_start + Vp) of the whole (V, C)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn embeddingForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let local = ids[i / p.C] - i32(p.row_start);
  if (local < 0 || u32(local) >= p.Vp) {
    if (p.zero_outside == 1u) { out[i] = 0.0; }
    return;
  }
  out[i] = f32(wte[u32(local) * p.C + i % p.C]);
}
