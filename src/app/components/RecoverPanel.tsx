import { startRecovery } from '../actions/recover';
import { formatBytes, formatCount } from '../../format';
import { useStudio } from '../store';
import { ComparisonTable, PrecisionNote } from './ComparisonTable';
import { LossChart } from './LossChart';
import { RecoverSettingsForm } from './RecoverSettings';
import { ResumeInterrupted } from './ResumeRun';
import { LiveStats, RunControls } from './RunControls';
import { ErrorBox } from './StepBits';

/**
 * The Check step's recovery fine-tuning: a fresh LoRA on the pruned model (the paper's settings to start), its
 * live loss curve, pause / stop, then dense / pruned / pruned + recovered side by side.
 */
export function RecoverPanel() {
  const recovered = useStudio((s) => s.recover.result !== null);
  const busy = useStudio((s) => s.recover.state !== 'idle');
  const error = useStudio((s) => s.recover.error);
  const otherJob = useStudio((s) => s.check.running || s.custom.running || s.score.state !== 'idle' || s.prune.applying || s.download.running);
  return (
    <div className="recover" data-testid="recover-panel">
      <h3>Recover with fine-tuning</h3>
      <p className="muted small">
        Pruning costs some quality; a short LoRA fine-tuning of the pruned model on your training split wins much of it back (the paper fine-tunes
        this way after pruning). The adapter is then merged into the weights, or downloaded apart as a PEFT adapter.
      </p>
      <ResumeInterrupted run="recover" testPrefix="recover-" />
      <RecoverSettingsForm disabled={busy} />
      <RunControls
        run="recover"
        startLabel={recovered ? 'Fine-tune again' : 'Fine-tune to recover'}
        startDisabled={otherJob}
        onStart={() => void startRecovery()}
        pausedHint="Resume continues; Stop keeps the steps done and measures them."
      />
      {error && <ErrorBox error={error} testId="recover-error" what="fine-tune the pruned model" next="Change the settings (a smaller batch or sequence length uses less memory) and start again." />}
      <RecoverLive />
      <RecoverResult />
    </div>
  );
}

function RecoverLive() {
  const live = useStudio((s) => s.recover.live);
  const losses = useStudio((s) => s.recover.live?.losses ?? s.recover.result?.losses);
  if (!losses) return null;
  return (
    <div className="live" data-testid="recover-live">
      {live && <LiveStats run="recover" testPrefix="recover-" />}
      <LossChart losses={losses} title="Fine-tuning loss" testId="recover-loss-chart" note="training batches of the pruned model with its new adapter" />
    </div>
  );
}

function RecoverResult() {
  const result = useStudio((s) => s.recover.result);
  if (!result) return null;
  const { before, after } = result;
  return (
    <div data-testid="recover-result">
      {result.stopped && <p className="small muted" data-testid="recover-stopped">Stopped after {result.steps} of {result.settings.steps} steps; the adapter has those steps.</p>}
      {before && after && (
        <p data-testid="recover-summary">
          Held-out loss of the pruned model <strong data-testid="recover-loss-before" data-value={before.loss}>{before.loss.toFixed(4)}</strong> →{' '}
          <strong data-testid="recover-loss-after" data-value={after.loss}>{after.loss.toFixed(4)}</strong> after {result.steps} step{result.steps === 1 ? '' : 's'}
          {before.acc !== undefined && after.acc !== undefined && <> (accuracy {(100 * before.acc).toFixed(1)}% → {(100 * after.acc).toFixed(1)}%)</>}.
        </p>
      )}
      <ComparisonTable rows={result.table} keys={['dense', 'pruned', 'recovered']} testId="recovery-table" testPrefix="recovery" />
      <PrecisionNote precision={result.precision} rows={result.table} testId="recover-precision" />
      <p className="muted small">
        All three measured one after the other on this GPU{before ? `, on the same ${before.rows} held-out examples` : ''}; the recovered row is the
        adapter merged into the weights. Kept apart as a PEFT adapter it adds {formatCount(result.adapterParameters)} parameters ({formatBytes(result.adapterBytes)} in f32).
      </p>
    </div>
  );
}
