import { useMemo } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { setMetric } from '../actions/score';
import { igiaMetric, scoresFor, stabilityAgainstLatest } from '../plan-view';
import { useStudio } from '../store';
import { Heatmap } from './Heatmap';
import { LayerBars } from './LayerBars';
import { LiveStats } from './RunControls';
import { LossChart } from './LossChart';
import { GradientStepsNote } from './GradientStepsNote';
import { MethodRankings } from './MethodRankings';

/** The scoring run as it goes and when done: live numbers, loss, rank stability, the heatmap and the layer scores. */
export function ScoreLive() {
  const score = useStudio((s) => s.score);
  const choice = useStudio((s) => s.planChoice);
  const rankedBy = choice.rankedBy;
  const metric = igiaMetric(rankedBy);
  const config = useStudio((s) => s.model.loaded?.config);
  const rankings = score.result?.rankings;
  const latest = score.result?.scores ?? score.snapshots.at(-1) ?? null;
  const losses = score.live?.losses ?? score.result?.losses ?? [];
  const stability = useMemo(() => {
    if (score.result) return score.result.kendall.map((tau, s) => ({ step: s + 1, tau: Number.isFinite(tau) ? tau : null }));
    return stabilityAgainstLatest(score.snapshots, metric);
  }, [score.result, score.snapshots, metric]);
  if (!latest && !score.live) return null;
  return (
    <div className="live" data-testid="score-live">
      {score.restored && <p className="notice-inline small" data-testid="score-restored">These scores are from your last visit. Score again to prune with them (the merge needs this run's gradients).</p>}
      {score.result?.stopped && <p className="small muted" data-testid="score-stopped">Stopped after {score.result.scores.steps} steps; the scores use those steps.</p>}
      <LiveStats run="score" testPrefix="" />
      <div className="charts-grid">
        <LossChart losses={losses} title="Training loss" testId="loss-chart" />
        <figure className="chart" data-testid="stability-chart" data-points={stability.length}>
          <figcaption><h3>Rank stability</h3><span className="muted small">Kendall τ of each step's layer ranking vs the latest</span> <GradientStepsNote /></figcaption>
          <ResponsiveContainer width="100%" height={200}>
            <LineChart data={stability} margin={{ top: 6, right: 12, bottom: 14, left: 0 }}>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="step" tick={{ fontSize: 10 }} label={{ value: 'step', position: 'insideBottom', offset: -6, fontSize: 11 }} />
              <YAxis domain={[-1, 1]} ticks={[-1, -0.5, 0, 0.5, 1]} tick={{ fontSize: 10 }} width={32} />
              <Tooltip formatter={(v) => (v === null ? '—' : Number(v).toFixed(3))} />
              <Line type="stepAfter" dataKey="tau" stroke="#21918c" dot={stability.length < 40} connectNulls isAnimationActive={false} />
            </LineChart>
          </ResponsiveContainer>
        </figure>
      </div>
      {latest && (
        <>
          <div className="control-row" role="radiogroup" aria-label="Layer score">
            <span className="muted small">Rank layers by:</span>
            <label className="check">
              <input type="radio" name="metric" checked={rankedBy === 'paper'} onChange={() => setMetric('paper')} data-testid="metric-paper" /> the paper's score (Σ of F)
            </label>
            <label className="check">
              <input type="radio" name="metric" checked={rankedBy === 'code'} onChange={() => setMetric('code')} data-testid="metric-code" /> the released code's Σ‖S‖<sub>F</sub>
            </label>
          </div>
          <div className="charts-grid">
            <Heatmap values={latest.moduleScores} />
            <LayerBars scores={scoresFor(latest, metric)} title={`Layer scores (${metric === 'paper' ? 'paper' : 'released code'})`} />
          </div>
          {rankings && rankings.length > 0 && config && config.numLayers === latest.layerScores.length && <MethodRankings rankings={rankings} config={config} choice={choice} />}
        </>
      )}
    </div>
  );
}
