// Log-likelihood requests as lm-evaluation-harness (HFLM) encodes and scores them.
//
// _encode_pair: trailing whitespace of the context moves to the start of the continuation; then
//   whole = encode(context + continuation), ctx = encode(context), continuation ids = whole[len(ctx):]
// (no special tokens unless add_bos_token; an empty context is scored after the prefix token: BOS, else EOS).
// The continuation's ids are thus the tokens the model would produce after the context in running text, even
// where a tokenizer merges across the boundary.
//
// Scoring: the log-likelihood of a request is the sum over its continuation tokens of log p(token | everything
// before it). A request longer than the model is cut from the left to the last `maxLength` tokens (the harness keeps
// maxLength + 1, the last of which is only a target; our engine's sequence length counts it) and counted.

import { GradPruneError } from '../errors';
import type { TextTokenizer } from '../model/tokenizer';
import type { ScoringModel } from './scoring';

export interface EncodedRequest {
  contextIds: number[];
  continuationIds: number[];
}

export interface EncodeOptions {
  /** Put the tokenizer's special prefix (BOS) in front, as the harness's add_bos_token=True (default false, the harness's default). */
  addBos?: boolean;
}

/** lm-evaluation-harness's context/continuation split, on strings. */
export function splitTrailingWhitespace(context: string, continuation: string): { context: string; continuation: string } {
  const kept = context.replace(/\s+$/u, '');
  return { context: kept, continuation: context.slice(kept.length) + continuation };
}

/** lm-evaluation-harness's `_encode_pair` (and its empty-context rule). */
export function encodePair(tokenizer: TextTokenizer, context: string, continuation: string, opts: EncodeOptions = {}): EncodedRequest {
  const addSpecialTokens = opts.addBos ?? false;
  const split = splitTrailingWhitespace(context, continuation);
  if (split.context === '') {
    // The harness starts an empty context from its prefix token (a whitespace-only one would fail its assertion).
    const prefix = tokenizer.bosTokenId ?? tokenizer.eosTokenId;
    if (prefix === null) {
      throw new GradPruneError('tokenizer', 'A request with an empty context needs a BOS or EOS token to start from, and the tokenizer has neither.', {
        subject: 'tokenizer_config.json',
      });
    }
    return { contextIds: [prefix], continuationIds: tokenizer.encode(split.continuation, { addSpecialTokens: false }) };
  }
  const whole = tokenizer.encode(split.context + split.continuation, { addSpecialTokens });
  const contextIds = tokenizer.encode(split.context, { addSpecialTokens });
  return { contextIds, continuationIds: whole.slice(contextIds.length) };
}

export interface RequestScore {
  /** Σ log p over the continuation tokens. */
  logLikelihood: number;
  /** Continuation tokens scored. */
  tokens: number;
  /** Context tokens dropped on the left to fit the model. */
  truncatedTokens: number;
}

export interface ScoreOptions {
  /** Sequences per model call (default 8). */
  batchSize?: number;
  /** Called after each batch with (requests done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Names a request in error messages (e.g. "line 12, choice 2"). */
  describe?: (index: number) => string;
}

/** Score requests in batches of similar length (longest first, as the harness orders them); results in input order. */
export async function scoreRequests(model: ScoringModel, requests: readonly EncodedRequest[], opts: ScoreOptions = {}): Promise<RequestScore[]> {
  const batchSize = opts.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new GradPruneError('input', `The scoring batch size must be a whole number ≥ 1 (got ${batchSize}).`, { subject: 'batchSize' });
  const L = model.maxLength;
  const seqs = requests.map((r, i) => {
    const where = opts.describe?.(i) ?? `request ${i}`;
    if (r.continuationIds.length === 0) {
      throw new GradPruneError('dataset', `${where}: the continuation encodes to no tokens, so there is nothing to score.`, {
        subject: where,
        hint: 'Each choice needs some text after the context.',
      });
    }
    if (r.contextIds.length === 0) throw new GradPruneError('dataset', `${where}: the context encodes to no tokens.`, { subject: where });
    if (r.continuationIds.length >= L) {
      throw new GradPruneError('dataset', `${where}: the continuation has ${r.continuationIds.length} tokens, but the model holds only ${L}.`, {
        subject: where,
        hint: 'Shorten the choices.',
      });
    }
    const full = [...r.contextIds, ...r.continuationIds];
    const ids = full.length > L ? full.slice(full.length - L) : full;
    return { index: i, ids, cont: r.continuationIds.length, truncated: full.length - ids.length };
  });
  const order = [...seqs].sort((a, b) => b.ids.length - a.ids.length || a.index - b.index);
  const out: RequestScore[] = new Array(requests.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const chunk = order.slice(start, start + batchSize);
    const B = chunk.length;
    const T = chunk[0].ids.length;
    const inputIds = new Int32Array(B * T); // (B, T), right-padded with id 0 (never scored)
    chunk.forEach((s, b) => inputIds.set(s.ids, b * T));
    const lp = await model.tokenLogProbs({ inputIds, B, T }); // (B, T-1)
    chunk.forEach((s, b) => {
      let sum = 0;
      // The continuation's tokens are ids[n-cont .. n-1]; token k is predicted at position k-1.
      for (let k = s.ids.length - s.cont; k < s.ids.length; k++) sum += lp[b * (T - 1) + k - 1];
      out[s.index] = { logLikelihood: sum, tokens: s.cont, truncatedTokens: s.truncated };
    });
    opts.onProgress?.(Math.min(start + batchSize, order.length), order.length);
  }
  return out;
}
