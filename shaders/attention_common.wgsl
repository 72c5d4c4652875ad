// What every attention kernel shares (prepended to attention.wgsl, attention_rowwise.wgsl, attention_decode.wgsl):
// the parameters, one binding table for all entry points, and the index math of the layouts
//   q, out, dq, dout (B, T, NH, HD)   k, v, dk, dv (B, T, NKV, HD)   lse, delta (B, NH, T)
// (the q/k/v projections' layouts, so no permutes). Query head h reads key/value head h / (NH / NKV).
// Each entry point binds the declarations it uses: its two outputs at bindings 0 and 1, its inputs read-only.
// WGSL fixes a variable's access, so what the forward writes and the backward reads is declared twice: `lse`
// (written) and `lse_in` (read), and so on.

struct Params {
  T: u32, // positions per sequence (attentionDecode: rows of the KV cache)
  NH: u32,
  NKV: u32,
  HD: u32,
  window: u32, // sliding window: query t sees keys j with t − window < j ≤ t (0: every j ≤ t)
  scale: f32, // 1 / sqrt(HD)
  B: u32,
  pos: u32, // attentionDecode: the new token's position (it sees cache rows ≤ pos); 0 elsewhere
}

// Outputs, by entry point:      binding 0         binding 1
//   attentionForward            out =             lse =
//   attentionBackwardQuery      dq +=             delta = (Σ_d dout · out per row)
//   attentionBackwardKeyValue   dk +=             dv +=
//   attentionDecode             out =             scores = (scratch, (NH, T))
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read_write> lse: array<f32>;
@group(0) @binding(0) var<storage, read_write> dq: array<f32>;
@group(0) @binding(1) var<storage, read_write> delta: array<f32>;
@group(0) @binding(0) var<storage, read_write> dk: array<f32>;
@group(0) @binding(1) var<storage, read_write> dv: array<f32>;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;

// Inputs of every entry point (attentionDecode: k and v are the caches, rows 0..T).
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

// Inputs of the backward: the gradient of out, and what the forward (and attentionBackwardQuery) wrote.
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<storage, read> out_in: array<f32>; // attentionBackwardQuery
@group(0) @binding(9) var<storage, read> delta_in: array<f32>; // attentionBackwardKeyValue

// First element of query row (b, t, h) of q, out, dq, dout.
fn q_at(b: u32, t: u32, h: u32) -> u32 { return ((b * p.T + t) * p.NH + h) * p.HD; }
// First element of key row (b, t, g) of k, v, dk, dv.
fn kv_at(b: u32, t: u32, g: u32) -> u32 { return ((b * p.T + t) * p.NKV + g) * p.HD; }
// Element (b, h, t) of lse, delta (and of attentionDecode's scores, b = 0).
fn stat_at(b: u32, h: u32, t: u32) -> u32 { return (b * p.NH + h) * p.T + t; }
// The key/value head query head h reads.
fn kv_head(h: u32) -> u32 { return h / (p.NH / p.NKV); }
// The first key query t sees.
fn first_key(t: u32) -> u32 {
  if (p.window == 0u || t + 1u <= p.window) { return 0u; }
  return t + 1u - p.window;
}
// The last query that sees key j.
fn last_query(j: u32) -> u32 {
  if (p.window == 0u) { return p.T - 1u; }
  return min(p.T - 1u, j + p.window - 1u);
}
