// What evaluation needs from a model, kept small so the GPU engine and the CPU reference both plug in:
// per-position next-token log-probabilities of right-padded (B, T) token batches.
// Position t of a row scores token t+1 given tokens 0..t; padding after a row's end never changes its scores
// (causal attention), so rows of different lengths share a batch.

import type { TokenBatch as DataTokenBatch } from '../data/types';

/** The token ids of src/data's batch (no targets: every position is scored). */
export type TokenBatch = Pick<DataTokenBatch, 'inputIds' | 'B' | 'T'>;

/** A batch with targets (position t counts iff lossMask[t+1] == 1): src/data's one batch type, as the GPU takes it. */
export type MaskedBatch = DataTokenBatch;

export interface ScoringModel {
  /** The most tokens one sequence may hold (longer requests are cut from the left). */
  readonly maxLength: number;
  /** log p(ids[b, t+1] | ids[b, ..t]) for every row and position. */
  tokenLogProbs(batch: TokenBatch): Promise<Float32Array>; // (B, T-1)
  /** Optional fast path (the GPU's fused cross-entropy): the mean NLL over the counted positions and their count. */
  maskedLoss?(batch: MaskedBatch): Promise<{ loss: number; count: number }>;
}

/** A model that hands back full logits (the CPU reference, the GPU engine's readLogits). */
export interface LogitsModel {
  readonly maxLength: number;
  readonly vocabSize: number;
  logits(batch: TokenBatch): Promise<Float32Array>; // (B, T, V)
}

/** log-softmax of each position's logits, gathered at the next token; sums in double precision. */
export function tokenLogProbsFromLogits(logits: Float32Array, inputIds: Int32Array, B: number, T: number, V: number): Float32Array {
  const out = new Float32Array(B * Math.max(0, T - 1)); // (B, T-1)
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const row = (b * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logits[row + v] > max) max = logits[row + v];
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(logits[row + v] - max);
      const next = inputIds[b * T + t + 1];
      out[b * (T - 1) + t] = logits[row + next] - max - Math.log(sum);
    }
  }
  return out;
}

/** A ScoringModel over any LogitsModel (log-softmax on the host). */
export function scoringFromLogits(model: LogitsModel): ScoringModel {
  return {
    maxLength: model.maxLength,
    async tokenLogProbs(batch) {
      const logits = await model.logits(batch);
      return tokenLogProbsFromLogits(logits, batch.inputIds, batch.B, batch.T, model.vocabSize);
    },
  };
}
