// Text generation for evaluation: greedy (temperature 0) or sampled continuations of a prompt, and the
// side-by-side of a few held-out prompts answered by two models (dense and pruned).
// Works over any NextTokenModel: on the GPU the KV-cache Generator (src/nn/generate.ts), on the CPU the reference.

import { GradPruneError } from '../errors';
import type { TextTokenizer } from '../model/tokenizer';
import { seededRandom } from '../random';
import { checkSamplingOptions, pickToken, type SamplingOptions } from './sampler';

export interface NextTokenModel {
  readonly maxLength: number;
  readonly vocabSize: number;
  /**
   * Logits over the vocabulary for the token after `ids`. Generation calls it with one token more each time, so a
   * model with a KV cache (src/nn/generate.ts' Generator) runs only the new token; the CPU reference recomputes.
   */
  nextTokenLogits(ids: readonly number[]): Promise<Float32Array>; // (V)
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Seed of the sampler (temperature > 0). */
  seed?: number;
  /** Stop after any of these ids (included in the output). */
  stopIds?: readonly number[];
}

export interface Generated {
  /** The new tokens only. */
  ids: number[];
  stop: 'eos' | 'max-new-tokens' | 'max-length';
}

export async function generateIds(model: NextTokenModel, promptIds: readonly number[], opts: GenerateOptions): Promise<Generated> {
  checkSamplingOptions(opts);
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) {
    throw new GradPruneError('input', `The number of new tokens must be a whole number ≥ 1 (got ${opts.maxNewTokens}).`, { subject: 'maxNewTokens' });
  }
  if (promptIds.length === 0) throw new GradPruneError('input', 'The prompt encodes to no tokens.', { subject: 'prompt', hint: 'Give some prompt text.' });
  if (promptIds.length >= model.maxLength) {
    throw new GradPruneError('input', `The prompt has ${promptIds.length} tokens, leaving no room in the model's ${model.maxLength}.`, { subject: 'prompt' });
  }
  const rand = seededRandom(opts.seed ?? 0);
  const stops = new Set(opts.stopIds ?? []);
  const seq = [...promptIds];
  const ids: number[] = [];
  while (ids.length < opts.maxNewTokens) {
    if (seq.length >= model.maxLength) return { ids, stop: 'max-length' };
    const id = pickToken(await model.nextTokenLogits(seq), opts, rand);
    ids.push(id);
    seq.push(id);
    if (stops.has(id)) return { ids, stop: 'eos' };
  }
  return { ids, stop: 'max-new-tokens' };
}

/**
 * The ids that end a generation: the tokenizer's EOS and the config's eos_token_id(s), except an id the tokenizer
 * uses as BOS (configs that disagree with their tokenizer, as tiny-random-llama-2's: trust the tokenizer).
 */
export function stopIdsOf(tokenizer: TextTokenizer, configEos: number | number[] | null): number[] {
  const ids = new Set<number>();
  if (tokenizer.eosTokenId !== null) ids.add(tokenizer.eosTokenId);
  for (const id of Array.isArray(configEos) ? configEos : configEos === null ? [] : [configEos]) {
    if (id !== tokenizer.bosTokenId) ids.add(id);
  }
  return [...ids];
}

/** A checkpoint's stop ids: generation_config.json's eos_token_id where it has one, else config.json's (see stopIdsOf). */
export function checkpointStopIds(ckpt: { tokenizer: TextTokenizer; config: { eosTokenId: number | number[] | null }; generationConfig: Record<string, unknown> | null }): number[] {
  const genEos = ckpt.generationConfig?.eos_token_id;
  const given = typeof genEos === 'number' || (Array.isArray(genEos) && genEos.every((x) => typeof x === 'number'));
  return stopIdsOf(ckpt.tokenizer, given ? (genEos as number | number[]) : ckpt.config.eosTokenId);
}

export interface SideBySideRow {
  prompt: string;
  outputs: Array<{ label: string; text: string; ids: number[]; stop: Generated['stop'] }>;
}

/** A few prompts answered greedily by each model (e.g. dense and pruned), for reading side by side. */
export async function sideBySide(
  prompts: readonly string[],
  models: ReadonlyArray<{ label: string; model: NextTokenModel }>,
  tokenizer: TextTokenizer,
  opts: { maxNewTokens: number; stopIds?: readonly number[] },
): Promise<SideBySideRow[]> {
  const rows: SideBySideRow[] = [];
  for (const prompt of prompts) {
    const promptIds = tokenizer.encode(prompt, { addSpecialTokens: true });
    const outputs: SideBySideRow['outputs'] = [];
    for (const { label, model } of models) {
      const g = await generateIds(model, promptIds, { maxNewTokens: opts.maxNewTokens, temperature: 0, stopIds: opts.stopIds });
      outputs.push({ label, text: tokenizer.decode(g.ids, { skipSpecialTokens: true }), ids: g.ids, stop: g.stop });
    }
    rows.push({ prompt, outputs });
  }
  return rows;
}
