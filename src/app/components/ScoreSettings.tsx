import { LINEAR_MODULES, type LinearModule } from '../../model/config';
import { warmupFor } from '../../nn/run-settings';
import { precisionLine, resolveWeightStorage, WEIGHT_PRECISIONS, type ResolvedPrecision, type WeightPrecision } from '../../nn/precision';
import type { MemoryEstimatedEvent } from '../../worker/protocol';
import { updateSettings } from '../actions/score';
import { formatBytes } from '../../format';
import { useMemoryEstimate } from '../hooks';
import { useStudio } from '../store';
import { GpuMemoryField } from './GpuMemoryField';
import { NumberField } from './NumberField';
import { SETTING_HELP } from './setting-help';
import { TimeEstimate } from './TimeEstimate';

/** The scoring run's settings (the paper's to start), its weight precision, GPU memory limit and memory estimate. */
export function ScoreSettings({ disabled }: { disabled: boolean }) {
  const s = useStudio((st) => st.settings);
  const memory = useStudio((st) => st.memory);
  useMemoryEstimate();
  const toggleModule = (m: LinearModule) => {
    const next = s.modules.includes(m) ? s.modules.filter((x) => x !== m) : LINEAR_MODULES.filter((x) => x === m || s.modules.includes(x));
    if (next.length) updateSettings({ modules: next });
  };
  return (
    <fieldset className="settings" disabled={disabled} data-testid="score-settings">
      <legend>Settings (starting from the paper's)</legend>
      <div className="settings-grid">
        <NumberField label="Steps" id="setting-steps" help={SETTING_HELP.scoreSteps} value={s.steps} min={1} max={1000} disabled={disabled} onChange={(v) => updateSettings({ steps: v, warmupSteps: warmupFor(v) })} />
        <NumberField label="LoRA rank" id="setting-rank" help={SETTING_HELP.rank} value={s.rank} min={1} max={256} disabled={disabled} onChange={(v) => updateSettings({ rank: v })} />
        <NumberField label="LoRA alpha" id="setting-alpha" help={SETTING_HELP.alpha} value={s.alpha} min={1} disabled={disabled} onChange={(v) => updateSettings({ alpha: v })} />
        <NumberField label="Learning rate" id="setting-lr" help={SETTING_HELP.lr} value={s.lr} min={0} step={0.00001} disabled={disabled} onChange={(v) => updateSettings({ lr: v })} />
        <NumberField label="Batch size" id="setting-batch" help={SETTING_HELP.batchSize} value={s.batchSize} min={1} max={64} disabled={disabled} onChange={(v) => updateSettings({ batchSize: v })} />
        <NumberField label="Sequence length" id="setting-seqlen" help={SETTING_HELP.seqLen} value={s.seqLen} min={8} max={8192} disabled={disabled} onChange={(v) => updateSettings({ seqLen: v })} />
      </div>
      <div className="modules" role="group" aria-label="LoRA modules">
        <span className="muted small">Modules:</span>
        {LINEAR_MODULES.map((m) => (
          <label key={m} className="check">
            <input type="checkbox" checked={s.modules.includes(m)} onChange={() => toggleModule(m)} data-testid={`module-${m}`} /> {m}
          </label>
        ))}
      </div>
      <PrecisionField choice={s.weights} disabled={disabled} />
      <GpuMemoryField disabled={disabled} />
      {memory && <MemoryLine memory={memory} />}
      <TimeEstimate disabled={disabled} />
    </fieldset>
  );
}

const PRECISION_LABELS: Record<WeightPrecision, string> = { auto: 'auto (f16 where the GPU supports it)', f32: 'f32', f16: 'f16' };

/** The weight precision choice and what it means on this adapter ('auto' resolved as the engine will). */
function PrecisionField({ choice, disabled }: { choice: WeightPrecision; disabled: boolean }) {
  const adapter = useStudio((st) => (st.gpu.state === 'ready' || st.gpu.state === 'lost' ? st.gpu.adapter : null));
  let resolved: ResolvedPrecision | null = null;
  let problem: string | null = null;
  if (adapter) {
    try {
      resolved = resolveWeightStorage(choice, adapter);
    } catch (e) {
      problem = (e as Error).message;
    }
  }
  return (
    <div className="control-row">
      <label className="inline-label">
        <span>Weight precision</span>{' '}
        <select data-testid="setting-precision" value={choice} disabled={disabled} onChange={(e) => updateSettings({ weights: e.currentTarget.value as WeightPrecision })}>
          {WEIGHT_PRECISIONS.map((p) => (
            <option key={p} value={p}>
              {PRECISION_LABELS[p]}
            </option>
          ))}
        </select>
      </label>
      {resolved && (
        <span className="small" data-testid="precision-resolved" data-value={resolved.storage}>
          {precisionLine(resolved)}; sums in f32
        </span>
      )}
      {problem && (
        <span className="error-text small" role="alert" data-testid="precision-problem">
          {problem}
        </span>
      )}
      {!adapter && (
        <span className="muted small" data-testid="precision-resolved" data-value="">
          decided when the GPU adapter is known
        </span>
      )}
    </div>
  );
}

function MemoryLine({ memory }: { memory: MemoryEstimatedEvent }) {
  const e = memory.estimate;
  return (
    <div
      className="small"
      data-testid="memory-estimate"
      data-value={e.total}
      data-host={memory.igiaBytes}
      data-fits={memory.problem ? 'no' : 'yes'}
      data-residency={e.residency}
      data-stream-host={e.hostBytes}
      data-upload-per-step={e.uploadBytesPerStep}
      data-budget={memory.budget ?? ''}
    >
      <p className="memory-line">
        GPU memory needed: <strong>{formatBytes(e.total)}</strong>{memory.budget !== null && <> of {formatBytes(memory.budget)} allowed</>}{' '}
        <span className="muted">
          (weights {formatBytes(e.weights)}, LoRA state {formatBytes(e.adapters)}, activations {formatBytes(e.activations)}, backward {formatBytes(e.backward)}; largest buffer {formatBytes(e.largest.bytes)})
        </span>
        <br />
        {e.residency === 'streamed' ? (
          <span data-testid="memory-residency" data-value="streamed">
            Weights <strong>streamed</strong> layer by layer from host memory (they do not fit the limit resident): <strong>{formatBytes(e.hostBytes)}</strong> of host memory,{' '}
            <strong>{formatBytes(e.uploadBytesPerStep)}</strong> uploaded per step; gradient checkpointing on.
          </span>
        ) : (
          <span data-testid="memory-residency" data-value="resident">
            Weights <strong>resident</strong> on the GPU (uploaded once).
          </span>
        )}
        <br />
        Host memory for the gradient factors a merge needs: <strong>{formatBytes(memory.igiaBytes)}</strong>
      </p>
      {memory.problem && (
        <p className="error-text" role="alert" data-testid="memory-problem">
          {memory.problem.message}
        </p>
      )}
    </div>
  );
}
