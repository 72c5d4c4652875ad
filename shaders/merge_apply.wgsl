// Merge, apply: add a pruned layer's weight into its receiver where it is important and sign-consistent.
//   merged += mask ⊙ donor,  mask = F_donor ≥ threshold (its top-k) AND receiver · donor > 0
// `receiver` is the receiver's ORIGINAL weight, so every donor is compared with the same signs.
// Write semantics: `merged` `+=`; `added[slot]` `+=` (atomic count of elements added).

struct ApplyParams {
  n: u32,
  slot: u32,
}

struct SelectState {
  prefix: u32,
  remaining: u32,
  threshold: u32,
  pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> merged: array<f32>; // (out, in)
@group(0) @binding(1) var<storage, read_write> added: array<atomic<u32>>; // (merges × modules)
@group(0) @binding(2) var<storage, read> receiver: array<f32>; // (out, in)
@group(0) @binding(3) var<storage, read> donor: array<f32>; // (out, in)
@group(0) @binding(4) var<storage, read> importance: array<f32>; // (out, in)
@group(0) @binding(5) var<storage, read> state: SelectState;
@group(0) @binding(6) var<uniform> p: ApplyParams;

var<workgroup> count: atomic<u32>;

@compute @workgroup_size(WG)
fn mergeApply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  if (lid.x == 0u) {
    atomicStore(&count, 0u);
  }
  workgroupBarrier();
  let threshold = bitcast<f32>(state.threshold);
  var mine = 0u;
  for (var e = gid.x; e < p.n; e += nwg.x * WG) {
    let w = donor[e];
    if (importance[e] >= threshold && receiver[e] * w > 0.0) {
      merged[e] += w;
      mine += 1u;
    }
  }
  atomicAdd(&count, mine);
  workgroupBarrier();
  if (lid.x == 0u) {
    atomicAdd(&added[p.slot], atomicLoad(&count));
  }
}
