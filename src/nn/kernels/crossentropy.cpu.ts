// CPU reference of next-token cross-entropy with the loss mask (./crossentropy.ts): position t of a sequence counts
// iff mask[t+1] == 1, its target ids[t+1]. Forward losses, lse `=`; backward dlogits `=` (0 on rows that do not count).
// And the loss head it sits in (src/nn/loss-head.ts), unchunked. logits (B, T, V); ids, mask (B, T).

import type { Ints, Vec } from './cpu-storage';
import { linearBackward, linearForward } from './matmul.cpu';

const counts = (mask: Ints, T: number, row: number) => row % T !== T - 1 && mask[row + 1] === 1;

/** losses (B·T) = −log softmax(logits)[target] on counted rows, else 0; lse (B·T) of counted rows; the mean loss and count. */
export function crossentropyForward(losses: Vec, lse: Vec, logits: Vec, ids: Ints, mask: Ints, T: number, V: number): { loss: number; count: number } {
  let count = 0;
  let total = 0;
  for (let row = 0; row < ids.length; row++) {
    losses[row] = 0;
    if (!counts(mask, T, row)) continue;
    const o = row * V;
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (logits[o + j] > max) max = logits[o + j];
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(logits[o + j] - max);
    const l = max + Math.log(sum);
    lse[row] = l;
    const loss = l - logits[o + ids[row + 1]];
    losses[row] = loss;
    total += loss;
    count++;
  }
  return { loss: count ? total / count : 0, count };
}

/** dlogits (B·T, V) = dloss · (softmax − onehot(target)) / count on counted rows, 0 elsewhere. */
export function crossentropyBackward(dlogits: Vec, logits: Vec, lse: Vec, ids: Ints, mask: Ints, T: number, V: number, count: number, dloss = 1): void {
  for (let row = 0; row < ids.length; row++) {
    const o = row * V;
    if (!counts(mask, T, row)) {
      dlogits.fill(0, o, o + V);
      continue;
    }
    const target = ids[row + 1];
    for (let j = 0; j < V; j++) dlogits[o + j] = ((Math.exp(logits[o + j] - lse[row]) - (j === target ? 1 : 0)) * dloss) / count;
  }
}

/**
 * The loss head unchunked, in double: logits (N, V) = hf (N, C) · W (V, C)ᵀ, the cross-entropy, lse of every row
 * (counted or not), and dh (N, C) = dloss · dlogits · W — what src/nn/loss-head.ts computes chunk by chunk.
 */
export function lossHead(hf: Vec, W: Vec, ids: Ints, mask: Ints, B: number, T: number, C: number, V: number, dloss = 1) {
  const N = B * T;
  const logits = new Float64Array(N * V);
  linearForward(logits, hf, W, null, N, C, V);
  const losses = new Float64Array(N);
  const lse = new Float64Array(N);
  const { loss, count } = crossentropyForward(losses, lse, logits, ids, mask, T, V);
  for (let r = 0; r < N; r++) {
    let m = -Infinity;
    for (let c = 0; c < V; c++) m = Math.max(m, logits[r * V + c]);
    let z = 0;
    for (let c = 0; c < V; c++) z += Math.exp(logits[r * V + c] - m);
    lse[r] = m + Math.log(z);
  }
  const dlogits = new Float64Array(N * V);
  crossentropyBackward(dlogits, logits, lse, ids, mask, T, V, count, dloss);
  const dh = new Float64Array(N * C);
  linearBackward(dh, null, null, dlogits, hf, W, N, C, V);
  return { logits, lse, losses, loss, count, dlogits, dh };
}
