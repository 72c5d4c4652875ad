// Step 5: dense vs pruned on the held-out split, and both models' continuations of the person's own prompt.

import type { EvaluateOptions } from '../../worker/protocol';
import type { CheckSlice } from '../slices';
import { useStudio } from '../store';
import { toInfo, worker } from '../worker-connection';
import { jobSettings, withActivity } from './job';

const set = useStudio.setState;
const get = useStudio.getState;

export function updateEvaluateOptions(patch: Partial<EvaluateOptions>): void {
  set((s) => ({ evaluateOptions: { ...s.evaluateOptions, ...patch } }));
}

export async function evaluate(): Promise<void> {
  const options = get().evaluateOptions;
  set({ check: { running: true, result: null, error: null } });
  try {
    const result = await withActivity('check', 'Evaluating', () => worker().request({ type: 'evaluate', options: { ...options, ...jobSettings() } }));
    set({ check: { running: false, result, error: null } });
  } catch (err) {
    set({ check: { running: false, result: null, error: toInfo(err) } });
  }
}

/** Greedy continuations of the person's own prompt by the dense and the pruned model (the last ten stay). */
export async function generateCustom(prompt: string): Promise<void> {
  if (!prompt.trim()) return;
  const { maxNewTokens } = get().evaluateOptions;
  set((s) => ({ custom: { ...s.custom, running: true, error: null } }));
  try {
    const result = await withActivity('check', 'Generating', () => worker().request({ type: 'generate', prompts: [prompt], maxNewTokens, ...jobSettings() }));
    set((s) => ({ custom: { running: false, rows: [...result.generations, ...s.custom.rows].slice(0, 10), error: null } }));
  } catch (err) {
    set((s) => ({ custom: { ...s.custom, running: false, error: toInfo(err) } }));
  }
}

export function updateCompareChoice(patch: Partial<CheckSlice['compareChoice']>): void {
  set((s) => ({ compareChoice: { ...s.compareChoice, ...patch } }));
}

/** The N the comparison runs: from .. to (to: the plan's N), at least 1 each. */
export function compareCounts(choice: CheckSlice['compareChoice'], planPrune: number): number[] {
  const from = Math.max(1, Math.floor(choice.from));
  const to = Math.max(from, Math.floor(choice.to ?? planPrune));
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Each chosen method's plan for each N, measured on the Check's held-out rows (the worker refuses what it cannot rank). */
export async function comparePlans(): Promise<void> {
  const { compareChoice, planChoice, evaluateOptions } = get();
  set({ comparePlans: { running: true, result: null, error: null } });
  try {
    const options = { methods: [...compareChoice.methods], counts: compareCounts(compareChoice, planChoice.prune), maxExamples: evaluateOptions.maxExamples, ...jobSettings() };
    const result = await withActivity('check', 'Comparing methods', () => worker().request({ type: 'evaluatePlans', options }));
    set({ comparePlans: { running: false, result, error: null } });
  } catch (err) {
    set({ comparePlans: { running: false, result: null, error: toInfo(err) } });
  }
}
