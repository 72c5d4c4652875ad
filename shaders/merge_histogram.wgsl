// Merge, top-k selection: one radix pass of the k-th largest importance value.
// F ≥ 0, so its f32 bit patterns order like u32: the k-th largest is found 8 bits at a time, from the top,
// by histogramming the elements that share the digits already chosen (select.prefix) and picking the bin
// where the count from the top reaches k (mergeSelectDigit). Four passes give the exact bits.
// Write semantics: `histogram` `+=` (atomic; zeroed by mergeSelectDigit after it is read).

struct HistogramParams {
  n: u32,
  shift: u32, // 24, 16, 8, 0: the digit this pass counts
}

struct SelectState {
  prefix: u32, // digits chosen so far (bits above `shift`)
  remaining: u32, // rank still to find among elements sharing `prefix`
  threshold: u32, // the k-th largest value's bits, final after the last pass
  pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> histogram: array<atomic<u32>, 256>; // (256)
@group(0) @binding(1) var<storage, read> state: SelectState;
@group(0) @binding(2) var<storage, read> importance: array<u32>; // (n) f32 bits of F ≥ 0
@group(0) @binding(3) var<uniform> p: HistogramParams;

var<workgroup> bins: array<atomic<u32>, 256>;

@compute @workgroup_size(WG)
fn mergeHistogram(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  atomicStore(&bins[lid.x], 0u);
  workgroupBarrier();
  // Bits above this digit must equal the prefix; at shift 24 every element counts.
  let above = p.shift + 8u;
  let highMask = select(0u, 0xffffffffu << above, above < 32u);
  let want = state.prefix & highMask;
  for (var e = gid.x; e < p.n; e += nwg.x * WG) {
    let bits = importance[e];
    if ((bits & highMask) == want) {
      atomicAdd(&bins[(bits >> p.shift) & 255u], 1u);
    }
  }
  workgroupBarrier();
  let c = atomicLoad(&bins[lid.x]);
  if (c > 0u) {
    atomicAdd(&histogram[lid.x], c);
  }
}
