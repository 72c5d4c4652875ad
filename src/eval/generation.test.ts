// Generation control flow (greedy choice, stop tokens, length limits, sampling) on a model whose next token is known,
// and the dense-vs-pruned side-by-side on the CPU reference with the fixture's pruned weights.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { normalizeConfig } from '../model/config';
import { openFile, openFolder } from '../model/node-files';
import { SafetensorsFile, TensorStore } from '../model/safetensors';
import { loadTokenizer } from '../model/tokenizer';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { loadModelWeights } from '../nn/reference/weights';
import { fixtureDir } from '../testing/paths';
import { referenceScoringModel } from './engines';
import { generateIds, sideBySide, stopIdsOf, type NextTokenModel } from './generation';
import { argmaxId } from './sampler';

/** Logits that put the most weight on (last id + 1) mod V, and a tie between ids 0 and 1 after id 9. */
const counter = (V = 10, maxLength = 64): NextTokenModel => ({
  maxLength,
  vocabSize: V,
  async nextTokenLogits(ids) {
    const logits = new Float32Array(V).fill(-5);
    const last = ids[ids.length - 1];
    if (last === 9) logits[0] = logits[1] = 3;
    else logits[(last + 1) % V] = 3;
    return logits;
  },
});

describe('generateIds', () => {
  it('greedy: follows the argmax, ties to the lowest id, stops at a stop id (kept) or after maxNewTokens', async () => {
    expect(await generateIds(counter(), [5], { maxNewTokens: 3 })).toEqual({ ids: [6, 7, 8], stop: 'max-new-tokens' });
    expect(await generateIds(counter(), [8], { maxNewTokens: 4 })).toEqual({ ids: [9, 0, 1, 2], stop: 'max-new-tokens' });
    expect(await generateIds(counter(), [2], { maxNewTokens: 10, stopIds: [4] })).toEqual({ ids: [3, 4], stop: 'eos' });
    expect(argmaxId(Float32Array.from([1, 3, 3, 2]))).toBe(1);
  });

  it('stops at the model length', async () => {
    expect(await generateIds(counter(10, 4), [1, 2], { maxNewTokens: 10 })).toEqual({ ids: [3, 4], stop: 'max-length' });
  });

  it('samples from softmax(logits / T) reproducibly from a seed', async () => {
    const a = await generateIds(counter(), [1], { maxNewTokens: 30, temperature: 5, seed: 11 });
    const b = await generateIds(counter(), [1], { maxNewTokens: 30, temperature: 5, seed: 11 });
    expect(a).toEqual(b);
    // At temperature 5 the preferred token has p = e^1.6 / (e^1.6 + 9) ≈ 0.35: 30 draws are not all greedy.
    const greedy = await generateIds(counter(), [1], { maxNewTokens: 30 });
    expect(a.ids).not.toEqual(greedy.ids);
    // At a tiny temperature sampling is greedy.
    expect((await generateIds(counter(), [1], { maxNewTokens: 5, temperature: 1e-3 })).ids).toEqual([2, 3, 4, 5, 6]);
  });

  it('passes top-k and top-p to the sampler: top-k 1 or a tiny top-p is greedy at any temperature, ties included', async () => {
    const greedy = await generateIds(counter(), [6], { maxNewTokens: 12 });
    expect(greedy.ids).toEqual([7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await generateIds(counter(), [6], { maxNewTokens: 12, temperature: 5, topK: 1, seed: 2 })).toEqual(greedy);
    expect(await generateIds(counter(), [6], { maxNewTokens: 12, temperature: 5, topP: 1e-6, seed: 2 })).toEqual(greedy);
  });

  it.each([
    [{ maxNewTokens: 0 }, [1], /whole number ≥ 1/],
    [{ maxNewTokens: 2, temperature: -1 }, [1], /temperature must be 0 or more/],
    [{ maxNewTokens: 2, temperature: 1, topK: -2 }, [1], /top-k must be a whole number ≥ 0/],
    [{ maxNewTokens: 2, temperature: 1, topP: 0 }, [1], /top-p must be above 0 and at most 1/],
    [{ maxNewTokens: 2 }, [], /prompt encodes to no tokens/],
    [{ maxNewTokens: 2 }, Array(64).fill(1), /64 tokens, leaving no room in the model's 64/],
  ])('refuses %o', async (opts, prompt, message) => {
    const err = await generateIds(counter(), prompt as number[], opts).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(message);
  });
});

describe('stopIdsOf', () => {
  it("uses the tokenizer's EOS and the config's, but never the tokenizer's BOS", async () => {
    // tiny-random-llama-2: config.json says eos 1, which the Llama-2 tokenizer uses as <s>; its </s> is 2.
    const tok = await loadTokenizer(await openFolder(fixtureDir('tiny-random-llama-2')));
    expect([tok.bosTokenId, tok.eosTokenId]).toEqual([1, 2]);
    expect(stopIdsOf(tok, 1)).toEqual([2]);
    // Llama-3 style: several end ids in the config.
    expect(stopIdsOf(tok, [2, 7, 9]).sort()).toEqual([2, 7, 9]);
    expect(stopIdsOf(tok, null)).toEqual([2]);
  });
});

describe('sideBySide (CPU reference, tiny-llama dense vs pruned_prune2_merge1)', () => {
  it('answers each prompt greedily with both models, decoding what each generated', async () => {
    const dir = fixtureDir('tiny-llama');
    const { config, weights } = await loadFixtureModel(dir);
    const tokenizer = await loadTokenizer(await openFolder(dir));
    const file = 'pruned_prune2_merge1.safetensors';
    const prunedStore = TensorStore.fromFiles([await SafetensorsFile.open(await openFile(path.join(dir, 'reference', file)), file)]);
    const prunedWeights = await loadModelWeights(normalizeConfig({ ...config.raw, num_hidden_layers: config.numLayers - 2 }), prunedStore);
    const dense = referenceScoringModel(new ReferenceModel(weights), 64);
    const pruned = referenceScoringModel(new ReferenceModel(prunedWeights), 64);

    const prompts = ['Once upon a time', 'The little dog'];
    const rows = await sideBySide(prompts, [{ label: 'dense', model: dense }, { label: 'pruned', model: pruned }], tokenizer, { maxNewTokens: 3 });
    expect(rows.map((r) => r.prompt)).toEqual(prompts);
    for (const r of rows) {
      expect(r.outputs.map((o) => o.label)).toEqual(['dense', 'pruned']);
      for (const o of r.outputs) {
        expect(o.ids.length).toBe(o.stop === 'eos' ? o.ids.length : 3);
        expect(o.text).toBe(tokenizer.decode(o.ids, { skipSpecialTokens: true }));
      }
    }
    // Each model's first token: the argmax of its own forward logits at the prompt's last position.
    const promptIds = Int32Array.from(tokenizer.encode(prompts[0]));
    const n = promptIds.length;
    const V = config.vocabSize;
    [weights, prunedWeights].forEach((w, i) => {
      const last = new ReferenceModel(w).forward(promptIds, 1, n).logits.subarray((n - 1) * V, n * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
      expect(rows[0].outputs[i].ids[0], rows[0].outputs[i].label).toBe(best);
    });
  });
});
