import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { normalizeConfig, type ModelConfig } from '../model/config';
import { numel, TensorStore } from '../model/safetensors';
import { openFile, openFolder } from '../model/node-files';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { makePlan, mergesByReceiver } from './plan';

interface FixturePlan {
  tag: string;
  prune: number;
  merge: number;
  pruned_layers: number[];
  merged_layers: number[];
  receiver: Record<string, number>;
  kept_layers: number[];
  num_hidden_layers: number;
}

async function fixture(name: string) {
  const dir = fixtureDir(name);
  const ref = JSON.parse(await readFile(path.join(dir, 'reference/gradprune.json'), 'utf8')) as { layer_score: number[]; plans: FixturePlan[] };
  const config = normalizeConfig(JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')));
  return { dir, ref, config };
}

async function storeParams(files: Map<string, Blob>): Promise<number> {
  const store = await TensorStore.open(files);
  return [...store.tensors.values()].reduce((s, t) => s + numel(t.shape), 0);
}

describe('makePlan reproduces the fixtures plans', () => {
  for (const name of SCORED_FIXTURE_MODELS) {
    it(name, async () => {
      const { dir, ref, config } = await fixture(name);
      const paramsBefore = await storeParams(await openFolder(dir));
      for (const p of ref.plans) {
        const plan = makePlan(ref.layer_score, config, { prune: p.prune, merge: p.merge });
        expect(plan.pruned).toEqual(p.pruned_layers);
        expect(plan.merged).toEqual(p.merged_layers);
        expect(plan.kept).toEqual(p.kept_layers);
        expect(plan.kept.length).toBe(p.num_hidden_layers);
        expect(Object.fromEntries(Object.entries(plan.receiver).map(([k, v]) => [String(k), v]))).toEqual(p.receiver);
        expect(plan.dropped).toEqual(p.pruned_layers.filter((l) => !p.merged_layers.includes(l)));
        // Parameter counts against the real files: the model as stored, and the reference pruned model.
        const prunedFile = new Map([['model.safetensors', await openFile(path.join(dir, `reference/pruned_${p.tag}.safetensors`))]]);
        expect(plan.before.params).toBe(paramsBefore);
        expect(plan.after.params).toBe(await storeParams(prunedFile));
        expect(plan.after.layers).toBe(p.num_hidden_layers);
      }
    });
  }
});

describe('makePlan rules and edge cases', () => {
  let config: ModelConfig;
  const scores = [10, 3, 5, 1, 2, 0.5]; // six layers
  it('loads a config', async () => {
    config = (await fixture('tiny-llama')).config;
    expect(config.numLayers).toBe(6);
  });

  it('prunes nothing with N = 0', () => {
    const plan = makePlan(scores, config, { prune: 0 });
    expect(plan.pruned).toEqual([]);
    expect(plan.merged).toEqual([]);
    expect(plan.kept).toEqual([0, 1, 2, 3, 4, 5]);
    expect(plan.after).toEqual(plan.before);
  });

  it('defaults to merging min(3, N) and sends each merged layer to the nearest lower kept layer', () => {
    const plan = makePlan(scores, config, { prune: 4 });
    expect(plan.pruned).toEqual([1, 3, 4, 5]);
    expect(plan.merged).toEqual([1, 3, 4]);
    expect(plan.dropped).toEqual([5]);
    expect(plan.receiver).toEqual({ 1: 0, 3: 2, 4: 2 });
    expect(plan.newIndex).toEqual([0, null, 1, null, null, null]);
    expect(plan.fates[3]).toEqual({ kind: 'merged', into: 2 });
    expect(plan.fates[5]).toEqual({ kind: 'dropped' });
    expect(plan.fates[2]).toEqual({ kind: 'kept', newIndex: 1 });
    expect(mergesByReceiver(plan)).toEqual(new Map([[0, [1]], [2, [3, 4]]]));
    expect(makePlan(scores, config, { prune: 2 }).merged).toEqual([3, 5]);
  });

  it('never prunes layer 0 even when it scores lowest; N = layers − 1 keeps only layer 0', () => {
    const low0 = [0, 5, 4, 3, 2, 1];
    expect(makePlan(low0, config, { prune: 1 }).pruned).toEqual([5]);
    const all = makePlan(low0, config, { prune: 5, merge: 5 });
    expect(all.kept).toEqual([0]);
    expect(Object.values(all.receiver)).toEqual([0, 0, 0, 0, 0]);
    expect(all.after.layers).toBe(1);
  });

  it('refuses N ≥ layers and merge > N with an input error', () => {
    expect(() => makePlan(scores, config, { prune: 6 })).toThrow(GradPruneError);
    expect(() => makePlan(scores, config, { prune: 6 })).toThrow(/at most 5/);
    expect(() => makePlan(scores, config, { prune: 5, protectLast: true })).toThrow(/at most 4/);
    expect(() => makePlan(scores, config, { prune: 2, merge: 3 })).toThrow(/merge between 0 and 2/);
    expect(() => makePlan(scores.slice(1), config, { prune: 1 })).toThrow(/5 layer scores for a model of 6/);
    expect(() => makePlan([1, 2, NaN, 1, 1, 1], config, { prune: 1 })).toThrow(/layer 2 is NaN/);
    expect(() => makePlan(scores, config, {})).toThrow(/exactly one/);
  });

  it('protects the last layer when asked', () => {
    const plan = makePlan(scores, config, { prune: 2, protectLast: true });
    expect(plan.pruned).toEqual([3, 4]);
    expect(plan.kept).toContain(5);
  });

  it('breaks ties by pruning the higher layer and merging the lower one', () => {
    const tied = [9, 1, 1, 1, 1, 1];
    const plan = makePlan(tied, config, { prune: 2, merge: 1 });
    expect(plan.pruned).toEqual([4, 5]);
    expect(plan.merged).toEqual([4]);
  });

  it('turns a ratio of decoder parameters or a target parameter count into N', () => {
    expect(makePlan(scores, config, { pruneRatio: 0.4 }).pruned.length).toBe(2); // round(2.4)
    expect(makePlan(scores, config, { pruneRatio: 0.5 }).pruned.length).toBe(3);
    const full = makePlan(scores, config, { prune: 0 });
    const perLayer = full.before.decoderParams / 6;
    const target = full.before.params - 2 * perLayer; // exactly two layers fewer
    expect(makePlan(scores, config, { targetParams: target }).pruned.length).toBe(2);
    expect(makePlan(scores, config, { targetParams: target - 1 }).pruned.length).toBe(3);
    expect(() => makePlan(scores, config, { targetParams: 10 })).toThrow(/No plan reaches 10 parameters/);
    expect(() => makePlan(scores, config, { pruneRatio: 1.2 })).toThrow(/must be in \[0, 1\)/);
  });

  it('counts weight memory in the dtype and attention FLOPs at the context length', () => {
    const f32 = makePlan(scores, config, { prune: 2, dtype: 'F32', contextLength: 0 });
    const bf16 = makePlan(scores, config, { prune: 2, dtype: 'BF16', contextLength: 100 });
    expect(f32.after.weightBytes).toBe(4 * f32.after.params);
    expect(bf16.after.weightBytes).toBe(2 * bf16.after.params);
    // tiny-llama: per-layer linear weights 2·(64·64) + 2·(32·64) + 3·(176·64) = 46080; lm_head 512·64.
    expect(f32.after.flopsPerToken).toBe(2 * (4 * 46080 + 512 * 64));
    expect(bf16.after.flopsPerToken - f32.after.flopsPerToken).toBe(4 * 4 * 4 * 16 * 100);
  });
});
