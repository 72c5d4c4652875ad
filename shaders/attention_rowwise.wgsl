// Causal grouped-query attention, one invocation per row: the same semantics, bindings and entry points as
// attention.wgsl, without workgroup memory or barriers. For software adapters (SwiftShader, lavapipe), which run
// a workgroup's invocations as fibers on a CPU core and pay for every barrier; on a GPU the per-invocation
// arrays below would spill, so GPUs use attention.wgsl. Needs HD ≤ 256.
// Write semantics: attentionForward: out, lse `=`. attentionBackwardQuery: dq `+=`, delta `=`.
// attentionBackwardKeyValue (after attentionBackwardQuery): dk, dv `+=`, summed over the query heads of a kv head.

const MAX_HD: u32 = 256u;

struct Params {
  T: u32,
  NH: u32,
  NKV: u32,
  HD: u32,
  window: u32,
  scale: f32,
  B: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (B, T, NH, HD)
@group(0) @binding(1) var<storage, read_write> lse: array<f32>; // (B, NH, T)
@group(0) @binding(2) var<storage, read> q: array<f32>; // (B, T, NH, HD)
@group(0) @binding(3) var<storage, read> k: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(4) var<storage, read> v: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(5) var<uniform> p: Params;

// Rows are numbered ((b · H + h) · T + t): consecutive invocations take consecutive positions of one head.
struct Row {
  b: u32,
  h: u32,
  t: u32,
}

fn row_of(i: u32, H: u32, T: u32) -> Row {
  return Row(i / (H * T), (i / T) % H, i % T);
}

fn first_visible(t: u32, window: u32) -> u32 {
  if (window == 0u || t + 1u <= window) { return 0u; }
  return t + 1u - window;
}

@compute @workgroup_size(WG)
fn attentionForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.B * p.NH * p.T) { return; }
  let r = row_of(i, p.NH, p.T);
  let g = r.h / (p.NH / p.NKV);
  let qo = ((r.b * p.T + r.t) * p.NH + r.h) * p.HD;
  var qv: array<f32, MAX_HD>;
  var acc: array<f32, MAX_HD>;
  for (var d = 0u; d < p.HD; d++) { qv[d] = q[qo + d]; }
  var m = NEG_LARGE;
  var l = 0.0;
  for (var j = first_visible(r.t, p.window); j <= r.t; j++) {
    let ko = ((r.b * p.T + j) * p.NKV + g) * p.HD;
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

@group(0) @binding(0) var<storage, read_write> dq: array<f32>; // (B, T, NH, HD)
@group(0) @binding(1) var<storage, read_write> delta: array<f32>; // (B, NH, T): Σ_d dout · out per row
@group(0) @binding(2) var<storage, read> dout: array<f32>; // (B, T, NH, HD)
@group(0) @binding(3) var<storage, read> out_b: array<f32>; // (B, T, NH, HD)
@group(0) @binding(4) var<storage, read> q_b: array<f32>; // (B, T, NH, HD)
@group(0) @binding(5) var<storage, read> k_b: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(6) var<storage, read> v_b: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(7) var<storage, read> lse_b: array<f32>; // (B, NH, T)
@group(0) @binding(8) var<uniform> pb: Params;

// dS_j = P_j (dout·v_j − Σ_d dout·out); dq = scale · Σ_j dS_j k_j.
@compute @workgroup_size(WG)
fn attentionBackwardQuery(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pb.B * pb.NH * pb.T) { return; }
  let r = row_of(i, pb.NH, pb.T);
  let g = r.h / (pb.NH / pb.NKV);
  let qo = ((r.b * pb.T + r.t) * pb.NH + r.h) * pb.HD;
  var D = 0.0;
  for (var d = 0u; d < pb.HD; d++) { D += dout[qo + d] * out_b[qo + d]; }
  delta[i] = D;
  let L = lse_b[i];
  var acc: array<f32, MAX_HD>;
  for (var j = first_visible(r.t, pb.window); j <= r.t; j++) {
    let ko = ((r.b * pb.T + j) * pb.NKV + g) * pb.HD;
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < pb.HD; d++) {
      s += q_b[qo + d] * k_b[ko + d];
      dp += dout[qo + d] * v_b[ko + d];
    }
    let ds = exp(s * pb.scale - L) * (dp - D);
    for (var d = 0u; d < pb.HD; d++) { acc[d] += ds * k_b[ko + d]; }
  }
  for (var d = 0u; d < pb.HD; d++) { dq[qo + d] += pb.scale * acc[d]; }
}

@group(0) @binding(0) var<storage, read_write> dk: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(1) var<storage, read_write> dv: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(2) var<storage, read> dout_c: array<f32>; // (B, T, NH, HD)
@group(0) @binding(3) var<storage, read> q_c: array<f32>; // (B, T, NH, HD)
@group(0) @binding(4) var<storage, read> k_c: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(5) var<storage, read> v_c: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(6) var<storage, read> lse_c: array<f32>; // (B, NH, T)
@group(0) @binding(7) var<storage, read> delta_c: array<f32>; // (B, NH, T)
@group(0) @binding(8) var<uniform> pc: Params;

// One invocation per key row j of kv head g: dv_j = Σ_{h in group, i} P_ij dout_i, dk_j = scale · Σ dS_ij q_i.
@compute @workgroup_size(WG)
fn attentionBackwardKeyValue(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pc.B * pc.NKV * pc.T) { return; }
  let r = row_of(i, pc.NKV, pc.T); // r.h is the kv head, r.t the key position
  let ko = ((r.b * pc.T + r.t) * pc.NKV + r.h) * pc.HD;
  var i_end = pc.T - 1u;
  if (pc.window != 0u) { i_end = min(i_end, r.t + pc.window - 1u); }
  let group = pc.NH / pc.NKV;
  var acc_k: array<f32, MAX_HD>;
  var acc_v: array<f32, MAX_HD>;
  for (var h = r.h * group; h < (r.h + 1u) * group; h++) {
    for (var qi = r.t; qi <= i_end; qi++) {
      let qo = ((r.b * pc.T + qi) * pc.NH + h) * pc.HD;
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < pc.HD; d++) {
        s += q_c[qo + d] * k_c[ko + d];
        dp += dout_c[qo + d] * v_c[ko + d];
      }
      let so = (r.b * pc.NH + h) * pc.T + qi;
      let pr = exp(s * pc.scale - lse_c[so]);
      let ds = pr * (dp - delta_c[so]);
      for (var d = 0u; d < pc.HD; d++) {
        acc_v[d] += pr * dout_c[qo + d];
        acc_k[d] += ds * q_c[qo + d];
      }
    }
  }
  for (var d = 0u; d < pc.HD; d++) {
    dk[ko + d] += pc.scale * acc_k[d];
    dv[ko + d] += acc_v[d];
  }
}
