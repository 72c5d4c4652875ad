// Step 4: the plan choice (kept valid: never more merged than pruned) and the merge on the GPU.

import { mergesAllowed } from '../../gradprune/plan';
import type { PlanChoice } from '../../worker/protocol';
import { saveSession } from '../persist';
import { emptyPrune } from '../slices';
import { resetAfter, useStudio } from '../store';
import { toInfo, worker } from '../worker-connection';
import { withActivity } from './job';
import { recovering, recoveringError } from './run';

const set = useStudio.setState;

export function updatePlanChoice(patch: Partial<PlanChoice>): void {
  set((s) => {
    const next = { ...s.planChoice, ...patch };
    next.merge = Math.min(next.merge, next.prune);
    return { planChoice: next };
  });
  void saveSession();
}

export async function applyPrune(): Promise<void> {
  if (recovering()) {
    set((s) => ({ prune: { ...s.prune, error: recoveringError('applying another plan') } }));
    return;
  }
  const { planChoice: choice } = useStudio.getState();
  // Another method's plan drops its layers: merging needs IGIA's F (the worker refuses a merge for it).
  const planChoice = mergesAllowed(choice.rankedBy) ? choice : { ...choice, merge: 0 };
  set({ prune: { ...emptyPrune(), applying: true }, ...resetAfter('prune') });
  try {
    const result = await withActivity('prune', 'Merging', () => worker().request({ type: 'applyPrune', plan: planChoice }));
    set({ prune: { applying: false, result, error: null } });
  } catch (err) {
    set({ prune: { applying: false, result: null, error: toInfo(err) } });
  }
}
