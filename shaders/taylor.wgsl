// Taylor importance of frozen linear weights (LLM-Pruner's param_first / param_second / param_mix), from the
// gradients the backward pass accumulates for them. W (element type W: weights_f32.wgsl / weights_f16.wgsl,
// prepended) is a linear weight [OC, IC]; g its gradient of one batch; first / second the sums over batches of g and g².
//
// taylorAccumulate (one invocation per element):  first += g;  second += g ⊙ g           (write semantics `+=`)
// taylorRowSums    (one workgroup per row o):     sums[k, o] = Σ_i salience_k(o, i)    (write semantics `=`)
// taylorColumnSums (one invocation per column i): sums[k, i] = Σ_o salience_k(o, i)    (write semantics `=`)
// with G = first_scale · first (the mean gradient), Fisher = second_scale · second (the mean squared gradient) and
//   k = 0: |W · G|                  (param_first)
//   k = 1: |W · Fisher · W|         (param_second; LLM-Pruner's W·acc_grad·W, ≥ 0)
//   k = 2: |W · G − ½ W · Fisher · W| (param_mix)
// When has_second == 0 the `second` binding is unused and k = 1, 2 are |0| and |W · G|.

struct AccumulateParams {
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> acc_first: array<f32>; // (n)
@group(0) @binding(1) var<storage, read_write> acc_second: array<f32>; // (n)
@group(0) @binding(2) var<storage, read> grad: array<f32>; // (n): one batch's gradient
@group(0) @binding(3) var<uniform> pa: AccumulateParams;

@compute @workgroup_size(WG)
fn taylorAccumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pa.n) { return; }
  let g = grad[i];
  acc_first[i] += g;
  acc_second[i] += g * g;
}

struct SumParams {
  OC: u32,
  IC: u32,
  first_scale: f32,
  second_scale: f32,
  has_second: u32,
}

@group(0) @binding(0) var<storage, read_write> sums: array<f32>; // (3, OC) rows or (3, IC) columns
@group(0) @binding(1) var<storage, read> weight: array<W>; // (OC, IC)
@group(0) @binding(2) var<storage, read> first: array<f32>; // (OC, IC)
@group(0) @binding(3) var<storage, read> second: array<f32>; // (OC, IC), read when has_second == 1
@group(0) @binding(4) var<uniform> ps: SumParams;

/** The three saliences of element e. */
fn salience(e: u32) -> vec3f {
  let w = f32(weight[e]);
  let wg = w * first[e] * ps.first_scale;
  var wfw = 0.0;
  if (ps.has_second == 1u) { wfw = w * second[e] * ps.second_scale * w; }
  return vec3f(abs(wg), abs(wfw), abs(wg - 0.5 * wfw));
}

@compute @workgroup_size(WG)
fn taylorRowSums(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let o = flat_workgroup(wid, nwg);
  if (o >= ps.OC) { return; } // uniform per workgroup: the barriers below stay in uniform control flow
  var s = vec3f(0.0);
  for (var i = li; i < ps.IC; i += WG) {
    s += salience(o * ps.IC + i);
  }
  let s0 = workgroup_sum(li, s.x);
  let s1 = workgroup_sum(li, s.y);
  let s2 = workgroup_sum(li, s.z);
  if (li == 0u) {
    sums[o] = s0;
    sums[ps.OC + o] = s1;
    sums[2u * ps.OC + o] = s2;
  }
}

@compute @workgroup_size(WG)
fn taylorColumnSums(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= ps.IC) { return; }
  var s = vec3f(0.0);
  for (var o = 0u; o < ps.OC; o++) {
    s += salience(o * ps.IC + i);
  }
  sums[i] = s.x;
  sums[ps.IC + i] = s.y;
  sums[2u * ps.IC + i] = s.z;
}
