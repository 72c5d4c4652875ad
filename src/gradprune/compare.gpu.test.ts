// The method comparison on tiny-llama with ARC-Easy rows: every plan removes the layers its method ranks lowest, the
// held-out loss of each pruned model is the CPU reference's (transformers-checked) loss of the dense weights with
// those layers left out, the parameter counts are the fixture's shapes by hand, and the agreement is between the
// rankings given. Bad input (N out of range, an unknown method) is refused before any work, naming the option.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExamples, readDataset } from '../data';
import type { TokenizedExample } from '../data/types';
import { requestGpu, type Gpu } from '../gpu/device';
import { recoverySplit } from '../eval/recovery';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint';
import { openFile, openFolder } from '../model/node-files';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { cli } from '../testing/cli';
import { fixtureDir } from '../testing/paths';
import { datasetSlice } from '../testing/recovery-fixtures';
import { slicedConfig, slicedReferenceWeights } from '../testing/width-reference';
import { compareMethods, type Comparison } from './compare';

// tiny-llama (fixtures/README.md): 6 layers; hidden 64, q/o 64x64, k/v 32x64, MLP 176, two norms per layer; vocab 512, untied.
const LAYER_PARAMS = 64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * (64 * 176) + 2 * 64;
const DENSE_PARAMS = 6 * LAYER_PARAMS + 2 * 512 * 64 + 64;
const HELD_OUT = 6;
const SETTINGS = { steps: 3, batchSize: 2, seqLen: 64, seed: 0 };

let gpu: Gpu;
let ckpt: Checkpoint;
let examples: TokenizedExample[];
let padTokenId: number;
let dataFile: string;
beforeAll(async () => {
  gpu = await requestGpu();
  ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')), 'tiny-llama');
  dataFile = await datasetSlice('arc/arc_easy.jsonl', 24);
  const set = buildExamples(await readDataset(await openFile(dataFile), path.basename(dataFile)), ckpt.tokenizer, { maxSeqLen: SETTINGS.seqLen });
  examples = set.examples;
  padTokenId = set.padTokenId;
});
afterAll(() => gpu?.device.destroy());

/** The token-weighted held-out loss of the dense weights without `removed`, on the CPU reference. */
async function referenceLoss(removed: readonly number[], heldOut: readonly TokenizedExample[]): Promise<number> {
  const { weights, config } = await loadFixtureModel(fixtureDir('tiny-llama'));
  const layers = weights.layers.filter((_, l) => !removed.includes(l));
  return lossOf(new ReferenceModel({ ...weights, layers, config: { ...config, numLayers: layers.length } }, null, config.maxPositionEmbeddings), heldOut);
}

function lossOf(model: ReferenceModel, heldOut: readonly TokenizedExample[]): number {
  let sum = 0;
  let count = 0;
  for (const e of heldOut) {
    const n = e.lossMask.slice(1).reduce((a, b) => a + b, 0);
    sum += n * model.loss(Int32Array.from(e.inputIds), Int32Array.from(e.lossMask), 1, e.inputIds.length);
    count += n;
  }
  return sum / count;
}

describe('compareMethods', () => {
  let c: Comparison;
  it('ranks by each method, removes its lowest layers, and measures every plan on the same held-out rows as the CPU reference does', async () => {
    c = await compareMethods(gpu, ckpt, { examples, padTokenId, tokenizer: ckpt.tokenizer }, { methods: ['last', 'magnitude', 'bi'], prune: 2, recoverSteps: 0, heldOut: HELD_OUT, seed: 0, settings: SETTINGS, weights: 'f32' });
    const { heldOut, train } = recoverySplit(examples, { heldOut: HELD_OUT, seed: 0 });
    expect([c.trainExamples, c.heldOutExamples]).toEqual([train.length, HELD_OUT]);
    expect(c.dense.params).toBe(DENSE_PARAMS);
    expect(c.dense.evaluation.loss).toBeCloseTo(await referenceLoss([], heldOut), 4);
    expect(c.methods.map((m) => m.method)).toEqual(['last', 'magnitude', 'bi']);
    expect(c.methods.find((m) => m.method === 'last')!.pruned).toEqual([3, 4]); // the two before the last layer
    for (const m of c.methods) {
      expect(m.pruned).toHaveLength(2);
      expect(m.pruned).not.toContain(0); // layer 0 always stays
      // the lowest-scored layers (1..5) are the ones removed
      const lowest = [1, 2, 3, 4, 5].sort((a, b) => m.layerScores[a] - m.layerScores[b]).slice(0, 2).sort();
      expect(m.pruned).toEqual(lowest);
      expect(m.params).toBe(DENSE_PARAMS - 2 * LAYER_PARAMS);
      expect(m.evaluation.loss).toBeCloseTo(await referenceLoss(m.pruned, heldOut), 4);
      expect(m.evaluation.accuracy?.items).toBe(HELD_OUT); // ARC rows are multiple-choice questions
      expect(m.recovered).toBeUndefined();
    }
  }, 600_000);

  it('states the agreement between the rankings it gave: Kendall τ-b and the overlap of the removed layers', () => {
    const [a, b] = [c.methods[1], c.methods[2]]; // magnitude and bi ('last' scores tie)
    let concordant = 0, discordant = 0;
    for (let i = 0; i < 6; i++) for (let j = i + 1; j < 6; j++) {
      const s = Math.sign(a.layerScores[i] - a.layerScores[j]) * Math.sign(b.layerScores[i] - b.layerScores[j]);
      if (s > 0) concordant++;
      if (s < 0) discordant++;
    }
    expect(concordant + discordant).toBe(15); // no ties among these scores: τ-b is τ-a
    expect(c.agreement.kendall[1][2]).toBeCloseTo((concordant - discordant) / 15, 10);
    const shared = a.pruned.filter((l) => b.pruned.includes(l)).length;
    expect(c.agreement.overlap[1][2]).toBeCloseTo(shared / (4 - shared), 10);
    expect(c.agreement.kendall.map((row, i) => row[i])).toEqual([1, 1, 1]);
  });

  it("with width: LLM-Pruner's width pruning at the depth plans' budget, its loss the CPU reference's on the hand-sliced weights", async () => {
    const r = await compareMethods(gpu, ckpt, { examples, padTokenId, tokenizer: ckpt.tokenizer }, { methods: ['last'], prune: 2, recoverSteps: 0, heldOut: HELD_OUT, seed: 0, settings: SETTINGS, weights: 'f32', width: { importance: 'l1' } });
    const w = r.width!;
    const depthParams = DENSE_PARAMS - 2 * LAYER_PARAMS;
    expect(w.targetRatio).toBeCloseTo(1 - depthParams / DENSE_PARAMS, 12);
    expect(Math.abs(w.params - depthParams)).toBeLessThanOrEqual(6 * 3 * 64); // within one MLP channel per layer of the budget
    const { weights, config } = await loadFixtureModel(fixtureDir('tiny-llama'));
    const sliced = slicedReferenceWeights(weights, w.kept);
    const cfg = slicedConfig(config, w.widths.kvHeads, w.widths.intermediate);
    const { heldOut } = recoverySplit(examples, { heldOut: HELD_OUT, seed: 0 });
    expect(w.evaluation.loss).toBeCloseTo(lossOf(new ReferenceModel({ ...sliced, config: cfg }, null, config.maxPositionEmbeddings), heldOut), 4);
    expect(w.flopsPerToken).toBeLessThan(r.dense.flopsPerToken);
  }, 600_000);

  it('with recovery steps: each plan again after a fresh LoRA on the training split', async () => {
    const r = await compareMethods(gpu, ckpt, { examples, padTokenId, tokenizer: ckpt.tokenizer }, { methods: ['last'], prune: 1, recoverSteps: 2, heldOut: HELD_OUT, seed: 0, settings: { ...SETTINGS, steps: 2 }, weights: 'f32' });
    const [row] = r.methods;
    expect(row.pruned).toEqual([4]);
    expect(row.recovered?.loss).toEqual(expect.any(Number));
    expect(row.recovered!.loss).not.toBe(row.evaluation.loss); // the adapter changed the model
    expect(row.recovered!.accuracy?.items).toBe(HELD_OUT);
  }, 600_000);
});

describe('gradprune compare: bad input', () => {
  it('refuses --layers the model cannot lose, naming the layer count', async () => {
    const r = await cli('compare', fixtureDir('tiny-llama'), '--data', dataFile, '--layers', '6');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--layers 6: the model has 6 layers.*at most 5/);
  });

  it('refuses an unknown method, listing the ones there are', async () => {
    const r = await cli('compare', fixtureDir('tiny-llama'), '--data', dataFile, '--layers', '2', '--methods', 'igia,shortgpt');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no layer-importance method 'shortgpt'.*igia, igia-code, bi, angular, taylor, magnitude, last/s);
  });
});
