// The Check's comparison of methods through the worker host (Node, real Dawn device): tiny-llama and 20 ARC-Easy rows
// (4 held out), scored once; 'last' with N = 1, 2 removes layer 4, then 3 and 4, and each plan's held-out loss is
// the CPU reference's (transformers-checked) loss of the dense weights with those layers left out, on the same held-out
// rows the session split off; the parameter counts are the fixture's shapes by hand. Refused: no scores yet, angular
// beyond the blocks the run gathered, an N the model cannot lose.
import { afterAll, describe, expect, it } from 'vitest';
import { buildExamples, readDataset, splitTrainHeldOut } from '../data';
import type { TokenizedExample } from '../data/types';
import { openCheckpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';
import { loadFixtureModel } from '../nn/reference/fixture';
import { ReferenceModel } from '../nn/reference/model';
import { fixtureDir } from '../testing/paths';
import { ARC_ROWS, folderEntries, hostWithDevices } from '../testing/worker-journey';

// tiny-llama (fixtures/README.md): 6 layers; hidden 64, q/o 64x64, k/v 32x64, MLP 176, two norms per layer; vocab 512, untied.
const LAYER_PARAMS = 64 * 64 + 2 * (32 * 64) + 64 * 64 + 3 * (64 * 176) + 2 * 64;
const DENSE_PARAMS = 6 * LAYER_PARAMS + 2 * 512 * 64 + 64;
const DATA_OPTIONS = { maxSeqLen: 128, heldOut: 4, seed: 0 };

const { host, devices, result, errorOf } = hostWithDevices();
afterAll(() => {
  for (const d of devices) d.device.destroy();
});

/** The held-out rows as the session splits them (the same reader, tokenizer and seeded split). */
async function heldOutRows(): Promise<TokenizedExample[]> {
  const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')), 'tiny-llama');
  const set = buildExamples(await readDataset(new Blob([ARC_ROWS.join('\n') + '\n']), 'arc.jsonl'), ckpt.tokenizer, { maxSeqLen: DATA_OPTIONS.maxSeqLen });
  return splitTrainHeldOut(set.examples, DATA_OPTIONS).heldOut;
}

/** The token-weighted held-out loss of the dense weights without `removed`, on the CPU reference. */
async function referenceLoss(removed: readonly number[], heldOut: readonly TokenizedExample[]): Promise<number> {
  const { weights, config } = await loadFixtureModel(fixtureDir('tiny-llama'));
  const layers = weights.layers.filter((_, l) => !removed.includes(l));
  const model = new ReferenceModel({ ...weights, layers, config: { ...config, numLayers: layers.length } }, null, config.maxPositionEmbeddings);
  let sum = 0;
  let count = 0;
  for (const e of heldOut) {
    const n = e.lossMask.slice(1).reduce((a, b) => a + b, 0);
    sum += n * model.loss(Int32Array.from(e.inputIds), Int32Array.from(e.lossMask), 1, e.inputIds.length);
    count += n;
  }
  return sum / count;
}

describe('worker host: evaluatePlans (the Check compares several methods’ plans)', () => {
  it('refuses before there are scores, saying to score first', async () => {
    await host.handle({ type: 'loadModel', id: 1, name: 'tiny-llama', files: await folderEntries('tiny-llama') });
    await host.handle({ type: 'loadDataset', id: 2, file: new Blob([ARC_ROWS.join('\n') + '\n']), fileName: 'arc.jsonl', options: DATA_OPTIONS });
    await host.handle({ type: 'evaluatePlans', id: 3, options: { methods: ['last'], counts: [1], maxExamples: 4 } });
    expect(errorOf(3)).toMatchObject({ error: { code: 'input', subject: 'scores' } });
  });

  it("'last' with N = 1, 2: the layers before the last removed, each plan's loss the CPU reference's, params by hand", async () => {
    await host.handle({ type: 'score', id: 4, settings: { steps: 3, batchSize: 2, seqLen: 128 } });
    result('scored', 4);
    await host.handle({ type: 'evaluatePlans', id: 5, options: { methods: ['last'], counts: [1, 2], maxExamples: 4, weights: 'f32' } });
    const r = result('plansEvaluated', 5);
    expect([r.rows, r.items]).toEqual([4, 4]); // ARC rows are multiple-choice questions
    expect(r.plans.map((p) => [p.method, p.prune, p.pruned])).toEqual([
      [null, 0, []],
      ['last', 1, [4]],
      ['last', 2, [3, 4]],
    ]);
    const heldOut = await heldOutRows();
    expect(heldOut).toHaveLength(4);
    for (const p of r.plans) {
      expect(p.params).toBe(DENSE_PARAMS - p.prune * LAYER_PARAMS);
      expect(p.removedFraction).toBeCloseTo((p.prune * LAYER_PARAMS) / DENSE_PARAMS, 12);
      expect(p.loss!).toBeCloseTo(await referenceLoss(p.pruned, heldOut), 4);
      expect(p.perplexity!).toBeCloseTo(Math.exp(p.loss!), 6);
      expect(p.acc! >= 0 && p.acc! <= 1).toBe(true);
      expect(Number.isInteger(p.acc! * 4)).toBe(true); // a share of 4 questions
    }
  }, 600_000);

  it('refuses angular beyond the blocks the run gathered, and an N the model cannot lose, before measuring anything', async () => {
    await host.handle({ type: 'evaluatePlans', id: 6, options: { methods: ['last', 'angular'], counts: [1, 3], maxExamples: 4 } });
    expect(errorOf(6)).toMatchObject({ error: { code: 'input', subject: 'rankedBy' } });
    await host.handle({ type: 'evaluatePlans', id: 7, options: { methods: ['last'], counts: [6], maxExamples: 4 } });
    expect(errorOf(7)).toMatchObject({ error: { code: 'input', subject: 'counts' } });
  });
});
