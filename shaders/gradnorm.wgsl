// Global gradient norm and clipping (PyTorch clip_grad_norm_), without a round trip to the host:
// sumSquares writes one partial Σg² per workgroup into its tensor's slots of `partials`; gradNormFinalize sums
// every slot in a fixed order into norm = [sqrt(Σ), min(1, max_norm / (sqrt(Σ) + 1e-6))]; gradScale multiplies a
// gradient by norm[1].
// Write semantics: sumSquares: partials[offset + workgroup] `=`. gradNormFinalize: norm `=`. gradScale: grad `*=`.

struct Params {
  n: u32, // elements of this tensor (sumSquares, gradScale), or partial slots (gradNormFinalize)
  offset: u32, // first slot of this tensor in partials (sumSquares)
  max_norm: f32, // gradNormFinalize
}

@group(0) @binding(0) var<storage, read_write> partials: array<f32>; // (slots)
@group(0) @binding(1) var<storage, read> grad_s: array<f32>; // (n)
@group(0) @binding(2) var<uniform> ps: Params;

@compute @workgroup_size(WG)
fn sumSquares(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let stride = nwg.x * WG;
  var s = 0.0;
  for (var i = wid.x * WG + li; i < ps.n; i += stride) {
    let g = grad_s[i];
    s += g * g;
  }
  let total = workgroup_sum(li, s);
  if (li == 0u) { partials[ps.offset + wid.x] = total; }
}

@group(0) @binding(0) var<storage, read_write> norm: array<f32>; // (2): norm, clip factor
@group(0) @binding(1) var<storage, read> partials_f: array<f32>; // (slots)
@group(0) @binding(2) var<uniform> pf: Params;

@compute @workgroup_size(WG)
fn gradNormFinalize(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var i = li; i < pf.n; i += WG) { s += partials_f[i]; }
  let total = sqrt(workgroup_sum(li, s));
  if (li == 0u) {
    norm[0] = total;
    norm[1] = min(1.0, pf.max_norm / (total + 1e-6));
  }
}

@group(0) @binding(0) var<storage, read_write> grad: array<f32>; // (n)
@group(0) @binding(1) var<storage, read> norm_g: array<f32>; // (2)
@group(0) @binding(2) var<uniform> pg: Params;

@compute @workgroup_size(WG)
fn gradScale(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pg.n) { return; }
  grad[i] *= norm_g[1];
}
