// Exact match on the GPU's KV-cache generation: tiny-llama's and tiny-qwen3's greedy answers through the Generator
// match labels that are the CPU reference's greedy continuations (src/testing/reference-greedy.ts, recomputed and
// argmaxed plainly), and not a label that differs from them.
import { describe, expect, it } from 'vitest';
import { openFolder } from '../model/node-files';
import { loadTokenizer } from '../model/tokenizer';
import { Generator } from '../nn/generate';
import { GpuModel } from '../nn/model';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { testGpu } from '../testing/gpu';
import { fixtureDir } from '../testing/paths';
import { referenceGreedy } from '../testing/reference-greedy';
import { scoreExactMatch, type ExactMatchItem } from './exact-match';
import { stopIdsOf } from './generation';

const gpu = await testGpu();

describe.each(['tiny-llama', 'tiny-qwen3'])('scoreExactMatch on %s (GPU KV cache vs the CPU reference)', (name) => {
  it("matches the reference's greedy continuations, and only them", async () => {
    const dir = fixtureDir(name);
    const { config, store, weights } = await loadFixtureModel(dir);
    const tok = await loadTokenizer(await openFolder(dir));
    const stopIds = stopIdsOf(tok, config.eosTokenId);
    const ref = new ReferenceModel(weights);
    const prompts = ['Once upon a time', 'The little dog'].map((p) => tok.encode(p, { addSpecialTokens: true }));
    const labels = prompts.map((p) => tok.decode(referenceGreedy(ref, p, 6, stopIds), { skipSpecialTokens: true }));
    const items: ExactMatchItem[] = [...labels, `${labels[0]}!?`].map((label, i) => ({ line: i, where: `line ${i}`, promptIds: prompts[i % 2], label, labelTokens: 6 }));
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 1, lora: null, weights: 'f32' });
    const gen = new Generator(model, 32);
    try {
      const r = await scoreExactMatch(gen, tok, items, { maxNewTokens: 6, stopIds });
      expect(r.rows.map((x) => x.generated)).toEqual([labels[0], labels[1], labels[0]]);
      expect(r.rows.map((x) => [x.match, x.normalizedMatch])).toEqual([[true, true], [true, true], [false, true]]);
    } finally {
      gen.destroy();
      model.destroy();
    }
  });
});
