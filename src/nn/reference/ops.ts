// CPU reference operators in forward/backward pairs (outputs first, gradients prefixed `d`), float32 storage with
// double accumulation. Forward functions overwrite their outputs (`=`); backward functions accumulate (`+=`).
// N = rows (B·T), C = features.

/** out = x·Wᵀ (+ b).   out (N, O), x (N, I), W (O, I), b (O) */
export function matmulForward(out: Float32Array, x: Float32Array, W: Float32Array, b: Float32Array | null, N: number, I: number, O: number): void {
  for (let n = 0; n < N; n++) {
    const xo = n * I;
    for (let o = 0; o < O; o++) {
      const wo = o * I;
      let s = b ? b[o] : 0;
      for (let i = 0; i < I; i++) s += x[xo + i] * W[wo + i];
      out[n * O + o] = s;
    }
  }
}

/** dx += dout·W.   dx (N, I), dout (N, O), W (O, I) */
export function matmulBackwardInput(dx: Float32Array, dout: Float32Array, W: Float32Array, N: number, I: number, O: number): void {
  const acc = new Float64Array(I);
  for (let n = 0; n < N; n++) {
    acc.fill(0);
    for (let o = 0; o < O; o++) {
      const d = dout[n * O + o];
      if (d === 0) continue;
      const wo = o * I;
      for (let i = 0; i < I; i++) acc[i] += d * W[wo + i];
    }
    for (let i = 0; i < I; i++) dx[n * I + i] += acc[i];
  }
}

/** dW += doutᵀ·x.   dW (O, I), dout (N, O), x (N, I) */
export function matmulBackwardWeight(dW: Float32Array, dout: Float32Array, x: Float32Array, N: number, I: number, O: number, scale = 1): void {
  for (let o = 0; o < O; o++) {
    for (let i = 0; i < I; i++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dout[n * O + o] * x[n * I + i];
      dW[o * I + i] += scale * s;
    }
  }
}

/** out = w ⊙ x / sqrt(mean(x²) + eps); rstd (N) is saved for the backward.   out, x (N, C), w (C) */
export function rmsnormForward(out: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array, N: number, C: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] * x[n * C + c];
    const r = Math.fround(1 / Math.sqrt(Math.fround(ss / C) + eps));
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[n * C + c] = w[c] * Math.fround(x[n * C + c] * r);
  }
}

/** dx += rmsnorm'(x)ᵀ·dout (the weight is frozen: no dweight).   dx, dout, x (N, C) */
export function rmsnormBackward(dx: Float32Array, dout: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += w[c] * dout[n * C + c] * x[n * C + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dx[n * C + c] += r * w[c] * dout[n * C + c] - k * x[n * C + c];
  }
}

/** In place: rotate-half RoPE of every head.   x (B, T, NH, HD); cos, sin (maxPos, HD); positions 0..T-1 */
export function ropeForward(x: Float32Array, cos: Float32Array, sin: Float32Array, B: number, T: number, NH: number, HD: number): void {
  const half = HD / 2;
  const tmp = new Float32Array(HD);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < NH; h++) {
        const o = ((b * T + t) * NH + h) * HD;
        for (let i = 0; i < HD; i++) tmp[i] = x[o + i];
        for (let i = 0; i < HD; i++) {
          const rot = i < half ? -tmp[i + half] : tmp[i - half];
          x[o + i] = tmp[i] * cos[t * HD + i] + rot * sin[t * HD + i];
        }
      }
    }
  }
}

/** In place: the gradient through RoPE (the transpose of the rotation).   dx (B, T, NH, HD) */
export function ropeBackward(dx: Float32Array, cos: Float32Array, sin: Float32Array, B: number, T: number, NH: number, HD: number): void {
  const half = HD / 2;
  const tmp = new Float32Array(HD);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < NH; h++) {
        const o = ((b * T + t) * NH + h) * HD;
        for (let i = 0; i < HD; i++) tmp[i] = dx[o + i];
        for (let i = 0; i < HD; i++) {
          const p = t * HD;
          const rot = i < half ? tmp[i + half] * sin[p + i + half] : -tmp[i - half] * sin[p + i - half];
          dx[o + i] = tmp[i] * cos[p + i] + rot;
        }
      }
    }
  }
}

/** Whether query t may attend to key u (causal, optionally within a sliding window). */
const visible = (t: number, u: number, window: number | null) => u <= t && (window === null || t - u < window);

/**
 * out = softmax(q·kᵀ/sqrt(HD) + causal mask)·v with grouped-query heads; att keeps the probabilities.
 * out, q (B, T, NH, HD); k, v (B, T, NKV, HD); att (B, NH, T, T)
 */
export function attentionForward(
  out: Float32Array, att: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
  B: number, T: number, NH: number, NKV: number, HD: number, window: number | null,
): void {
  const scale = 1 / Math.sqrt(HD);
  const group = NH / NKV;
  const row = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * NH + h) * HD;
        let max = -Infinity;
        for (let u = 0; u < T; u++) {
          if (!visible(t, u, window)) { row[u] = -Infinity; continue; }
          const ko = ((b * T + u) * NKV + kvh) * HD;
          let s = 0;
          for (let d = 0; d < HD; d++) s += q[qo + d] * k[ko + d];
          row[u] = s * scale;
          if (row[u] > max) max = row[u];
        }
        let sum = 0;
        for (let u = 0; u < T; u++) { row[u] = row[u] === -Infinity ? 0 : Math.exp(row[u] - max); sum += row[u]; }
        const ao = ((b * NH + h) * T + t) * T;
        for (let u = 0; u < T; u++) att[ao + u] = row[u] / sum;
        for (let d = 0; d < HD; d++) {
          let s = 0;
          for (let u = 0; u <= t; u++) s += att[ao + u] * v[((b * T + u) * NKV + kvh) * HD + d];
          out[qo + d] = s;
        }
      }
    }
  }
}

/** dq, dk, dv += the gradients of attention.   shapes as in attentionForward */
export function attentionBackward(
  dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, att: Float32Array,
  B: number, T: number, NH: number, NKV: number, HD: number,
): void {
  const scale = 1 / Math.sqrt(HD);
  const group = NH / NKV;
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * NH + h) * HD;
        const ao = ((b * NH + h) * T + t) * T;
        let dot = 0;
        for (let u = 0; u <= t; u++) {
          const p = att[ao + u];
          const vo = ((b * T + u) * NKV + kvh) * HD;
          let s = 0;
          for (let d = 0; d < HD; d++) {
            s += dout[qo + d] * v[vo + d];
            dv[vo + d] += p * dout[qo + d];
          }
          dp[u] = s;
          dot += p * s;
        }
        for (let u = 0; u <= t; u++) {
          const ds = att[ao + u] * (dp[u] - dot) * scale;
          if (ds === 0) continue;
          const ko = ((b * T + u) * NKV + kvh) * HD;
          for (let d = 0; d < HD; d++) {
            dq[qo + d] += ds * k[ko + d];
            dk[ko + d] += ds * q[qo + d];
          }
        }
      }
    }
  }
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** out = silu(gate) ⊙ up.   out, gate, up (N, F) */
export function swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    const g = gate[i];
    out[i] = Math.fround(g * sigmoid(g)) * up[i];
  }
}

/** dgate, dup += the gradients of silu(gate) ⊙ up. */
export function swigluBackward(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array): void {
  for (let i = 0; i < dout.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dup[i] += dout[i] * g * s;
    dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s));
  }
}

/**
 * Masked mean next-token cross-entropy: position t of row b counts iff lossMask[b, t+1] = 1, target ids[b, t+1].
 * Returns the loss and dlogits (N, V) = (softmax − onehot)/count at counted positions, 0 elsewhere.
 * logits (B, T, V); ids, lossMask (B, T)
 */
export function crossEntropyForwardBackward(
  logits: Float32Array, ids: Int32Array, lossMask: Int32Array, B: number, T: number, V: number,
): { loss: number; count: number; dlogits: Float32Array } {
  const dlogits = new Float32Array(B * T * V);
  let count = 0;
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) if (lossMask[b * T + t + 1] === 1) count++;
  let total = 0;
  if (count === 0) return { loss: 0, count, dlogits };
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      if (lossMask[b * T + t + 1] !== 1) continue;
      const o = (b * T + t) * V;
      const target = ids[b * T + t + 1];
      let max = -Infinity;
      for (let j = 0; j < V; j++) if (logits[o + j] > max) max = logits[o + j];
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j] - max);
      const lse = max + Math.log(sum);
      total += lse - logits[o + target];
      for (let j = 0; j < V; j++) dlogits[o + j] = Math.exp(logits[o + j] - lse) / count;
      dlogits[o + target] -= 1 / count;
    }
  }
  return { loss: total / count, count, dlogits };
}
