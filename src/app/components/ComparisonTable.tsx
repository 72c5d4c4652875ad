import type { ComparisonRow } from '../../eval/before-after';
import type { ResolvedPrecision } from '../../nn/precision';
import { formatBytes, formatCount, formatExact, formatMsPerToken } from '../../format';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/**
 * The before / after table: one row per model (dense, pruned, pruned + recovered) with its size, its measured
 * forward time per token and its held-out numbers. Each cell carries the exact value in data-value, with the test id
 * `${testPrefix}-${key}-${metric}` (e.g. eval-pruned-loss).
 */
export function ComparisonTable({ rows, keys, testId, testPrefix }: { rows: readonly ComparisonRow[]; keys: readonly string[]; testId: string; testPrefix: string }) {
  const withAcc = rows.some((r) => r.acc !== null);
  const withLoss = rows.some((r) => r.heldOutLoss !== null);
  const withExactMatch = rows.some((r) => r.exactMatch != null);
  const first = rows[0];
  const cell = (key: string, metric: string, value: number | null, text: (v: number) => string, title?: string) => (
    <td data-testid={`${testPrefix}-${key}-${metric}`} data-value={value ?? undefined} title={title}>
      {value === null ? '—' : text(value)}
    </td>
  );
  return (
    <div className="table-scroll">
      <table className="before-after comparison" data-testid={testId}>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Layers</th>
            <th scope="col">Parameters</th>
            <th scope="col">Weight memory</th>
            <th scope="col" title="Median time of a forward pass over a full batch, divided by its tokens; the speed-up is the first row's time over this row's">
              Forward time / token (speed-up)
            </th>
            {withLoss && <th scope="col">Held-out loss</th>}
            {withLoss && <th scope="col">Perplexity</th>}
            {withAcc && <th scope="col">Accuracy</th>}
            {withAcc && <th scope="col">Accuracy (length-norm.)</th>}
            {withExactMatch && <th scope="col" title="Greedy answers equal to the label (trimmed)">Exact match</th>}
            {withExactMatch && <th scope="col" title="After normalising case, punctuation, articles and spacing (SQuAD)">Exact match (normalised)</th>}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => {
            const key = keys[i] ?? String(i);
            return (
              <tr key={key} data-testid="comparison-row" data-label={r.label} data-layers={r.layers} data-parameters={r.parameters}>
                <th scope="row">{r.label}</th>
                {cell(key, 'layers', r.layers, String)}
                {cell(key, 'params', r.parameters, (v) => `${formatCount(v)}${r !== first ? ` (${pct(r.parameterRatio)})` : ''}`, `${formatExact(r.parameters)} parameters`)}
                {cell(key, 'weights', r.weightBytes, formatBytes, `${formatExact(r.weightBytes)} bytes`)}
                {cell(key, 'ms', r.msPerToken, (v) => `${formatMsPerToken(v)}${r !== first && r.speedup !== null ? ` (${r.speedup.toFixed(2)}×)` : ''}`)}
                {withLoss && cell(key, 'loss', r.heldOutLoss, (v) => v.toFixed(4))}
                {withLoss && cell(key, 'ppl', r.perplexity, (v) => v.toFixed(2))}
                {withAcc && cell(key, 'acc', r.acc, pct)}
                {withAcc && cell(key, 'acc-norm', r.accNorm, pct)}
                {withExactMatch && cell(key, 'em', r.exactMatch ?? null, pct)}
                {withExactMatch && cell(key, 'em-norm', r.normalizedExactMatch ?? null, pct)}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The weight storage the table's models ran with and why; which rows streamed their layers from host memory. */
export function PrecisionNote({ precision, rows, testId }: { precision: ResolvedPrecision; rows: readonly ComparisonRow[]; testId: string }) {
  const streamed = rows.filter((r) => r.residency === 'streamed').map((r) => r.label);
  return (
    <p className="small" data-testid={testId} data-value={precision.storage}>
      weights: {precision.storage} ({precision.reason}){streamed.length > 0 && `; layers streamed from host memory (${streamed.join(', ')})`}
    </p>
  );
}
