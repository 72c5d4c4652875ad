import type { ExactMatchView } from '../../worker/protocol';

/** ✓ exact, ≈ only after normalising (case, punctuation, articles, spacing), ✗ neither. */
function Mark({ exact, normalized }: { exact: boolean; normalized: boolean }) {
  const [mark, title] = exact ? ['✓', 'exact match'] : normalized ? ['≈', 'matches after normalising'] : ['✗', 'no match'];
  return (
    <span className={`match-mark ${exact ? 'match-exact' : normalized ? 'match-normalized' : 'match-none'}`} title={title} data-match={exact ? 'exact' : normalized ? 'normalized' : 'none'}>
      {mark}
    </span>
  );
}

/** Every held-out prompt the Check answered: its label, the dense and the pruned answer, each with its match mark. */
export function ExactMatchAnswers({ view }: { view: ExactMatchView }) {
  return (
    <details className="exact-match" data-testid="exact-match-answers">
      <summary>
        Answers to {view.rows.length} held-out prompts (greedy, up to each label's length{view.margin > 0 ? ` + ${view.margin} tokens` : ''}, stopping at EOS)
        {view.skipped > 0 && `; ${view.skipped} ${view.skipped === 1 ? 'row has' : 'rows have'} no prompt and label`}
      </summary>
      <p className="muted small">✓ exact match (trimmed), ≈ match after normalising (case, punctuation, a/an/the, spacing), ✗ neither.</p>
      <div className="table-scroll">
        <table className="before-after">
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">Prompt</th>
              <th scope="col">Label</th>
              <th scope="col">Dense answer</th>
              <th scope="col">Pruned answer</th>
            </tr>
          </thead>
          <tbody>
            {view.rows.map((r) => (
              <tr key={r.where} data-testid="exact-match-row" data-where={r.where}>
                <th scope="row">{r.where}</th>
                <td className="gen-prompt" title={r.prompt}>{r.prompt.length > 160 ? `…${r.prompt.slice(-160)}` : r.prompt}</td>
                <td data-testid="em-label">{r.label}</td>
                <td data-testid="em-dense"><Mark exact={r.denseMatch} normalized={r.denseNormalizedMatch} /> {r.dense || '(nothing)'}</td>
                <td data-testid="em-pruned"><Mark exact={r.prunedMatch} normalized={r.prunedNormalizedMatch} /> {r.pruned || '(nothing)'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}
