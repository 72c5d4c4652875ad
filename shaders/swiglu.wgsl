// SwiGLU of the Llama MLP: out = silu(gate) ⊙ up, silu(z) = z · sigmoid(z).
// Write semantics: swigluForward: out `=`. swigluBackward: dgate, dup `+=`.

struct Params {
  n: u32, // B·T·I
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (B, T, I)
@group(0) @binding(1) var<storage, read> gate: array<f32>; // (B, T, I)
@group(0) @binding(2) var<storage, read> up: array<f32>; // (B, T, I)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn swigluForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid(g) * up[i];
}

@group(0) @binding(0) var<storage, read_write> dgate: array<f32>; // (B, T, I)
@group(0) @binding(1) var<storage, read_write> dup: array<f32>; // (B, T, I)
@group(0) @binding(2) var<storage, read> dout: array<f32>; // (B, T, I)
@group(0) @binding(3) var<storage, read> gate_b: array<f32>; // (B, T, I)
@group(0) @binding(4) var<storage, read> up_b: array<f32>; // (B, T, I)
@group(0) @binding(5) var<uniform> pb: Params;

@compute @workgroup_size(WG)
fn swigluBackward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pb.n) { return; }
  let g = gate_b[i];
  let s = sigmoid(g);
  let silu = g * s;
  dgate[i] += dout[i] * up_b[i] * (s + silu * (1.0 - s));
  dup[i] += dout[i] * silu;
}
