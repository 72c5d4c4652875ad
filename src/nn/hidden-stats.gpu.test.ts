// Hidden-state statistics gathered in the engine's forward passes against the CPU reference's residual stream
// (reference/model.ts, itself checked against Hugging Face): resident and streamed weights, gradients on (a
// checkpointed backward re-runs each layer's forward; it must not count twice), and bad pairs.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import type { HiddenStatePair } from './hidden-stats';
import { hiddenDistanceSum } from './kernels/hidden-distance.cpu';
import { DEFAULT_LORA } from './lora';
import { GpuModel } from './model';
import { loraGradCase } from './reference/fixture';
import { hiddenStates } from './reference/hidden-states';
import { loraState, ReferenceModel } from './reference/model';

const gpu = await testGpu();

/** Block Influence's pairs and angular distance's for n = 2: what a scoring run gathers for both. */
const pairsFor = (L: number): HiddenStatePair[] => [
  ...Array.from({ length: L }, (_, l) => ({ from: l, to: l + 1, measure: 'cosine' as const })),
  ...Array.from({ length: L - 1 }, (_, l) => ({ from: l, to: l + 2, measure: 'angular' as const })),
];

describe.each(['tiny-llama', 'tiny-qwen3'])('hidden-state statistics on %s', (name) => {
  it.each(['resident', 'streamed'] as const)('match the CPU reference (%s weights, two passes with gradients)', async (residency) => {
    const { fm, B, T, adapters, batch } = await loraGradCase(fixtureDir(name));
    const L = fm.config.numLayers;
    const C = fm.config.hiddenSize;
    const pairs = pairsFor(L);
    const ref = new ReferenceModel(fm.weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const h = hiddenStates(ref.forward(batch.inputIds, B, T).tape);
    const expected = pairs.map((p) => hiddenDistanceSum(h[p.from], h[p.to], batch.lossMask, T, C, p.measure));

    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, residency });
    const collector = model.collectHiddenStates(pairs);
    await model.run(batch, true);
    await model.run(batch, true); // no update between: the same states again
    const got = await collector.read();
    const again = await collector.read(); // its timing pass leaves the sums as they were
    expect([again.passes, again.tokens, again.mean]).toEqual([got.passes, got.tokens, got.mean]);
    model.destroy();

    expect(got.passes).toBe(2);
    expect(got.tokens).toBe(2 * expected[0].count);
    expect(expected[0].count).toBeGreaterThan(0);
    pairs.forEach((p, i) => {
      const want = expected[i].sum / expected[i].count;
      expect(Math.abs(got.mean[i] - want), `${p.measure} (${p.from}, ${p.to}): ${got.mean[i]} vs ${want}`).toBeLessThanOrEqual((p.measure === 'cosine' ? 1e-6 : 5e-4) * want); // arccos: WGSL's acos accuracy (4096 ULP)
    });
    expect(got.gpuBytes).toBeGreaterThanOrEqual((pairs.length * B * T + pairs.length + 2) * 4);
  });
});

describe('hidden-state statistics: bad input', () => {
  it('refuses a pair outside the model, naming it', async () => {
    const { fm, B, T } = await loraGradCase(fixtureDir('tiny-llama'));
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: null });
    const L = fm.config.numLayers;
    expect(() => model.collectHiddenStates([{ from: 1, to: L + 1, measure: 'cosine' }])).toThrow(GradPruneError);
    expect(() => model.collectHiddenStates([{ from: 2, to: 2, measure: 'angular' }])).toThrow(/pair \(2, 2\)/);
    model.destroy();
  });
});
