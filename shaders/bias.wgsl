// biasBackward: dbias (OC) += Σ_rows dout (N, OC). One invocation per output feature, walking the rows
// (consecutive invocations read consecutive columns).

struct Params {
  N: u32,
  OC: u32,
}

@group(0) @binding(0) var<storage, read_write> dbias: array<f32>; // (OC)
@group(0) @binding(1) var<storage, read> dout: array<f32>; // (N, OC)
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn biasBackward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = flat_invocation(gid, nwg, 64u);
  if (o >= p.OC) { return; }
  var sum = 0.0;
  for (var n = 0u; n < p.N; n++) {
    sum += dout[n * p.OC + o];
  }
  dbias[o] += sum;
}
