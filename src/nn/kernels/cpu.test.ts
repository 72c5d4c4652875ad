// The CPU references (<op>.cpu.ts) in Float64Array storage: their backward passes against central finite differences
// of their forward passes, and the RoPE frequency tables against values worked out by hand from the Hugging Face formulas.

import { describe, expect, it } from 'vitest';
import { randomArray, randomInts } from '../../testing/kernels';
import { relL2 } from '../reference/compare';
import type { AttentionShape } from './attention';
import { attentionBackward, attentionForward } from './attention.cpu';
import { crossentropyBackward, crossentropyForward, lossHead } from './crossentropy.cpu';
import { swigluBackward, swigluForward } from './elementwise.cpu';
import { linearBackward, linearForward, loraBackward, loraForward } from './matmul.cpu';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.cpu';
import { ropeInvFreq, ropeTables } from './rope';
import { ropeBackward, ropeForward } from './rope.cpu';

const f64 = (x: ArrayLike<number>) => Float64Array.from(x);
const zeros = (n: number) => new Float64Array(n);

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
    const [inp, w, bias, dout] = [f64(randomArray(N * IC, 1)), f64(randomArray(OC * IC, 2)), f64(randomArray(OC, 3)), f64(randomArray(N * OC, 4))];
    const fwd = (x: Float64Array, wt: Float64Array, b: Float64Array) => {
      const out = zeros(N * OC);
      linearForward(out, x, wt, b, N, IC, OC);
      return out;
    };
    const [dinp, dweight, dbias] = [zeros(N * IC), zeros(OC * IC), zeros(OC)];
    linearBackward(dinp, dweight, dbias, dout, inp, w, N, IC, OC);
    expect(relL2(dinp, numericGrad((x) => fwd(x, w, bias), inp, dout))).toBeLessThan(TOL);
    expect(relL2(dweight, numericGrad((x) => fwd(inp, x, bias), w, dout))).toBeLessThan(TOL);
    expect(relL2(dbias, numericGrad((x) => fwd(inp, w, x), bias, dout))).toBeLessThan(TOL);
  });

  it('LoRA (A, B, input)', () => {
    const [N, IC, OC, r, scale] = [4, 6, 5, 3, 4];
    const [inp, A, B, dout] = [f64(randomArray(N * IC, 5)), f64(randomArray(r * IC, 6)), f64(randomArray(OC * r, 7)), f64(randomArray(N * OC, 8))];
    const fwd = (x: Float64Array, a: Float64Array, b: Float64Array, h = zeros(N * r)) => {
      const out = zeros(N * OC);
      loraForward(out, h, x, a, b, N, IC, OC, r, scale);
      return out;
    };
    const h = zeros(N * r);
    fwd(inp, A, B, h);
    const [dinp, dA, dB] = [zeros(N * IC), zeros(r * IC), zeros(OC * r)];
    loraBackward(dinp, dA, dB, zeros(N * r), dout, inp, h, A, B, N, IC, OC, r, scale);
    expect(relL2(dinp, numericGrad((x) => fwd(x, A, B), inp, dout))).toBeLessThan(TOL);
    expect(relL2(dA, numericGrad((x) => fwd(inp, x, B), A, dout))).toBeLessThan(TOL);
    expect(relL2(dB, numericGrad((x) => fwd(inp, A, x), B, dout))).toBeLessThan(TOL);
  });

  it('rmsnorm (input, weight)', () => {
    const [rows, C, eps] = [3, 11, 1e-5];
    const [inp, w, dout] = [f64(randomArray(rows * C, 9)), f64(randomArray(C, 10, 0.5, 1.5)), f64(randomArray(rows * C, 11))];
    const fwd = (x: Float64Array, wt: Float64Array, rstd = zeros(rows)) => {
      const out = zeros(rows * C);
      rmsnormForward(out, rstd, x, wt, rows, C, eps);
      return out;
    };
    const rstd = zeros(rows);
    fwd(inp, w, rstd);
    const [dinp, dweight] = [zeros(rows * C), zeros(C)];
    rmsnormBackward(dinp, dweight, dout, inp, w, rstd, rows, C);
    expect(relL2(dinp, numericGrad((x) => fwd(x, w), inp, dout))).toBeLessThan(TOL);
    expect(relL2(dweight, numericGrad((x) => fwd(inp, x), w, dout))).toBeLessThan(TOL);
  });

  it('rope', () => {
    const [B, T, H, HD] = [2, 5, 3, 6];
    const { cos, sin } = ropeTables({ type: 'default', theta: 10000 }, HD, T);
    const [x, dout] = [f64(randomArray(B * T * H * HD, 12)), f64(randomArray(B * T * H * HD, 13))];
    const [c, s] = [f64(cos), f64(sin)];
    const dinp = zeros(x.length);
    ropeBackward(dinp, dout, c, s, T, H, HD);
    const fwd = (v: Float64Array) => {
      const out = zeros(v.length);
      ropeForward(out, v, c, s, T, H, HD);
      return out;
    };
    expect(relL2(dinp, numericGrad(fwd, x, dout))).toBeLessThan(TOL);
  });

  const attention = (q: Float64Array, k: Float64Array, v: Float64Array, s: AttentionShape) => {
    const out = zeros(q.length);
    const att = zeros(s.B * s.NH * s.T * s.T);
    attentionForward(out, null, att, q, k, v, s);
    return { out, att };
  };

  for (const [name, shape] of [
    ['grouped-query', { B: 2, T: 6, NH: 4, NKV: 2, HD: 3 }],
    ['sliding window', { B: 1, T: 7, NH: 2, NKV: 1, HD: 4, window: 3 }],
  ] as [string, AttentionShape][]) {
    it(`attention (${name}): q, k, v`, () => {
      const { B, T, NH, NKV, HD } = shape;
      const q = f64(randomArray(B * T * NH * HD, 14));
      const k = f64(randomArray(B * T * NKV * HD, 15));
      const v = f64(randomArray(B * T * NKV * HD, 16));
      const dout = f64(randomArray(q.length, 17));
      const [dq, dk, dv] = [zeros(q.length), zeros(k.length), zeros(v.length)];
      attentionBackward(dq, dk, dv, dout, q, k, v, attention(q, k, v, shape).att, shape);
      expect(relL2(dq, numericGrad((x) => attention(x, k, v, shape).out, q, dout))).toBeLessThan(TOL);
      expect(relL2(dk, numericGrad((x) => attention(q, x, v, shape).out, k, dout))).toBeLessThan(TOL);
      expect(relL2(dv, numericGrad((x) => attention(q, k, x, shape).out, v, dout))).toBeLessThan(TOL);
    });
  }

  it('attention masks: a query never sees later keys, nor keys outside the window', () => {
    const shape = { B: 1, T: 5, NH: 1, NKV: 1, HD: 2, window: 2 };
    const { att } = attention(f64(randomArray(10, 1)), f64(randomArray(10, 2)), f64(randomArray(10, 3)), shape);
    for (let i = 0; i < 5; i++) {
      for (let j = 0; j < 5; j++) expect(att[i * 5 + j] > 0).toBe(j <= i && i - j < 2);
    }
  });

  it('swiglu (gate, up)', () => {
    const [gate, up, dout] = [f64(randomArray(13, 18, -3, 3)), f64(randomArray(13, 19)), f64(randomArray(13, 20))];
    const fwd = (g: Float64Array, u: Float64Array) => {
      const out = zeros(13);
      swigluForward(out, g, u);
      return out;
    };
    const [dgate, dup] = [zeros(13), zeros(13)];
    swigluBackward(dgate, dup, dout, gate, up);
    expect(relL2(dgate, numericGrad((x) => fwd(x, up), gate, dout))).toBeLessThan(TOL);
    expect(relL2(dup, numericGrad((x) => fwd(gate, x), up, dout))).toBeLessThan(TOL);
  });

  it('cross-entropy: dlogits of the mean loss over the counted positions', () => {
    const [B, T, V] = [2, 4, 5];
    const logits = f64(randomArray(B * T * V, 21, -2, 2));
    const ids = Int32Array.from([1, 4, 0, 2, 3, 3, 1, 0]);
    const mask = Int32Array.from([0, 1, 1, 0, 1, 0, 1, 1]);
    const forward = (x: Float64Array, losses = zeros(B * T), lse = zeros(B * T)) => crossentropyForward(losses, lse, x, ids, mask, T, V);
    const [losses, lse, dlogits] = [zeros(B * T), zeros(B * T), zeros(B * T * V)];
    const { count } = forward(logits, losses, lse);
    crossentropyBackward(dlogits, logits, lse, ids, mask, T, V, count);
    // Counted positions: row t counts iff mask[t+1] == 1 within its sequence: (0,0), (0,1), (1,1), (1,2).
    expect(count).toBe(4);
    expect(Array.from(losses, (l) => l > 0)).toEqual([true, true, false, false, false, true, true, false]);
    expect(relL2(dlogits, numericGrad((x) => [forward(x).loss], logits, [1]))).toBeLessThan(TOL);
  });

  it('loss head: dh is d(dloss · mean loss)/d(hf); lse is log Σ exp(logits)', () => {
    const [B, T, C, V] = [2, 5, 6, 13];
    const N = B * T;
    const hf = f64(randomArray(N * C, 1));
    const W = f64(randomArray(V * C, 2));
    const ids = randomInts(N, 3, V);
    const mask = Int32Array.from([0, 1, 1, 0, 1, /**/ 1, 1, 1, 1, 1]);
    const dloss = 0.7;
    const got = lossHead(hf, W, ids, mask, B, T, C, V, dloss);
    expect(got.count).toBe(7);
    expect(relL2(got.dh, numericGrad((x) => [dloss * lossHead(x, W, ids, mask, B, T, C, V).loss], hf, [1]))).toBeLessThan(1e-7);
    for (let r = 0; r < N; r++) {
      let z = 0;
      for (let c = 0; c < V; c++) z += Math.exp(got.logits[r * V + c]);
      expect(got.lse[r]).toBeCloseTo(Math.log(z), 12);
    }
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
