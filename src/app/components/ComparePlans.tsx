import { useMemo } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ImportanceMethodId } from '../../gradprune/importance/method';
import type { PlanEvaluation, PlansEvaluatedEvent } from '../../worker/protocol';
import { compareCounts, comparePlans, updateCompareChoice } from '../actions/check';
import { useStudio } from '../store';
import { ErrorBox, Progress } from './StepBits';

const COLORS = ['#2f5bd3', '#d3572f', '#2f9e58', '#8a3fd3', '#c9a227', '#3fb8c9'];

/** The metric the chart and the table lead with: accuracy on multiple-choice data, else held-out loss. */
const metricOf = (result: PlansEvaluatedEvent) => (result.items > 0 ? { key: 'acc' as const, label: `accuracy (${result.items} questions)` } : { key: 'loss' as const, label: 'held-out loss' });

/** Each method's points for the chart: the dense model at 0% removed, then its plans by N. */
export function chartSeries(result: PlansEvaluatedEvent): { method: ImportanceMethodId; title: string; points: { removed: number; value: number }[] }[] {
  const { key } = metricOf(result);
  const dense = result.plans.find((p) => p.method === null);
  const methods = [...new Set(result.plans.flatMap((p) => (p.method ? [p.method] : [])))];
  const point = (p: PlanEvaluation) => ({ removed: 100 * p.removedFraction, value: p[key] ?? NaN });
  return methods.map((method) => {
    const plans = result.plans.filter((p) => p.method === method).sort((a, b) => a.prune - b.prune);
    return { method, title: plans[0].title, points: [...(dense ? [point(dense)] : []), ...plans.map(point)] };
  });
}

/** The Check's "Compare methods": several methods' plans (dropped, no merge) for a range of N, as a table and a chart. */
export function ComparePlans() {
  const rankings = useStudio((s) => s.score.result?.rankings);
  const choice = useStudio((s) => s.compareChoice);
  const planPrune = useStudio((s) => s.planChoice.prune);
  const numLayers = useStudio((s) => s.model.loaded?.config.numLayers ?? 2);
  const state = useStudio((s) => s.comparePlans);
  const busy = useStudio((s) => s.check.running || s.comparePlans.running || s.recover.state !== 'idle');
  const counts = compareCounts(choice, planPrune);
  const toggle = (method: ImportanceMethodId, on: boolean) =>
    updateCompareChoice({ methods: on ? [...choice.methods.filter((m) => m !== method), method] : choice.methods.filter((m) => m !== method) });
  return (
    <div className="compare-plans" data-testid="compare-plans">
      <h3>Compare methods</h3>
      <p className="muted small">
        Each ticked method's plan for every N in the range, its layers dropped without merging (IGIA's too, so the rows differ only in which layers go), measured on the same held-out rows as above.
      </p>
      {!rankings?.length ? (
        <p className="muted">These scores carry no method rankings: score again to compare methods.</p>
      ) : (
        <div className="control-row">
          {rankings.map((r) => (
            <label key={r.method} className="check" title={r.reference}>
              <input type="checkbox" checked={choice.methods.includes(r.method)} data-testid={`compare-method-${r.method}`} onChange={(e) => toggle(r.method, e.currentTarget.checked)} />
              <span>{r.title}</span>
            </label>
          ))}
          <label className="field">
            <span>N from</span>
            <input type="number" min={1} max={numLayers - 1} value={choice.from} data-testid="compare-from" onChange={(e) => updateCompareChoice({ from: Math.max(1, Number(e.currentTarget.value)) })} />
          </label>
          <label className="field">
            <span>to</span>
            <input type="number" min={1} max={numLayers - 1} value={choice.to ?? planPrune} data-testid="compare-to" onChange={(e) => updateCompareChoice({ to: Math.max(1, Number(e.currentTarget.value)) })} />
          </label>
          <button type="button" data-testid="compare-run" disabled={busy || choice.methods.length === 0} onClick={() => void comparePlans()}>
            Evaluate {choice.methods.length * counts.length} plans
          </button>
        </div>
      )}
      {state.running && <Progress step="check" fallback="Comparing methods" />}
      {state.error && <ErrorBox error={state.error} testId="compare-error" what="compare the methods" next="Untick the method it names, or narrow the range of N." />}
      {state.result && <CompareResult result={state.result} />}
    </div>
  );
}

const fixed = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? '—' : x.toFixed(digits));

/** The comparison's table (method × N: loss / accuracy) and its chart. */
export function CompareResult({ result }: { result: PlansEvaluatedEvent }) {
  const metric = metricOf(result);
  const series = useMemo(() => chartSeries(result), [result]);
  const counts = [...new Set(result.plans.filter((p) => p.method).map((p) => p.prune))].sort((a, b) => a - b);
  const dense = result.plans.find((p) => p.method === null);
  const cell = (p: PlanEvaluation | undefined, id: string) =>
    p ? (
      <td key={id} title={p.pruned.length ? `layers ${p.pruned.join(', ')} removed; ${p.params.toLocaleString()} parameters` : `${p.params.toLocaleString()} parameters`}>
        <span data-testid={`${id}-loss`} data-value={p.loss ?? undefined}>{fixed(p.loss, 4)}</span>
        {result.items > 0 && (
          <>
            {' / '}
            <span data-testid={`${id}-acc`} data-value={p.acc}>{fixed(p.acc, 3)}</span>
          </>
        )}
      </td>
    ) : (
      <td key={id}>—</td>
    );
  return (
    <>
      <table className="before-after" data-testid="compare-table">
        <thead>
          <tr>
            <th>method</th>
            <th>dense</th>
            {counts.map((n) => (
              <th key={n}>N = {n}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {series.map((s) => (
            <tr key={s.method} data-testid={`compare-row-${s.method}`}>
              <th scope="row">{s.title}</th>
              {cell(dense, `compare-${s.method}-0`)}
              {counts.map((n) => cell(result.plans.find((p) => p.method === s.method && p.prune === n), `compare-${s.method}-${n}`))}
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted small">
        Held-out loss{result.items > 0 ? ' / accuracy' : ''} on {result.rows} held-out examples; hover a cell for the layers removed and the parameters left.
      </p>
      <figure className="chart" data-testid="compare-chart" data-lines={series.length} data-metric={metric.key}>
        <figcaption>
          <h3>{metric.label} vs parameters removed</h3>
        </figcaption>
        <ResponsiveContainer width="100%" height={240}>
          <LineChart margin={{ top: 6, right: 12, bottom: 14, left: 0 }}>
            <CartesianGrid strokeDasharray="3 3" />
            <XAxis type="number" dataKey="removed" domain={[0, 'auto']} tick={{ fontSize: 10 }} tickFormatter={(v: number) => `${v.toFixed(0)}%`} label={{ value: 'parameters removed', position: 'insideBottom', offset: -6, fontSize: 11 }} />
            <YAxis type="number" domain={metric.key === 'acc' ? [0, 1] : ['auto', 'auto']} tick={{ fontSize: 10 }} width={44} tickFormatter={(v: number) => v.toFixed(2)} />
            <Tooltip formatter={(v) => Number(v).toFixed(4)} labelFormatter={(v) => `${Number(v).toFixed(1)}% removed`} />
            <Legend verticalAlign="top" />
            {series.map((s, i) => (
              <Line key={s.method} data={s.points} dataKey="value" name={s.title} stroke={COLORS[i % COLORS.length]} isAnimationActive={false} />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </figure>
    </>
  );
}
