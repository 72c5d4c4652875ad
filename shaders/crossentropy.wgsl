// Next-token cross-entropy fused with the softmax over the vocabulary, with a loss mask.
// Position (b, t) predicts token ids[b, t+1] and counts iff t < T−1 and mask[b, t+1] == 1.
// stats = [mean loss over counted positions, count] (mean 0 when nothing counts).
// Write semantics: crossentropyForward: losses, lse `=`. crossentropyReduce: stats `=`.
// crossentropyBackward: dlogits `=` (softmax − onehot) · dloss / count, 0 on rows that do not count —
// overwritten, not accumulated: the logits have no other consumer, so the (B·T, V) buffer needs no zeroing.

struct Params {
  rows: u32, // B·T
  T: u32,
  V: u32,
  dloss: f32, // d(objective)/d(mean loss), 1 for plain training
}

@group(0) @binding(0) var<storage, read_write> losses: array<f32>; // (B, T)
@group(0) @binding(1) var<storage, read_write> lse: array<f32>; // (B, T)
@group(0) @binding(2) var<storage, read> logits: array<f32>; // (B, T, V)
@group(0) @binding(3) var<storage, read> ids: array<i32>; // (B, T)
@group(0) @binding(4) var<storage, read> mask: array<i32>; // (B, T)
@group(0) @binding(5) var<uniform> p: Params;

fn target_of(row: u32, T: u32) -> i32 {
  if (row % T == T - 1u || mask[row + 1u] != 1) { return -1; }
  return ids[row + 1u];
}

@compute @workgroup_size(WG)
fn crossentropyForward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.V;
  var m = NEG_LARGE;
  for (var c = li; c < p.V; c += WG) { m = max(m, logits[base + c]); }
  m = workgroup_max(li, m);
  var s = 0.0;
  for (var c = li; c < p.V; c += WG) { s += exp(logits[base + c] - m); }
  let l = m + log(workgroup_sum(li, s));
  if (li == 0u) {
    lse[row] = l;
    let tgt = target_of(row, p.T);
    var loss = 0.0;
    if (tgt >= 0 && u32(tgt) < p.V) { loss = l - logits[base + u32(tgt)]; }
    losses[row] = loss;
  }
}

@group(0) @binding(0) var<storage, read_write> stats: array<f32>; // (2): mean loss, count
@group(0) @binding(1) var<storage, read> losses_r: array<f32>; // (B, T)
@group(0) @binding(2) var<storage, read> mask_r: array<i32>; // (B, T)
@group(0) @binding(3) var<uniform> pr: Params;

// One workgroup: a fixed summation order, so the loss is the same run to run.
@compute @workgroup_size(WG)
fn crossentropyReduce(@builtin(local_invocation_index) li: u32) {
  var sum = 0.0;
  var count = 0.0;
  for (var row = li; row < pr.rows; row += WG) {
    if (row % pr.T != pr.T - 1u && mask_r[row + 1u] == 1) {
      sum += losses_r[row];
      count += 1.0;
    }
  }
  let total = workgroup_sum(li, sum);
  let n = workgroup_sum(li, count);
  if (li == 0u) {
    stats[0] = select(0.0, total / n, n > 0.0);
    stats[1] = n;
  }
}

@group(0) @binding(0) var<storage, read_write> dlogits: array<f32>; // (B, T, V)
@group(0) @binding(1) var<storage, read> logits_b: array<f32>; // (B, T, V)
@group(0) @binding(2) var<storage, read> lse_b: array<f32>; // (B, T)
@group(0) @binding(3) var<storage, read> stats_b: array<f32>; // (2)
@group(0) @binding(4) var<storage, read> ids_b: array<i32>; // (B, T)
@group(0) @binding(5) var<storage, read> mask_b: array<i32>; // (B, T)
@group(0) @binding(6) var<uniform> pb: Params;

// Grid: x covers the vocabulary in WG-wide slices, y·z the rows (folded when rows > 65535).
@compute @workgroup_size(WG)
fn crossentropyBackward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = wid.y + wid.z * nwg.y;
  let c = wid.x * WG + li;
  if (row >= pb.rows || c >= pb.V) { return; }
  let i = row * pb.V + c;
  var tgt = -1;
  if (row % pb.T != pb.T - 1u && mask_b[row + 1u] == 1) { tgt = ids_b[row + 1u]; }
  if (tgt < 0) {
    dlogits[i] = 0.0;
    return;
  }
  let prob = exp(logits_b[i] - lse_b[row]);
  dlogits[i] = (prob - select(0.0, 1.0, u32(tgt) == c)) * pb.dloss / stats_b[1];
}
