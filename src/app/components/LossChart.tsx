import { useMemo } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

/** A training loss curve by step; `data-points` carries how many steps it shows (for tests). */
export function LossChart({ losses, title, testId, note }: { losses: readonly number[]; title: string; testId: string; note?: string }) {
  const data = useMemo(() => losses.map((loss, step) => ({ step: step + 1, loss })), [losses]);
  return (
    <figure className="chart" data-testid={testId} data-points={data.length}>
      <figcaption>
        <h3>{title}</h3>
        {note && <span className="muted small">{note}</span>}
      </figcaption>
      <ResponsiveContainer width="100%" height={200}>
        <LineChart data={data} margin={{ top: 6, right: 12, bottom: 14, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="step" tick={{ fontSize: 10 }} label={{ value: 'step', position: 'insideBottom', offset: -6, fontSize: 11 }} />
          <YAxis domain={['auto', 'auto']} tick={{ fontSize: 10 }} width={44} tickFormatter={(v: number) => v.toFixed(2)} />
          <Tooltip formatter={(v) => Number(v).toFixed(4)} />
          <Line type="monotone" dataKey="loss" stroke="#2f5bd3" dot={data.length < 40} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </figure>
  );
}
