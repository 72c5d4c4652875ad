// The CPU references' backward passes against central finite differences of their forward passes, and the RoPE
// frequency tables against values worked out by hand from the Hugging Face formulas.

import { describe, expect, it } from 'vitest';
import {
  attentionBackwardCpu,
  attentionForwardCpu,
  crossentropyCpu,
  linearBackwardCpu,
  linearForwardCpu,
  loraBackwardCpu,
  loraForwardCpu,
  rmsnormBackwardCpu,
  rmsnormForwardCpu,
  ropeBackwardCpu,
  ropeForwardCpu,
  swigluBackwardCpu,
  swigluForwardCpu,
} from './cpu';
import type { AttentionShape } from './attention';
import { ropeInvFreq, ropeTables } from './rope';
import { randomArray, relL2 } from './test-utils';

/** d/dx of Σ dout ⊙ f(x), numerically, for every element of x. */
function numericGrad(f: (x: Float64Array) => ArrayLike<number>, x: ArrayLike<number>, dout: ArrayLike<number>, h = 1e-6): Float64Array {
  const xs = Float64Array.from(x);
  const g = new Float64Array(xs.length);
  const objective = () => {
    const y = f(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += dout[i] * y[i];
    return s;
  };
  for (let i = 0; i < xs.length; i++) {
    const x0 = xs[i];
    xs[i] = x0 + h;
    const up = objective();
    xs[i] = x0 - h;
    const down = objective();
    xs[i] = x0;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

const TOL = 1e-6;

describe('CPU reference backward passes match finite differences', () => {
  it('linear (weight, input, bias)', () => {
    const [N, IC, OC] = [5, 7, 3];
    const inp = randomArray(N * IC, 1);
    const w = randomArray(OC * IC, 2);
    const bias = randomArray(OC, 3);
    const dout = randomArray(N * OC, 4);
    const g = linearBackwardCpu(dout, inp, w, N, IC, OC);
    expect(relL2(g.dinp, numericGrad((x) => linearForwardCpu(x, w, bias, N, IC, OC), inp, dout))).toBeLessThan(TOL);
    expect(relL2(g.dweight, numericGrad((x) => linearForwardCpu(inp, x, bias, N, IC, OC), w, dout))).toBeLessThan(TOL);
    expect(relL2(g.dbias, numericGrad((x) => linearForwardCpu(inp, w, x, N, IC, OC), bias, dout))).toBeLessThan(TOL);
  });

  it('LoRA (A, B, input)', () => {
    const [N, IC, OC, r, scale] = [4, 6, 5, 3, 4];
    const inp = randomArray(N * IC, 5);
    const A = randomArray(r * IC, 6);
    const B = randomArray(OC * r, 7);
    const dout = randomArray(N * OC, 8);
    const g = loraBackwardCpu(dout, inp, A, B, N, IC, OC, r, scale);
    const fwd = (x: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>) => loraForwardCpu(x, a, b, N, IC, OC, r, scale).out;
    expect(relL2(g.dinp, numericGrad((x) => fwd(x, A, B), inp, dout))).toBeLessThan(TOL);
    expect(relL2(g.dA, numericGrad((x) => fwd(inp, x, B), A, dout))).toBeLessThan(TOL);
    expect(relL2(g.dB, numericGrad((x) => fwd(inp, A, x), B, dout))).toBeLessThan(TOL);
  });

  it('rmsnorm (input, weight)', () => {
    const [rows, C, eps] = [3, 11, 1e-5];
    const inp = randomArray(rows * C, 9);
    const w = randomArray(C, 10, 0.5, 1.5);
    const dout = randomArray(rows * C, 11);
    const g = rmsnormBackwardCpu(dout, inp, w, rows, C, eps);
    expect(relL2(g.dinp, numericGrad((x) => rmsnormForwardCpu(x, w, rows, C, eps).out, inp, dout))).toBeLessThan(TOL);
    expect(relL2(g.dweight, numericGrad((x) => rmsnormForwardCpu(inp, x, rows, C, eps).out, w, dout))).toBeLessThan(TOL);
  });

  it('rope', () => {
    const [B, T, H, HD] = [2, 5, 3, 6];
    const { cos, sin } = ropeTables({ type: 'default', theta: 10000 }, HD, T);
    const x = randomArray(B * T * H * HD, 12);
    const dout = randomArray(x.length, 13);
    const g = ropeBackwardCpu(dout, cos, sin, T, H, HD);
    expect(relL2(g, numericGrad((v) => ropeForwardCpu(v, cos, sin, T, H, HD), x, dout))).toBeLessThan(TOL);
  });

  for (const [name, shape] of [
    ['grouped-query', { B: 2, T: 6, NH: 4, NKV: 2, HD: 3 }],
    ['sliding window', { B: 1, T: 7, NH: 2, NKV: 1, HD: 4, window: 3 }],
  ] as [string, AttentionShape][]) {
    it(`attention (${name}): q, k, v`, () => {
      const { B, T, NH, NKV, HD } = shape;
      const q = randomArray(B * T * NH * HD, 14);
      const k = randomArray(B * T * NKV * HD, 15);
      const v = randomArray(B * T * NKV * HD, 16);
      const dout = randomArray(q.length, 17);
      const g = attentionBackwardCpu(dout, q, k, v, shape);
      expect(relL2(g.dq, numericGrad((x) => attentionForwardCpu(x, k, v, shape).out, q, dout))).toBeLessThan(TOL);
      expect(relL2(g.dk, numericGrad((x) => attentionForwardCpu(q, x, v, shape).out, k, dout))).toBeLessThan(TOL);
      expect(relL2(g.dv, numericGrad((x) => attentionForwardCpu(q, k, x, shape).out, v, dout))).toBeLessThan(TOL);
    });
  }

  it('attention masks: a query never sees later keys, nor keys outside the window', () => {
    const shape = { B: 1, T: 5, NH: 1, NKV: 1, HD: 2, window: 2 };
    const { P } = attentionForwardCpu(randomArray(10, 1), randomArray(10, 2), randomArray(10, 3), shape);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 5; j++) expect(P[i * 5 + j] > 0).toBe(j <= i && i - j < 2);
    }
  });

  it('swiglu (gate, up)', () => {
    const gate = randomArray(13, 18, -3, 3);
    const up = randomArray(13, 19);
    const dout = randomArray(13, 20);
    const g = swigluBackwardCpu(dout, gate, up);
    expect(relL2(g.dgate, numericGrad((x) => swigluForwardCpu(x, up), gate, dout))).toBeLessThan(TOL);
    expect(relL2(g.dup, numericGrad((x) => swigluForwardCpu(gate, x), up, dout))).toBeLessThan(TOL);
  });

  it('cross-entropy: dlogits of the mean loss over the counted positions', () => {
    const [B, T, V] = [2, 4, 5];
    const logits = randomArray(B * T * V, 21, -2, 2);
    const ids = Int32Array.from([1, 4, 0, 2, 3, 3, 1, 0]);
    const mask = Int32Array.from([0, 1, 1, 0, 1, 0, 1, 1]);
    const ce = crossentropyCpu(logits, ids, mask, B, T, V);
    // Counted positions: row t counts iff mask[t+1] == 1 within its sequence: (0,0), (0,1), (1,1), (1,2).
    expect(ce.count).toBe(4);
    expect(Array.from(ce.losses, (l) => l > 0)).toEqual([true, true, false, false, false, true, true, false]);
    const g = numericGrad((x) => [crossentropyCpu(x, ids, mask, B, T, V).loss], logits, [1]);
    expect(relL2(ce.dlogits, g)).toBeLessThan(TOL);
  });
});

describe('RoPE tables', () => {
  it('default: inv_freq = theta^(−2i/d), cos and sin repeated over both halves', () => {
    const inv = ropeInvFreq({ type: 'default', theta: 10000 }, 16);
    expect(inv.length).toBe(8);
    expect(inv[0]).toBe(1);
    expect(inv[1]).toBeCloseTo(0.31622776601683794, 7);
    expect(inv[4]).toBeCloseTo(0.01, 9);
    const { cos, sin } = ropeTables({ type: 'default', theta: 10000 }, 16, 6);
    expect(cos[3 * 16 + 1]).toBeCloseTo(0.5827536107022249, 6); // cos(3 · 10000^(−2/16))
    expect(cos[3 * 16 + 9]).toBe(cos[3 * 16 + 1]);
    expect(sin[0 * 16 + 5]).toBe(0);
    expect(cos[0 * 16 + 5]).toBe(1);
  });

  it('linear scaling divides every frequency by the factor', () => {
    const base = ropeInvFreq({ type: 'default', theta: 10000 }, 16);
    const lin = ropeInvFreq({ type: 'linear', theta: 10000, factor: 4 }, 16);
    base.forEach((f, i) => expect(lin[i]).toBeCloseTo(f / 4, 9));
  });

  it('llama3: high frequencies kept, low divided by the factor, medium smoothed', () => {
    // theta 10000, d 16: wavelengths 2π·10000^(i/8) = 6.3, 19.9, 62.8, 198.7, 628.3, 1987, 6283, 19869.
    // original 1024, low 1, high 4: > 1024 is low frequency, < 256 high; 628.3 is in between.
    const rope = { type: 'llama3' as const, theta: 10000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 1024 };
    const inv = ropeInvFreq(rope, 16);
    const base = ropeInvFreq({ type: 'default', theta: 10000 }, 16);
    for (const i of [0, 1, 2, 3]) expect(inv[i]).toBe(base[i]);
    for (const i of [5, 6, 7]) expect(inv[i]).toBeCloseTo(base[i] / 8, 10);
    // s = (1024 / 628.3185 − 1) / 3 = 0.2099155; (1 − s) · 0.01 / 8 + s · 0.01
    expect(inv[4]).toBeCloseTo(0.003086761, 8);
  });
});
