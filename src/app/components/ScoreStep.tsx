import { useEffect, useMemo } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { LinearModule } from '../../model/config';
import { precisionLine, resolveWeightStorage, WEIGHT_PRECISIONS, type ResolvedPrecision, type WeightPrecision } from '../../nn/precision';
import { formatBytes } from '../format';
import { controlScoring, refreshMemoryEstimate, setMetric, startScoring, updateSettings } from '../journey-actions';
import { formatDuration, scoresFor, stabilityAgainstLatest } from '../plan-view';
import { useStudio } from '../store';
import { ALL_MODULES, warmupFor } from '../defaults';
import { GpuMemoryField } from './GpuMemoryField';
import { Heatmap } from './Heatmap';
import { LossChart } from './LossChart';
import { NumberField } from './NumberField';
import { LayerBars } from './LayerBars';
import { ErrorBox, Progress } from './StepBits';

/** Step 3: GradPruner's scoring run, its settings and its live view. */
export function ScoreStep() {
  const ready = useStudio((s) => s.model.loaded !== null && s.dataset.info !== null && s.dataset.loading === null);
  const score = useStudio((s) => s.score);
  const busy = score.state !== 'idle';
  return (
    <section className="card" id="step-score" aria-labelledby="step-score-title" data-testid="score-step">
      <h2 id="step-score-title">3. Score</h2>
      {!ready ? (
        <p className="muted">Load a model and a dataset first.</p>
      ) : (
        <>
          <Settings disabled={busy} />
          <div className="control-row">
            {!busy ? (
              <button type="button" data-testid="score-start" onClick={() => void startScoring()}>
                {score.result ? 'Score again' : 'Start scoring'}
              </button>
            ) : (
              <>
                {score.state === 'paused' ? (
                  <button type="button" data-testid="score-resume" onClick={() => void controlScoring('resume')}>
                    Resume
                  </button>
                ) : (
                  <button type="button" data-testid="score-pause" disabled={score.state !== 'running'} onClick={() => void controlScoring('pause')}>
                    Pause
                  </button>
                )}
                <button type="button" className="button-secondary" data-testid="score-stop" disabled={score.state === 'stopping'} onClick={() => void controlScoring('stop')}>
                  Stop
                </button>
                <span className="muted small" data-testid="score-state" data-value={score.state}>
                  {score.state}
                </span>
              </>
            )}
          </div>
          {busy && score.state !== 'paused' && <Progress step="score" fallback="Starting" />}
          {score.state === 'paused' && (
            <p className="status" role="status" data-testid="score-paused">
              Paused after step {(score.live?.step ?? -1) + 1}{score.live ? ` of ${score.live.steps}` : ''}. The GPU is idle; Resume continues where it stopped.
            </p>
          )}
          {score.error && <ErrorBox error={score.error} testId="score-error" what="score the layers" next="Change the settings (a smaller batch or sequence length uses less memory) and start again." />}
          <LiveView />
        </>
      )}
    </section>
  );
}

function Settings({ disabled }: { disabled: boolean }) {
  const s = useStudio((st) => st.settings);
  const model = useStudio((st) => st.model.loaded?.summary.name);
  const memory = useStudio((st) => st.memory);
  useEffect(() => {
    if (model) void refreshMemoryEstimate();
  }, [model, s]);
  const toggleModule = (m: LinearModule) => {
    const next = s.modules.includes(m) ? s.modules.filter((x) => x !== m) : ALL_MODULES.filter((x) => x === m || s.modules.includes(x));
    if (next.length) updateSettings({ modules: next });
  };
  return (
    <fieldset className="settings" disabled={disabled} data-testid="score-settings">
      <legend>Settings (starting from the paper's)</legend>
      <div className="settings-grid">
        <NumberField label="Steps" id="setting-steps" value={s.steps} min={1} max={1000} disabled={disabled} onChange={(v) => updateSettings({ steps: v, warmupSteps: warmupFor(v) })} />
        <NumberField label="LoRA rank" id="setting-rank" value={s.rank} min={1} max={256} disabled={disabled} onChange={(v) => updateSettings({ rank: v })} />
        <NumberField label="LoRA alpha" id="setting-alpha" value={s.alpha} min={1} disabled={disabled} onChange={(v) => updateSettings({ alpha: v })} />
        <NumberField label="Learning rate" id="setting-lr" value={s.lr} min={0} step={0.00001} disabled={disabled} onChange={(v) => updateSettings({ lr: v })} />
        <NumberField label="Batch size" id="setting-batch" value={s.batchSize} min={1} max={64} disabled={disabled} onChange={(v) => updateSettings({ batchSize: v })} />
        <NumberField label="Sequence length" id="setting-seqlen" value={s.seqLen} min={8} max={8192} disabled={disabled} onChange={(v) => updateSettings({ seqLen: v })} />
      </div>
      <div className="modules" role="group" aria-label="LoRA modules">
        <span className="muted small">Modules:</span>
        {ALL_MODULES.map((m) => (
          <label key={m} className="check">
            <input type="checkbox" checked={s.modules.includes(m)} onChange={() => toggleModule(m)} data-testid={`module-${m}`} /> {m}
          </label>
        ))}
      </div>
      <PrecisionField choice={s.weights} disabled={disabled} />
      <GpuMemoryField disabled={disabled} />
      {memory && <MemoryLine memory={memory} />}
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

function MemoryLine({ memory }: { memory: NonNullable<ReturnType<typeof useStudio.getState>['memory']> }) {
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

function LiveView() {
  const score = useStudio((s) => s.score);
  const metric = useStudio((s) => s.planChoice.rankedBy);
  const latest = score.result?.scores ?? score.snapshots.at(-1) ?? null;
  const losses = score.live?.losses ?? score.result?.losses ?? [];
  const stability = useMemo(() => {
    if (score.result) return score.result.kendall.map((tau, s) => ({ step: s + 1, tau: Number.isFinite(tau) ? tau : null }));
    return stabilityAgainstLatest(score.snapshots, metric);
  }, [score.result, score.snapshots, metric]);
  if (!latest && !score.live) return null;
  return (
    <div className="live" data-testid="score-live">
      {score.restored && <p className="notice-inline small" data-testid="score-restored">These scores are from your last visit. Score again to prune with them (the merge needs this run's gradients).</p>}
      {score.result?.stopped && <p className="small muted" data-testid="score-stopped">Stopped after {score.result.scores.steps} steps; the scores use those steps.</p>}
      {score.live && (
        <dl className="live-stats">
          <div><dt>Step</dt><dd data-testid="live-step" data-value={score.live.step + 1}>{score.live.step + 1} / {score.live.steps}</dd></div>
          <div><dt>Loss</dt><dd data-testid="live-loss">{score.live.losses.at(-1)?.toFixed(4)}</dd></div>
          <div><dt>Tokens/s</dt><dd data-testid="live-tps">{score.live.tokensPerSecond.toFixed(1)}</dd></div>
          <div><dt>Elapsed</dt><dd>{formatDuration(score.live.elapsedSeconds)}</dd></div>
          <div><dt>Time left</dt><dd data-testid="live-eta">{score.state === 'idle' ? 'done' : formatDuration(score.live.etaSeconds)}</dd></div>
        </dl>
      )}
      <div className="charts-grid">
        <LossChart losses={losses} title="Training loss" testId="loss-chart" />
        <figure className="chart" data-testid="stability-chart" data-points={stability.length}>
          <figcaption><h3>Rank stability</h3><span className="muted small">Kendall τ of each step's layer ranking vs the latest</span></figcaption>
          <ResponsiveContainer width="100%" height={200}>
            <LineChart data={stability} margin={{ top: 6, right: 12, bottom: 14, left: 0 }}>
              <CartesianGrid strokeDasharray="3 3" />
              <XAxis dataKey="step" tick={{ fontSize: 10 }} label={{ value: 'step', position: 'insideBottom', offset: -6, fontSize: 11 }} />
              <YAxis domain={[-1, 1]} ticks={[-1, -0.5, 0, 0.5, 1]} tick={{ fontSize: 10 }} width={32} />
              <Tooltip formatter={(v) => (v === null ? '—' : Number(v).toFixed(3))} />
              <Line type="stepAfter" dataKey="tau" stroke="#21918c" dot={stability.length < 40} connectNulls isAnimationActive={false} />
            </LineChart>
          </ResponsiveContainer>
        </figure>
      </div>
      {latest && (
        <>
          <div className="control-row" role="radiogroup" aria-label="Layer score">
            <span className="muted small">Rank layers by:</span>
            <label className="check">
              <input type="radio" name="metric" checked={metric === 'paper'} onChange={() => setMetric('paper')} data-testid="metric-paper" /> the paper's score (Σ of F)
            </label>
            <label className="check">
              <input type="radio" name="metric" checked={metric === 'code'} onChange={() => setMetric('code')} data-testid="metric-code" /> the released code's Σ‖S‖<sub>F</sub>
            </label>
          </div>
          <div className="charts-grid">
            <Heatmap values={latest.moduleScores} />
            <LayerBars scores={scoresFor(latest, metric)} title={`Layer scores (${metric === 'paper' ? 'paper' : 'released code'})`} />
          </div>
        </>
      )}
    </div>
  );
}
