// CPU references of the elementwise kernels (./elementwise.ts): forward `=`, backward `+=`.

import { roundingOf, type Vec } from './cpu-storage';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** out (N, F) = silu(gate) ⊙ up */
export function swigluForward(out: Vec, gate: Vec, up: Vec): void {
  const round = roundingOf(out);
  for (let i = 0; i < out.length; i++) out[i] = round(gate[i] * sigmoid(gate[i])) * up[i];
}

/** dgate += dout ⊙ up ⊙ silu'(gate); dup += dout ⊙ silu(gate) */
export function swigluBackward(dgate: Vec, dup: Vec, dout: Vec, gate: Vec, up: Vec): void {
  for (let i = 0; i < dout.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dup[i] += dout[i] * g * s;
    dgate[i] += dout[i] * up[i] * s * (1 + g * (1 - s));
  }
}
