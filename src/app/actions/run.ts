// The training runs (scoring and recovery fine-tuning) as the worker has them: one run at a time, one pause /
// resume / stop control. Each run's state, live steps, result and failure land in its own slice.

import type { ResultOf } from '../../worker/protocol';
import { resetAfter, updateRun, useStudio, type RunName, type StudioState } from '../store';
import { emptyRecover, emptyScore } from '../slices';
import { toInfo, worker } from '../worker-connection';
import { withActivity } from './job';

const EMPTY_RUN = { score: emptyScore, recover: emptyRecover } as const;

/** A recovery run owns the worker's one training run until it ends (its result needs the pruned model it started from). */
export const recovering = (): boolean => useStudio.getState().recover.state !== 'idle';
export const recoveringError = (what: string) => ({ code: 'input' as const, message: `A recovery fine-tuning is running in step 5: stop it (or let it finish) before ${what}.` });

/**
 * Start a run: its slice starts afresh in 'starting' and every later step's results go. Returns the result, or null
 * when the run failed (the error is in its slice) or was stopped before its first step (nothing to show, nothing
 * went wrong).
 */
export async function startRun<N extends RunName>(run: N, request: () => Promise<ResultOf[N]>): Promise<ResultOf[N] | null> {
  useStudio.setState({ ...resetAfter(run), [run]: { ...EMPTY_RUN[run](), state: 'starting' } } as Partial<StudioState>);
  try {
    const result = await withActivity(run, 'Starting', request);
    updateRun(run, () => ({ state: 'idle', result, error: null, pausedAt: null }));
    return result;
  } catch (err) {
    const info = toInfo(err);
    updateRun(run, () => ({ state: 'idle', pausedAt: null, error: info.code === 'cancelled' ? null : info }));
    return null;
  }
}

/**
 * Pause, resume or stop the running run; a pause records the steps the run holds after (the worker's answer: a step
 * in flight finishes first, a pause between steps holds at once). Returns the worker's answer.
 */
export async function controlRun(run: RunName, action: 'pause' | 'resume' | 'stop'): Promise<ResultOf['stop'] | null> {
  try {
    const answer = await worker().request({ type: action });
    const { state, holdsAfter } = answer;
    if (state === 'idle') return answer; // the run has ended: its result settles the slice
    const reported = (r: { live: { step: number } | null }) => (r.live ? r.live.step + 1 : 0);
    updateRun(run, (r) => ({ state, pausedAt: state === 'paused' ? Math.max(holdsAfter ?? 0, reported(r)) : null }));
    return answer;
  } catch (err) {
    updateRun(run, () => ({ error: toInfo(err) }));
    return null;
  }
}
