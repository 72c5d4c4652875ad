// CPU references of the matmul family (./matmul.ts): the same argument order and write semantics — forward outputs
// `=` (loraForward's out `+=`), gradients `+=` (loraBackward's dh `=`). Sums in double; storage is the caller's.

import { roundingOf, type Vec } from './cpu-storage';

/** c (M, N) (=|+=) alpha · op(a) · op(b); a (M, K) or (K, M) when transA; b (K, N) or (N, K) when transB. */
export function matmul(c: Vec, a: Vec, b: Vec, M: number, N: number, K: number, o: { transA?: boolean; transB?: boolean; alpha?: number; accumulate?: boolean } = {}): void {
  const alpha = o.alpha ?? 1;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (o.transA ? a[k * M + m] : a[m * K + k]) * (o.transB ? b[n * K + k] : b[k * N + n]);
      c[m * N + n] = (o.accumulate ? c[m * N + n] : 0) + alpha * s;
    }
  }
}

/** out (N, OC) = inp (N, IC) · weight (OC, IC)ᵀ + bias (OC) */
export function linearForward(out: Vec, inp: Vec, weight: Vec, bias: Vec | null, N: number, IC: number, OC: number): void {
  for (let n = 0; n < N; n++) {
    const xo = n * IC;
    for (let o = 0; o < OC; o++) {
      const wo = o * IC;
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < IC; i++) s += inp[xo + i] * weight[wo + i];
      out[n * OC + o] = s;
    }
  }
}

/** dinp (N, IC) += dout (N, OC) · weight; dweight (OC, IC) += scale · doutᵀ · inp; dbias (OC) += Σ_rows dout. Each optional. */
export function linearBackward(dinp: Vec | null, dweight: Vec | null, dbias: Vec | null, dout: Vec, inp: Vec, weight: Vec, N: number, IC: number, OC: number, scale = 1): void {
  if (dinp) {
    const acc = new Float64Array(IC);
    for (let n = 0; n < N; n++) {
      acc.fill(0);
      for (let o = 0; o < OC; o++) {
        const d = dout[n * OC + o];
        if (d === 0) continue;
        const wo = o * IC;
        for (let i = 0; i < IC; i++) acc[i] += d * weight[wo + i];
      }
      for (let i = 0; i < IC; i++) dinp[n * IC + i] += acc[i];
    }
  }
  if (dweight) {
    for (let o = 0; o < OC; o++) {
      for (let i = 0; i < IC; i++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += dout[n * OC + o] * inp[n * IC + i];
        dweight[o * IC + i] += scale * s;
      }
    }
  }
  if (dbias) {
    for (let o = 0; o < OC; o++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dout[n * OC + o];
      dbias[o] += s;
    }
  }
}

/** h (N, r) = inp (N, IC) · A (r, IC)ᵀ; out (N, OC) += scale · (h · B (OC, r)ᵀ), the product stored before it is scaled. */
export function loraForward(out: Vec, h: Vec, inp: Vec, A: Vec, B: Vec, N: number, IC: number, OC: number, r: number, scale: number): void {
  linearForward(h, inp, A, null, N, IC, r);
  const round = roundingOf(out);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < OC; o++) {
      let s = 0;
      for (let j = 0; j < r; j++) s += h[n * r + j] * B[o * r + j];
      out[n * OC + o] += scale * round(s);
    }
  }
}

/** dB (OC, r) += scale · doutᵀ · h; dh (N, r) = scale · dout · B; dA (r, IC) += dhᵀ · inp; dinp (N, IC) (or null) += dh · A. */
export function loraBackward(dinp: Vec | null, dA: Vec, dB: Vec, dh: Vec, dout: Vec, inp: Vec, h: Vec, A: Vec, B: Vec, N: number, IC: number, OC: number, r: number, scale: number): void {
  linearBackward(null, dB, null, dout, h, B, N, r, OC, scale);
  dh.fill(0);
  linearBackward(dh, null, null, dout, h, B, N, r, OC);
  for (let i = 0; i < dh.length; i++) dh[i] *= scale;
  linearBackward(dinp, dA, null, dh, inp, A, N, IC, r);
}
