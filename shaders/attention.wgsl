// Causal grouped-query attention, softmax(q·kᵀ · scale + causal mask) · v, scale = 1/sqrt(HD), in f32.
// Query head h reads key/value head h / (NH / NKV). Optional sliding window: query t sees keys j with
// t − window < j ≤ t (window 0: all j ≤ t). Positions are 0..T−1 in every sequence.
// One workgroup of 64 invocations per row; keys (or queries) are visited 64 at a time with an online softmax, so
// nothing of size T×T is stored: the forward keeps the log-sum-exp of each row for the backward pass.
// Needs HD ≤ 256. Built with WG = 64 (the chunk width and the workgroup reductions of common.wgsl).
// Write semantics: attentionForward: out, lse `=`. attentionBackwardQuery: dq `+=`, delta `=`.
// attentionBackwardKeyValue (after attentionBackwardQuery): dk, dv `+=`, summed over the query heads of a kv head.

const CHUNK: u32 = 64u;
const MAX_HD: u32 = 256u;
const PER: u32 = 4u; // MAX_HD / CHUNK head dims per invocation

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

var<workgroup> row_a: array<f32, MAX_HD>; // the row this workgroup owns (q, or k)
var<workgroup> row_b: array<f32, MAX_HD>; // a second row (dout, or v)
var<workgroup> chunk_a: array<f32, CHUNK>; // per-key (per-query) weights of the current chunk
var<workgroup> chunk_b: array<f32, CHUNK>;

fn first_key(t: u32) -> u32 {
  if (p.window == 0u || t + 1u <= p.window) { return 0u; }
  return t + 1u - p.window;
}

fn q_at(b: u32, t: u32, h: u32) -> u32 { return ((b * p.T + t) * p.NH + h) * p.HD; }
fn kv_at(b: u32, t: u32, g: u32) -> u32 { return ((b * p.T + t) * p.NKV + g) * p.HD; }
fn stat_at(b: u32, h: u32, t: u32) -> u32 { return (b * p.NH + h) * p.T + t; }

@compute @workgroup_size(64)
fn attentionForward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let g = h / (p.NH / p.NKV);
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

@group(0) @binding(0) var<storage, read_write> dq: array<f32>; // (B, T, NH, HD)
@group(0) @binding(1) var<storage, read_write> delta: array<f32>; // (B, NH, T): Σ_d dout · out per row
@group(0) @binding(2) var<storage, read> dout: array<f32>; // (B, T, NH, HD)
@group(0) @binding(3) var<storage, read> out_b: array<f32>; // (B, T, NH, HD)
@group(0) @binding(4) var<storage, read> q_b: array<f32>; // (B, T, NH, HD)
@group(0) @binding(5) var<storage, read> k_b: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(6) var<storage, read> v_b: array<f32>; // (B, T, NKV, HD)
@group(0) @binding(7) var<storage, read> lse_b: array<f32>; // (B, NH, T)
@group(0) @binding(8) var<uniform> pb: Params;

// With P = softmax row, dP_j = dout·v_j, dS_j = P_j (dP_j − Σ_d dout·out): dq = scale · Σ_j dS_j k_j.
@compute @workgroup_size(64)
fn attentionBackwardQuery(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let g = h / (pb.NH / pb.NKV);
  let qo = ((b * pb.T + t) * pb.NH + h) * pb.HD;
  var part = 0.0;
  for (var d = li; d < pb.HD; d += CHUNK) {
    row_a[d] = q_b[qo + d];
    row_b[d] = dout[qo + d];
    part += dout[qo + d] * out_b[qo + d];
  }
  let D = workgroup_sum(li, part); // its barriers also publish row_a, row_b
  let so = (b * pb.NH + h) * pb.T + t;
  if (li == 0u) { delta[so] = D; }
  let L = lse_b[so];

  var acc: array<f32, PER>;
  var j_start = 0u;
  if (pb.window != 0u && t + 1u > pb.window) { j_start = t + 1u - pb.window; }
  for (var j0 = j_start; j0 <= t; j0 += CHUNK) {
    let j = j0 + li;
    var ds = 0.0;
    if (j <= t) {
      let ko = ((b * pb.T + j) * pb.NKV + g) * pb.HD;
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < pb.HD; d++) {
        s += row_a[d] * k_b[ko + d];
        dp += row_b[d] * v_b[ko + d];
      }
      ds = exp(s * pb.scale - L) * (dp - D);
    }
    chunk_a[li] = ds;
    workgroupBarrier();
    let n = min(CHUNK, t + 1u - j0);
    for (var r = 0u; r < PER; r++) {
      let d = li + r * CHUNK;
      if (d < pb.HD) {
        var sum = 0.0;
        for (var jj = 0u; jj < n; jj++) { sum += chunk_a[jj] * k_b[((b * pb.T + j0 + jj) * pb.NKV + g) * pb.HD + d]; }
        acc[r] += sum;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < PER; r++) {
    let d = li + r * CHUNK;
    if (d < pb.HD) { dq[qo + d] += pb.scale * acc[r]; }
  }
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

// One workgroup per key row j of kv head g: dv_j = Σ_{h in group, i} P_ij dout_i, dk_j = scale · Σ dS_ij q_i.
@compute @workgroup_size(64)
fn attentionBackwardKeyValue(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let j = wid.x;
  let g = wid.y;
  let b = wid.z;
  let ko = ((b * pc.T + j) * pc.NKV + g) * pc.HD;
  for (var d = li; d < pc.HD; d += CHUNK) {
    row_a[d] = k_c[ko + d];
    row_b[d] = v_c[ko + d];
  }
  workgroupBarrier();
  var i_end = pc.T - 1u; // the last query that sees key j
  if (pc.window != 0u) { i_end = min(i_end, j + pc.window - 1u); }
  let group = pc.NH / pc.NKV;
  var acc_k: array<f32, PER>;
  var acc_v: array<f32, PER>;
  for (var h = g * group; h < (g + 1u) * group; h++) {
    for (var i0 = j; i0 <= i_end; i0 += CHUNK) {
      let i = i0 + li;
      var pr = 0.0;
      var ds = 0.0;
      if (i <= i_end) {
        let qo = ((b * pc.T + i) * pc.NH + h) * pc.HD;
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < pc.HD; d++) {
          s += q_c[qo + d] * row_a[d];
          dp += dout_c[qo + d] * row_b[d];
        }
        let so = (b * pc.NH + h) * pc.T + i;
        pr = exp(s * pc.scale - lse_c[so]);
        ds = pr * (dp - delta_c[so]);
      }
      chunk_a[li] = pr;
      chunk_b[li] = ds;
      workgroupBarrier();
      let n = min(CHUNK, i_end + 1u - i0);
      for (var r = 0u; r < PER; r++) {
        let d = li + r * CHUNK;
        if (d < pc.HD) {
          var sk = 0.0;
          var sv = 0.0;
          for (var ii = 0u; ii < n; ii++) {
            let qo = ((b * pc.T + i0 + ii) * pc.NH + h) * pc.HD + d;
            sv += chunk_a[ii] * dout_c[qo];
            sk += chunk_b[ii] * q_c[qo];
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
    if (d < pc.HD) {
      dk[ko + d] += pc.scale * acc_k[r];
      dv[ko + d] += acc_v[r];
    }
  }
}
