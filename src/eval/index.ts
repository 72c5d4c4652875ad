// src/eval: how good and how costly a model is, before and after pruning. Runs in the browser Worker and in Node
// (no node: imports outside the tests' helpers).
//
//   const engine = await loadEvalEngine(config, store, { kind: 'gpu', batchSize: 4, seqLen: 512, lora });
//   const loss = await heldOutLoss(engine.model, evalBatches(heldOut, { batchSize: 4, padTokenId }));
//                                          // { loss, perplexity, tokens, rows }: token-weighted over the whole set
//   const mc = await scoreMultipleChoice(engine.model, tokenizer, dataset.multipleChoice, { batchSize: 8 });
//                                          // { acc, accNorm, items, requests, truncatedRequests, scores }
//   const gen = await loadGenerationEngine(config, store, { kind: 'gpu', maxLength: 256 }); // KV-cache Generator
//   const { ids, stop } = await generateIds(gen.model, promptIds, { maxNewTokens: 48, temperature: 0.7, topP: 0.9, seed: 1 });
//   const rows = await sideBySide(prompts, [{ label: 'dense', model: a }, { label: 'pruned', model: b }], tokenizer, { maxNewTokens: 48 });
//   const { items, skipped } = exactMatchItems(dataset.examples, tokenizer, whereOf);      // prompt ids + label per row
//   const em = await scoreExactMatch(gen.model, tokenizer, items, { stopIds, margin: marginFor(set.appendEos) });
//                                          // { exactMatch, normalizedExactMatch, items, rows: [{ generated, label, match, … }] }
//   const cost = await compareForwardCost(denseGpuModel, prunedGpuModel); // { speedup, weightRatio, dense, pruned }
//
// Models plug in through two small interfaces: ScoringModel (per-position next-token log-probs of right-padded
// batches; optional fused masked loss) and NextTokenModel (logits after a sequence). gpuScoringModel(GpuModel) is a
// ScoringModel; the GPU's NextTokenModel is src/nn/generate.ts' KV-cache Generator; referenceScoringModel(ReferenceModel)
// implements both (recomputing). Tokens are chosen by one sampler (sampler.ts: greedy ties to the lowest id; temperature,
// top-k, top-p; seeded).
// Multiple choice follows lm-evaluation-harness: encodePair (trailing context whitespace moves to the continuation;
// continuation ids = encode(context + continuation)[len(encode(context)):], no BOS by default), summed continuation
// log-probs, acc = argmax, acc_norm = argmax of LL / len(choice in characters); WinoGrande partial scoring.

export type { LogitsModel, MaskedBatch, ScoringModel, TokenBatch } from './scoring';
export { scoringFromLogits, tokenLogProbsFromLogits } from './scoring';
export { batchNll, heldOutLoss, type HeldOutLoss } from './loss';
export { encodePair, scoreRequests, splitTrailingWhitespace, type EncodeOptions, type EncodedRequest, type RequestScore, type ScoreOptions } from './harness';
export { accuracyOf, encodeItems, normalizationLength, scoreMultipleChoice, type ItemScore, type MultipleChoiceOptions, type MultipleChoiceResult } from './multiple-choice';
export { checkpointStopIds, generateIds, sideBySide, stopIdsOf, type GenerateOptions, type Generated, type NextTokenModel, type SideBySideRow } from './generation';
export {
  budgetOf,
  EXACT_MATCH_MARGIN,
  exactMatchItems,
  exactMatchOf,
  fitPrompt,
  generationLength,
  marginFor,
  normalizeAnswer,
  normalizedMatchOf,
  requireExactMatchItems,
  scoreExactMatch,
  type ExactMatchItem,
  type ExactMatchOptions,
  type ExactMatchResult,
  type ExactMatchRow,
  type SkippedRow,
} from './exact-match';
export { argmaxId, checkSamplingOptions, pickToken, type SamplingOptions } from './sampler';
export { compareForwardCost, measureForward, type CostComparison, type ForwardCost } from './cost';
export {
  gpuScoringModel,
  loadEvalEngine,
  loadGenerationEngine,
  referenceScoringModel,
  type EngineKind,
  type EvalEngine,
  type EvalEngineOptions,
  type GenerationEngine,
} from './engines';
