import type { DecayKind } from '../../nn/schedule';
import { updateRecoverSettings } from '../actions/recover';
import { useStudio } from '../store';
import { GpuMemoryField } from './GpuMemoryField';
import { NumberField } from './NumberField';
import { SETTING_HELP } from './setting-help';

const SCHEDULES: { value: DecayKind; label: string }[] = [
  { value: 'linear', label: 'linear decay' },
  { value: 'cosine', label: 'cosine decay' },
  { value: 'constant', label: 'constant' },
];

/** The recovery run's settings: its length in steps or epochs, the LoRA, the learning rate and its schedule. */
export function RecoverSettingsForm({ disabled }: { disabled: boolean }) {
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
          <NumberField label="Steps" id="recover-steps" help={SETTING_HELP.recoverSteps} value={s.steps} min={1} max={100000} onChange={(v) => updateRecoverSettings({ steps: Math.max(1, Math.round(v)) })} />
        ) : (
          <NumberField label={`Epochs (${stepsPerEpoch} steps each)`} id="recover-epochs" value={s.epochs} min={0.1} step={0.1} onChange={(v) => updateRecoverSettings({ epochs: Math.max(0.01, v) })} />
        )}
        <NumberField label="LoRA rank" id="recover-rank" help={SETTING_HELP.rank} value={s.rank} min={1} max={256} onChange={(v) => updateRecoverSettings({ rank: v })} />
        <NumberField label="LoRA alpha" id="recover-alpha" help={SETTING_HELP.alpha} value={s.alpha} min={1} onChange={(v) => updateRecoverSettings({ alpha: v })} />
        <NumberField label="Learning rate" id="recover-lr" help={SETTING_HELP.lr} value={s.lr} min={0} step={0.00001} onChange={(v) => updateRecoverSettings({ lr: v })} />
        <NumberField label="Batch size" id="recover-batch" help={SETTING_HELP.batchSize} value={s.batchSize} min={1} max={64} onChange={(v) => updateRecoverSettings({ batchSize: v })} />
        <NumberField label="Sequence length" id="recover-seqlen" help={SETTING_HELP.seqLen} value={s.seqLen} min={8} max={8192} onChange={(v) => updateRecoverSettings({ seqLen: v })} />
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
