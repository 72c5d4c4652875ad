// Step 5: dense vs pruned on the held-out split, and both models' continuations of the person's own prompt.

import type { EvaluateOptions } from '../../worker/protocol';
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
