// The step loop of a LoRA run: up to `steps` trainer steps on the run's batches, with cancel, pause / stop before a
// step, stop between the kernel batches of a step (streamed weights), and progress (loss, lr, gradient norm,
// tokens/s, elapsed and ETA) at most once per interval.
//
// Time as a person reads it: elapsed is the wall clock since the run started (pauses included, so a clock can tick
// on it); tokens/s and the ETA count only the time spent training (a pause waits in beforeStep and is left out),
// and come from the steps after the loop's first once there is one: the first step carries one-time costs
// (shader compilation, the first upload of the weights), so until a second step ends the ETA is null ("estimating").

import type { TokenBatch } from '../data/types';
import type { GradPruneError } from '../errors';
import type { StepResult } from './trainer';

/** What the loop steps: the LoRA Trainer, or partial-layer fine-tuning's PartialTrainer. A null step was stopped mid-way. */
export interface StepTrainer {
  trainStep(batch: TokenBatch, stopRequested?: () => boolean): Promise<StepResult | null>;
}

/** What a run reports after a step. */
export interface LoraStepProgress {
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Every finished step so far (for a live curve). */
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  /** Real tokens per second of training (pauses left out; the steps after the first once there is one). */
  tokensPerSecond: number;
  /** Wall-clock seconds since the run started, pauses included. */
  elapsedSeconds: number;
  /** Seconds of training left; null while estimating (before a step after the first has ended); 0 after the last. */
  etaSeconds: number | null;
  /** Seconds of one step without the one-time costs (null until a step after the first has ended). */
  stepSeconds: number | null;
  /** Seconds of the loop's first step: one step plus the one-time costs (shader compilation, first upload). */
  firstStepSeconds: number;
}

export interface LoraStepHooks {
  /** Default 250 ms; 0 reports every step. */
  progressIntervalMs?: number;
  /** Cancels between steps with GradPruneError('cancelled'). */
  signal?: AbortSignal;
  /** Awaited before each step (a paused run waits here); resolving to false ends training early with the steps done. */
  beforeStep?: (step: number) => Promise<boolean | void>;
  /**
   * Asked between the kernel batches of a step (streamed weights: between layer submissions; resident weights
   * submit a step at once, so they stop at the step's end): true abandons the running step before its update, and
   * training ends with the steps done before it.
   */
  stopRequested?: () => boolean;
  /** Before the loop's first step: the phase where the kernels compile and the weights' first use happens. */
  onWarmup?: () => void;
  /** The clock in milliseconds (tests give a fake one); default performance.now(). */
  now?: () => number;
}

export interface LoraStepOptions {
  steps: number;
  /** The error a cancel throws after `done` steps. */
  cancelled: (done: number) => GradPruneError;
  /** A stop from beforeStep before the first step is a cancel (true), or an empty run (false). */
  atLeastOneStep: boolean;
  /** After a step, at most once per progressIntervalMs and always after the last (awaited). */
  onProgress?: (p: LoraStepProgress) => void | Promise<void>;
  /** Continue a run: start at step `from.step` with its curves and token counts so far (the trainer is set to it). */
  from?: { step: number; curves: LoraSteps };
  /** After every finished step (after onProgress), with the curves so far (live arrays: copy what is kept). */
  afterStep?: (curves: LoraSteps) => void | Promise<void>;
}

export interface LoraSteps {
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  /** Real (unpadded) tokens read and target tokens trained on. */
  tokens: number;
  targetTokens: number;
  elapsedSeconds: number;
}

const performanceNow = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** The training time of a loop's steps: the first one apart (one-time costs), the rest as the steady rate. */
export class StepTimes {
  private first: { seconds: number; tokens: number } | null = null;
  private steady = { seconds: 0, tokens: 0, steps: 0 };

  record(seconds: number, tokens: number): void {
    if (!this.first) this.first = { seconds, tokens };
    else {
      this.steady.seconds += seconds;
      this.steady.tokens += tokens;
      this.steady.steps++;
    }
  }

  get firstStepSeconds(): number {
    return this.first?.seconds ?? 0;
  }

  /** Seconds per step after the first; null before there is such a step. */
  get stepSeconds(): number | null {
    return this.steady.steps ? this.steady.seconds / this.steady.steps : null;
  }

  get tokensPerSecond(): number {
    const t = this.steady.steps ? this.steady : this.first;
    return t && t.seconds > 0 ? t.tokens / t.seconds : 0;
  }

  /** Seconds for `remaining` more steps; null while estimating. */
  eta(remaining: number): number | null {
    if (remaining <= 0) return 0;
    const per = this.stepSeconds;
    return per === null ? null : per * remaining;
  }
}

const realTokens = (batch: TokenBatch) => (batch.lengths ? batch.lengths.reduce((n, length) => n + length, 0) : batch.B * batch.T);

/** Up to `opts.steps` training steps on `nextBatch(step)`; returns the per-step curves and token counts. */
export async function runLoraSteps(trainer: StepTrainer, nextBatch: (step: number) => TokenBatch, hooks: LoraStepHooks, opts: LoraStepOptions): Promise<LoraSteps> {
  const { steps, cancelled, onProgress } = opts;
  const now = hooks.now ?? performanceNow;
  const done = opts.from?.curves;
  const losses = [...(done?.losses ?? [])], lrs = [...(done?.lrs ?? [])], gradNorms = [...(done?.gradNorms ?? [])];
  let tokens = done?.tokens ?? 0, targetTokens = done?.targetTokens ?? 0;
  const interval = hooks.progressIntervalMs ?? 250;
  const start = now() - (done?.elapsedSeconds ?? 0) * 1000;
  const times = new StepTimes();
  let lastReport = -Infinity;
  // Time after the previous step's train call (its report and afterStep count in the next step's time, not the pause).
  let mark = now();
  const first = opts.from?.step ?? 0;
  for (let s = first; s < steps; s++) {
    if (hooks.signal?.aborted) throw cancelled(s);
    const carried = now() - mark;
    if (hooks.beforeStep && (await hooks.beforeStep(s)) === false) {
      if (s === 0 && opts.atLeastOneStep) throw cancelled(0);
      break;
    }
    if (hooks.signal?.aborted) throw cancelled(s);
    if (s === first) hooks.onWarmup?.();
    const begin = now();
    const batch = nextBatch(s);
    const step = await trainer.trainStep(batch, hooks.stopRequested);
    if (step === null) {
      // Stopped between the step's kernel batches: its update never ran, so the run is the steps before it.
      if (s === 0 && opts.atLeastOneStep) throw cancelled(0);
      break;
    }
    mark = now();
    const stepTokens = realTokens(batch);
    times.record((carried + mark - begin) / 1000, stepTokens);
    losses.push(step.loss);
    lrs.push(step.lr);
    gradNorms.push(step.gradNorm);
    tokens += stepTokens;
    targetTokens += step.tokens;
    if (onProgress && (s === steps - 1 || mark - lastReport >= interval)) {
      lastReport = mark;
      await onProgress({
        step: s,
        steps,
        loss: step.loss,
        lr: step.lr,
        gradNorm: step.gradNorm,
        losses: [...losses],
        lrs: [...lrs],
        gradNorms: [...gradNorms],
        tokensPerSecond: times.tokensPerSecond,
        elapsedSeconds: (mark - start) / 1000,
        etaSeconds: times.eta(steps - s - 1),
        stepSeconds: times.stepSeconds,
        firstStepSeconds: times.firstStepSeconds,
      });
    }
    await opts.afterStep?.({ losses, lrs, gradNorms, tokens, targetTokens, elapsedSeconds: (now() - start) / 1000 });
  }
  return { losses, lrs, gradNorms, tokens, targetTokens, elapsedSeconds: (now() - start) / 1000 };
}
