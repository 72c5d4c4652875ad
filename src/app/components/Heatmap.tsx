import { useState } from 'react';
import type { LinearModule } from '../../model/config';
import { formatScore, logScale, viridis } from '../plan-view';

const MODULE_LABELS: Record<LinearModule, string> = {
  q_proj: 'q',
  k_proj: 'k',
  v_proj: 'v',
  o_proj: 'o',
  gate_proj: 'gate',
  up_proj: 'up',
  down_proj: 'down',
};
const MODULES = Object.keys(MODULE_LABELS) as LinearModule[];

/**
 * Importance per (layer, module) on a log viridis scale: layers as rows (layer 0 at the top), modules as columns.
 * Each cell carries its exact value (title and data-value); hovering or focusing one shows it beside the legend.
 */
export function Heatmap({ values, fates }: { values: number[][]; fates?: ('kept' | 'merged' | 'dropped')[] }) {
  const [hover, setHover] = useState<{ layer: number; module: LinearModule; value: number } | null>(null);
  const scale = logScale(values.flat());
  const positive = values.flat().filter((v) => v > 0);
  const min = positive.length ? Math.min(...positive) : 0;
  const max = positive.length ? Math.max(...positive) : 0;
  const cellW = 52;
  const cellH = Math.max(14, Math.min(26, Math.floor(420 / Math.max(1, values.length))));
  const left = 64;
  const top = 22;
  const width = left + MODULES.length * cellW + 4;
  const height = top + values.length * cellH + 4;
  return (
    <figure className="heatmap" data-testid="heatmap">
      <figcaption>
        <h3>Importance by layer and module</h3>
        <span className="muted small">log scale, viridis</span>
      </figcaption>
      {positive.length === 0 && (
        <p className="muted small" data-testid="heatmap-empty">
          All zero so far: the LoRA B matrices start at zero, so the gradients of A (and the importance) appear once the first update has moved B.
        </p>
      )}
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" style={{ maxWidth: width * 1.4 }} role="img" aria-label="Importance heatmap, layers by modules">
        {MODULES.map((m, j) => (
          <text key={m} x={left + j * cellW + cellW / 2} y={14} textAnchor="middle" fontSize={11} fill="#5c6576">
            {MODULE_LABELS[m]}
          </text>
        ))}
        {values.map((row, layer) => (
          <g key={layer}>
            <text x={left - 6} y={top + layer * cellH + cellH / 2 + 4} textAnchor="end" fontSize={11} fill={fates?.[layer] && fates[layer] !== 'kept' ? '#b3261e' : '#5c6576'}>
              {`L${layer}`}
              {fates?.[layer] === 'dropped' ? ' ✕' : fates?.[layer] === 'merged' ? ' ↑' : ''}
            </text>
            {MODULES.map((m, j) => {
              const v = row[j] ?? 0;
              const t = scale(v);
              return (
                <rect
                  key={m}
                  data-testid="heatmap-cell"
                  data-layer={layer}
                  data-module={m}
                  data-value={v}
                  x={left + j * cellW + 1}
                  y={top + layer * cellH + 1}
                  width={cellW - 2}
                  height={cellH - 2}
                  rx={2}
                  fill={v > 0 ? viridis(t) : '#e9ecf1'}
                  tabIndex={0}
                  aria-label={`layer ${layer} ${m}: ${formatScore(v)}`}
                  onMouseEnter={() => setHover({ layer, module: m, value: v })}
                  onFocus={() => setHover({ layer, module: m, value: v })}
                  onMouseLeave={() => setHover(null)}
                  onBlur={() => setHover(null)}
                  stroke={hover?.layer === layer && hover.module === m ? '#111' : 'none'}
                  strokeWidth={2}
                >
                  <title>{`layer ${layer} · ${m}: ${v}`}</title>
                </rect>
              );
            })}
          </g>
        ))}
      </svg>
      <div className="heatmap-legend">
        <span className="small muted">{formatScore(min)}</span>
        <span className="legend-bar" aria-hidden="true" style={{ background: `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(viridis).join(', ')})` }} />
        <span className="small muted">{formatScore(max)}</span>
        <span className="heatmap-hover small" data-testid="heatmap-hover" aria-live="polite">
          {hover ? (
            <>
              layer {hover.layer} · {hover.module}: <strong>{hover.value.toExponential(4)}</strong>
            </>
          ) : (
            'Hover or focus a cell for its exact value.'
          )}
        </span>
      </div>
    </figure>
  );
}
