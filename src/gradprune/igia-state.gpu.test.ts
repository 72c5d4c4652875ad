// The IGIA state saved to scores.igia.safetensors and loaded back rebuilds exactly the F the live scorer
// rebuilds, and a merge from it equals the merge from the live scorer (and the Hugging Face reference).
import { describe, expect, it } from 'vitest';
import { countMismatches, MAX_FLIPPED_FRACTION } from '../nn/reference/compare';
import { createTensor, readback, upload, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearWeightName } from '../model/config';
import { DEFAULT_LORA } from '../nn/lora';
import { openReference, referenceFixtureScoring } from '../nn/reference/fixture';
import { fixtureDir } from '../testing/paths';
import { modelFingerprint } from '../model/fingerprint';
import { IgiaScorer, type IgiaModuleGrads } from './igia';
import { decodeIgiaState, encodeIgiaState, IgiaRebuilder, igiaStateFromScorer, mergeableLayers } from './igia-state';
import { mergeLayers } from './merge';
import { makePlan } from './plan';
import { testGpu } from '../testing/gpu';

const gpu = await testGpu();

describe('IGIA state: save, load, rebuild, merge (tiny-llama, reference trainer gradients)', () => {
  it('a merge from the loaded state equals the merge from the live scorer and matches the reference', async () => {
    const { device } = gpu;
    const dir = fixtureDir('tiny-llama');
    const { config, store, ref, refJson, adapters, steps } = await referenceFixtureScoring(dir);
    const S = steps.length;
    const rank = DEFAULT_LORA.rank;
    const buffers: Tensor[] = [];
    const grads: IgiaModuleGrads[] = adapters.map((a) => {
      const dA = createTensor(device, `${a.name}.dA`, [rank, a.inFeatures]);
      const dB = createTensor(device, `${a.name}.dB`, [a.outFeatures, rank]);
      buffers.push(dA, dB);
      return { layer: a.layer, module: a.module, gA: { buffer: dA }, gB: { buffer: dB } };
    });
    const scorer = new IgiaScorer(device, config, grads, { rank, maxSteps: S });
    for (const step of steps) {
      adapters.forEach((a, i) => {
        upload(device, buffers[2 * i], step.grads.get(a.name)!.dA);
        upload(device, buffers[2 * i + 1], step.grads.get(a.name)!.dB);
      });
      const encoder = device.createCommandEncoder();
      scorer.record(encoder);
      device.queue.submit([encoder.finish()]);
    }
    const scores = await scorer.readScores();
    const fingerprint = await modelFingerprint({ config, store });
    const state = await igiaStateFromScorer(scorer, config, rank, fingerprint);
    expect(state.steps).toBe(S);
    expect(mergeableLayers(state)).toEqual([1, 2, 3, 4, 5]); // layer 0 is never merged, so its factors are not kept

    const blob = encodeIgiaState(state);
    const loaded = await decodeIgiaState(blob, 'scores.igia.safetensors', config, fingerprint);
    expect([...loaded.factors.keys()]).toEqual([...state.factors.keys()]);
    for (const [name, values] of state.factors) expect(loaded.factors.get(name), name).toEqual(values);

    // F from the loaded state is bit-identical to the live scorer's (same kernel, same factors), and near the reference.
    const rebuilder = new IgiaRebuilder(device, config, loaded);
    for (const layer of [1, 5]) {
      for (const m of LINEAR_MODULES) {
        const live = scorer.rebuildImportance(layer, m);
        const fromFile = rebuilder.importance(layer, m);
        const a = await readback(device, live);
        const b = await readback(device, fromFile);
        expect(b, `F ${layer} ${m}`).toEqual(a);
        const want = await ref.readF32(`igia.${linearWeightName(layer, m)}`);
        let num = 0, den = 0;
        for (let i = 0; i < want.length; i++) { num += (b[i] - want[i]) ** 2; den += want[i] ** 2; }
        expect(Math.sqrt(num / den), `F ${layer} ${m} vs reference`).toBeLessThanOrEqual(1e-3);
        live.buffer.destroy();
        fromFile.buffer.destroy();
      }
    }

    for (const p of refJson.plans as { tag: string; prune: number; merge: number; merged_layers: number[] }[]) {
      const plan = makePlan(scores.layerScore, config, { prune: p.prune, merge: p.merge });
      expect(plan.merged).toEqual(p.merged_layers);
      const source = (importance: (l: number, m: (typeof LINEAR_MODULES)[number]) => Tensor) => ({
        readWeight: (n: string) => store.readF32(n),
        importance: async (l: number, m: (typeof LINEAR_MODULES)[number]) => importance(l, m),
      });
      const fromScorer = await mergeLayers(device, plan, config, source((l, m) => scorer.rebuildImportance(l, m)));
      const fromFile = await mergeLayers(device, plan, config, source((l, m) => rebuilder.importance(l, m)));
      expect(fromFile.addedElements).toEqual(fromScorer.addedElements);
      expect(fromFile.thresholds).toEqual(fromScorer.thresholds);
      expect([...fromFile.weights.keys()]).toEqual([...fromScorer.weights.keys()]);
      for (const [name, w] of fromScorer.weights) expect(fromFile.weights.get(name), `${p.tag} ${name}`).toEqual(w);
      const expected = await openReference(dir, `pruned_${p.tag}.safetensors`);
      for (const r of new Set(Object.values(plan.receiver))) {
        for (const m of LINEAR_MODULES) {
          const got = fromFile.weights.get(linearWeightName(r, m))!;
          const want = await expected.readF32(linearWeightName(plan.newIndex[r]!, m));
          const flipped = countMismatches(got, want);
          expect(flipped / want.length, `${p.tag} layer ${r} ${m}`).toBeLessThanOrEqual(MAX_FLIPPED_FRACTION);
        }
      }
    }
    gpu.throwIfFailed();
    scorer.destroy();
    for (const t of buffers) t.buffer.destroy();
  });
});
