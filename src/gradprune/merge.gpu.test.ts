import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { countMismatches, MAX_FLIPPED_FRACTION } from '../nn/reference/compare';
import { LINEAR_MODULES, linearShape, linearWeightName, normalizeConfig } from '../model/config';
import { openFile, openFolder } from '../model/node-files';
import { TensorStore } from '../model/safetensors';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { mergeLayers } from './merge';
import { makePlan } from './plan';
import { prunedTensorNames } from './prune';
import { testGpu } from '../testing/gpu';

const gpu = await testGpu();

interface FixturePlan {
  tag: string;
  prune: number;
  merge: number;
  merged_elements: Record<string, number>;
}

const storeOf = async (file: string) => TensorStore.open(new Map([['model.safetensors', await openFile(file)]]));

describe('GPU merge reproduces the reference pruned checkpoints', () => {
  for (const name of SCORED_FIXTURE_MODELS) {
    it(name, async () => {
      const dir = fixtureDir(name);
      const ref = JSON.parse(await readFile(path.join(dir, 'reference/gradprune.json'), 'utf8')) as { layer_score: number[]; plans: FixturePlan[] };
      const config = normalizeConfig(JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')));
      const model = await TensorStore.open(await openFolder(dir));
      const igia = await storeOf(path.join(dir, 'reference/gradprune.safetensors'));
      for (const p of ref.plans) {
        const plan = makePlan(ref.layer_score, config, { prune: p.prune, merge: p.merge });
        const result = await mergeLayers(gpu.device, plan, config, {
          readWeight: (n) => model.readF32(n),
          importance: (layer, m) => igia.readF32(`igia.${linearWeightName(layer, m)}`),
        });
        gpu.throwIfFailed();
        const expected = await storeOf(path.join(dir, `reference/pruned_${p.tag}.safetensors`));
        const names = prunedTensorNames(plan, model.tensors.keys());
        expect(names.map((n) => n.name).sort()).toEqual([...expected.tensors.keys()].sort());

        let mergedTensors = 0;
        for (const { name: newName, from } of names) {
          const want = await expected.readF32(newName);
          const merged = result.weights.get(from);
          const got = merged ?? (await model.readF32(from));
          expect(got.length, newName).toBe(want.length);
          const flipped = countMismatches(got, want);
          if (merged) {
            mergedTensors++;
            expect(flipped / want.length, `${p.tag} ${newName}`).toBeLessThanOrEqual(MAX_FLIPPED_FRACTION);
          } else expect(flipped, `${p.tag} ${newName}`).toBe(0);
        }
        expect(mergedTensors).toBe(7 * new Set(Object.values(plan.receiver)).size);

        expect(Object.keys(result.addedElements).sort()).toEqual(Object.keys(p.merged_elements).sort());
        for (const [key, count] of Object.entries(p.merged_elements)) {
          const m = key.split('.')[1] as Parameters<typeof linearWeightName>[1];
          const numel = (await igia.readF32(`igia.${linearWeightName(Number(key.split('->')[0]), m)}`)).length;
          expect(Math.abs(result.addedElements[key] - count), key).toBeLessThanOrEqual(Math.floor(0.001 * numel));
        }
      }
    });
  }
});

describe('GPU merge vs a CPU merge on synthetic weights with tied and zero importances', () => {
  it('selects the exact k-th largest F and adds sign-consistent donor elements', async () => {
    const config = normalizeConfig({ model_type: 'llama', hidden_size: 30, num_hidden_layers: 4, num_attention_heads: 3, num_key_value_heads: 1, intermediate_size: 37, vocab_size: 50 });
    const plan = makePlan([5, 1, 2, 0.5], config, { prune: 3, merge: 2 }); // 1 and 2 merge into 0; 3 dropped
    expect(plan.receiver).toEqual({ 1: 0, 2: 0 });
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const weights = new Map<string, Float32Array>();
    const importances = new Map<string, Float32Array>();
    const levels = [0, 0, 1e-42, 0.25, 0.25, 0.5, 3, 3, 3, 7e-3]; // zeros, a denormal, many ties
    for (let layer = 0; layer < 4; layer++) {
      for (const m of LINEAR_MODULES) {
        const n = linearShape(config, m)[0] * linearShape(config, m)[1];
        // Some exact zeros: a zero product is not sign-consistent.
        weights.set(linearWeightName(layer, m), Float32Array.from({ length: n }, () => (rand() < 0.1 ? 0 : rand() - 0.5)));
        importances.set(linearWeightName(layer, m), Float32Array.from({ length: n }, () => levels[Math.floor(rand() * levels.length)] * (1 + Math.floor(rand() * 3))));
      }
    }
    const result = await mergeLayers(gpu.device, plan, config, {
      readWeight: async (n) => weights.get(n)!,
      importance: async (layer, m) => importances.get(linearWeightName(layer, m))!,
    });
    gpu.throwIfFailed();
    for (const m of LINEAR_MODULES) {
      const wr = weights.get(linearWeightName(0, m))!;
      const want = Float64Array.from(wr);
      for (const p of [1, 2]) {
        const f = importances.get(linearWeightName(p, m))!;
        const wp = weights.get(linearWeightName(p, m))!;
        const k = Math.floor(0.2 * f.length);
        const threshold = [...f].sort((a, b) => b - a)[k - 1];
        expect(result.thresholds[`${p}->0.${m}`]).toBe(threshold);
        let count = 0;
        for (let i = 0; i < f.length; i++) {
          if (f[i] >= threshold && wr[i] * wp[i] > 0) {
            want[i] += wp[i];
            count++;
          }
        }
        expect(result.addedElements[`${p}->0.${m}`]).toBe(count);
      }
      const got = result.weights.get(linearWeightName(0, m))!;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-6);
    }
  });
});
