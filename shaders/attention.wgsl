// Causal grouped-query attention, softmax(q·kᵀ · scale + causal mask) · v, in f32; parameters, bindings and
// index helpers in attention_common.wgsl (prepended).
// One workgroup of 64 invocations per row; keys (or queries) are visited 64 at a time with an online softmax, so
// nothing of size T×T is stored: the forward keeps the log-sum-exp of each row for the backward pass.
// Needs HD ≤ 256. Built with WG = 64 (the chunk width and the workgroup reductions of common.wgsl).
// Write semantics: attentionForward: out, lse `=`. attentionBackwardQuery: dq `+=`, delta `=`.
// attentionBackwardKeyValue (after attentionBackwardQuery): dk, dv `+=`, summed over the query heads of a kv head.

const CHUNK: u32 = 64u;
const MAX_HD: u32 = 256u;
const PER: u32 = 4u; // MAX_HD / CHUNK head dims per invocation

var<workgroup> row_a: array<f32, MAX_HD>; // the row this workgroup owns (q, or k)
var<workgroup> row_b: array<f32, MAX_HD>; // a second row (dout, or v)
var<workgroup> chunk_a: array<f32, CHUNK>; // per-key (per-query) weights of the current chunk
var<workgroup> chunk_b: array<f32, CHUNK>;

@compute @workgroup_size(64)
fn attentionForward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let g = kv_head(h);
  let qo = q_at(b, t, h);
  for (var d = li; d < p.HD; d += CHUNK) { row_a[d] = q[qo + d]; }
  workgroupBarrier();

  var m_run = NEG_LARGE;
  var l_run = 0.0;
  var acc: array<f32, PER>;
  for (var j0 = first_key(t); j0 <= t; j0 += CHUNK) {
    let j = j0 + li;
    let valid = j <= t;
    var s = NEG_LARGE;
    if (valid) {
      let ko = kv_at(b, j, g);
      var dot = 0.0;
      for (var d = 0u; d < p.HD; d++) { dot += row_a[d] * k[ko + d]; }
      s = dot * p.scale;
    }
    let m_new = max(m_run, workgroup_max(li, s));
    var e = 0.0;
    if (valid) { e = exp(s - m_new); }
    chunk_a[li] = e;
    let correction = exp(m_run - m_new);
    l_run = l_run * correction + workgroup_sum(li, e); // the sum's barriers also publish chunk_a
    let n = min(CHUNK, t + 1u - j0);
    for (var r = 0u; r < PER; r++) {
      let d = li + r * CHUNK;
      if (d < p.HD) {
        var sum = 0.0;
        for (var jj = 0u; jj < n; jj++) { sum += chunk_a[jj] * v[kv_at(b, j0 + jj, g) + d]; }
        acc[r] = acc[r] * correction + sum;
      }
    }
    m_run = m_new;
    workgroupBarrier();
  }
  for (var r = 0u; r < PER; r++) {
    let d = li + r * CHUNK;
    if (d < p.HD) { out[qo + d] = acc[r] / l_run; }
  }
  if (li == 0u) { lse[stat_at(b, h, t)] = m_run + log(l_run); }
}

// With P = softmax row, dP_j = dout·v_j, dS_j = P_j (dP_j − Σ_d dout·out): dq = scale · Σ_j dS_j k_j.
@compute @workgroup_size(64)
fn attentionBackwardQuery(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let g = kv_head(h);
  let qo = q_at(b, t, h);
  var part = 0.0;
  for (var d = li; d < p.HD; d += CHUNK) {
    row_a[d] = q[qo + d];
    row_b[d] = dout[qo + d];
    part += dout[qo + d] * out_in[qo + d];
  }
  let D = workgroup_sum(li, part); // its barriers also publish row_a, row_b
  let so = stat_at(b, h, t);
  if (li == 0u) { delta[so] = D; }
  let L = lse_in[so];

  var acc: array<f32, PER>;
  for (var j0 = first_key(t); j0 <= t; j0 += CHUNK) {
    let j = j0 + li;
    var ds = 0.0;
    if (j <= t) {
      let ko = kv_at(b, j, g);
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < p.HD; d++) {
        s += row_a[d] * k[ko + d];
        dp += row_b[d] * v[ko + d];
      }
      ds = exp(s * p.scale - L) * (dp - D);
    }
    chunk_a[li] = ds;
    workgroupBarrier();
    let n = min(CHUNK, t + 1u - j0);
    for (var r = 0u; r < PER; r++) {
      let d = li + r * CHUNK;
      if (d < p.HD) {
        var sum = 0.0;
        for (var jj = 0u; jj < n; jj++) { sum += chunk_a[jj] * k[kv_at(b, j0 + jj, g) + d]; }
        acc[r] += sum;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < PER; r++) {
    let d = li + r * CHUNK;
    if (d < p.HD) { dq[qo + d] += p.scale * acc[r]; }
  }
}

// One workgroup per key row j of kv head g: dv_j = Σ_{h in group, i} P_ij dout_i, dk_j = scale · Σ dS_ij q_i.
@compute @workgroup_size(64)
fn attentionBackwardKeyValue(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let j = wid.x;
  let g = wid.y;
  let b = wid.z;
  let ko = kv_at(b, j, g);
  for (var d = li; d < p.HD; d += CHUNK) {
    row_a[d] = k[ko + d];
    row_b[d] = v[ko + d];
  }
  workgroupBarrier();
  let i_end = last_query(j);
  let group = p.NH / p.NKV;
  var acc_k: array<f32, PER>;
  var acc_v: array<f32, PER>;
  for (var h = g * group; h < (g + 1u) * group; h++) {
    for (var i0 = j; i0 <= i_end; i0 += CHUNK) {
      let i = i0 + li;
      var pr = 0.0;
      var ds = 0.0;
      if (i <= i_end) {
        let qo = q_at(b, i, h);
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < p.HD; d++) {
          s += q[qo + d] * row_a[d];
          dp += dout[qo + d] * row_b[d];
        }
        let so = stat_at(b, h, i);
        pr = exp(s * p.scale - lse_in[so]);
        ds = pr * (dp - delta_in[so]);
      }
      chunk_a[li] = pr;
      chunk_b[li] = ds;
      workgroupBarrier();
      let n = min(CHUNK, i_end + 1u - i0);
      for (var r = 0u; r < PER; r++) {
        let d = li + r * CHUNK;
        if (d < p.HD) {
          var sk = 0.0;
          var sv = 0.0;
          for (var ii = 0u; ii < n; ii++) {
            let qo = q_at(b, i0 + ii, h) + d;
            sv += chunk_a[ii] * dout[qo];
            sk += chunk_b[ii] * q[qo];
          }
          acc_v[r] += sv;
          acc_k[r] += sk;
        }
      }
      workgroupBarrier();
    }
  }
  for (var r = 0u; r < PER; r++) {
    let d = li + r * CHUNK;
    if (d < p.HD) {
      dk[ko + d] += p.scale * acc_k[r];
      dv[ko + d] += acc_v[r];
    }
  }
}
