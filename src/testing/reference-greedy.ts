// The CPU reference's greedy continuation, written plainly for tests that check generation paths against it: the
// whole sequence recomputed for every new token, the argmax taken here (ties to the lowest id), stop ids kept.
import type { ReferenceModel } from '../nn/reference/model';

export function referenceGreedy(model: ReferenceModel, promptIds: readonly number[], maxNewTokens: number, stopIds: readonly number[] = []): number[] {
  const V = model.w.config.vocabSize;
  const seq = [...promptIds];
  const out: number[] = [];
  while (out.length < maxNewTokens) {
    const n = seq.length;
    const last = model.forward(Int32Array.from(seq), 1, n).logits.subarray((n - 1) * V, n * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
    out.push(best);
    seq.push(best);
    if (stopIds.includes(best)) break;
  }
  return out;
}
