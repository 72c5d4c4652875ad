// AdamW with PyTorch semantics (decoupled weight decay; step t from 1; bias corrections from the host):
//   param ← param·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//   param ← param − (lr / (1−β1^t)) · m / (sqrt(v) / sqrt(1−β2^t) + eps)
// Write semantics: param, m, v updated in place (`=`); grad read only.

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bias_correction1: f32, // 1 − β1^t
  bias_correction2_sqrt: f32, // sqrt(1 − β2^t)
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>; // (n)
@group(0) @binding(1) var<storage, read_write> m: array<f32>; // (n)
@group(0) @binding(2) var<storage, read_write> v: array<f32>; // (n)
@group(0) @binding(3) var<storage, read> grad: array<f32>; // (n)
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= p.n) { return; }
  let g = grad[i];
  let w = param[i] * (1.0 - p.lr * p.weight_decay);
  let mi = m[i] + (g - m[i]) * (1.0 - p.beta1); // torch: exp_avg.lerp_(grad, 1 − β1)
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / p.bias_correction2_sqrt + p.eps;
  param[i] = w - (p.lr / p.bias_correction1) * (mi / denom);
}
