// CPU reference of RMSNorm (./rmsnorm.ts): forward out, rstd `=`; backward dinp, dweight `+=`.

import { roundingOf, type Vec } from './cpu-storage';

/** out (rows, C) = w ⊙ x · rstd, rstd (rows) = 1 / sqrt(mean(x²) + eps), kept for the backward. */
export function rmsnormForward(out: Vec, rstd: Vec, inp: Vec, w: Vec, rows: number, C: number, eps: number): void {
  const round = roundingOf(out);
  for (let n = 0; n < rows; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[n * C + c] * inp[n * C + c];
    const r = round(1 / Math.sqrt(round(ss / C) + eps));
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[n * C + c] = w[c] * round(inp[n * C + c] * r);
  }
}

/** dinp (rows, C) += rmsnorm'(inp)ᵀ · dout; dweight (C) (null: a frozen norm) += Σ_rows dout ⊙ inp · rstd. */
export function rmsnormBackward(dinp: Vec, dweight: Vec | null, dout: Vec, inp: Vec, w: Vec, rstd: Vec, rows: number, C: number): void {
  for (let n = 0; n < rows; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += w[c] * dout[n * C + c] * inp[n * C + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) {
      dinp[n * C + c] += r * w[c] * dout[n * C + c] - k * inp[n * C + c];
      if (dweight) dweight[c] += dout[n * C + c] * inp[n * C + c] * r;
    }
  }
}
