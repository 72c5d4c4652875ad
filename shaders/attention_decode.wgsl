// Attention of one new token against a KV cache (generation): for each query head h,
// out[h] = softmax(q[h]·K[0..len)ᵀ · scale) · V[0..len), K and V read from kv head h / (NH / NKV).
// Optional sliding window: only the last `window` keys (window 0: all). Scores go through the `scores` scratch.
// Write semantics: attentionDecode: out `=`, scores `=` (scratch).
// Built with WG = 64 (the workgroup reductions of common.wgsl).

struct Params {
  len: u32, // valid cache rows, the new token's included
  NH: u32,
  NKV: u32,
  HD: u32,
  window: u32,
  scale: f32,
  max_len: u32, // rows of the cache and of the scores scratch
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (NH, HD)
@group(0) @binding(1) var<storage, read_write> scores: array<f32>; // (NH, max_len)
@group(0) @binding(2) var<storage, read> q: array<f32>; // (NH, HD)
@group(0) @binding(3) var<storage, read> k_cache: array<f32>; // (max_len, NKV, HD)
@group(0) @binding(4) var<storage, read> v_cache: array<f32>; // (max_len, NKV, HD)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn attentionDecode(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  let g = h / (p.NH / p.NKV);
  var first = 0u;
  if (p.window != 0u && p.len > p.window) { first = p.len - p.window; }
  let srow = h * p.max_len;

  var m = NEG_LARGE;
  for (var j = first + li; j < p.len; j += WG) {
    var dot = 0.0;
    for (var d = 0u; d < p.HD; d++) { dot += q[h * p.HD + d] * k_cache[(j * p.NKV + g) * p.HD + d]; }
    let s = dot * p.scale;
    scores[srow + j] = s;
    m = max(m, s);
  }
  m = workgroup_max(li, m);
  var l = 0.0;
  for (var j = first + li; j < p.len; j += WG) {
    let e = exp(scores[srow + j] - m);
    scores[srow + j] = e;
    l += e;
  }
  l = workgroup_sum(li, l);
  storageBarrier();
  for (var d = li; d < p.HD; d += WG) {
    var acc = 0.0;
    for (var j = first; j < p.len; j++) { acc += scores[srow + j] * v_cache[(j * p.NKV + g) * p.HD + d]; }
    out[h * p.HD + d] = acc / l;
  }
}
