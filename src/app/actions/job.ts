// What every step's GPU job shares: its progress shown while it runs, and the session's way of holding weights.

import type { JobSettings } from '../../worker/protocol';
import { useStudio, type Activity } from '../store';

const set = useStudio.setState;
const get = useStudio.getState;

/** Run one GPU job of a step with its progress shown; the job's own failure is the caller's to place. */
export async function withActivity<T>(step: Activity['step'], stage: string, job: () => Promise<T>): Promise<T> {
  set({ activity: { step, stage } });
  try {
    return await job();
  } finally {
    if (get().activity?.step === step) set({ activity: null });
  }
}

/**
 * The session's weight precision and GPU memory limit (the scoring settings'): every GPU job — scoring, Check,
 * generation, Recover — holds its weights the same way.
 */
export const jobSettings = (): JobSettings => ({ weights: get().settings.weights, maxGpuMemory: get().settings.maxGpuMemory });
