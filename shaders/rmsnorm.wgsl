// RMSNorm over the last axis: out = weight ⊙ inp · rstd, rstd = 1 / sqrt(mean(inp²) + eps), one workgroup per row.
// rows = B·T (C = hidden size), or B·T·NH with C = head_dim for Qwen3's per-head q/k norm.
// Write semantics: rmsnormForward: out, rstd `=`. rmsnormBackward: dinp `+=`. rmsnormBackwardWeight: dweight `+=`.

struct Params {
  rows: u32,
  C: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (rows, C)
@group(0) @binding(1) var<storage, read_write> rstd: array<f32>; // (rows)
@group(0) @binding(2) var<storage, read> inp: array<f32>; // (rows, C)
@group(0) @binding(3) var<storage, read> weight: array<f32>; // (C)
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn rmsnormForward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = li; c < p.C; c += WG) {
    let x = inp[base + c];
    ss += x * x;
  }
  let r = 1.0 / sqrt(workgroup_sum(li, ss) / f32(p.C) + p.eps);
  if (li == 0u) { rstd[row] = r; }
  for (var c = li; c < p.C; c += WG) {
    out[base + c] = weight[c] * (inp[base + c] * r);
  }
}

@group(0) @binding(0) var<storage, read_write> dinp: array<f32>; // (rows, C)
@group(0) @binding(1) var<storage, read> dout: array<f32>; // (rows, C)
@group(0) @binding(2) var<storage, read> inp_b: array<f32>; // (rows, C)
@group(0) @binding(3) var<storage, read> weight_b: array<f32>; // (C)
@group(0) @binding(4) var<storage, read> rstd_b: array<f32>; // (rows)
@group(0) @binding(5) var<uniform> pb: Params;

// dinp = rstd · w ⊙ dout − inp · rstd³ / C · Σ (dout ⊙ w ⊙ inp)
@compute @workgroup_size(WG)
fn rmsnormBackward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= pb.rows) { return; }
  let base = row * pb.C;
  var dot = 0.0;
  for (var c = li; c < pb.C; c += WG) {
    dot += dout[base + c] * weight_b[c] * inp_b[base + c];
  }
  let total = workgroup_sum(li, dot);
  let r = rstd_b[row];
  let k = r * r * r * total / f32(pb.C);
  for (var c = li; c < pb.C; c += WG) {
    dinp[base + c] += r * weight_b[c] * dout[base + c] - inp_b[base + c] * k;
  }
}

@group(0) @binding(0) var<storage, read_write> dweight: array<f32>; // (C)
@group(0) @binding(1) var<storage, read> dout_w: array<f32>; // (rows, C)
@group(0) @binding(2) var<storage, read> inp_w: array<f32>; // (rows, C)
@group(0) @binding(3) var<storage, read> rstd_w: array<f32>; // (rows)
@group(0) @binding(4) var<uniform> pw: Params;

// dweight = Σ_rows dout ⊙ inp · rstd; one invocation per column, walking the rows.
@compute @workgroup_size(WG)
fn rmsnormBackwardWeight(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = flat_invocation(gid, nwg, WG);
  if (c >= pw.C) { return; }
  var sum = 0.0;
  for (var row = 0u; row < pw.rows; row++) {
    sum += dout_w[row * pw.C + c] * inp_w[row * pw.C + c] * rstd_w[row];
  }
  dweight[c] += sum;
}
