// The shared LoRA step loop without a GPU: a stand-in trainer whose steps return known losses, so the loop's
// bookkeeping (curves, token counts, pause / stop / cancel, which steps report progress) is checked exactly.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { batchOfRows } from '../data/batch';
import { runLoraSteps, type LoraStepOptions, type LoraStepProgress } from './step-loop';
import type { Batch } from './model';
import type { Trainer } from './trainer';

/** Step s: loss 10 - s, lr s / 10, grad norm s + 1, and 3 target tokens. */
function fakeTrainer(): Trainer & { batches: Batch[] } {
  const batches: Batch[] = [];
  let step = 0;
  return {
    batches,
    trainStep: async (batch: Batch) => {
      batches.push(batch);
      const s = step++;
      return { step: s, loss: 10 - s, lr: s / 10, gradNorm: s + 1, tokens: 3 };
    },
  } as unknown as Trainer & { batches: Batch[] };
}

/** Rows of 2 and 3 real tokens: 5 per step. */
const batch = (): Batch => batchOfRows([[1, 2], [3, 4, 5]], [[0, 1], [0, 1, 1]], 7);

const cancelled = (done: number) => new GradPruneError('cancelled', `stopped after ${done}`, { subject: 'test' });
const options = (o: Partial<LoraStepOptions> = {}): LoraStepOptions => ({ steps: 4, cancelled, atLeastOneStep: false, ...o });

describe('runLoraSteps', () => {
  it('trains every step on the next batch and keeps the curves and token counts', async () => {
    const trainer = fakeTrainer();
    const asked: number[] = [];
    const run = await runLoraSteps(trainer, (s) => (asked.push(s), batch()), {}, options());
    expect(asked).toEqual([0, 1, 2, 3]);
    expect(trainer.batches).toHaveLength(4);
    expect(run.losses).toEqual([10, 9, 8, 7]);
    expect(run.lrs).toEqual([0, 0.1, 0.2, 0.3]);
    expect(run.gradNorms).toEqual([1, 2, 3, 4]);
    expect(run.tokens).toBe(20);
    expect(run.targetTokens).toBe(12);
  });

  it('reports every step with interval 0, and the first and last with a long interval', async () => {
    const every: LoraStepProgress[] = [];
    await runLoraSteps(fakeTrainer(), batch, { progressIntervalMs: 0 }, options({ onProgress: (p) => void every.push(p) }));
    expect(every.map((p) => p.step)).toEqual([0, 1, 2, 3]);
    expect(every[2]).toMatchObject({ step: 2, steps: 4, loss: 8, lr: 0.2, gradNorm: 3, losses: [10, 9, 8], lrs: [0, 0.1, 0.2], gradNorms: [1, 2, 3] });
    expect(every[3].etaSeconds).toBe(0);
    const sparse: number[] = [];
    await runLoraSteps(fakeTrainer(), batch, { progressIntervalMs: 1e12 }, options({ onProgress: (p) => void sparse.push(p.step) }));
    expect(sparse).toEqual([0, 3]);
  });

  it('stops when beforeStep resolves to false: an empty run, or a cancel when at least one step is needed', async () => {
    const stopAt = (n: number) => async (s: number) => s !== n;
    expect((await runLoraSteps(fakeTrainer(), batch, { beforeStep: stopAt(2) }, options())).losses).toEqual([10, 9]);
    expect((await runLoraSteps(fakeTrainer(), batch, { beforeStep: stopAt(0) }, options())).losses).toEqual([]);
    await expect(runLoraSteps(fakeTrainer(), batch, { beforeStep: stopAt(0) }, options({ atLeastOneStep: true }))).rejects.toThrow('stopped after 0');
    expect((await runLoraSteps(fakeTrainer(), batch, { beforeStep: stopAt(1) }, options({ atLeastOneStep: true }))).losses).toEqual([10]);
  });

  it('cancels between steps with the error for the steps done, also when the signal fires during a pause', async () => {
    const controller = new AbortController();
    const pausedThenAborted = async (s: number) => {
      if (s === 2) controller.abort();
    };
    const trainer = fakeTrainer();
    await expect(runLoraSteps(trainer, batch, { signal: controller.signal, beforeStep: pausedThenAborted }, options())).rejects.toThrow('stopped after 2');
    expect(trainer.batches).toHaveLength(2);
    await expect(runLoraSteps(fakeTrainer(), batch, { signal: controller.signal }, options())).rejects.toThrow('stopped after 0');
  });
});

/**
 * A trainer on a fake clock: step s takes `stepMs[s]` ms (the clock moves while it runs), 5 real tokens a step
 * (the `batch` above).
 */
function timedTrainer(clock: { t: number }, stepMs: number[], stopAt?: number): Trainer {
  let step = 0;
  return {
    trainStep: async (_batch: Batch, stopRequested?: () => boolean) => {
      const s = step++;
      clock.t += stepMs[s];
      if (s === stopAt && stopRequested?.()) return null;
      return { step: s, loss: 1, lr: 0, gradNorm: 1, tokens: 3 };
    },
  } as unknown as Trainer;
}

describe('runLoraSteps: time as a person reads it', () => {
  it('leaves the first step (compile, upload) and the pauses out of tokens/s and the ETA; elapsed counts everything', async () => {
    const clock = { t: 0 };
    const reports: LoraStepProgress[] = [];
    // Step 0 takes 10 s (shader compilation, first upload), the others 2 s; the run is paused for 100 s before step 2.
    const beforeStep = async (s: number) => void (s === 2 && (clock.t += 100_000));
    let warmups = 0;
    await runLoraSteps(
      timedTrainer(clock, [10_000, 2000, 2000, 2000]),
      batch,
      { progressIntervalMs: 0, now: () => clock.t, beforeStep, onWarmup: () => warmups++ },
      options({ onProgress: (p) => void reports.push(p) }),
    );
    expect(warmups).toBe(1);
    // After step 0 only the first step is known: 5 tokens in 10 s; the ETA is still being estimated.
    expect(reports[0]).toMatchObject({ elapsedSeconds: 10, etaSeconds: null, stepSeconds: null, firstStepSeconds: 10 });
    expect(reports[0].tokensPerSecond).toBeCloseTo(0.5, 12);
    // After step 1: 2 s a step from here on, 2 steps left → 4 s; 5 tokens in 2 s.
    expect(reports[1]).toMatchObject({ elapsedSeconds: 12, etaSeconds: 4, stepSeconds: 2 });
    expect(reports[1].tokensPerSecond).toBeCloseTo(2.5, 12);
    // The 100 s pause shows in elapsed only.
    expect(reports[2]).toMatchObject({ elapsedSeconds: 114, etaSeconds: 2, stepSeconds: 2 });
    expect(reports[2].tokensPerSecond).toBeCloseTo(2.5, 12);
    expect(reports[3]).toMatchObject({ elapsedSeconds: 116, etaSeconds: 0 });
  });

  it('a slow run reports its real fractional rate', async () => {
    const clock = { t: 0 };
    const reports: LoraStepProgress[] = [];
    await runLoraSteps(timedTrainer(clock, [30_000, 12_000]), batch, { progressIntervalMs: 0, now: () => clock.t }, options({ steps: 2, onProgress: (p) => void reports.push(p) }));
    expect(reports[1].tokensPerSecond).toBeCloseTo(5 / 12, 12);
  });

  it('a stop asked during a step that abandons it ends the run with the steps before it', async () => {
    const clock = { t: 0 };
    let stopping = false;
    const run = await runLoraSteps(
      timedTrainer(clock, [1000, 1000, 1000, 1000], 2),
      batch,
      { now: () => clock.t, stopRequested: () => stopping, beforeStep: async (s) => void (s === 2 && (stopping = true)) },
      options(),
    );
    expect(run.losses).toHaveLength(2);
    expect(run.tokens).toBe(10);
  });
});
