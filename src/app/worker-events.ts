// The worker's news folded into the store: the adapter, a lost device, progress of the busy step, the steps of a
// training run, failures outside any request. Request results are settled by the action awaiting them.

import type { WorkerEvent } from '../worker/protocol';
import { useStudio, type LiveRun, type RunName, type StudioState } from './store';

/** Keep at most this many score snapshots (the live stability chart thins them out). */
const MAX_SNAPSHOTS = 200;

type RunStepEvent = Extract<WorkerEvent, { type: 'scoreStep' | 'recoverStep' }>;

/** A run's step: the live numbers, 'starting' becomes 'running', and the step's progress bar moves. */
function stepped<N extends RunName>(s: StudioState, run: N, event: RunStepEvent): Pick<StudioState, N | 'activity'> {
  const live: LiveRun = {
    step: event.step,
    steps: event.steps,
    losses: event.losses,
    lr: event.lr,
    epoch: event.type === 'recoverStep' ? event.epoch : undefined,
    tokensPerSecond: event.tokensPerSecond,
    elapsedSeconds: event.elapsedSeconds,
    etaSeconds: event.etaSeconds,
  };
  const current = s[run];
  const activity = s.activity?.step === run ? { step: run, stage: `Step ${event.step + 1} of ${event.steps}`, fraction: (event.step + 1) / event.steps } : s.activity;
  return { [run]: { ...current, state: current.state === 'starting' ? 'running' : current.state, live }, activity } as Pick<StudioState, N | 'activity'>;
}

export function applyWorkerEvent(event: WorkerEvent): void {
  const set = useStudio.setState;
  switch (event.type) {
    case 'adapter':
      set({ gpu: event.adapter ? { state: 'ready', adapter: event.adapter } : { state: 'unavailable', error: event.error ?? { code: 'gpu', message: 'No WebGPU adapter.' } } });
      return;
    case 'deviceLost':
      set(({ gpu }) => ({ gpu: gpu.state === 'ready' || gpu.state === 'lost' ? { state: 'lost', adapter: gpu.adapter, error: event.error } : { state: 'unavailable', error: event.error } }));
      return;
    case 'progress':
      set((s) =>
        s.model.loading
          ? { model: { ...s.model, loading: { ...s.model.loading, stage: event.stage } } }
          : s.activity
            ? { activity: { ...s.activity, stage: event.stage, fraction: event.fraction } }
            : s,
      );
      return;
    case 'scoreStep':
      set((s) => {
        const next = stepped(s, 'score', event);
        const snapshots = [...s.score.snapshots, event.scores];
        return { ...next, score: { ...next.score, snapshots: snapshots.length > MAX_SNAPSHOTS ? snapshots.filter((_, i) => i % 2 === 1) : snapshots } };
      });
      return;
    case 'recoverStep':
      set((s) => stepped(s, 'recover', event));
      return;
    case 'error':
      if (event.requestId === null) set({ notice: event.error });
      return;
    default:
      return; // request results are settled by the awaiting action
  }
}
