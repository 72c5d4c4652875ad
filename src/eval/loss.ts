// Held-out loss and perplexity: the token-weighted mean next-token NLL over every target token of the set
// (position t counts iff lossMask[t+1] == 1, the fixtures' loss), and exp of it.

import { GradPruneError } from '../errors';
import type { MaskedBatch, ScoringModel } from './scoring';

export interface HeldOutLoss {
  /** Mean NLL per target token (nats). */
  loss: number;
  perplexity: number;
  /** Target tokens counted. */
  tokens: number;
  /** Rows scored. */
  rows: number;
}

/** Sum of NLL and count over one batch. Uses the model's fused loss when it has one. */
export async function batchNll(model: ScoringModel, batch: MaskedBatch): Promise<{ sum: number; count: number }> {
  if (model.maskedLoss) {
    const { loss, count } = await model.maskedLoss(batch);
    return { sum: count > 0 ? loss * count : 0, count };
  }
  const { B, T, lossMask } = batch;
  const lp = await model.tokenLogProbs(batch); // (B, T-1)
  let sum = 0;
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      if (lossMask[b * T + t + 1] !== 1) continue;
      sum -= lp[b * (T - 1) + t];
      count++;
    }
  }
  return { sum, count };
}

/** Loss and perplexity over batches (e.g. data's evalBatches over the held-out examples). */
export async function heldOutLoss(model: ScoringModel, batches: Iterable<MaskedBatch>, onBatch?: (done: number) => void): Promise<HeldOutLoss> {
  let sum = 0;
  let tokens = 0;
  let rows = 0;
  let done = 0;
  for (const batch of batches) {
    if (batch.T > model.maxLength) {
      throw new GradPruneError('input', `A batch of ${batch.T} tokens per row is longer than the model's ${model.maxLength}.`, {
        subject: 'seqLen',
        hint: `Tokenize the held-out set with maxSeqLen ≤ ${model.maxLength}.`,
      });
    }
    const r = await batchNll(model, batch);
    sum += r.sum;
    tokens += r.count;
    rows += batch.B;
    onBatch?.(++done);
  }
  if (tokens === 0) {
    throw new GradPruneError('dataset', 'The held-out set has no target tokens to score.', { hint: 'Use a dataset with answers or text, or a larger held-out share.' });
  }
  const loss = sum / tokens;
  if (!Number.isFinite(loss)) throw new GradPruneError('numeric', `The held-out loss is ${loss}.`, { hint: 'The weights produce NaN or Inf: check the model (or the pruning) that produced them.' });
  return { loss, perplexity: Math.exp(loss), tokens, rows };
}
