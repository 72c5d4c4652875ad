// The studio's one zustand store: the slices of ./slices.ts combined in pipeline order. Components read it with
// selectors; only the actions (./actions/*) and the worker's events (./worker-events.ts) write it.

import { create } from 'zustand';
import type { ResultOf } from '../worker/protocol';
import {
  checkSlice,
  datasetSlice,
  downloadSlice,
  modelSlice,
  PIPELINE,
  pruneSlice,
  recoverSlice,
  scoreSlice,
  sessionSlice,
  STEP_RESULTS,
  type PipelineStep,
  type Run,
  type RunName,
  type StudioState,
} from './slices';

export type { Activity, DemoDataset, GpuStatus, LiveRun, PipelineStep, Run, RunName, RunState, StudioState } from './slices';

export const initialState = (): StudioState => ({
  ...sessionSlice(),
  ...modelSlice(),
  ...datasetSlice(),
  ...scoreSlice(),
  ...pruneSlice(),
  ...checkSlice(),
  ...recoverSlice(),
  ...downloadSlice(),
});

export const useStudio = create<StudioState>()(initialState);

/**
 * The results of every step after `step`, started afresh: what a new model, dataset, scoring run, plan or recovery
 * run makes stale (the worker drops the same with it). Merge it into the state change that makes them stale.
 */
export function resetAfter(step: PipelineStep): Partial<StudioState> {
  return Object.assign({}, ...PIPELINE.slice(PIPELINE.indexOf(step) + 1).map((later) => STEP_RESULTS[later]()));
}

/** Change the run fields of one training run's slice (scoring's or recovery's). */
export function updateRun<N extends RunName>(run: N, change: (current: StudioState[N]) => Partial<Run<ResultOf[N]>>): void {
  useStudio.setState((s) => ({ [run]: { ...s[run], ...change(s[run]) } }) as Pick<StudioState, N>);
}
