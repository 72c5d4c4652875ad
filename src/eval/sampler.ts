// Choosing the next token from a position's logits (V): greedy, or sampled as Hugging Face's `generate` does —
// logits / temperature, then top-k, then top-p (nucleus), then a draw from what is left. The only sampler in the engine.

import { GradPruneError } from '../errors';

export interface SamplingOptions {
  /** 0 (default): greedy, ties to the lowest id (torch.argmax). > 0: sample from softmax(logits / temperature). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: all). */
  topK?: number;
  /** Keep the most likely tokens whose probabilities first sum to at least topP (1 or absent: all). */
  topP?: number;
}

/** The id of the largest logit, the lowest id among equals. */
export function argmaxId(logits: Float32Array): number {
  let best = 0;
  for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
  return best;
}

export function checkSamplingOptions(opts: SamplingOptions): void {
  const { temperature = 0, topK = 0, topP = 1 } = opts;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new GradPruneError('input', `The temperature must be 0 or more (got ${temperature}).`, { subject: 'temperature' });
  if (!Number.isInteger(topK) || topK < 0) throw new GradPruneError('input', `top-k must be a whole number ≥ 0 (got ${topK}); 0 keeps every token.`, { subject: 'topK' });
  if (!(topP > 0 && topP <= 1)) throw new GradPruneError('input', `top-p must be above 0 and at most 1 (got ${topP}); 1 keeps every token.`, { subject: 'topP' });
}

/**
 * The next token: argmaxId at temperature 0; otherwise a draw with `rand()` (uniform in [0, 1)) over the candidates
 * in order of decreasing probability (ties: lower id first), after top-k and top-p.
 */
export function pickToken(logits: Float32Array, opts: SamplingOptions, rand: () => number): number {
  const temperature = opts.temperature ?? 0;
  if (temperature === 0) return argmaxId(logits);
  const V = logits.length;
  const topK = opts.topK ? Math.min(opts.topK, V) : V;
  const order = Uint32Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b).subarray(0, topK);
  const max = logits[order[0]];
  const weights = Float64Array.from(order, (v) => Math.exp((logits[v] - max) / temperature));
  let n = weights.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += weights[i];
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    const target = topP * sum;
    let kept = 0;
    let acc = 0;
    while (kept < n && acc < target) acc += weights[kept++];
    n = kept;
    sum = acc;
  }
  let u = rand() * sum;
  for (let i = 0; i < n; i++) if ((u -= weights[i]) < 0) return order[i];
  return order[n - 1]; // u within rounding of the total
}
