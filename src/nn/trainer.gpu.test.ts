// The GPU training step against the fixtures' 12-step GradPruner run: per-step loss, lr and pre-clip gradient
// norm; and, through the afterClip hook, the clipped gradients of every step, whose IGIA scores must match.
import { describe, expect, it } from 'vitest';
import { batchOfRows } from '../data/batch';
import { GradPruneError } from '../errors';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { DEFAULT_LORA, initLoraAdapters, loadLoraAdapters } from './lora';
import { GpuModel } from './model';
import { SCORING_ADAMW } from './optimizer';
import { ranking, relError, relL2 } from './reference/compare';
import { loadFixtureModel, openReference } from './reference/fixture';
import { igiaFromSteps, type StepGrad } from './reference/igia';
import { SCORING_SCHEDULE } from './schedule';
import { Trainer } from './trainer';

const gpu = await testGpu();

async function readBuffer(b: GPUBuffer): Promise<Float32Array> {
  await b.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(b.getMappedRange().slice(0));
  b.unmap();
  b.destroy();
  return out;
}

describe.each(SCORED_FIXTURE_MODELS)('GPU training on %s', (name) => {
  it('matches the 12-step scoring run: loss, lr, grad norm, and IGIA from the clipped gradients', async () => {
    const dir = fixtureDir(name);
    const { config, store } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'gradprune.safetensors');
    const [S, B, T] = ref.info('input_ids').shape;
    const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n), 'init.');
    const model = await GpuModel.load(gpu, config, store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters });
    const copies: GPUBuffer[][] = [];
    const trainer = new Trainer(model, {
      schedule: SCORING_SCHEDULE,
      adamw: SCORING_ADAMW,
      maxGradNorm: 1,
      afterClip: (encoder, step) => {
        copies[step] = model.adapters.flatMap((a) => [a.dA, a.dB]).map((t) => {
          const copy = gpu.device.createBuffer({ label: `${t.label}.step${step}`, size: t.buffer.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
          encoder.copyBufferToBuffer(t.buffer, 0, copy, 0, t.buffer.size);
          return copy;
        });
      },
    });
    const ids = await ref.readI32('input_ids');
    const mask = await ref.readI32('loss_mask');
    const refLoss = await ref.readF32('loss');
    const refLr = await ref.readF32('lr');
    const refNorm = await ref.readF32('grad_norm');
    const step = (a: Int32Array, s: number) => a.subarray(s * B * T, (s + 1) * B * T); // (B, T) of step s
    for (let s = 0; s < S; s++) {
      const r = await trainer.trainStep({ B, T, inputIds: step(ids, s), lossMask: step(mask, s), padTokenId: 0 });
      expect(r.step).toBe(s);
      expect(relError(r.loss, refLoss[s]), `loss of step ${s}`).toBeLessThanOrEqual(1e-4);
      expect(Math.fround(r.lr), `lr of step ${s}`).toBe(refLr[s]);
      expect(relError(r.gradNorm, refNorm[s]), `grad norm of step ${s}`).toBeLessThanOrEqual(1e-4);
    }

    const steps: Map<string, StepGrad>[] = [];
    for (let s = 0; s < S; s++) {
      const grads = new Map<string, StepGrad>();
      for (const [i, a] of model.adapters.entries()) grads.set(a.name, { dA: await readBuffer(copies[s][2 * i]), dB: await readBuffer(copies[s][2 * i + 1]) });
      steps.push(grads);
    }
    const igia = igiaFromSteps(steps, model.adapters, config.numLayers, DEFAULT_LORA.rank);
    for (const a of model.adapters) {
      expect(relL2(igia.igia.get(a.name)!, await ref.readF32(`igia.${a.name}.weight`)), `IGIA of ${a.name}`).toBeLessThanOrEqual(1e-3);
    }
    const layerScore = await ref.readF32('layer_score');
    igia.layerScore.forEach((v, l) => expect(relError(v, layerScore[l]), `layer_score[${l}]`).toBeLessThanOrEqual(1e-3));
    expect(ranking(igia.layerScore)).toEqual(ranking(layerScore));
    trainer.destroy();
    model.destroy();
  });
});

describe('GPU training failures', () => {
  it('stops with a numeric GradPruneError naming the step when the loss is not finite', async () => {
    const { config, store } = await loadFixtureModel(fixtureDir('tiny-llama'));
    const adapters = initLoraAdapters(config, DEFAULT_LORA, 1);
    adapters[3].B.fill(Number.NaN);
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 8, lora: DEFAULT_LORA, adapters });
    const trainer = new Trainer(model, { schedule: SCORING_SCHEDULE, adamw: SCORING_ADAMW, maxGradNorm: 1 });
    const err = await trainer.trainStep(batchOfRows([[1, 5, 9, 14, 3, 2, 7, 8]], [[0, 1, 1, 1, 1, 1, 1, 1]])).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.code).toBe('numeric');
    expect(err.message).toMatch(/step 0.*loss is NaN/);
    expect(err.message).toMatch(/Lower the learning rate/);
    trainer.destroy();
    model.destroy();
  });

  it('refuses to train a model loaded without adapters', async () => {
    const { config, store } = await loadFixtureModel(fixtureDir('tiny-llama'));
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 4, lora: null });
    expect(() => new Trainer(model, { schedule: SCORING_SCHEDULE, adamw: SCORING_ADAMW, maxGradNorm: 1 })).toThrow(/LoRA adapters/);
    model.destroy();
  });
});
