// Helpers shared by kernels (prepended to a kernel file's source; f16 kernels, which must begin with
// `enable f16;`, carry their own copies).

// Large grids are dispatched as 2-D (x ≤ 65535 workgroups per dimension): flatten them back.
fn flat_workgroup(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

fn flat_invocation(gid: vec3u, nwg: vec3u, wg_size: u32) -> u32 {
  return gid.x + gid.y * nwg.x * wg_size;
}

fn sigmoid(z: f32) -> f32 {
  return 1.0 / (1.0 + exp(-z));
}

// Stands in for -inf (WGSL has no infinity literal); exp(NEG_LARGE - finite) is exactly 0.
const NEG_LARGE: f32 = -3.0e38;

// Workgroup size of the kernels built on these helpers (a power of two; set per pipeline).
override WG: u32 = 256u;

var<workgroup> wg_scratch: array<f32, WG>;

// Sum / max of one value per invocation over the workgroup; every invocation gets the result.
// Call from uniform control flow (they contain barriers).
fn workgroup_sum(li: u32, v: f32) -> f32 {
  wg_scratch[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { wg_scratch[li] += wg_scratch[li + s]; }
    workgroupBarrier();
  }
  let r = wg_scratch[0];
  workgroupBarrier();
  return r;
}

fn workgroup_max(li: u32, v: f32) -> f32 {
  wg_scratch[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { wg_scratch[li] = max(wg_scratch[li], wg_scratch[li + s]); }
    workgroupBarrier();
  }
  let r = wg_scratch[0];
  workgroupBarrier();
  return r;
}
