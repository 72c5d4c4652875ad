import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Cell, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { PrunePlan } from '../../gradprune/plan';
import { formatScore } from '../plan-view';

const FATE_COLOURS = { kept: '#3b528b', merged: '#e69f00', dropped: '#b8bec9' } as const;

/** One bar per layer; with a plan, bars show which layers are kept, merged (into which) or dropped. */
export function LayerBars({ scores, plan, title }: { scores: number[]; plan?: PrunePlan; title: string }) {
  // Scores span decades: a log axis keeps the small ones (the layers that go) visible. It needs positive values.
  const positive = scores.filter((v) => v > 0);
  const canLog = positive.length === scores.length && positive.length > 0;
  const [log, setLog] = useState(true);
  const useLog = canLog && log;
  const lo = canLog ? Math.min(...positive) : 0;
  const hi = canLog ? Math.max(...positive) : 0;
  const data = scores.map((score, layer) => {
    const fate = plan?.fates[layer];
    return {
      layer: `L${layer}`,
      score,
      fate: fate?.kind ?? 'kept',
      note: !fate ? '' : fate.kind === 'kept' ? `kept as layer ${fate.newIndex}` : fate.kind === 'merged' ? `merged into L${fate.into}` : 'dropped',
    };
  });
  return (
    <figure className="chart" data-testid="layer-bars">
      <figcaption>
        <h3>{title}</h3>
        {plan && (
          <span className="small legend">
            <span className="swatch" style={{ background: FATE_COLOURS.kept }} /> kept <span className="swatch" style={{ background: FATE_COLOURS.merged }} /> merged{' '}
            <span className="swatch" style={{ background: FATE_COLOURS.dropped }} /> dropped
          </span>
        )}
        {canLog && (
          <label className="check small">
            <input type="checkbox" checked={log} onChange={(e) => setLog(e.currentTarget.checked)} /> log scale
          </label>
        )}
      </figcaption>
      {positive.length === 0 && <p className="muted small" data-testid="bars-empty">No importance yet: the LoRA B matrices start at zero and move after the first update.</p>}
      <ResponsiveContainer width="100%" height={220}>
        <BarChart data={data} margin={{ top: 6, right: 12, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="layer" tick={{ fontSize: 10 }} interval={0} />
          {useLog ? (
            <YAxis scale="log" domain={[lo / 2, hi * 1.5]} allowDataOverflow tick={{ fontSize: 10 }} width={56} tickFormatter={(v: number) => formatScore(v)} />
          ) : (
            <YAxis tick={{ fontSize: 10 }} width={56} tickFormatter={(v: number) => formatScore(v)} />
          )}
          <Tooltip formatter={(v, _n, item) => [`${formatScore(Number(v))}${item.payload.note ? ` — ${item.payload.note}` : ''}`, 'score']} />
          <Bar dataKey="score" isAnimationActive={false}>
            {data.map((d) => (
              <Cell key={d.layer} fill={FATE_COLOURS[d.fate]} data-testid="layer-bar" data-fate={d.fate} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}
