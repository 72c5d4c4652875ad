// CPU reference of causal grouped-query attention (./attention.ts), the plain way: the probabilities att
// (B, NH, T, T) are kept (the kernels keep only lse and recompute them). Forward out, lse, att `=`; backward `+=`.
// q, out (B, T, NH, HD); k, v (B, T, NKV, HD); lse (B, NH, T).

import type { AttentionShape } from './attention';
import type { Vec } from './cpu-storage';

/** Whether query t sees key u (causal, within the sliding window when there is one). */
const visible = (t: number, u: number, window: number | null | undefined) => u <= t && (!window || t - u < window);

/** out = softmax(q·kᵀ/sqrt(HD) + mask)·v; lse (or null) = log-sum-exp of each score row; att = the probabilities. */
export function attentionForward(out: Vec, lse: Vec | null, att: Vec, q: Vec, k: Vec, v: Vec, s: AttentionShape): void {
  const { B, T, NH, NKV, HD, window } = s;
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
          let dot = 0;
          for (let d = 0; d < HD; d++) dot += q[qo + d] * k[ko + d];
          row[u] = dot * scale;
          if (row[u] > max) max = row[u];
        }
        let sum = 0;
        for (let u = 0; u < T; u++) { row[u] = row[u] === -Infinity ? 0 : Math.exp(row[u] - max); sum += row[u]; }
        const ao = ((b * NH + h) * T + t) * T;
        for (let u = 0; u < T; u++) att[ao + u] = row[u] / sum;
        if (lse) lse[(b * NH + h) * T + t] = max + Math.log(sum);
        for (let d = 0; d < HD; d++) {
          let acc = 0;
          for (let u = 0; u <= t; u++) acc += att[ao + u] * v[((b * T + u) * NKV + kvh) * HD + d];
          out[qo + d] = acc;
        }
      }
    }
  }
}

/** dq, dk, dv += the gradients of attention from dout, through the forward's probabilities att. */
export function attentionBackward(dq: Vec, dk: Vec, dv: Vec, dout: Vec, q: Vec, k: Vec, v: Vec, att: Vec, s: AttentionShape): void {
  const { B, T, NH, NKV, HD } = s;
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
          let acc = 0;
          for (let d = 0; d < HD; d++) {
            acc += dout[qo + d] * v[vo + d];
            dv[vo + d] += p * dout[qo + d];
          }
          dp[u] = acc;
          dot += p * acc;
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
