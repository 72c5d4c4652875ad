// Step 5b: recovery fine-tuning of the pruned model, with the paper's settings to start from.

import type { RecoverSettings } from '../../worker/protocol';
import { useStudio } from '../store';
import { worker } from '../worker-connection';
import { jobSettings } from './job';
import { findInterrupted } from './resume';
import { startRun } from './run';

export function updateRecoverSettings(patch: Partial<RecoverSettings>): void {
  useStudio.setState((s) => ({ recoverSettings: { ...s.recoverSettings, ...patch } }));
}

/** Fine-tune the pruned model with a fresh LoRA; the zip prepared before it no longer holds what the Check shows. */
export async function startRecovery(): Promise<void> {
  await recoveryRun(false);
}

/** Continue the interrupted fine-tuning of this pruned model from its last snapshot (the worker has its settings). */
export async function continueRecovery(): Promise<void> {
  await recoveryRun(true);
}

async function recoveryRun(resume: boolean): Promise<void> {
  const { recoverSettings, evaluateOptions } = useStudio.getState();
  const result = await startRun('recover', () =>
    worker().request({ type: 'recover', settings: { ...recoverSettings, ...jobSettings() }, evaluation: { maxExamples: evaluateOptions.maxExamples }, resume }),
  );
  // A run cut short (a lost device) may continue from its last snapshot.
  if (!result && useStudio.getState().recover.error) void findInterrupted('recover');
}
