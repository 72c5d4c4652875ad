// Text generation for evaluation: greedy (temperature 0) or sampled continuations of a prompt, and the
// side-by-side of a few held-out prompts answered by two models (dense and pruned).
// Works over any NextTokenModel; a KV-cache generator (src/nn) can implement it directly.

import { GradPruneError } from '../errors';
import type { TextTokenizer } from '../model/tokenizer';

export interface NextTokenModel {
  readonly maxLength: number;
  readonly vocabSize: number;
  /** Logits over the vocabulary for the token after `ids`. */
  nextTokenLogits(ids: readonly number[]): Promise<Float32Array>; // (V)
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (default): greedy, ties to the lowest id (torch.argmax). > 0: sample from softmax(logits / temperature). */
  temperature?: number;
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

/** mulberry32: reproducible sampling from a seed. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmaxId(logits: Float32Array): number {
  let best = 0;
  for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
  return best;
}

function sampleId(logits: Float32Array, temperature: number, rand: () => number): number {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let v = 0; v < logits.length; v++) sum += p[v] = Math.exp((logits[v] - max) / temperature);
  let u = rand() * sum;
  for (let v = 0; v < p.length; v++) if ((u -= p[v]) < 0) return v;
  return argmaxId(logits);
}

export async function generateIds(model: NextTokenModel, promptIds: readonly number[], opts: GenerateOptions): Promise<Generated> {
  const temperature = opts.temperature ?? 0;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new GradPruneError('input', `The temperature must be 0 or more (got ${temperature}).`, { subject: 'temperature' });
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) {
    throw new GradPruneError('input', `The number of new tokens must be a whole number ≥ 1 (got ${opts.maxNewTokens}).`, { subject: 'maxNewTokens' });
  }
  if (promptIds.length === 0) throw new GradPruneError('input', 'The prompt encodes to no tokens.', { subject: 'prompt', hint: 'Give some prompt text.' });
  if (promptIds.length >= model.maxLength) {
    throw new GradPruneError('input', `The prompt has ${promptIds.length} tokens, leaving no room in the model's ${model.maxLength}.`, { subject: 'prompt' });
  }
  const rand = seeded(opts.seed ?? 0);
  const stops = new Set(opts.stopIds ?? []);
  const seq = [...promptIds];
  const ids: number[] = [];
  while (ids.length < opts.maxNewTokens) {
    if (seq.length >= model.maxLength) return { ids, stop: 'max-length' };
    const logits = await model.nextTokenLogits(seq);
    const id = temperature === 0 ? argmaxId(logits) : sampleId(logits, temperature, rand);
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
