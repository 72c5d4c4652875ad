// runScoring (GPU trainer + IGIA recorded into each step) and runPrune (plan → F from the IGIA state → merge →
// export) against the Hugging Face + PEFT reference run of each scored fixture (reference/gradprune.*).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { openCheckpoint } from '../model/checkpoint';
import { LINEAR_MODULES, linearWeightName } from '../model/config';
import { openFolder } from '../model/node-files';
import { TensorStore } from '../model/safetensors';
import { DEFAULT_LORA, loadLoraAdapters } from '../nn/lora';
import { ranking, relError } from '../nn/reference/compare';
import { fixtureRunBatches, openReference } from '../nn/reference/fixture';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { runPrune, runScoring, type ScoringData, type ScoringProgress } from './pipeline';

describe('runScoring and runPrune reproduce reference/gradprune.safetensors', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await requestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  for (const name of SCORED_FIXTURE_MODELS) {
    it(name, async () => {
      const dir = fixtureDir(name);
      const ckpt = await openCheckpoint(await openFolder(dir), name);
      const { config } = ckpt;
      const ref = await openReference(dir, 'gradprune.safetensors');
      const refJson = JSON.parse(await readFile(path.join(dir, 'reference/gradprune.json'), 'utf8'));
      const { S, B, T, batch } = await fixtureRunBatches(ref);
      const data: ScoringData = { kind: 'batches', batch };
      const progress: ScoringProgress[] = [];
      // The fixture's run: its init adapters and batches; lr 1e-3·min(1, s/2) = 2 warmup steps then constant; wd 0.1; clip 1.
      const result = await runScoring(
        gpu,
        ckpt,
        data,
        // f32 weights: the f32 tolerances below (f16 storage is checked in scoring.f16.gpu.test.ts).
        { steps: S, batchSize: B, seqLen: T, lr: 1e-3, warmupSteps: 2, schedule: 'constant', weightDecay: 0.1, maxGradNorm: 1, weights: 'f32' },
        { initialAdapters: await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n), 'init.'), progressIntervalMs: 0, onStep: (p) => progress.push(p) },
      );

      const loss = await ref.readF32('loss');
      const lr = await ref.readF32('lr');
      const gradNorm = await ref.readF32('grad_norm');
      result.losses.forEach((v, s) => expect(relError(v, loss[s]), `loss[${s}]`).toBeLessThanOrEqual(1e-4));
      result.lrs.forEach((v, s) => expect(v, `lr[${s}]`).toBeCloseTo(lr[s], 9));
      result.gradNorms.forEach((v, s) => expect(relError(v, gradNorm[s]), `grad_norm[${s}]`).toBeLessThanOrEqual(1e-3));
      const layerScore = await ref.readF32('layer_score');
      const moduleScore = await ref.readF32('module_score');
      const layerScoreCode = await ref.readF32('layer_score_code');
      result.layerScores.forEach((v, l) => expect(relError(v, layerScore[l]), `layer_score[${l}]`).toBeLessThanOrEqual(1e-3));
      result.layerScoresCode.forEach((v, l) => expect(relError(v, layerScoreCode[l]), `layer_score_code[${l}]`).toBeLessThanOrEqual(1e-3));
      result.moduleScores.flat().forEach((v, i) => expect(relError(v, moduleScore[i]), `module_score[${i}]`).toBeLessThanOrEqual(1e-3));
      expect(ranking(result.layerScores)).toEqual(ranking(layerScore));

      // Progress: one report per step (interval 0), the live curve growing, the last report's scores the final ones.
      expect(progress.map((p) => p.step)).toEqual([...Array(S).keys()]);
      expect(progress[S - 1].losses).toEqual(result.losses);
      expect(progress[S - 1].layerScores).toEqual(result.layerScores);
      expect(progress[0].layerScores.every((v) => v === 0)).toBe(true); // B = 0 at step 0, so S = gB·gA = 0

      // Prune from the in-memory result: the exported checkpoint holds the reference pruned weights.
      for (const p of refJson.plans as { tag: string; prune: number; merge: number; merged_layers: number[] }[]) {
        const pruned = await runPrune(gpu, ckpt, result, result.igia, { prune: p.prune, merge: p.merge });
        expect(pruned.plan.merged).toEqual(p.merged_layers);
        const exported = await openCheckpoint(pruned.files, `${name}-pruned`);
        expect(exported.config.numLayers).toBe(config.numLayers - p.prune);
        const expected = await TensorStore.open(new Map([['model.safetensors', new Blob([await readFile(path.join(dir, `reference/pruned_${p.tag}.safetensors`))])]]));
        expect([...exported.store.tensors.keys()].sort()).toEqual([...expected.tensors.keys()].sort());
        const receivers = new Set(Object.values(pruned.plan.receiver).map((r) => pruned.plan.newIndex[r]!));
        for (const tensor of expected.tensors.keys()) {
          const want = await expected.readF32(tensor);
          const got = await exported.store.readF32(tensor);
          const layer = /^model\.layers\.(\d+)\./.exec(tensor);
          const merged = layer && receivers.has(Number(layer[1])) && LINEAR_MODULES.some((m) => tensor === linearWeightName(Number(layer[1]), m));
          // Merged weights are rounded once into the model's dtype (half an ulp: at most 2^-11 of the value for F16, 2^-8 for BF16); ≤ 0.1%
          // of a merged weight's elements may flip at the 20% threshold. Every other tensor is the original, exactly.
          const rel = { F32: 0, F16: 2 ** -11, BF16: 2 ** -8 }[ckpt.dtype];
          let off = 0;
          for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i] - want[i]) <= (merged ? 1e-5 + rel * Math.abs(want[i]) : 0))) off++;
          if (merged) expect(off / want.length, `${p.tag} ${tensor}`).toBeLessThanOrEqual(0.001);
          else expect(off, `${p.tag} ${tensor}`).toBe(0);
        }
      }
      gpu.throwIfFailed();
    });
  }

  it('cancels between steps with a GradPruneError("cancelled")', async () => {
    const dir = fixtureDir('tiny-llama');
    const ckpt = await openCheckpoint(await openFolder(dir), 'tiny-llama');
    const ref = await openReference(dir, 'gradprune.safetensors');
    const ids = await ref.readI32('input_ids');
    const mask = await ref.readI32('loss_mask');
    const controller = new AbortController();
    const steps: number[] = [];
    const run = runScoring(
      gpu,
      ckpt,
      { kind: 'batches', batch: () => ({ B: 1, T: 32, inputIds: ids.subarray(0, 32), lossMask: mask.subarray(0, 32), padTokenId: 0 }) },
      { steps: 5, batchSize: 1, seqLen: 32 },
      {
        progressIntervalMs: 0,
        signal: controller.signal,
        onStep: (p) => {
          steps.push(p.step);
          if (p.step === 1) controller.abort();
        },
      },
    );
    const err = await run.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).code).toBe('cancelled');
    expect((err as Error).message).toBe('Scoring was cancelled after 2 steps.');
    expect(steps).toEqual([0, 1]);
  });
});
