import type { DecayKind } from '../../nn/schedule';
import { formatBytes, formatCount } from '../format';
import { controlRecovery, startRecovery, updateRecoverSettings } from '../journey-actions';
import { formatDuration } from '../plan-view';
import { useStudio } from '../store';
import { ComparisonTable } from './ComparisonTable';
import { GpuMemoryField } from './GpuMemoryField';
import { LossChart } from './LossChart';
import { NumberField } from './NumberField';
import { ErrorBox, Progress } from './StepBits';

const SCHEDULES: { value: DecayKind; label: string }[] = [
  { value: 'linear', label: 'linear decay' },
  { value: 'cosine', label: 'cosine decay' },
  { value: 'constant', label: 'constant' },
];

/**
 * The Check step's recovery fine-tuning: a fresh LoRA on the pruned model (the paper's settings to start), its
 * live loss curve, pause / stop, then dense / pruned / pruned + recovered side by side.
 */
export function RecoverPanel() {
  const recover = useStudio((s) => s.recover);
  const otherJob = useStudio((s) => s.check.running || s.custom.running || s.score.state !== 'idle' || s.prune.applying || s.download.running);
  const busy = recover.state !== 'idle';
  return (
    <div className="recover" data-testid="recover-panel">
      <h3>Recover with fine-tuning</h3>
      <p className="muted small">
        Pruning costs some quality; a short LoRA fine-tuning of the pruned model on your training split wins much of it back (the paper fine-tunes
        this way after pruning). The adapter is then merged into the weights, or downloaded apart as a PEFT adapter.
      </p>
      <RecoverSettingsForm disabled={busy} />
      <div className="control-row">
        {!busy ? (
          <button type="button" data-testid="recover-start" disabled={otherJob} onClick={() => void startRecovery()}>
            {recover.result ? 'Fine-tune again' : 'Fine-tune to recover'}
          </button>
        ) : (
          <>
            {recover.state === 'paused' ? (
              <button type="button" data-testid="recover-resume" onClick={() => void controlRecovery('resume')}>
                Resume
              </button>
            ) : (
              <button type="button" data-testid="recover-pause" disabled={recover.state !== 'running'} onClick={() => void controlRecovery('pause')}>
                Pause
              </button>
            )}
            <button type="button" className="button-secondary" data-testid="recover-stop" disabled={recover.state === 'stopping'} onClick={() => void controlRecovery('stop')}>
              Stop
            </button>
            <span className="muted small" data-testid="recover-state" data-value={recover.state}>
              {recover.state}
            </span>
          </>
        )}
      </div>
      {busy && recover.state !== 'paused' && <Progress step="recover" fallback="Starting" />}
      {recover.state === 'paused' && (
        <p className="status" role="status" data-testid="recover-paused">
          Paused after step {(recover.live?.step ?? -1) + 1}{recover.live ? ` of ${recover.live.steps}` : ''}. Resume continues; Stop keeps the steps done and measures them.
        </p>
      )}
      {recover.error && <ErrorBox error={recover.error} testId="recover-error" what="fine-tune the pruned model" next="Change the settings (a smaller batch or sequence length uses less memory) and start again." />}
      <RecoverLive />
      <RecoverResult />
    </div>
  );
}

function RecoverSettingsForm({ disabled }: { disabled: boolean }) {
  const s = useStudio((st) => st.recoverSettings);
  const train = useStudio((st) => st.dataset.info?.train ?? 0);
  const stepsPerEpoch = Math.max(1, Math.ceil(train / Math.max(1, s.batchSize)));
  const precision = useStudio((st) => st.settings.weights);
  return (
    <fieldset className="settings" disabled={disabled} data-testid="recover-settings">
      <legend>Fine-tuning settings (starting from the paper's)</legend>
      <div className="settings-grid">
        <label className="field">
          <span>Length in</span>
          <select value={s.by} data-testid="recover-by" onChange={(e) => updateRecoverSettings({ by: e.currentTarget.value as 'steps' | 'epochs' })}>
            <option value="steps">steps</option>
            <option value="epochs">epochs</option>
          </select>
        </label>
        {s.by === 'steps' ? (
          <NumberField label="Steps" id="recover-steps" value={s.steps} min={1} max={100000} onChange={(v) => updateRecoverSettings({ steps: Math.max(1, Math.round(v)) })} />
        ) : (
          <NumberField label={`Epochs (${stepsPerEpoch} steps each)`} id="recover-epochs" value={s.epochs} min={0.1} step={0.1} onChange={(v) => updateRecoverSettings({ epochs: Math.max(0.01, v) })} />
        )}
        <NumberField label="LoRA rank" id="recover-rank" value={s.rank} min={1} max={256} onChange={(v) => updateRecoverSettings({ rank: v })} />
        <NumberField label="LoRA alpha" id="recover-alpha" value={s.alpha} min={1} onChange={(v) => updateRecoverSettings({ alpha: v })} />
        <NumberField label="Learning rate" id="recover-lr" value={s.lr} min={0} step={0.00001} onChange={(v) => updateRecoverSettings({ lr: v })} />
        <NumberField label="Batch size" id="recover-batch" value={s.batchSize} min={1} max={64} onChange={(v) => updateRecoverSettings({ batchSize: v })} />
        <NumberField label="Sequence length" id="recover-seqlen" value={s.seqLen} min={8} max={8192} onChange={(v) => updateRecoverSettings({ seqLen: v })} />
        <label className="field">
          <span>Schedule</span>
          <select value={s.schedule} data-testid="recover-schedule" onChange={(e) => updateRecoverSettings({ schedule: e.currentTarget.value as DecayKind })}>
            {SCHEDULES.map((o) => (
              <option key={o.value} value={o.value}>{o.label}</option>
            ))}
          </select>
        </label>
      </div>
      <GpuMemoryField id="recover-max-gpu-memory" />
      <p className="muted small">
        All seven linear modules, AdamW (weight decay 0.1), gradients clipped at 1, 3% warmup. Weights in {precision === 'auto' ? "the scoring step's precision (auto)" : precision}; the GPU memory limit is the session's, as in step 3.
      </p>
    </fieldset>
  );
}

function RecoverLive() {
  const recover = useStudio((s) => s.recover);
  const losses = recover.live?.losses ?? recover.result?.losses ?? [];
  if (!recover.live && !recover.result) return null;
  const live = recover.live;
  return (
    <div className="live" data-testid="recover-live">
      {live && (
        <dl className="live-stats">
          <div><dt>Step</dt><dd data-testid="recover-live-step" data-value={live.step + 1}>{live.step + 1} / {live.steps}</dd></div>
          <div><dt>Epoch</dt><dd>{live.epoch.toFixed(2)}</dd></div>
          <div><dt>Loss</dt><dd data-testid="recover-live-loss">{live.losses.at(-1)?.toFixed(4)}</dd></div>
          <div><dt>Learning rate</dt><dd>{live.lr.toExponential(1)}</dd></div>
          <div><dt>Tokens/s</dt><dd>{live.tokensPerSecond.toFixed(1)}</dd></div>
          <div><dt>Elapsed</dt><dd>{formatDuration(live.elapsedSeconds)}</dd></div>
          <div><dt>Time left</dt><dd>{recover.state === 'idle' ? 'done' : formatDuration(live.etaSeconds)}</dd></div>
        </dl>
      )}
      <LossChart losses={losses} title="Fine-tuning loss" testId="recover-loss-chart" note="training batches of the pruned model with its new adapter" />
    </div>
  );
}

/** ", layers streamed from host memory (dense)" when any row ran streamed. */
export const residencyNote = (rows: readonly { label: string; residency: string | null }[]): string => {
  const streamed = rows.filter((r) => r.residency === 'streamed').map((r) => r.label);
  return streamed.length ? `; layers streamed from host memory (${streamed.join(', ')})` : '';
};

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
      <p className="small" data-testid="recover-precision" data-value={result.precision.storage}>
        weights: {result.precision.storage} ({result.precision.reason}){residencyNote(result.table)}
      </p>
      <p className="muted small">
        All three measured one after the other on this GPU{before ? `, on the same ${before.rows} held-out examples` : ''}; the recovered row is the
        adapter merged into the weights. Kept apart as a PEFT adapter it adds {formatCount(result.adapterParameters)} parameters ({formatBytes(result.adapterBytes)} in f32).
      </p>
    </div>
  );
}
