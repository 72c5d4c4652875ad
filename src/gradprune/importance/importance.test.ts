// The data-free methods against direct computations, the plan each method's scores make, and bad input.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../../errors';
import { loadFixtureModel } from '../../nn/reference/fixture';
import { fixtureDir } from '../../testing/paths';
import { makePlan } from '../plan';
import { angularScores, hiddenStatePairsFor, IMPORTANCE_METHODS, importanceMethod, lastLayersRemoved } from './index';

/** Σ|W| / numel over a layer's seven *_proj.weight tensors, straight from model.safetensors (F32 or BF16). */
async function magnitudeFromFile(dir: string, numLayers: number): Promise<number[]> {
  const bytes = await readFile(path.join(dir, 'model.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const sum = new Array(numLayers).fill(0);
  const count = new Array(numLayers).fill(0);
  for (const [name, t] of Object.entries<any>(header)) {
    const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\.\w+_proj\.weight$/.exec(name);
    if (!m) continue;
    const l = Number(m[1]);
    const [begin, end] = t.data_offsets;
    const at = 8 + headerLength + begin;
    const n = t.dtype === 'F32' ? (end - begin) / 4 : (end - begin) / 2;
    for (let i = 0; i < n; i++) {
      const v = t.dtype === 'F32' ? bytes.readFloatLE(at + 4 * i) : new Float32Array(new Uint32Array([bytes.readUInt16LE(at + 2 * i) << 16]).buffer)[0];
      sum[l] += Math.abs(v);
    }
    count[l] += n;
  }
  return sum.map((s, l) => s / count[l]);
}

describe.each(['tiny-llama', 'tiny-qwen3'])('data-free methods on %s', (name) => {
  it('magnitude is Σ|W| / size over each layer\'s linear weights', async () => {
    const model = await loadFixtureModel(fixtureDir(name));
    const L = model.config.numLayers;
    const got = await importanceMethod('magnitude').compute({ model, prune: 2 });
    const want = await magnitudeFromFile(fixtureDir(name), L);
    expect(got.layerScores).toHaveLength(L);
    got.layerScores.forEach((s, l) => expect(s, `layer ${l}`).toBeCloseTo(want[l], 7));
    expect(new Set(got.layerScores).size).toBe(L); // not a constant ranking
    expect(got.cost.gpuBytes).toBe(0);
    expect(got.cost.hostBytes).toBeGreaterThan(0);
  });

  it('last: the plan removes exactly the N layers before the last, for every N allowed', async () => {
    const model = await loadFixtureModel(fixtureDir(name));
    const L = model.config.numLayers;
    for (let n = 0; n <= L - 2; n++) {
      const { layerScores } = await importanceMethod('last').compute({ model, prune: n });
      const plan = makePlan(layerScores, model.config, { prune: n, merge: 0 });
      const expected = Array.from({ length: n }, (_, i) => L - 1 - n + i);
      expect(plan.pruned, `N = ${n}`).toEqual(expected);
      expect(lastLayersRemoved(L, n)).toEqual(expected);
      expect(plan.kept).toContain(L - 1);
    }
    await expect(importanceMethod('last').compute({ model, prune: L - 1 })).rejects.toThrow(new RegExp(`cannot remove ${L - 1} of ${L} layers: it removes between 0 and ${L - 2}`));
  });
});

describe('angular distance: the chosen block and its scores', () => {
  it('picks the block with the smallest distance, and makePlan removes exactly it', async () => {
    const model = await loadFixtureModel(fixtureDir('tiny-llama'));
    const L = model.config.numLayers; // 6
    // Blocks of n = 2 start at layers 1..4; the smallest distance is the block starting at 3.
    const distances = [0.30, 0.25, 0.10, 0.20];
    const { layerScores, block } = angularScores(L, 2, distances);
    expect(block).toEqual({ start: 3, size: 2, distance: 0.10 });
    expect(makePlan(layerScores, model.config, { prune: 2, merge: 0 }).pruned).toEqual([3, 4]);
    // A tie with the chosen block's distance elsewhere (layer 2 is also in the block 2..3 of distance 0.10): still the block.
    const tied = angularScores(L, 2, [0.30, 0.10, 0.10, 0.20]);
    expect(tied.block.start).toBe(3);
    expect(makePlan(tied.layerScores, model.config, { prune: 2, merge: 0 }).pruned).toEqual([3, 4]);
  });

  it('refuses n ≥ the number of layers (and n = 0) with a message saying what is allowed', async () => {
    const model = await loadFixtureModel(fixtureDir('tiny-llama'));
    const L = model.config.numLayers;
    for (const n of [L, L + 3, 0]) {
      const err = await importanceMethod('angular').compute({ model, prune: n }).catch((e) => e);
      expect(err).toBeInstanceOf(GradPruneError);
      expect(err.message).toMatch(new RegExp(`cannot remove ${n} of ${L} layers: it removes between 1 and ${L - 1}`));
    }
  });

  it('a scoring method without a scoring run, or without the hidden states it reads, says so', async () => {
    const model = await loadFixtureModel(fixtureDir('tiny-llama'));
    await expect(importanceMethod('bi').compute({ model, prune: 2 })).rejects.toThrow(/no scoring run was given/);
    await expect(importanceMethod('igia').compute({ model, prune: 2 })).rejects.toThrow(/no scoring run was given/);
  });
});

describe('the method list', () => {
  it('lists every method by id and refuses an unknown one, naming the choices', () => {
    expect([...IMPORTANCE_METHODS.keys()].sort()).toEqual(['angular', 'bi', 'igia', 'igia-code', 'last', 'magnitude', 'taylor']);
    expect(() => importanceMethod('shortgpt')).toThrow(/no layer-importance method 'shortgpt'.*Choose from: igia, igia-code, bi, angular, taylor, magnitude, last/);
  });

  it('asks a scoring run for each hidden-state pair once: BI (ℓ, ℓ+1), angular (ℓ, ℓ+n) for blocks after layer 0', () => {
    const pairs = hiddenStatePairsFor([importanceMethod('bi'), importanceMethod('angular'), importanceMethod('bi')], 6, 2);
    expect(pairs.filter((p) => p.measure === 'cosine').map((p) => [p.from, p.to])).toEqual([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6]]);
    expect(pairs.filter((p) => p.measure === 'angular').map((p) => [p.from, p.to])).toEqual([[1, 3], [2, 4], [3, 5], [4, 6]]);
    expect(hiddenStatePairsFor([importanceMethod('magnitude'), importanceMethod('igia')], 6, 2)).toEqual([]);
  });
});
