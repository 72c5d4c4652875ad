// CPU references of every kernel, in float64, written for clarity: the tests check the GPU kernels against these
// and these against finite differences. Layouts and semantics are the kernels' (see index.ts); each function
// returns fresh arrays (the gradient itself, which a `+=` kernel adds to what its buffer held).

import type { AttentionShape } from './attention';
import type { AdamWHyper } from './optimizer';

type Arr = ArrayLike<number>;
const zeros = (n: number) => new Float64Array(n);

/** c (M, N) = alpha · op(a) · op(b); a (M, K) or (K, M) when transA; b (K, N) or (N, K) when transB. */
export function matmulCpu(a: Arr, b: Arr, M: number, N: number, K: number, transA = false, transB = false, alpha = 1): Float64Array {
  const c = zeros(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + m] : a[m * K + k]) * (transB ? b[n * K + k] : b[k * N + n]);
      c[m * N + n] = alpha * s;
    }
  }
  return c;
}

/** out (N, OC) = inp (N, IC) · w (OC, IC)ᵀ + bias */
export function linearForwardCpu(inp: Arr, w: Arr, bias: Arr | null, N: number, IC: number, OC: number): Float64Array {
  const out = matmulCpu(inp, w, N, OC, IC, false, true);
  if (bias) for (let n = 0; n < N; n++) for (let o = 0; o < OC; o++) out[n * OC + o] += bias[o];
  return out;
}

export function linearBackwardCpu(dout: Arr, inp: Arr, w: Arr, N: number, IC: number, OC: number) {
  const dbias = zeros(OC);
  for (let n = 0; n < N; n++) for (let o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
  return { dinp: matmulCpu(dout, w, N, IC, OC), dweight: matmulCpu(dout, inp, OC, IC, N, true), dbias };
}

/** LoRA: h = inp·Aᵀ (N, r); out = scale · h · Bᵀ (N, OC) (the addition to the base output) */
export function loraForwardCpu(inp: Arr, A: Arr, B: Arr, N: number, IC: number, OC: number, r: number, scale: number) {
  const h = matmulCpu(inp, A, N, r, IC, false, true);
  return { h, out: matmulCpu(h, B, N, OC, r, false, true, scale) };
}

export function loraBackwardCpu(dout: Arr, inp: Arr, A: Arr, B: Arr, N: number, IC: number, OC: number, r: number, scale: number) {
  const h = matmulCpu(inp, A, N, r, IC, false, true);
  const dB = matmulCpu(dout, h, OC, r, N, true, false, scale);
  const dh = matmulCpu(dout, B, N, r, OC, false, false, scale);
  return { dA: matmulCpu(dh, inp, r, IC, N, true), dB, dh, dinp: matmulCpu(dh, A, N, IC, r) };
}

export function embeddingForwardCpu(ids: Arr, wte: Arr, V: number, C: number): Float64Array {
  const out = zeros(ids.length * C);
  for (let n = 0; n < ids.length; n++) {
    const id = ids[n];
    if (id >= 0 && id < V) for (let c = 0; c < C; c++) out[n * C + c] = wte[id * C + c];
  }
  return out;
}

export function rmsnormForwardCpu(inp: Arr, w: Arr, rows: number, C: number, eps: number) {
  const out = zeros(rows * C);
  const rstd = zeros(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[r * C + c] ** 2;
    rstd[r] = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) out[r * C + c] = w[c] * inp[r * C + c] * rstd[r];
  }
  return { out, rstd };
}

export function rmsnormBackwardCpu(dout: Arr, inp: Arr, w: Arr, rows: number, C: number, eps: number) {
  const { rstd } = rmsnormForwardCpu(inp, w, rows, C, eps);
  const dinp = zeros(rows * C);
  const dweight = zeros(C);
  for (let r = 0; r < rows; r++) {
    const s = rstd[r];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dout[r * C + c] * w[c] * inp[r * C + c];
    for (let c = 0; c < C; c++) {
      dinp[r * C + c] = s * w[c] * dout[r * C + c] - ((inp[r * C + c] * s ** 3) / C) * dot;
      dweight[c] += dout[r * C + c] * inp[r * C + c] * s;
    }
  }
  return { dinp, dweight, rstd };
}

/** x (B, T, H, HD) rotated by the (T, HD) tables, rotate-half layout. */
export function ropeForwardCpu(x: Arr, cos: Arr, sin: Arr, T: number, H: number, HD: number): Float64Array {
  const out = zeros(x.length);
  const half = HD / 2;
  for (let i = 0; i < x.length; i += HD) {
    const t = Math.floor(i / (HD * H)) % T;
    for (let d = 0; d < HD; d++) {
      const rotated = d < half ? -x[i + d + half] : x[i + d - half];
      out[i + d] = x[i + d] * cos[t * HD + d] + rotated * sin[t * HD + d];
    }
  }
  return out;
}

/** The rotation is linear: its gradient is the transpose, i.e. rotation by −angle with the same tables. */
export function ropeBackwardCpu(dout: Arr, cos: Arr, sin: Arr, T: number, H: number, HD: number): Float64Array {
  const negSin = Array.from(sin, (s) => -s);
  return ropeForwardCpu(dout, cos, negSin, T, H, HD);
}


const visible = (s: AttentionShape, i: number, j: number) => j <= i && (!s.window || i - j < s.window);

/** Probabilities P (B, NH, T, T) of causal GQA attention, the plain way. */
function attentionProbs(q: Arr, k: Arr, s: AttentionShape): Float64Array {
  const { B, T, NH, NKV, HD } = s;
  const P = zeros(B * NH * T * T);
  const scale = 1 / Math.sqrt(HD);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++) {
        const row = ((b * NH + h) * T + i) * T;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          if (!visible(s, i, j)) continue;
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += q[((b * T + i) * NH + h) * HD + d] * k[((b * T + j) * NKV + g) * HD + d];
          P[row + j] = dot * scale;
          max = Math.max(max, P[row + j]);
        }
        let sum = 0;
        for (let j = 0; j < T; j++) if (visible(s, i, j)) sum += P[row + j] = Math.exp(P[row + j] - max);
        for (let j = 0; j < T; j++) P[row + j] = visible(s, i, j) ? P[row + j] / sum : 0;
      }
    }
  }
  return P;
}

export function attentionForwardCpu(q: Arr, k: Arr, v: Arr, s: AttentionShape) {
  const { B, T, NH, NKV, HD } = s;
  const P = attentionProbs(q, k, s);
  const out = zeros(B * T * NH * HD);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++)
        for (let j = 0; j < T; j++) {
          const p = P[((b * NH + h) * T + i) * T + j];
          if (p === 0) continue;
          for (let d = 0; d < HD; d++) out[((b * T + i) * NH + h) * HD + d] += p * v[((b * T + j) * NKV + g) * HD + d];
        }
    }
  return { out, P };
}

export function attentionBackwardCpu(dout: Arr, q: Arr, k: Arr, v: Arr, s: AttentionShape) {
  const { B, T, NH, NKV, HD } = s;
  const P = attentionProbs(q, k, s);
  const scale = 1 / Math.sqrt(HD);
  const dq = zeros(q.length);
  const dk = zeros(k.length);
  const dv = zeros(v.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const g = Math.floor(h / (NH / NKV));
      for (let i = 0; i < T; i++) {
        const qi = ((b * T + i) * NH + h) * HD;
        const row = ((b * NH + h) * T + i) * T;
        const dP = zeros(T);
        let dot = 0;
        for (let j = 0; j < T; j++) {
          const kj = ((b * T + j) * NKV + g) * HD;
          for (let d = 0; d < HD; d++) {
            dP[j] += dout[qi + d] * v[kj + d];
            dv[kj + d] += P[row + j] * dout[qi + d];
          }
          dot += P[row + j] * dP[j];
        }
        for (let j = 0; j < T; j++) {
          const dS = P[row + j] * (dP[j] - dot) * scale;
          const kj = ((b * T + j) * NKV + g) * HD;
          for (let d = 0; d < HD; d++) {
            dq[qi + d] += dS * k[kj + d];
            dk[kj + d] += dS * q[qi + d];
          }
        }
      }
    }
  return { dq, dk, dv };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export function swigluForwardCpu(gate: Arr, up: Arr): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}

export function swigluBackwardCpu(dout: Arr, gate: Arr, up: Arr) {
  const dgate = zeros(gate.length);
  const dup = zeros(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const s = sigmoid(gate[i]);
    dgate[i] = dout[i] * up[i] * s * (1 + gate[i] * (1 - s));
    dup[i] = dout[i] * gate[i] * s;
  }
  return { dgate, dup };
}

/** Next-token cross-entropy with the fixtures' loss mask rule; dlogits of the mean loss. */
export function crossentropyCpu(logits: Arr, ids: Arr, mask: Arr, B: number, T: number, V: number) {
  const losses = zeros(B * T);
  const dlogits = zeros(B * T * V);
  let count = 0;
  let sum = 0;
  const counted = (row: number) => row % T !== T - 1 && mask[row + 1] === 1;
  for (let row = 0; row < B * T; row++) {
    if (!counted(row)) continue;
    let max = -Infinity;
    for (let c = 0; c < V; c++) max = Math.max(max, logits[row * V + c]);
    let z = 0;
    for (let c = 0; c < V; c++) z += Math.exp(logits[row * V + c] - max);
    const lse = max + Math.log(z);
    losses[row] = lse - logits[row * V + ids[row + 1]];
    sum += losses[row];
    count++;
  }
  for (let row = 0; row < B * T; row++) {
    if (!counted(row)) continue;
    const lse = logits[row * V + ids[row + 1]] + losses[row];
    for (let c = 0; c < V; c++) dlogits[row * V + c] = (Math.exp(logits[row * V + c] - lse) - (c === ids[row + 1] ? 1 : 0)) / count;
  }
  return { losses, loss: count ? sum / count : 0, count, dlogits };
}

/**
 * The loss head, unchunked: logits (N, V) = hf (N, C) · W (V, C)ᵀ, the cross-entropy (crossentropyCpu), lse of every
 * row, and dh (N, C) = dloss · dlogits · W — what src/nn/loss-head.ts computes chunk by chunk.
 */
export function lossHeadCpu(hf: Arr, W: Arr, ids: Arr, mask: Arr, B: number, T: number, C: number, V: number, dloss = 1) {
  const N = B * T;
  const logits = linearForwardCpu(hf, W, null, N, C, V);
  const ce = crossentropyCpu(logits, ids, mask, B, T, V);
  const lse = zeros(N);
  for (let r = 0; r < N; r++) {
    let m = -Infinity;
    for (let c = 0; c < V; c++) m = Math.max(m, logits[r * V + c]);
    let z = 0;
    for (let c = 0; c < V; c++) z += Math.exp(logits[r * V + c] - m);
    lse[r] = m + Math.log(z);
  }
  const dh = matmulCpu(ce.dlogits, W, N, C, V, false, false, dloss);
  return { logits, lse, losses: ce.losses, loss: ce.loss, count: ce.count, dlogits: ce.dlogits, dh };
}

export interface AdamWCpuHyper extends AdamWHyper {
  lr: number;
}

/** One PyTorch AdamW step (t from 1), written as torch.optim.AdamW's single-tensor path computes it. */
export function adamwCpu(param: Arr, m: Arr, v: Arr, grad: Arr, t: number, h: AdamWCpuHyper) {
  const p = Float64Array.from(param);
  const m2 = zeros(p.length);
  const v2 = zeros(p.length);
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  for (let i = 0; i < p.length; i++) {
    p[i] *= 1 - h.lr * h.weightDecay;
    m2[i] = m[i] + (grad[i] - m[i]) * (1 - h.beta1); // torch: exp_avg.lerp_(grad, 1 - beta1)
    v2[i] = v[i] * h.beta2 + (1 - h.beta2) * grad[i] * grad[i];
    const denom = Math.sqrt(v2[i]) / Math.sqrt(bc2) + h.eps;
    p[i] -= (h.lr / bc1) * (m2[i] / denom);
  }
  return { param: p, m: m2, v: v2 };
}

/** torch.nn.utils.clip_grad_norm_: the pre-clip norm and the factor every gradient is multiplied by. */
export function gradNormCpu(grads: Arr[], maxNorm: number) {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.sqrt(ss);
  return { norm, clip: Math.min(1, maxNorm / (norm + 1e-6)) };
}
