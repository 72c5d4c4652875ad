enable f16;

// Token embedding: out (B, T, C) = wte[ids] (wte (V, C) stored f16). A token id outside [0, V) gives a zero row
// (the data pipeline validates ids before they reach the GPU). No backward: embeddings stay frozen under LoRA.
// Write semantics: embeddingForward: out `=`. The body of embedding.wgsl: keep the two in step.

struct Params {
  n: u32, // B·T·C
  C: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (B, T, C)
@group(0) @binding(1) var<storage, read> ids: array<i32>; // (B, T)
@group(0) @binding(2) var<storage, read> wte: array<f16>; // (V, C)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn embeddingForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let id = ids[i / p.C];
  if (id < 0 || u32(id) >= p.V) {
    out[i] = 0.0;
    return;
  }
  out[i] = f32(wte[u32(id) * p.C + i % p.C]);
}
