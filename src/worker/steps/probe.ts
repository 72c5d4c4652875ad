// A time estimate before a scoring run: two real steps of the run on the loaded model with the chosen settings (the
// first carries the one-time costs: shader compilation, the weights' first upload; the second is a steady step),
// paced like any training run (one at a time, stoppable). The weights stay cached for the run that follows.

import { runScoring, type ScoringProgress } from '../../gradprune/pipeline';
import type { RequestOf, ResultBody } from '../protocol';
import { jobOf, uploadStage, type StepContext } from '../session';
import { rowLength, trainSplitFor } from './dataset';

/** Steps a probe trains: one with the one-time costs, one steady. */
const PROBE_STEPS = 2;

export async function probeRun(ctx: StepContext, { settings }: RequestOf<'probeRun'>): Promise<ResultBody<'probeRun'>> {
  const { session } = ctx;
  const data = session.needDataset();
  session.notTraining();
  const seqLen = settings.seqLen ?? data.options.maxSeqLen;
  const train = trainSplitFor(ctx, data, seqLen);
  const gpu = await ctx.gpu();
  return session.training(async (control) => {
    const dense = session.weightsFor(ctx, gpu, session.checkpoint, 'dense', jobOf(settings));
    let last: ScoringProgress | null = null;
    try {
      const started = performance.now();
      const result = await runScoring(
        gpu,
        session.checkpoint,
        { kind: 'examples', examples: train, padTokenId: data.set.padTokenId },
        { ...settings, seqLen: Math.min(seqLen, rowLength(train)), steps: PROBE_STEPS, warmupSteps: 0 },
        {
          beforeStep: () => control.gate(),
          stopRequested: () => control.stopping,
          progressIntervalMs: 0,
          onWarmup: () => ctx.progress('Measuring one step: compiling the kernels and running it'),
          onStep: (p) => {
            last = p;
            if (p.step === 0) ctx.progress('Measuring one steady step');
          },
          onLoad: (done, total) => ctx.progress(uploadStage('dense', done, total), total ? done / total : undefined),
          weights: dense.source,
        },
      );
      const probe = last as ScoringProgress | null;
      if (!probe || result.steps < PROBE_STEPS || probe.stepSeconds === null) {
        return { stepSeconds: null, oneTimeSeconds: null, probeSeconds: (performance.now() - started) / 1000 };
      }
      return {
        stepSeconds: probe.stepSeconds,
        // What the first step took beyond a steady one: paid once per run (the upload is cached from here on).
        oneTimeSeconds: Math.max(0, probe.firstStepSeconds - probe.stepSeconds),
        probeSeconds: (performance.now() - started) / 1000,
      };
    } finally {
      dense.release();
    }
  });
}
