// Multiple-choice accuracy by log-likelihood, as lm-evaluation-harness's multiple_choice tasks compute it:
//   acc      = argmax_i LL_i == gold
//   acc_norm = argmax_i LL_i / len(choice_i) == gold, len in characters (code points, as Python's len)
// where choice_i is the harness's doc_to_choice string: the continuation without its one-space target delimiter,
// or, for WinoGrande partial scoring (the choice fills the blank in the context and the shared rest of the sentence
// is the continuation), the filled-in context. The harness reports only acc for WinoGrande.
// Ties go to the first choice (numpy's argmax).

import type { MultipleChoiceItem } from '../data/types';
import type { TextTokenizer } from '../model/tokenizer';
import { encodePair, scoreRequests, type EncodeOptions, type EncodedRequest } from './harness';
import type { ScoringModel } from './scoring';

export interface ItemScore {
  line: number;
  gold: number;
  /** Σ log p of each choice's continuation. */
  logLikelihoods: number[];
  pred: number;
  predNorm: number;
}

export interface MultipleChoiceResult {
  acc: number;
  accNorm: number;
  items: number;
  /** Scoring requests (one per choice) and how many were cut on the left to fit the model. */
  requests: number;
  truncatedRequests: number;
  scores: ItemScore[];
}

export interface MultipleChoiceOptions extends EncodeOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

const argmax = (v: readonly number[]): number => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

/** The length acc_norm divides by (see the header). */
export function normalizationLength(item: MultipleChoiceItem, choice: number): number {
  const r = item.requests[choice];
  const text = item.partial ? r.context : r.continuation.replace(/^ /, '');
  return Math.max(1, [...text].length);
}

/** Encode every choice of every item the harness's way. */
export function encodeItems(tokenizer: TextTokenizer, items: readonly MultipleChoiceItem[], opts: EncodeOptions = {}): EncodedRequest[] {
  return items.flatMap((item) => item.requests.map((r) => encodePair(tokenizer, r.context, r.continuation, opts)));
}

/** Accuracy from per-choice log-likelihoods already computed (one list per item, in choice order). */
export function accuracyOf(items: readonly MultipleChoiceItem[], logLikelihoods: readonly number[][]): Omit<MultipleChoiceResult, 'requests' | 'truncatedRequests'> {
  const scores = items.map((item, i) => {
    const ll = logLikelihoods[i];
    return {
      line: item.line,
      gold: item.gold,
      logLikelihoods: [...ll],
      pred: argmax(ll),
      predNorm: argmax(ll.map((x, c) => x / normalizationLength(item, c))),
    };
  });
  const n = scores.length;
  return {
    acc: n ? scores.filter((s) => s.pred === s.gold).length / n : 0,
    accNorm: n ? scores.filter((s) => s.predNorm === s.gold).length / n : 0,
    items: n,
    scores,
  };
}

/** Score items (all choices batched together) and compute acc / acc_norm. */
export async function scoreMultipleChoice(
  model: ScoringModel,
  tokenizer: TextTokenizer,
  items: readonly MultipleChoiceItem[],
  opts: MultipleChoiceOptions = {},
): Promise<MultipleChoiceResult> {
  const requests = encodeItems(tokenizer, items, opts);
  const owner: Array<{ item: number; choice: number }> = items.flatMap((item, i) => item.requests.map((_, c) => ({ item: i, choice: c })));
  const scored = await scoreRequests(model, requests, {
    batchSize: opts.batchSize,
    onProgress: opts.onProgress,
    describe: (k) => `line ${items[owner[k].item].line}, choice ${owner[k].choice + 1}`,
  });
  const lls: number[][] = items.map((item) => new Array(item.requests.length));
  scored.forEach((s, k) => (lls[owner[k].item][owner[k].choice] = s.logLikelihood));
  return {
    ...accuracyOf(items, lls),
    requests: requests.length,
    truncatedRequests: scored.filter((s) => s.truncatedTokens > 0).length,
  };
}
