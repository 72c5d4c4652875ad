// The training runs' snapshots as the steps use them (../run-store.ts keeps them): which key a run of the loaded
// session has, the checkpoint hook a run saves through, and the page's requests to find or discard one.

import { toErrorInfo } from '../../errors';
import { sha256Hex } from '../../model/fingerprint';
import type { RunCheckpoint } from '../../nn/lora-run';
import type { RunKind } from '../../nn/run-snapshot';
import type { RequestOf, ResultBody, SavedRunInfo } from '../protocol';
import type { RunKey, StoredRun } from '../run-store';
import type { StepContext } from '../session';

/**
 * The key of the session's run of this kind: scoring trains the loaded model; recovery the pruned one, which the
 * plan tells apart (two plans of one layer count have the same shapes).
 */
export async function runKeyOf(ctx: StepContext, kind: RunKind): Promise<RunKey> {
  const { session } = ctx;
  const dataset = session.needDataset().fingerprint;
  if (kind === 'scoring') return { kind, model: session.fingerprint, dataset };
  const plan = session.needPruned().plan;
  return { kind, model: (await sha256Hex(`${session.fingerprint}\n${JSON.stringify(plan)}`)).slice(0, 32), dataset };
}

/** Snapshots every few steps: each costs a read-back of the adapters (and IGIA's factors), so not every step of a long run. */
export const checkpointEvery = (steps: number): number => Math.min(5, Math.max(1, Math.floor(steps / 8)));

/**
 * The hook a run saves its snapshots through, under `key`, with the request's settings to continue with. A snapshot
 * that cannot be stored (storage full or blocked) does not stop the run: the page is told once.
 */
export function checkpointTo<S>(ctx: StepContext, key: RunKey, plannedSteps: number, settings: S): RunCheckpoint {
  let warned = false;
  const { session } = ctx;
  return {
    everySteps: checkpointEvery(plannedSteps),
    save: async (snapshot) => {
      const info: SavedRunInfo = {
        kind: key.kind,
        step: snapshot.step,
        steps: snapshot.settings.steps,
        modelName: session.checkpoint.name,
        datasetName: session.needDataset().fileName,
        savedAt: Date.now(),
      };
      try {
        await ctx.runs.save<S>(key, snapshot, { info, settings });
      } catch (e) {
        if (warned) return;
        warned = true;
        const why = toErrorInfo(e).message;
        ctx.post({ type: 'error', requestId: null, error: { code: 'file', message: `The run goes on, but its progress could not be kept for after a reload (${why}).`, subject: 'storage' } });
      }
    },
  };
}

/** The stored run of `key` with the settings it was started with, for a continue. */
export const storedRun = <S>(ctx: StepContext, key: RunKey): Promise<StoredRun<S> | null> => ctx.runs.find<S>(key);

export async function findSavedRun(ctx: StepContext, { kind }: RequestOf<'findSavedRun'>): Promise<ResultBody<'findSavedRun'>> {
  if (!ctx.session.dataset || (kind === 'recovery' && !ctx.session.pruned)) return { run: null };
  const stored = await ctx.runs.find(await runKeyOf(ctx, kind));
  return { run: stored?.info ?? null };
}

export async function discardSavedRun(ctx: StepContext, { kind }: RequestOf<'discardSavedRun'>): Promise<ResultBody<'discardSavedRun'>> {
  ctx.session.notTraining();
  if (ctx.session.dataset && (kind === 'scoring' || ctx.session.pruned)) await ctx.runs.remove(await runKeyOf(ctx, kind));
  return { run: null };
}
