// CPU reference of rotary position embedding (./rope.ts), rotate-half layout: forward `=` (out may be inp),
// backward `+=`. Tables cos, sin (≥ T, HD) from ropeTables; positions 0..T−1 in every sequence.

import type { Vec } from './cpu-storage';

/** out (B, T, H, HD) = rope(inp) */
export function ropeForward(out: Vec, inp: Vec, cos: Vec, sin: Vec, T: number, H: number, HD: number): void {
  const half = HD / 2;
  const x = new Float64Array(HD);
  for (let o = 0; o < inp.length; o += HD) {
    const p = (Math.floor(o / (HD * H)) % T) * HD;
    for (let i = 0; i < HD; i++) x[i] = inp[o + i];
    for (let i = 0; i < HD; i++) {
      const rot = i < half ? -x[i + half] : x[i - half];
      out[o + i] = x[i] * cos[p + i] + rot * sin[p + i];
    }
  }
}

/** dinp (B, T, H, HD) += ropeᵀ(dout): the rotation's transpose. */
export function ropeBackward(dinp: Vec, dout: Vec, cos: Vec, sin: Vec, T: number, H: number, HD: number): void {
  const half = HD / 2;
  for (let o = 0; o < dout.length; o += HD) {
    const p = (Math.floor(o / (HD * H)) % T) * HD;
    for (let i = 0; i < HD; i++) {
      const rot = i < half ? dout[o + i + half] * sin[p + i + half] : -dout[o + i - half] * sin[p + i - half];
      dinp[o + i] += dout[o + i] * cos[p + i] + rot;
    }
  }
}
