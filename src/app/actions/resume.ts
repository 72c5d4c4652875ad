// Interrupted training runs (a reload, a crashed tab, a lost device) that the worker kept in its storage (OPFS):
// asked for when the pair they belong to is loaded (scoring: model and dataset; recovery: the pruned model too),
// offered in the run's slice, and discarded on request. Continuing is each run's own action (continueScoring,
// continueRecovery).

import type { SavedRunInfo } from '../../worker/protocol';
import { updateRun, useStudio, type RunName, type StudioState } from '../store';
import { toInfo, worker } from '../worker-connection';

const KIND: { readonly [N in RunName]: SavedRunInfo['kind'] } = { score: 'scoring', recover: 'recovery' };

/** What the run's stored snapshot belongs to, as the page has it (a later answer for another pair is dropped). */
const pairOf = (s: StudioState, run: RunName): string | null => {
  if (!s.model.loaded || !s.dataset.info || s.dataset.loading) return null;
  if (run === 'recover' && !s.prune.result) return null;
  return `${s.model.loaded.fingerprint}/${s.dataset.info.fingerprint}/${run === 'recover' ? JSON.stringify(s.prune.result?.plan) : ''}`;
};

/** Ask the worker whether it kept an interrupted run of this kind for what is loaded; offer it while the run is idle. */
export async function findInterrupted(run: RunName): Promise<void> {
  const pair = pairOf(useStudio.getState(), run);
  if (!pair) return;
  try {
    const answer = await worker().request({ type: 'findSavedRun', kind: KIND[run] });
    useStudio.setState((s) => (pairOf(s, run) === pair && s[run].state === 'idle' ? ({ [run]: { ...s[run], interrupted: answer.run } } as Partial<StudioState>) : s));
  } catch {
    // the worker has no model or dataset (yet): nothing to offer
  }
}

/** Forget the interrupted run: its snapshot is removed. */
export async function discardInterrupted(run: RunName): Promise<void> {
  useStudio.setState((s) => ({ [run]: { ...s[run], interrupted: null } }) as Partial<StudioState>);
  try {
    await worker().request({ type: 'discardSavedRun', kind: KIND[run] });
  } catch (err) {
    updateRun(run, () => ({ error: toInfo(err) }));
  }
}
