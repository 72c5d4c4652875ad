// IGIA, step 2 of 2: per-module scores of this step from the Gram matrices, and their running sums.
// Write semantics: `stepScore` `=` (this step's ‖S‖²_F per module); `sums` `+=` (accumulated over steps).
//   sums[0, m] += ‖S_m‖²_F   (the paper's F summed over elements, before dividing by the step count t)
//   sums[1, m] += ‖S_m‖_F    (the score the authors' released script prints)
// One thread per module slot.

struct ScoreParams {
  rank: u32,
  modules: u32,
}

@group(0) @binding(0) var<storage, read_write> sums: array<f32>; // (2, modules)
@group(0) @binding(1) var<storage, read_write> stepScore: array<f32>; // (modules)
@group(0) @binding(2) var<storage, read> gram: array<f32>; // (modules, 2, r, r)
@group(0) @binding(3) var<uniform> p: ScoreParams;

@compute @workgroup_size(64)
fn igiaScore(@builtin(global_invocation_id) gid: vec3<u32>) {
  let m = gid.x;
  if (m >= p.modules) {
    return;
  }
  let rr = p.rank * p.rank;
  let ga = m * 2u * rr;
  let gb = ga + rr;
  var sq = 0.0;
  for (var e = 0u; e < rr; e++) {
    sq += gram[ga + e] * gram[gb + e];
  }
  // tr(GA·GB) ≥ 0 exactly; only rounding can make it negative.
  sq = max(sq, 0.0);
  stepScore[m] = sq;
  sums[m] += sq;
  sums[p.modules + m] += sqrt(sq);
}
