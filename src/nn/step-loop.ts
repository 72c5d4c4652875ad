// The step loop of a LoRA run: up to `steps` trainer steps on the run's batches, with cancel, pause / stop before a
// step, and progress (loss, lr, gradient norm, tokens/s, elapsed and ETA) at most once per interval.

import type { TokenBatch } from '../data/types';
import type { GradPruneError } from '../errors';
import type { Trainer } from './trainer';

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
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface LoraStepHooks {
  /** Default 250 ms; 0 reports every step. */
  progressIntervalMs?: number;
  /** Cancels between steps with GradPruneError('cancelled'). */
  signal?: AbortSignal;
  /** Awaited before each step (a paused run waits here); resolving to false ends training early with the steps done. */
  beforeStep?: (step: number) => Promise<boolean | void>;
}

export interface LoraStepOptions {
  steps: number;
  /** The error a cancel throws after `done` steps. */
  cancelled: (done: number) => GradPruneError;
  /** A stop from beforeStep before the first step is a cancel (true), or an empty run (false). */
  atLeastOneStep: boolean;
  /** After a step, at most once per progressIntervalMs and always after the last (awaited). */
  onProgress?: (p: LoraStepProgress) => void | Promise<void>;
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

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Up to `opts.steps` training steps on `nextBatch(step)`; returns the per-step curves and token counts. */
export async function runLoraSteps(trainer: Trainer, nextBatch: (step: number) => TokenBatch, hooks: LoraStepHooks, opts: LoraStepOptions): Promise<LoraSteps> {
  const { steps, cancelled, onProgress } = opts;
  const losses: number[] = [], lrs: number[] = [], gradNorms: number[] = [];
  let tokens = 0, targetTokens = 0;
  const interval = hooks.progressIntervalMs ?? 250;
  const start = now();
  let lastReport = -Infinity;
  for (let s = 0; s < steps; s++) {
    if (hooks.signal?.aborted) throw cancelled(s);
    if (hooks.beforeStep && (await hooks.beforeStep(s)) === false) {
      if (s === 0 && opts.atLeastOneStep) throw cancelled(0);
      break;
    }
    if (hooks.signal?.aborted) throw cancelled(s);
    const batch = nextBatch(s);
    const step = await trainer.trainStep(batch);
    losses.push(step.loss);
    lrs.push(step.lr);
    gradNorms.push(step.gradNorm);
    tokens += batch.lengths ? batch.lengths.reduce((n, length) => n + length, 0) : batch.B * batch.T;
    targetTokens += step.tokens;
    if (onProgress && (s === steps - 1 || now() - lastReport >= interval)) {
      lastReport = now();
      const elapsed = (lastReport - start) / 1000;
      await onProgress({
        step: s,
        steps,
        loss: step.loss,
        lr: step.lr,
        gradNorm: step.gradNorm,
        losses: [...losses],
        lrs: [...lrs],
        gradNorms: [...gradNorms],
        tokensPerSecond: elapsed > 0 ? tokens / elapsed : 0,
        elapsedSeconds: elapsed,
        etaSeconds: (elapsed / (s + 1)) * (steps - s - 1),
      });
    }
  }
  return { losses, lrs, gradNorms, tokens, targetTokens, elapsedSeconds: (now() - start) / 1000 };
}
