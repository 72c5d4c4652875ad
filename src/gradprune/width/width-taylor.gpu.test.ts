// LLM-Pruner's first-order Taylor group importance through width pruning's seam: the GPU's frozen-weight saliences
// (gradprune/importance/taylor.ts, salienceScorer) plugged into unitScores as the LineScorer give each key/value
// head group and MLP channel of tiny-llama the Σ |W ⊙ G| over its lines (G the mean gradient over the fixture's
// scoring batches) that the CPU reference's weight gradients give, summed here by hand.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildExamples, readDataset } from '../../data';
import { openCheckpoint } from '../../model/checkpoint';
import { openFile, openFolder } from '../../model/node-files';
import { cli } from '../../testing/cli';
import { relL2 } from '../../nn/reference/compare';
import { fixtureRunBatches, loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { ReferenceModel, type LinearGrad } from '../../nn/reference/model';
import { testGpu } from '../../testing/gpu';
import { fixtureDir } from '../../testing/paths';
import { referenceFirstOrderScores } from '../../testing/width-reference';
import { frozenWeightSaliences, salienceScorer, scoringBatches } from '../importance/taylor';
import { unitScores } from './importance';

const gpu = await testGpu();

describe('param_first group importance from the GPU gradients', () => {
  it('equals the CPU reference’s Σ|W ⊙ G| over each group’s lines (tiny-llama, 2 batches)', async () => {
    const dir = fixtureDir('tiny-llama');
    const fm = await loadFixtureModel(dir);
    const c = fm.config;
    const { B, T, batch } = await fixtureRunBatches(await openReference(dir, 'gradprune.safetensors'));
    const batches = [batch(0), batch(1)];

    const r = await frozenWeightSaliences(gpu, fm, { batches, batchSize: B, seqLen: T, weights: 'f32', second: false });
    const got = await unitScores(c, fm.store, { importance: 'param_first', gradientScorer: salienceScorer(r, 'param_first') });

    const reference = new ReferenceModel(fm.weights);
    const G = new Map<string, Float64Array>();
    for (const b of batches) {
      const frozen = { layers: new Set(Array.from({ length: c.numLayers }, (_, l) => l)), grads: new Map<string, LinearGrad>() };
      reference.lossAndGrads(b.inputIds, b.lossMask, b.B, b.T, frozen);
      for (const [name, g] of frozen.grads) {
        const sum = G.get(name) ?? new Float64Array(g.dW.length);
        g.dW.forEach((v, i) => (sum[i] += v / batches.length));
        G.set(name, sum);
      }
    }
    const want = referenceFirstOrderScores(fm.weights, G);
    for (let l = 0; l < c.numLayers; l++) {
      expect(relL2(got[l].attention, want[l].attention), `layer ${l} heads`).toBeLessThanOrEqual(1e-3);
      expect(relL2(got[l].mlp, want[l].mlp), `layer ${l} channels`).toBeLessThanOrEqual(1e-3);
    }
  }, 300_000);

  it('gradprune width-prune --importance param_first --data: the kept heads are those the CPU reference\'s gradients rank highest', async () => {
    const dir = fixtureDir('tiny-llama');
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'width-taylor-'));
    const data = path.join(tmp, 'data.jsonl');
    const texts = ['Once upon a time, there was a little girl named Lily.', 'The dog ran to the park and played with a red ball.', 'Tom liked to eat apples with his mom in the garden.'];
    await writeFile(data, texts.map((text) => JSON.stringify({ text })).join('\n') + '\n');
    const out = path.join(tmp, 'narrow');
    const r = await cli('width-prune', dir, '--heads', '1', '--importance', 'param_first', '--data', data, '--examples', '3', '--seq', '32', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const recipe = JSON.parse(await readFile(path.join(out, 'gradprune_recipe.json'), 'utf8'));
    expect([recipe.settings.importance, recipe.settings.examples, recipe.data.file]).toEqual(['param_first', 3, 'data.jsonl']);

    // The same examples, one per batch, in the CLI's order (the seeded draw of scoringBatches).
    const ckpt = await openCheckpoint(await openFolder(dir));
    const set = buildExamples(await readDataset(await openFile(data), 'data.jsonl', {}), ckpt.tokenizer, { maxSeqLen: 32 });
    const batches = scoringBatches({ kind: 'examples', examples: set.examples, padTokenId: set.padTokenId }, 3, { batchSize: 1, seed: 0, shuffle: true });
    const fm = await loadFixtureModel(dir);
    const reference = new ReferenceModel(fm.weights);
    const G = new Map<string, Float64Array>();
    for (const b of batches) {
      const frozen = { layers: new Set(Array.from({ length: fm.config.numLayers }, (_, l) => l)), grads: new Map<string, LinearGrad>() };
      reference.lossAndGrads(b.inputIds, b.lossMask, b.B, b.T, frozen);
      for (const [name, g] of frozen.grads) {
        const sum = G.get(name) ?? new Float64Array(g.dW.length);
        g.dW.forEach((v, i) => (sum[i] += v));
        G.set(name, sum);
      }
    }
    const want = referenceFirstOrderScores(fm.weights, G).map((s) => [s.attention[0] > s.attention[1] ? 0 : 1]);
    expect(recipe.plan.kept_kv_heads).toEqual(want);
  }, 300_000);
});
