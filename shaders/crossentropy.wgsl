// Next-token cross-entropy fused with the softmax over the vocabulary, with a loss mask.
// Position (b, t) predicts token ids[b, t+1] and counts iff t < T−1 and mask[b, t+1] == 1.
// stats = [mean loss over counted positions, count] (mean 0 when nothing counts).
// Write semantics: crossentropyForward: losses, lse `=`. crossentropyReduce: stats `=`.
// crossentropyBackward: dlogits `=` (softmax − onehot) · dloss / count, 0 on rows that do not count —
// overwritten, not accumulated: the logits have no other consumer, so the (B·T, V) buffer needs no zeroing.
//
// Chunked (the engine's loss head for a large vocabulary): the logits are never whole. For a chunk of
// R rows [r0, r0 + R) and a vocabulary part [v0, v0 + Vp), a matmul writes the logits chunk (R, Vp); then
// crossentropyChunkForward folds it into each row's running (max, sum of exp) — an online log-sum-exp across the
// parts — and picks the target logit when the target falls in the part; after the last part crossentropyChunkFinish
// writes lse and losses of the chunk's rows; crossentropyReduce (above) gives stats once all chunks are done.
// Row i of a chunk is global row r0 + i: ids, mask, lse, losses are bound whole (B, T) and indexed globally.
// crossentropyChunkBackward writes dlogits of one (chunk, part) from the recomputed logits chunk.
// Write semantics: crossentropyChunkForward: state `=` on the first part, updated in place (folded) after.
// crossentropyChunkFinish: lse, losses `=` on rows [r0, r0 + R). crossentropyChunkBackward: dlogits `=`
// (0 on rows that do not count).

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

struct ChunkParams {
  rows: u32, // R: rows in this chunk (the last chunk may be short)
  r0: u32, // global row of the chunk's row 0
  T: u32,
  V: u32, // whole vocabulary
  Vp: u32, // columns of this part
  v0: u32, // first vocabulary id of this part
  first: u32, // 1 for a chunk's first part: state is written, not folded
  dloss: f32,
}

@group(0) @binding(0) var<storage, read_write> state: array<f32>; // (R, 3): running max, running Σ exp(x − max), target logit
@group(0) @binding(1) var<storage, read> logits_c: array<f32>; // (R, Vp): the logits chunk
@group(0) @binding(2) var<storage, read> ids_c: array<i32>; // (B, T)
@group(0) @binding(3) var<storage, read> mask_c: array<i32>; // (B, T)
@group(0) @binding(4) var<uniform> pc: ChunkParams;

fn chunk_target(row: u32) -> i32 {
  if (row % pc.T == pc.T - 1u || mask_c[row + 1u] != 1) { return -1; }
  return ids_c[row + 1u];
}

// A workgroup per row of the chunk (grid folded to 2-D when R > 65535).
@compute @workgroup_size(WG)
fn crossentropyChunkForward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = flat_workgroup(wid, nwg);
  if (i >= pc.rows) { return; }
  let base = i * pc.Vp;
  var m = NEG_LARGE;
  for (var c = li; c < pc.Vp; c += WG) { m = max(m, logits_c[base + c]); }
  m = workgroup_max(li, m);
  var s = 0.0;
  for (var c = li; c < pc.Vp; c += WG) { s += exp(logits_c[base + c] - m); }
  s = workgroup_sum(li, s);
  if (li == 0u) {
    let tgt = chunk_target(pc.r0 + i);
    let hit = tgt >= 0 && u32(tgt) >= pc.v0 && u32(tgt) < pc.v0 + pc.Vp;
    if (pc.first == 1u) {
      state[3u * i] = m;
      state[3u * i + 1u] = s;
      state[3u * i + 2u] = 0.0;
    } else {
      let m_old = state[3u * i];
      let m_new = max(m_old, m);
      state[3u * i] = m_new;
      state[3u * i + 1u] = state[3u * i + 1u] * exp(m_old - m_new) + s * exp(m - m_new);
    }
    if (hit) { state[3u * i + 2u] = logits_c[base + u32(tgt) - pc.v0]; }
  }
}

@group(0) @binding(0) var<storage, read_write> losses_f: array<f32>; // (B, T)
@group(0) @binding(1) var<storage, read_write> lse_f: array<f32>; // (B, T)
@group(0) @binding(2) var<storage, read> state_f: array<f32>; // (R, 3)
@group(0) @binding(3) var<storage, read> ids_f: array<i32>; // (B, T)
@group(0) @binding(4) var<storage, read> mask_f: array<i32>; // (B, T)
@group(0) @binding(5) var<uniform> pf: ChunkParams;

// An invocation per row of the chunk.
@compute @workgroup_size(WG)
fn crossentropyChunkFinish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_invocation(gid, nwg, WG);
  if (i >= pf.rows) { return; }
  let row = pf.r0 + i;
  let l = state_f[3u * i] + log(state_f[3u * i + 1u]);
  lse_f[row] = l;
  var tgt = -1;
  if (row % pf.T != pf.T - 1u && mask_f[row + 1u] == 1) { tgt = ids_f[row + 1u]; }
  var loss = 0.0;
  if (tgt >= 0 && u32(tgt) < pf.V) { loss = l - state_f[3u * i + 2u]; }
  losses_f[row] = loss;
}

@group(0) @binding(0) var<storage, read_write> dlogits_cb: array<f32>; // (R, Vp): the dlogits chunk
@group(0) @binding(1) var<storage, read> logits_cb: array<f32>; // (R, Vp): the recomputed logits chunk
@group(0) @binding(2) var<storage, read> lse_cb: array<f32>; // (B, T)
@group(0) @binding(3) var<storage, read> stats_cb: array<f32>; // (2)
@group(0) @binding(4) var<storage, read> ids_cb: array<i32>; // (B, T)
@group(0) @binding(5) var<storage, read> mask_cb: array<i32>; // (B, T)
@group(0) @binding(6) var<uniform> pcb: ChunkParams;

// Grid: x covers the part's columns in WG-wide slices, y·z the chunk's rows.
@compute @workgroup_size(WG)
fn crossentropyChunkBackward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = wid.y + wid.z * nwg.y;
  let c = wid.x * WG + li;
  if (i >= pcb.rows || c >= pcb.Vp) { return; }
  let row = pcb.r0 + i;
  let k = i * pcb.Vp + c;
  var tgt = -1;
  if (row % pcb.T != pcb.T - 1u && mask_cb[row + 1u] == 1) { tgt = ids_cb[row + 1u]; }
  if (tgt < 0) {
    dlogits_cb[k] = 0.0;
    return;
  }
  let prob = exp(logits_cb[k] - lse_cb[row]);
  dlogits_cb[k] = (prob - select(0.0, 1.0, u32(tgt) == pcb.v0 + c)) * pcb.dloss / stats_cb[1];
}
