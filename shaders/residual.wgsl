// Residual connections. Write semantics: residualForward: out `=` a + b. residualBackward: da `+=` dout,
// db `+=` dout. accumulate: acc `+=` inp (in place; also the residual backward when one side is the stream itself).

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (B, T, C)
@group(0) @binding(1) var<storage, read> a: array<f32>; // (B, T, C)
@group(0) @binding(2) var<storage, read> b: array<f32>; // (B, T, C)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn residualForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  out[i] = a[i] + b[i];
}

@group(0) @binding(0) var<storage, read_write> da: array<f32>; // (B, T, C)
@group(0) @binding(1) var<storage, read_write> db: array<f32>; // (B, T, C)
@group(0) @binding(2) var<storage, read> dout: array<f32>; // (B, T, C)

@compute @workgroup_size(WG)
fn residualBackward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  let g = dout[i];
  da[i] += g;
  db[i] += g;
}

@group(0) @binding(0) var<storage, read_write> acc: array<f32>; // (n)
@group(0) @binding(1) var<storage, read> inp: array<f32>; // (n)
@group(0) @binding(2) var<uniform> pa: Params;

@compute @workgroup_size(WG)
fn accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pa.n) { return; }
  acc[i] += inp[i];
}
