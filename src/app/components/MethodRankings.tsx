import { makePlan } from '../../gradprune/plan';
import type { ModelConfig } from '../../model/config';
import type { MethodRanking, PlanChoice } from '../../worker/protocol';
import { formatDuration, layerRanks, rankingScores } from '../plan-view';

// Inline (styles.css is shared): the dropped colour of the layer bars.
const REMOVED_CELL = { background: '#b8bec9', fontWeight: 600 } as const;

const formatCost = (seconds: number): string => (seconds < 1 ? `${Math.round(seconds * 1000)} ms` : formatDuration(seconds));

interface Column {
  ranking: MethodRanking;
  /** N the column's scores are for (methods whose layers depend on it: last, angular). */
  prune?: number;
  ranks: number[] | null;
  /** The layers this method's plan removes at N (merge 0). */
  removed: Set<number>;
}

function columnOf(ranking: MethodRanking, config: ModelConfig, choice: PlanChoice): Column {
  const n = Math.max(1, choice.prune);
  const scores = rankingScores(ranking, n);
  if (!scores) return { ranking, prune: n, ranks: null, removed: new Set() };
  let removed = new Set<number>();
  try {
    removed = new Set(makePlan(scores.layerScores, config, { prune: n, merge: 0, keepFraction: choice.keepFraction, protectLast: choice.protectLast }).pruned);
  } catch {
    // more layers than may go: nothing highlighted
  }
  return { ranking, prune: scores.prune, ranks: layerRanks(scores.layerScores), removed };
}

/** Every method's layer ranking side by side (rank 1 = most important); the layers each one's plan removes at N are highlighted. */
export function MethodRankings({ rankings, config, choice }: { rankings: MethodRanking[]; config: ModelConfig; choice: PlanChoice }) {
  const columns = rankings.map((r) => columnOf(r, config, choice));
  const n = Math.max(1, choice.prune);
  return (
    <figure className="chart" data-testid="method-rankings" data-prune={n}>
      <figcaption>
        <h3>Every method's ranking</h3>
        <span className="muted small">
          Rank 1 = most important. Highlighted: the {n} layer{n > 1 ? 's' : ''} each method's plan removes (N = {n}, the Prune step's count). All from this one scoring run; pick one in the Prune step.
        </span>
      </figcaption>
      <div className="table-scroll">
        <table className="before-after method-rankings">
          <thead>
            <tr>
              <th scope="col">Layer</th>
              {columns.map((c) => (
                <th scope="col" key={c.ranking.method} data-testid="ranking-method" data-value={c.ranking.method} title={c.ranking.reference}>
                  {c.ranking.title}
                  {c.prune !== undefined && <span className="muted small"> (N = {c.prune})</span>}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {Array.from({ length: config.numLayers }, (_, layer) => (
              <tr key={layer}>
                <th scope="row">L{layer}</th>
                {columns.map((c) => {
                  const removed = c.removed.has(layer);
                  return (
                    <td
                      key={c.ranking.method}
                      style={removed ? REMOVED_CELL : undefined}
                      data-testid="rank-cell"
                      data-method={c.ranking.method}
                      data-layer={layer}
                      data-value={c.ranks ? c.ranks[layer] : ''}
                      data-removed={removed}
                    >
                      {c.ranks ? c.ranks[layer] : '—'}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row">Cost</th>
              {columns.map((c) => (
                <td key={c.ranking.method} className="small" data-testid="ranking-cost" data-method={c.ranking.method} data-value={c.ranking.cost.seconds} title={c.ranking.cost.note}>
                  {c.ranks ? formatCost(c.ranking.cost.seconds) : `not gathered for N = ${c.prune}`}
                </td>
              ))}
            </tr>
          </tfoot>
        </table>
      </div>
    </figure>
  );
}
