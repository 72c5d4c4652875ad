// Causal grouped-query attention, one invocation per row: the same semantics, bindings and entry points as
// attention.wgsl (parameters, bindings and index helpers in attention_common.wgsl, prepended), without workgroup
// memory or barriers. For software adapters (SwiftShader, lavapipe), which run a workgroup's invocations as
// fibers on a CPU core and pay for every barrier; on a GPU the per-invocation arrays below would spill, so GPUs
// use attention.wgsl. Needs HD ≤ 256.
// Write semantics: attentionForward: out, lse `=`. attentionBackwardQuery: dq `+=`, delta `=`.
// attentionBackwardKeyValue (after attentionBackwardQuery): dk, dv `+=`, summed over the query heads of a kv head.

const MAX_HD: u32 = 256u;

// Rows are numbered ((b · H + h) · T + t), the layout of lse: consecutive invocations take consecutive positions of one head.
struct Row {
  b: u32,
  h: u32,
  t: u32,
}

fn row_of(i: u32, H: u32) -> Row {
  return Row(i / (H * p.T), (i / p.T) % H, i % p.T);
}

// Query row i: its position, its kv head g and the offset qo of its q / out / dq / dout row.
struct QueryRow {
  b: u32,
  h: u32,
  t: u32,
  g: u32,
  qo: u32,
}

fn query_row(i: u32) -> QueryRow {
  let r = row_of(i, p.NH);
  return QueryRow(r.b, r.h, r.t, kv_head(r.h), q_at(r.b, r.t, r.h));
}

@compute @workgroup_size(WG)
fn attentionForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.B * p.NH * p.T) { return; }
  let r = query_row(i);
  let g = r.g;
  let qo = r.qo;
  var qv: array<f32, MAX_HD>;
  var acc: array<f32, MAX_HD>;
  for (var d = 0u; d < p.HD; d++) { qv[d] = q[qo + d]; }
  var m = NEG_LARGE;
  var l = 0.0;
  for (var j = first_key(r.t); j <= r.t; j++) {
    let ko = kv_at(r.b, j, g);
    var dot = 0.0;
    for (var d = 0u; d < p.HD; d++) { dot += qv[d] * k[ko + d]; }
    let s = dot * p.scale;
    if (s > m) {
      let correction = exp(m - s);
      l *= correction;
      for (var d = 0u; d < p.HD; d++) { acc[d] *= correction; }
      m = s;
    }
    let e = exp(s - m);
    l += e;
    for (var d = 0u; d < p.HD; d++) { acc[d] += e * v[ko + d]; }
  }
  for (var d = 0u; d < p.HD; d++) { out[qo + d] = acc[d] / l; }
  lse[i] = m + log(l);
}

// dS_j = P_j (dout·v_j − Σ_d dout·out); dq = scale · Σ_j dS_j k_j.
@compute @workgroup_size(WG)
fn attentionBackwardQuery(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.B * p.NH * p.T) { return; }
  let r = query_row(i);
  let g = r.g;
  let qo = r.qo;
  var D = 0.0;
  for (var d = 0u; d < p.HD; d++) { D += dout[qo + d] * out_in[qo + d]; }
  delta[i] = D;
  let L = lse_in[i];
  var acc: array<f32, MAX_HD>;
  for (var j = first_key(r.t); j <= r.t; j++) {
    let ko = kv_at(r.b, j, g);
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < p.HD; d++) {
      s += q[qo + d] * k[ko + d];
      dp += dout[qo + d] * v[ko + d];
    }
    let ds = exp(s * p.scale - L) * (dp - D);
    for (var d = 0u; d < p.HD; d++) { acc[d] += ds * k[ko + d]; }
  }
  for (var d = 0u; d < p.HD; d++) { dq[qo + d] += p.scale * acc[d]; }
}

// One invocation per key row j of kv head g: dv_j = Σ_{h in group, i} P_ij dout_i, dk_j = scale · Σ dS_ij q_i.
@compute @workgroup_size(WG)
fn attentionBackwardKeyValue(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.B * p.NKV * p.T) { return; }
  let r = row_of(i, p.NKV); // r.h is the kv head, r.t the key position
  let ko = kv_at(r.b, r.t, r.h);
  let i_end = last_query(r.t);
  let group = p.NH / p.NKV;
  var acc_k: array<f32, MAX_HD>;
  var acc_v: array<f32, MAX_HD>;
  for (var h = r.h * group; h < (r.h + 1u) * group; h++) {
    for (var qi = r.t; qi <= i_end; qi++) {
      let qo = q_at(r.b, qi, h);
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < p.HD; d++) {
        s += q[qo + d] * k[ko + d];
        dp += dout[qo + d] * v[ko + d];
      }
      let so = stat_at(r.b, h, qi);
      let pr = exp(s * p.scale - lse_in[so]);
      let ds = pr * (dp - delta_in[so]);
      for (var d = 0u; d < p.HD; d++) {
        acc_v[d] += pr * dout[qo + d];
        acc_k[d] += ds * q[qo + d];
      }
    }
  }
  for (var d = 0u; d < p.HD; d++) {
    dk[ko + d] += p.scale * acc_k[d];
    dv[ko + d] += acc_v[d];
  }
}
