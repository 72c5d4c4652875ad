// Rotary position embedding, Hugging Face rotate-half layout: out = inp · cos + rotate_half(inp) · sin with
// rotate_half([x1, x2]) = [−x2, x1] (x1, x2 the halves of a head). Position of (b, t) is t.
// q or k of H heads (NH or NKV). cos/sin tables (T, HD) come from the engine's ropeTables.
// Write semantics: ropeForward: out `=`. ropeBackward: dinp `+=`.

struct Params {
  n: u32, // B·T·H·HD
  T: u32,
  H: u32,
  HD: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>; // (B, T, H, HD)
@group(0) @binding(1) var<storage, read> inp: array<f32>; // (B, T, H, HD)
@group(0) @binding(2) var<storage, read> cos_t: array<f32>; // (T, HD)
@group(0) @binding(3) var<storage, read> sin_t: array<f32>; // (T, HD)
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn ropeForward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  let half = p.HD / 2u;
  let d = i % p.HD;
  let t = (i / (p.HD * p.H)) % p.T;
  var rotated: f32;
  if (d < half) { rotated = -inp[i + half]; } else { rotated = inp[i - half]; }
  out[i] = inp[i] * cos_t[t * p.HD + d] + rotated * sin_t[t * p.HD + d];
}

@group(0) @binding(0) var<storage, read_write> dinp: array<f32>; // (B, T, H, HD)
@group(0) @binding(1) var<storage, read> dout: array<f32>; // (B, T, H, HD)

// The transpose of the rotation: dinp[d] = dout[d]·cos[d] + (d < half ? dout[d+half]·sin[d+half] : −dout[d−half]·sin[d−half]).
@compute @workgroup_size(WG)
fn ropeBackward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  let half = p.HD / 2u;
  let d = i % p.HD;
  let row = (i / (p.HD * p.H)) % p.T * p.HD;
  var g = dout[i] * cos_t[row + d];
  if (d < half) { g += dout[i + half] * sin_t[row + d + half]; } else { g -= dout[i - half] * sin_t[row + d - half]; }
  dinp[i] += g;
}
