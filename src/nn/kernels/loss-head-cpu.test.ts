// lossHeadCpu (the reference the chunked loss head is tested against): dh against central finite differences of
// the mean loss, and lse against log Σ exp computed directly.

import { expect, it } from 'vitest';
import { lossHeadCpu } from './cpu';
import { randomArray, randomInts, relL2 } from './test-utils';

it('dh is d(dloss · mean loss)/d(hf); lse is log Σ exp(logits)', () => {
  const [B, T, C, V] = [2, 5, 6, 13];
  const N = B * T;
  const hf = Float64Array.from(randomArray(N * C, 1));
  const W = randomArray(V * C, 2);
  const ids = randomInts(N, 3, V);
  const mask = Int32Array.from([0, 1, 1, 0, 1, /**/ 1, 1, 1, 1, 1]);
  const dloss = 0.7;
  const got = lossHeadCpu(hf, W, ids, mask, B, T, C, V, dloss);
  expect(got.count).toBe(7);
  const h = 1e-6;
  const num = new Float64Array(N * C);
  for (let i = 0; i < N * C; i++) {
    const x0 = hf[i];
    hf[i] = x0 + h;
    const up = lossHeadCpu(hf, W, ids, mask, B, T, C, V).loss;
    hf[i] = x0 - h;
    const down = lossHeadCpu(hf, W, ids, mask, B, T, C, V).loss;
    hf[i] = x0;
    num[i] = (dloss * (up - down)) / (2 * h);
  }
  expect(relL2(got.dh, num)).toBeLessThan(1e-7);
  for (let r = 0; r < N; r++) {
    let z = 0;
    for (let c = 0; c < V; c++) z += Math.exp(got.logits[r * V + c]);
    expect(got.lse[r]).toBeCloseTo(Math.log(z), 12);
  }
});
