// A stop asked during a step: streamed weights end it between layer submissions, before the update (the adapters
// stay as they were, the trainer's step count too, and the next step trains as if nothing had happened); resident
// weights submit a step at once, so the step finishes.
import { describe, expect, it } from 'vitest';
import { fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { DEFAULT_LORA, initLoraAdapters } from './lora';
import { GpuModel } from './model';
import { loraGradCase } from './reference/fixture';
import { Trainer } from './trainer';

const gpu = await testGpu();
const trainerOpts = { schedule: { lr: 1e-2, warmupSteps: 0, decay: 'constant' as const, totalSteps: 4 }, adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 }, maxGradNorm: 1 };

describe('stop during a step', () => {
  it('streamed: abandoned at the next layer, nothing updated; resident: the step finishes', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir('tiny-llama'));
    const adapters = initLoraAdapters(fm.config, DEFAULT_LORA, 5);
    const opts = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, checkpointing: true };

    const streamed = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency: 'streamed' });
    const trainer = new Trainer(streamed, trainerOpts);
    const before = await streamed.readAdapters();
    let asked = 0;
    // The stop is asked after the first layer's submission.
    expect(await trainer.trainStep(batch, () => ++asked >= 2)).toBeNull();
    expect(asked).toBe(2);
    expect(trainer.step).toBe(0);
    const after = await streamed.readAdapters();
    for (let i = 0; i < before.length; i++) {
      expect(after[i].A, before[i].name).toEqual(before[i].A);
      expect(after[i].B, before[i].name).toEqual(before[i].B);
    }
    const stepped = await trainer.trainStep(batch, () => false);
    trainer.destroy();
    streamed.destroy();

    const resident = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency: 'resident' });
    const plain = new Trainer(resident, trainerOpts);
    const whole = await plain.trainStep(batch, () => true);
    plain.destroy();
    resident.destroy();
    // The streamed step after the abandoned one is the resident run's first step (bit for bit, as streaming is).
    expect(whole).not.toBeNull();
    expect(stepped!.loss).toBe(whole!.loss);
    expect(stepped!.step).toBe(0);
  });
});
