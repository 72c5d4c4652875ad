// Attention of one new token against a KV cache (generation), with attention_common.wgsl's parameters, bindings
// and index helpers (prepended; B = 1, T = the cache's rows): for each query head h,
// out[h] = softmax(q[h]·K[first_key(pos)..pos]ᵀ · scale) · V[..], K and V (the caches) read from kv head kv_head(h).
// Scores go through the `scores` scratch (NH, T).
// Write semantics: attentionDecode: out `=`, scores `=` (scratch).
// Built with WG = 64 (the workgroup reductions of common.wgsl).

@compute @workgroup_size(WG)
fn attentionDecode(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let h = wid.x;
  let g = kv_head(h);
  let first = first_key(p.pos);
  let qo = q_at(0u, 0u, h);

  var m = NEG_LARGE;
  for (var j = first + li; j <= p.pos; j += WG) {
    let ko = kv_at(0u, j, g);
    var dot = 0.0;
    for (var d = 0u; d < p.HD; d++) { dot += q[qo + d] * k[ko + d]; }
    let s = dot * p.scale;
    scores[stat_at(0u, h, j)] = s;
    m = max(m, s);
  }
  m = workgroup_max(li, m);
  var l = 0.0;
  for (var j = first + li; j <= p.pos; j += WG) {
    let e = exp(scores[stat_at(0u, h, j)] - m);
    scores[stat_at(0u, h, j)] = e;
    l += e;
  }
  l = workgroup_sum(li, l);
  storageBarrier();
  for (var d = li; d < p.HD; d += WG) {
    var acc = 0.0;
    for (var j = first; j <= p.pos; j++) { acc += scores[stat_at(0u, h, j)] * v[kv_at(0u, j, g) + d]; }
    out[qo + d] = acc / l;
  }
}
