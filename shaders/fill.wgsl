// Buffer utilities. Write semantics: fill: out `=` value (zeroing gradients before a backward pass).
// copy: out `=` inp.

struct Params {
  n: u32,
  value: f32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (n)
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  out[i] = p.value;
}

@group(0) @binding(0) var<storage, read_write> dst: array<f32>; // (n)
@group(0) @binding(1) var<storage, read> src: array<f32>; // (n)
@group(0) @binding(2) var<uniform> pc: Params;

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pc.n) { return; }
  dst[i] = src[i];
}
