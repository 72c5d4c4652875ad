// A time estimate before scoring: the worker trains two real steps with the current settings on the loaded model
// (one with the one-time costs, one steady) and the page scales them to the run's steps.

import type { ProbedEvent } from '../../worker/protocol';
import type { ScoringSettings } from '../../nn/run-settings';
import { useStudio } from '../store';
import { worker } from '../worker-connection';
import { withActivity } from './job';

/** The settings a step's time depends on (not how many steps there are). */
export const probeKey = (s: ScoringSettings): string => {
  const { steps: _steps, warmupSteps: _warmup, ...rest } = s;
  return JSON.stringify(rest);
};

export interface TimeProbe extends Omit<ProbedEvent, 'type' | 'requestId'> {
  /** probeKey of the settings it measured. */
  key: string;
}

/** Measure a step with the current scoring settings (a short training run in the worker; fails while another runs). */
export async function probeScoringTime(): Promise<TimeProbe> {
  const settings = useStudio.getState().settings;
  const { stepSeconds, oneTimeSeconds, probeSeconds } = await withActivity('score', 'Measuring one step', () => worker().request({ type: 'probeRun', settings }));
  return { key: probeKey(settings), stepSeconds, oneTimeSeconds, probeSeconds };
}

/** Seconds a run of `steps` steps takes by a probe: its one-time cost, then each step. */
export const runSeconds = (probe: Pick<TimeProbe, 'stepSeconds' | 'oneTimeSeconds'>, steps: number): number | null =>
  probe.stepSeconds === null ? null : (probe.oneTimeSeconds ?? 0) + steps * probe.stepSeconds;
