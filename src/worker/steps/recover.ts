// Recover (beside step 5): a fresh LoRA on the pruned model, trained on the training split (paced by the session's
// run control, as scoring is); the adapter merged into the weights as a view (merged as read); then dense, pruned
// and pruned + recovered measured on the same held-out examples and device by measureOn, as the Check measures.

import { GradPruneError } from '../../errors';
import { comparisonRows, type ModelMeasurement } from '../../eval/before-after';
import { runRecovery, type RecoveryResult } from '../../eval/recovery';
import { type RecoverySettingsInput } from '../../nn/run-settings';
import type { Checkpoint } from '../../model/checkpoint';
import { recoveredCheckpoint } from '../lazy-checkpoint';
import type { JobSettings, RecoverSettings, RequestOf, ResultBody } from '../protocol';
import { jobOf, type StepContext } from '../session';
import { checkpointTo, runKeyOf, storedRun } from './saved-run';
import { evalOf, measureOn, type MeasureRows } from './check';
import { rowLength, trainSplitFor } from './dataset';

/** The engine's settings for the page's choice; a one-step decay run gets no warmup (it would leave no step to decay over). */
function recoveryInput(s: RecoverSettings, trainExamples: number, job: JobSettings): RecoverySettingsInput {
  const steps = s.by === 'epochs' ? Math.max(1, Math.ceil((s.epochs * trainExamples) / s.batchSize)) : s.steps;
  return {
    ...(s.by === 'epochs' ? { epochs: s.epochs } : { steps: s.steps }),
    rank: s.rank,
    alpha: s.alpha,
    lr: s.lr,
    batchSize: s.batchSize,
    seqLen: s.seqLen,
    schedule: s.schedule,
    ...(steps === 1 && s.schedule !== 'constant' ? { warmupSteps: 0 } : {}),
    // The dataset's own split decides what is held out: the run trains on the training split only.
    heldOut: 0,
    weights: job.weights,
    maxGpuMemory: job.maxGpuMemory,
  };
}

/**
 * A recovery run, its snapshot kept every few steps (removed once trained); `resume` continues the stored run of this
 * pruned model and dataset with the settings it was started with.
 */
export async function recover(ctx: StepContext, req: RequestOf<'recover'>): Promise<ResultBody<'recover'>> {
  const { session } = ctx;
  const { evaluation } = req;
  const data = session.needDataset();
  const pruned = session.needPruned();
  session.notTraining();
  const key = await runKeyOf(ctx, 'recovery');
  const stored = req.resume ? await storedRun<RecoverSettings>(ctx, key) : null;
  const resumeFrom = req.resume ? await ctx.runs.load(key) : undefined; // throws when there is nothing to continue
  const settings = stored?.settings ?? req.settings;
  const job = jobOf(settings);
  return session.training(async (control) => {
    session.dropRecovery();
    const gpu = await ctx.gpu();
    const train = trainSplitFor(ctx, data, settings.seqLen);
    if (train.length === 0) {
      throw new GradPruneError('dataset', 'The training split is empty, so there is nothing to fine-tune on.', { subject: 'train', hint: 'Hold out fewer examples in step 2.' });
    }
    // Rows never exceed the longest example: a shorter T saves memory and time.
    const given = recoveryInput({ ...settings, seqLen: Math.min(settings.seqLen, rowLength(train)) }, train.length, job);
    ctx.progress('Uploading the pruned weights');
    // The pruned model trains on its cached upload (the Check's, when it ran).
    const trainWeights = session.weightsFor(ctx, gpu, pruned.checkpoint, 'pruned', job);
    let result: RecoveryResult;
    try {
      result = await runRecovery(gpu, pruned.checkpoint, { examples: train, padTokenId: data.set.padTokenId }, given, {
        ...control.hooks(ctx.id, (step, p) => ctx.post({ type: 'recoverStep', ...step, epoch: p.epoch }), (stage) => ctx.progress(stage)),
        weights: trainWeights.source,
        checkpoint: checkpointTo(ctx, key, settings.by === 'steps' ? settings.steps : Math.ceil((settings.epochs * train.length) / settings.batchSize), settings),
        resumeFrom,
      });
    } finally {
      trainWeights.release();
    }
    await ctx.runs.remove(key); // trained (or stopped by the person): nothing to continue
    if (result.steps === 0) throw new GradPruneError('cancelled', 'Fine-tuning was stopped before its first step.', { subject: 'finetune' });

    const recovered = recoveredCheckpoint(pruned.checkpoint, result.lora, result.adapters, `${pruned.checkpoint.name}-recovered`);
    const examples = data.heldOut.slice(0, evaluation.maxExamples);
    const items = examples.flatMap((e) => (e.mc ? [e.mc] : []));
    const rows: MeasureRows = {
      seqLen: examples.length ? rowLength(examples) : result.settings.seqLen,
      heldOut: examples,
      padTokenId: data.set.padTokenId,
      multipleChoice: items.length ? { tokenizer: session.checkpoint.tokenizer, items } : null,
    };
    // Dense and pruned have not changed since a Check on the same examples: only their forward pass is timed again
    // (all three timings come from this run).
    const checked = session.check?.examples === examples.length ? session.check : null;
    const measure = async (label: string, ckpt: Checkpoint, known: ModelMeasurement | undefined): Promise<ModelMeasurement> => {
      if (!known) return measureOn(ctx, gpu, label, ckpt, job, rows);
      const timed = await measureOn(ctx, gpu, label, ckpt, job, { ...rows, heldOut: [], multipleChoice: null });
      return { ...timed, heldOut: known.heldOut, accuracy: known.accuracy };
    };
    // Measured in the order that reuses what is on the GPU (the pruned upload the training ran on first); shown
    // as dense, pruned, pruned + recovered.
    const prunedRow = await measure('pruned', pruned.checkpoint, checked?.pruned);
    const denseRow = await measure('dense', session.checkpoint, checked?.dense);
    const recoveredRow = await measure('pruned + recovered', recovered, undefined);
    const adapterParameters = result.adapters.reduce((n, a) => n + a.A.length + a.B.length, 0);
    const event: ResultBody<'recover'> = {
      settings: result.settings,
      steps: result.steps,
      stopped: result.steps < result.settings.steps,
      losses: result.losses,
      trainExamples: result.trainExamples,
      elapsedSeconds: result.elapsedSeconds,
      before: evalOf(prunedRow),
      after: evalOf(recoveredRow),
      table: comparisonRows([denseRow, prunedRow, recoveredRow]),
      adapterParameters,
      adapterBytes: adapterParameters * 4,
      precision: recoveredRow.onGpu!.precision,
    };
    if (session.pruned === pruned) session.recovery = { result, recovered, event };
    return event;
  });
}
