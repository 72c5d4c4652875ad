import { useState } from 'react';
import type { GenerationRow } from '../../worker/protocol';
import { evaluate, generateCustom, updateEvaluateOptions } from '../actions/check';
import { useStudio } from '../store';
import { ComparePlans } from './ComparePlans';
import { ComparisonTable, PrecisionNote } from './ComparisonTable';
import { ExactMatchAnswers } from './ExactMatchAnswers';
import { RecoverPanel } from './RecoverPanel';
import { ErrorBox, Progress } from './StepBits';

/** Step 5: dense vs pruned on the held-out split, and a few generations side by side. */
export function CheckStep() {
  const pruned = useStudio((s) => s.prune.result);
  const heldOut = useStudio((s) => s.dataset.info?.heldOut ?? 0);
  const check = useStudio((s) => s.check);
  const options = useStudio((s) => s.evaluateOptions);
  const recovering = useStudio((s) => s.recover.state !== 'idle');
  return (
    <section className="card" id="step-check" aria-labelledby="step-check-title" data-testid="check-step">
      <h2 id="step-check-title">5. Check</h2>
      {!pruned ? (
        <p className="muted">Apply a plan first.</p>
      ) : (
        <>
          <div className="control-row">
            <label className="field">
              <span>Held-out examples (of {heldOut})</span>
              <input type="number" min={1} max={Math.max(1, heldOut)} value={options.maxExamples} data-testid="eval-max" onChange={(e) => updateEvaluateOptions({ maxExamples: Math.max(1, Number(e.currentTarget.value)) })} />
            </label>
            <label className="field">
              <span>Generations</span>
              <input type="number" min={0} max={10} value={options.generations} data-testid="eval-generations" onChange={(e) => updateEvaluateOptions({ generations: Math.max(0, Number(e.currentTarget.value)) })} />
            </label>
            <label className="field">
              <span>New tokens each</span>
              <input type="number" min={1} max={256} value={options.maxNewTokens} data-testid="eval-new-tokens" onChange={(e) => updateEvaluateOptions({ maxNewTokens: Math.max(1, Number(e.currentTarget.value)) })} />
            </label>
            <label className="check" title="Answer every held-out prompt greedily with both models and compare the answer with the row's label (exact, and after normalising case, punctuation, articles and spacing)">
              <input type="checkbox" checked={options.exactMatch ?? false} data-testid="eval-exact-match" onChange={(e) => updateEvaluateOptions({ exactMatch: e.currentTarget.checked })} />
              <span>Exact match of generated answers</span>
            </label>
            <button type="button" data-testid="evaluate" disabled={check.running || recovering} onClick={() => void evaluate()}>
              Evaluate dense vs pruned
            </button>
          </div>
          {check.running && <Progress step="check" fallback="Evaluating" />}
          {check.error && <ErrorBox error={check.error} testId="check-error" what="evaluate" next="Hold out more examples in step 2, or evaluate fewer." />}
          {check.result && (
            <>
              <ComparisonTable rows={check.result.table} keys={['dense', 'pruned']} testId="eval-table" testPrefix="eval" />
              <PrecisionNote precision={check.result.precision} rows={check.result.table} testId="check-precision" />
              <p className="muted small">
                On {check.result.dense.rows} held-out examples ({check.result.dense.tokens} target tokens){check.result.dense.items !== undefined && `, ${check.result.dense.items} multiple-choice questions`}.
                Forward time per token: the median of a few timed passes over a full batch, both models on this GPU in the same run.
              </p>
              {check.result.exactMatch && <ExactMatchAnswers view={check.result.exactMatch} />}
              {check.result.generations.length > 0 && <Generations title="Generations on held-out prompts (greedy)" rows={check.result.generations} testId="generations" />}
            </>
          )}
          <ComparePlans />
          <OwnPrompt />
          <RecoverPanel />
        </>
      )}
    </section>
  );
}

function Generations({ title, rows, testId }: { title: string; rows: GenerationRow[]; testId: string }) {
  return (
    <div className="generations" data-testid={testId}>
      <h3>{title}</h3>
      {rows.map((g, i) => (
        <div key={i} className="generation" data-testid="generation">
          <p className="gen-prompt"><code>{g.prompt}</code></p>
          <div className="gen-pair">
            <div><span className="muted small">dense</span><p data-testid="gen-dense">{g.dense || '(nothing)'}</p></div>
            <div><span className="muted small">pruned</span><p data-testid="gen-pruned">{g.pruned || '(nothing)'}</p></div>
          </div>
        </div>
      ))}
    </div>
  );
}

function OwnPrompt() {
  const [prompt, setPrompt] = useState('');
  const custom = useStudio((s) => s.custom);
  const busy = useStudio((s) => s.check.running || s.custom.running || s.recover.state !== 'idle');
  return (
    <div className="own-prompt">
      <label className="field field-wide">
        <span>Your own prompt</span>
        <textarea rows={2} value={prompt} data-testid="own-prompt" onChange={(e) => setPrompt(e.currentTarget.value)} />
      </label>
      <button type="button" className="button-secondary" data-testid="own-generate" disabled={busy || !prompt.trim()} onClick={() => void generateCustom(prompt)}>
        Generate with both
      </button>
      {custom.running && <Progress step="check" fallback="Generating" />}
      {custom.error && <ErrorBox error={custom.error} testId="generate-error" what="generate" next="Try a shorter prompt." />}
      {custom.rows.length > 0 && <Generations title="Your prompts" rows={custom.rows} testId="own-generations" />}
    </div>
  );
}
