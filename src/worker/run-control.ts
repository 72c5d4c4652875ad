// The one training run at a time (scoring or recovery): pause / resume / stop between steps, and a step's
// progress as the page's RunStep (the same mapping for both runs).

import type { LoraRunHooks } from '../nn/lora-run';
import type { LoraStepProgress } from '../nn/step-loop';
import type { RunStep } from './protocol';

/** How often a run reports its steps to the page. */
const PROGRESS_INTERVAL_MS = 200;

/** The phase before the first step reports: the kernels compile and the first step runs (a one-time cost). */
export const WARMUP_STAGE = 'Compiling the kernels and running the first step (one-time)';

export type RunState = 'running' | 'paused' | 'stopping' | 'idle';

export class RunControl {
  paused = false;
  stopping = false;
  private wake: (() => void) | null = null;
  /** The last step let through the gate (-1: none yet). */
  private started = -1;

  /** Before each step: wait while paused; false once stop was asked. */
  async gate(step?: number): Promise<boolean> {
    while (this.paused && !this.stopping) await new Promise<void>((r) => (this.wake = r));
    if (!this.stopping && step !== undefined) this.started = step;
    return !this.stopping;
  }

  /**
   * Once paused or stopped: the steps the run has when it holds (pause) or ends (stop). A step let through the gate
   * always finishes on resident weights; the next one waits (pause) or is refused (stop). Streamed weights may drop
   * a stopped step in flight (one fewer). A pause taken between steps holds before the next: no step is in flight.
   */
  get holdsAfter(): number | null {
    return this.paused || this.stopping ? this.started + 1 : null;
  }

  act(action: 'pause' | 'resume' | 'stop'): void {
    if (action === 'stop') this.stopping = true;
    else this.paused = action === 'pause';
    this.wake?.();
    this.wake = null;
  }

  get state(): RunState {
    return this.stopping ? 'stopping' : this.paused ? 'paused' : 'running';
  }

  /**
   * The run's hooks: paced by this control, each reported step posted through `onStep` as a RunStep plus what the
   * run adds (the scores so far, the epoch).
   */
  hooks<P extends LoraStepProgress>(
    requestId: number,
    onStep: (step: RunStep, p: P) => void,
    progress?: (stage: string) => void,
  ): Pick<LoraRunHooks<P>, 'progressIntervalMs' | 'beforeStep' | 'stopRequested' | 'onWarmup' | 'onStep'> {
    return {
      progressIntervalMs: PROGRESS_INTERVAL_MS,
      beforeStep: (step) => this.gate(step),
      // Streamed weights look between layer submissions; resident ones finish the step they are in.
      stopRequested: () => this.stopping,
      onWarmup: progress && (() => progress(WARMUP_STAGE)),
      onStep: (p) => onStep(runStepOf(requestId, p), p),
    };
  }
}

/** A training step's progress as the page draws it. */
export const runStepOf = (requestId: number, p: LoraStepProgress): RunStep => ({
  requestId,
  step: p.step,
  steps: p.steps,
  losses: p.losses,
  lr: p.lr,
  gradNorm: p.gradNorm,
  tokensPerSecond: p.tokensPerSecond,
  elapsedSeconds: p.elapsedSeconds,
  etaSeconds: p.etaSeconds,
  stepSeconds: p.stepSeconds,
});
