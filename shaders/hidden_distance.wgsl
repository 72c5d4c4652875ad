// Hidden-state distances for Block Influence and angular distance (gathered by the hidden-state collector of the engine), in two steps per pass:
//   hiddenDistanceForward     one workgroup per position (b, t) of two (B, T, C) residual-stream states h_a, h_b:
//                             measure 0: d = 1 − cos(h_a, h_b); measure 1: d = arccos(cos(h_a, h_b)) / π;
//                             cos = a·b / max(‖a‖‖b‖, 1e-8) (torch's cosine_similarity). Only at positions the loss
//                             counts (t < T−1 and mask[b, t+1] == 1: the position predicts a target token), else 0.
//   hiddenDistanceAccumulate  one workgroup per pair slot: sums[slot] += Σ_rows dist[slot, row]; workgroup `slots`
//                             adds the pass's counted positions to sums[slots] and 1 to sums[slots + 1] (passes).
// Write semantics: dist `=` (this pass); sums `+=` (accumulated over a run's forward passes).
// Shapes: N = B·T rows, C hidden, P pair slots.

struct ForwardParams {
  N: u32,
  T: u32,
  C: u32,
  slot: u32, // this pair's row of dist
  measure: u32, // 0: 1 − cos, 1: arccos(cos) / π
}

const PI: f32 = 3.14159265358979;

@group(0) @binding(0) var<storage, read_write> dist: array<f32>; // (P, N)
@group(0) @binding(1) var<storage, read> h_a: array<f32>; // (B, T, C)
@group(0) @binding(2) var<storage, read> h_b: array<f32>; // (B, T, C)
@group(0) @binding(3) var<storage, read> mask: array<i32>; // (B, T)
@group(0) @binding(4) var<uniform> pf: ForwardParams;

@compute @workgroup_size(WG)
fn hiddenDistanceForward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= pf.N) { return; } // whole workgroups leave together: the barriers below stay uniform
  var dot = 0.0;
  var na = 0.0;
  var nb = 0.0;
  let base = row * pf.C;
  for (var c = li; c < pf.C; c += WG) {
    let a = h_a[base + c];
    let b = h_b[base + c];
    dot += a * b;
    na += a * a;
    nb += b * b;
  }
  dot = workgroup_sum(li, dot);
  na = workgroup_sum(li, na);
  nb = workgroup_sum(li, nb);
  if (li != 0u) { return; }
  var d = 0.0;
  if (row % pf.T != pf.T - 1u && mask[row + 1u] == 1) {
    let cosine = clamp(dot / max(sqrt(na) * sqrt(nb), 1e-8), -1.0, 1.0);
    d = select(1.0 - cosine, acos(cosine) / PI, pf.measure == 1u);
  }
  dist[pf.slot * pf.N + row] = d;
}

struct AccumulateParams {
  N: u32,
  T: u32,
  slots: u32,
}

@group(0) @binding(0) var<storage, read_write> sums: array<f32>; // (P + 2): per-pair sums, counted positions, passes
@group(0) @binding(1) var<storage, read> dist_a: array<f32>; // (P, N)
@group(0) @binding(2) var<storage, read> mask_a: array<i32>; // (B, T)
@group(0) @binding(3) var<uniform> pa: AccumulateParams;

@compute @workgroup_size(WG)
fn hiddenDistanceAccumulate(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let slot = wid.x;
  var s = 0.0;
  for (var row = li; row < pa.N; row += WG) {
    if (slot < pa.slots) {
      s += dist_a[slot * pa.N + row];
    } else if (row % pa.T != pa.T - 1u && mask_a[row + 1u] == 1) {
      s += 1.0;
    }
  }
  let total = workgroup_sum(li, s);
  if (li == 0u) {
    sums[slot] += total;
    if (slot == pa.slots) { sums[slot + 1u] += 1.0; }
  }
}
