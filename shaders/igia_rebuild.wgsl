// IGIA matrix of one module rebuilt from its stored per-step gradient factors (for layers being merged only):
//   F[o, i] = scale · Σ_s (Σ_k gB_s[o, k] · gA_s[k, i])²       (scale = 1/t: the paper's mean over steps)
// Write semantics: `=`. One thread per element of F.
// Factor layout per step s (stride r·(in + out) elements): gA_s (r, in) then gB_s (out, r).

struct RebuildParams {
  rank: u32,
  inDim: u32,
  outDim: u32,
  steps: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read_write> importance: array<f32>; // (out, in)
@group(0) @binding(1) var<storage, read> factors: array<f32>; // (steps, r·(in + out))
@group(0) @binding(2) var<uniform> p: RebuildParams;

@compute @workgroup_size(16, 16)
fn igiaRebuild(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let o = gid.y;
  if (i >= p.inDim || o >= p.outDim) {
    return;
  }
  let r = p.rank;
  let stride = r * (p.inDim + p.outDim);
  var f = 0.0;
  for (var s = 0u; s < p.steps; s++) {
    let a = s * stride;
    let b = a + r * p.inDim + o * r;
    var v = 0.0;
    for (var k = 0u; k < r; k++) {
      v += factors[b + k] * factors[a + k * p.inDim + i];
    }
    f += v * v;
  }
  importance[o * p.inDim + i] = f * p.scale;
}
