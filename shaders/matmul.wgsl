// matmul: c (M, N) = alpha · op(a) (M, K) · op(b) (K, N) + bias (N)      when accumulate == 0
//         c (M, N) += alpha · op(a) · op(b) + bias                         when accumulate == 1
// op(a) = a stored (M, K), or aᵀ of a stored (K, M) when TRANS_A; op(b) = b stored (K, N), or bᵀ of b stored
// (N, K) when TRANS_B. b is a weight of element type W (weights_f32.wgsl / weights_f16.wgsl, prepended), read as
// f32; everything else f32, accumulation f32. The TS entry points name the uses: linearForward (TRANS_B),
// linearBackward (dinp: plain; dweight: TRANS_A), loraForward / loraBackward.
// Tiling: a WG_X × WG_Y workgroup computes a (4·WG_Y) × (4·WG_X) tile of c, 4×4 per invocation, through 16-deep
// k slices of a and b staged in workgroup memory. Edges (M, N, K not multiples of the tile) load zeros and skip
// stores. WG_X = WG_Y = 16 suits GPUs; software adapters, where barriers are costly, prefer 8.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;

const TILE_K: u32 = 16u;
override TILE_M: u32 = 4u * WG_Y;
override TILE_N: u32 = 4u * WG_X;
override THREADS: u32 = WG_X * WG_Y;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  accumulate: u32,
  alpha: f32,
  has_bias: u32,
}

@group(0) @binding(0) var<storage, read_write> c: array<f32>; // (M, N)
@group(0) @binding(1) var<storage, read> a: array<f32>; // (M, K), or (K, M) when TRANS_A
@group(0) @binding(2) var<storage, read> b: array<W>; // (K, N), or (N, K) when TRANS_B
@group(0) @binding(3) var<storage, read> bias: array<f32>; // (N), read when has_bias == 1
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> a_tile: array<vec4f, TILE_K * WG_Y>; // [k][m / 4]: TILE_K × TILE_M
var<workgroup> b_tile: array<vec4f, TILE_K * WG_X>; // [k][n / 4]: TILE_K × TILE_N

fn load_a(m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  if (TRANS_A) { return a[k * p.M + m]; }
  return a[m * p.K + k];
}

fn load_b(k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  if (TRANS_B) { return f32(b[n * p.K + k]); }
  return f32(b[k * p.N + n]);
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * TILE_M;
  let n0 = wid.x * TILE_N;
  var acc: array<vec4f, 4>; // rows lid.y*4 + i, columns lid.x*4 .. +3

  for (var k0 = 0u; k0 < p.K; k0 += TILE_K) {
    // Each invocation stages its share of each tile; consecutive invocations walk the stored-contiguous axis.
    for (var idx = li; idx < TILE_M * TILE_K; idx += THREADS) {
      var mm: u32;
      var ka: u32;
      if (TRANS_A) { ka = idx / TILE_M; mm = idx % TILE_M; } else { mm = idx / TILE_K; ka = idx % TILE_K; }
      a_tile[ka * WG_Y + mm / 4u][mm % 4u] = load_a(m0 + mm, k0 + ka);
    }
    for (var idx = li; idx < TILE_N * TILE_K; idx += THREADS) {
      var nn: u32;
      var kb: u32;
      if (TRANS_B) { nn = idx / TILE_K; kb = idx % TILE_K; } else { kb = idx / TILE_N; nn = idx % TILE_N; }
      b_tile[kb * WG_X + nn / 4u][nn % 4u] = load_b(k0 + kb, n0 + nn);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let av = a_tile[kk * WG_Y + lid.y];
      let bv = b_tile[kk * WG_X + lid.x];
      acc[0] += av.x * bv;
      acc[1] += av.y * bv;
      acc[2] += av.z * bv;
      acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (n >= p.N) { break; }
      var v = p.alpha * acc[i][j];
      if (p.has_bias == 1u) { v += bias[n]; }
      if (p.accumulate == 1u) { v += c[m * p.N + n]; }
      c[m * p.N + n] = v;
    }
  }
}
