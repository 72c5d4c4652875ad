import { formatBytes, formatCount, formatExact } from '../../format';
import { applyPrune, updatePlanChoice } from '../actions/prune';
import { mergesAllowed } from '../../gradprune/plan';
import { angularBound, maxPrunable, planScores, planView } from '../plan-view';
import { useStudio } from '../store';
import type { MethodRanking, PlanRankedBy } from '../../worker/protocol';
import { LayerBars } from './LayerBars';
import { SETTING_HELP } from './setting-help';
import { ErrorBox, Progress } from './StepBits';

const methodTitle = (rankings: readonly MethodRanking[] | undefined, rankedBy: PlanRankedBy): string => rankings?.find((r) => r.rankedBy === rankedBy)?.title ?? rankedBy;

/** Why a ranking has no scores for this N (restored scores from before the other methods, angular beyond its bound). */
function unavailableLine(rankings: readonly MethodRanking[] | undefined, rankedBy: PlanRankedBy, prune: number): string {
  if (!rankings?.some((r) => r.rankedBy === rankedBy)) return `These scores have no ${rankedBy} ranking: score again, or rank by IGIA.`;
  const bound = rankedBy === 'angular' ? ` (the scoring run gathered blocks of 1 to ${angularBound(rankings)} layers)` : '';
  return `${methodTitle(rankings, rankedBy)} has no ranking for ${prune} layer${prune === 1 ? '' : 's'}${bound}: change the count, or rank by another method.`;
}

/** Step 4: how many layers go; the plan updates as the slider moves, Apply merges on the GPU. */
export function PruneStep() {
  const result = useStudio((s) => s.score.result);
  const restored = useStudio((s) => s.score.restored);
  const config = useStudio((s) => s.model.loaded?.config);
  const choice = useStudio((s) => s.planChoice);
  const metric = choice.rankedBy;
  const prune = useStudio((s) => s.prune);
  const scoring = useStudio((s) => s.score.state !== 'idle');
  const merges = mergesAllowed(metric);
  const scores = result ? planScores(result, metric, choice.prune) : null;
  // Other methods' plans only drop layers: merging needs IGIA's F.
  const planned = merges ? choice : { ...choice, merge: 0 };
  const view = scores && config ? planView(scores, config, planned) : null; // makePlan is cheap: every render
  const layers = result?.scores.layerScores.length ?? 0;
  const unavailable = result && !scores ? unavailableLine(result.rankings, metric, choice.prune) : null;
  if (!result || !config) {
    return (
      <section className="card" id="step-prune" aria-labelledby="step-prune-title" data-testid="prune-step">
        <h2 id="step-prune-title">4. Prune</h2>
        <p className="muted">Score the layers first.</p>
      </section>
    );
  }
  const max = maxPrunable(layers, choice.protectLast);
  const v = view && 'view' in view ? view.view : null;
  return (
    <section className="card" id="step-prune" aria-labelledby="step-prune-title" data-testid="prune-step">
      <h2 id="step-prune-title">4. Prune</h2>
      <div className="prune-controls">
        <label className="field" title="Which layer ranking the plan follows. All come from the scoring run; only IGIA's can merge.">
          <span>Rank by</span>
          <select value={metric} data-testid="rank-by" data-value={metric} onChange={(e) => updatePlanChoice({ rankedBy: e.currentTarget.value as PlanRankedBy })}>
            <option value="paper">GradPruner (IGIA, Σ F)</option>
            <option value="code">GradPruner, released code (Σ ‖S‖_F)</option>
            {(result.rankings ?? [])
              .filter((r) => !mergesAllowed(r.rankedBy))
              .map((r) => (
                <option key={r.rankedBy} value={r.rankedBy}>
                  {r.title}
                </option>
              ))}
          </select>
          {!merges && (
            <span className="muted small" data-testid="rank-by-no-merge">
              Merging needs IGIA's importance F: a plan ranked by {methodTitle(result.rankings, metric)} drops its layers (merge = 0).
            </span>
          )}
        </label>
        <label className="field field-wide">
          <span>
            Layers to remove: <strong data-testid="prune-count" data-value={choice.prune}>{choice.prune}</strong> of {layers}
            {v && <span className="muted"> ({(v.paramsRemoved * 100).toFixed(1)}% of the parameters)</span>}
          </span>
          <input
            type="range"
            min={0}
            max={max}
            step={1}
            value={Math.min(choice.prune, max)}
            data-testid="prune-slider"
            aria-valuetext={`${choice.prune} layers${v ? `, ${(v.paramsRemoved * 100).toFixed(1)}% of the parameters` : ''}`}
            aria-describedby="prune-help"
            onChange={(e) => updatePlanChoice({ prune: Number(e.currentTarget.value) })}
          />
          <span className="muted small" id="prune-help" data-testid="prune-help">{SETTING_HELP.prune}</span>
        </label>
        <label className="field" title={SETTING_HELP.merge}>
          <span>Merge (of the removed)</span>
          <input type="number" min={0} max={choice.prune} value={merges ? Math.min(choice.merge, choice.prune) : 0} disabled={!merges} data-testid="merge-input" aria-describedby="merge-help" onChange={(e) => updatePlanChoice({ merge: Math.max(0, Number(e.currentTarget.value)) })} />
          <span className="muted small" id="merge-help" data-testid="merge-help">{SETTING_HELP.merge}</span>
        </label>
        <label className="field" title={SETTING_HELP.keepFraction}>
          <span>Keep fraction</span>
          <input type="number" min={0.01} max={1} step={0.05} value={choice.keepFraction} data-testid="keep-input" aria-describedby="keep-help" onChange={(e) => Number(e.currentTarget.value) > 0 && updatePlanChoice({ keepFraction: Number(e.currentTarget.value) })} />
          <span className="muted small" id="keep-help" data-testid="keep-help">{SETTING_HELP.keepFraction}</span>
        </label>
        <label className="check" title={SETTING_HELP.protectLast}>
          <input type="checkbox" checked={choice.protectLast} data-testid="protect-last" aria-describedby="protect-help" onChange={(e) => updatePlanChoice({ protectLast: e.currentTarget.checked, prune: Math.min(choice.prune, maxPrunable(layers, e.currentTarget.checked)) })} /> Protect the last layer
          <span className="visually-hidden" id="protect-help">{SETTING_HELP.protectLast}</span>
        </label>
      </div>
      {unavailable && (
        <p className="notice-inline small" data-testid="rank-by-unavailable">
          {unavailable}
        </p>
      )}
      {scores && merges && scores.every((x) => x === 0) && (
        <p className="notice-inline small" data-testid="scores-all-zero">
          Every layer scores 0, so this plan follows no evidence: the LoRA B matrices had not moved yet. Score with more steps (at least three).
        </p>
      )}
      {view && 'error' in view && <ErrorBox error={view.error} testId="plan-error" what="make this plan" next="Move the slider or lower the merge count." />}
      {v && (
        <>
          {scores && <LayerBars scores={scores} plan={v.plan} title="Which layers go" />}
          <p className="small" data-testid="plan-text">
            Kept: <span data-testid="plan-kept" data-value={v.plan.kept.join(',')}>{v.plan.kept.map((l) => `L${l}`).join(' ')}</span>
            {v.plan.merged.length > 0 && (
              <>
                {' '}· merged: <span data-testid="plan-merged" data-value={v.plan.merged.join(',')}>{v.plan.merged.map((p) => `L${p} → L${v.plan.receiver[p]}`).join(', ')}</span>
              </>
            )}
            {v.plan.dropped.length > 0 && (
              <>
                {' '}· dropped: <span data-testid="plan-dropped" data-value={v.plan.dropped.join(',')}>{v.plan.dropped.map((p) => `L${p}`).join(' ')}</span>
              </>
            )}
          </p>
          <table className="before-after" data-testid="plan-numbers">
            <thead>
              <tr><th scope="col"></th><th scope="col">Before</th><th scope="col">After</th></tr>
            </thead>
            <tbody>
              <tr><th scope="row">Layers</th><td>{v.plan.before.layers}</td><td data-testid="after-layers" data-value={v.plan.after.layers}>{v.plan.after.layers}</td></tr>
              <tr>
                <th scope="row">Parameters</th>
                <td title={formatExact(v.plan.before.params)}>{formatCount(v.plan.before.params)}</td>
                <td data-testid="after-params" data-value={v.plan.after.params} title={formatExact(v.plan.after.params)}>{formatCount(v.plan.after.params)}</td>
              </tr>
              <tr>
                <th scope="row">Weight memory ({v.plan.dtype})</th>
                <td>{formatBytes(v.plan.before.weightBytes)}</td>
                <td data-testid="after-bytes" data-value={v.plan.after.weightBytes}>{formatBytes(v.plan.after.weightBytes)}</td>
              </tr>
              <tr>
                <th scope="row">Est. speed-up</th>
                <td>1×</td>
                <td data-testid="speedup" data-value={v.speedup} title={`forward FLOPs per token at ${v.plan.contextLength} tokens of context`}>{v.speedup.toFixed(2)}×</td>
              </tr>
            </tbody>
          </table>
          <div className="control-row">
            <button type="button" data-testid="prune-apply" disabled={prune.applying || scoring || restored || choice.prune === 0 || !scores} onClick={() => void applyPrune()}>
              {merges ? 'Apply: merge on the GPU' : 'Apply: drop the layers'}
            </button>
            {restored && <span className="muted small">Score again first: the merge needs this run's gradients.</span>}
            {choice.prune === 0 && <span className="muted small">Move the slider to remove at least one layer.</span>}
          </div>
        </>
      )}
      {prune.applying && <Progress step="prune" fallback="Merging" />}
      {prune.error && <ErrorBox error={prune.error} testId="prune-error" what="prune the model" next="Change the plan, or score again, and apply once more." />}
      {prune.result && (
        <p className="ok-text" data-testid="pruned" data-layers={prune.result.plan.kept.length}>
          Pruned: {prune.result.plan.numLayers} → {prune.result.plan.kept.length} layers, checkpoint {formatBytes(prune.result.totalBytes)}
          {Object.keys(prune.result.addedElements).length > 0 && `, ${formatExact(Object.values(prune.result.addedElements).reduce((a, b) => a + b, 0))} weights merged`}.
        </p>
      )}
    </section>
  );
}
