import { useState } from 'react';
import type { ErrorInfo } from '../../errors';
import { DEFAULT_SCORING_SETTINGS, QUICK_RUN, warmupFor } from '../../nn/run-settings';
import { probeKey, probeScoringTime, runSeconds, type TimeProbe } from '../actions/probe';
import { updateSettings } from '../actions/score';
import { formatDuration } from '../plan-view';
import { useStudio } from '../store';
import { toInfo } from '../worker-connection';

/**
 * Beside the scoring settings: the paper's defaults or a Quick preset, and how long the run will take here, from a
 * measured probe (two real steps with these settings on the loaded model): "about 40 min on this GPU; 3 min with 10 steps".
 */
export function TimeEstimate({ disabled }: { disabled: boolean }) {
  const settings = useStudio((s) => s.settings);
  const activity = useStudio((s) => (s.activity?.step === 'score' ? s.activity : null));
  const [probe, setProbe] = useState<TimeProbe | null>(null);
  const [probing, setProbing] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const measure = async () => {
    setProbing(true);
    setError(null);
    try {
      setProbe(await probeScoringTime());
    } catch (e) {
      setError(toInfo(e));
    } finally {
      setProbing(false);
    }
  };
  const preset = (p: Pick<typeof settings, 'steps' | 'batchSize' | 'seqLen'>) => updateSettings({ ...p, warmupSteps: warmupFor(p.steps) });
  const current = probe && probe.key === probeKey(settings) ? probe : null;
  const total = current && runSeconds(current, settings.steps);
  const quick = current && runSeconds(current, QUICK_RUN.steps);
  return (
    <div className="control-row" data-testid="time-estimate-row">
      <button type="button" className="button-secondary" data-testid="preset-quick" disabled={disabled} onClick={() => preset(QUICK_RUN)}>
        Quick ({QUICK_RUN.steps} steps of {QUICK_RUN.batchSize} × {QUICK_RUN.seqLen})
      </button>
      <button type="button" className="button-secondary" data-testid="preset-paper" disabled={disabled} onClick={() => preset(DEFAULT_SCORING_SETTINGS)}>
        The paper's ({DEFAULT_SCORING_SETTINGS.steps} × {DEFAULT_SCORING_SETTINGS.batchSize} × {DEFAULT_SCORING_SETTINGS.seqLen})
      </button>
      <button type="button" className="button-secondary" data-testid="probe-start" disabled={disabled || probing} onClick={() => void measure()}>
        {current ? 'Measure again' : 'Estimate the time'}
      </button>
      {probing ? (
        <span className="small muted" role="status" data-testid="probe-running">
          <span className="spinner" aria-hidden="true" /> {activity?.stage ?? 'Measuring one step'}…
        </span>
      ) : total !== null && total !== undefined ? (
        <span className="small" data-testid="time-estimate" data-value={total} data-step-seconds={current!.stepSeconds ?? ''}>
          About <strong>{formatDuration(total)}</strong> on this GPU for {settings.steps} steps ({formatDuration(current!.stepSeconds!)} a step after a one-time{' '}
          {formatDuration(current!.oneTimeSeconds ?? 0)}){settings.steps !== QUICK_RUN.steps && quick !== null ? `; ${formatDuration(quick)} with ${QUICK_RUN.steps} steps` : ''}.
        </span>
      ) : probe && !current ? (
        <span className="small muted" data-testid="time-estimate-stale">The settings changed since the last estimate: measure again.</span>
      ) : probe ? (
        <span className="small muted" data-testid="time-estimate-none">The measurement was stopped before a steady step.</span>
      ) : (
        <span className="small muted">A run of two real steps with these settings measures it.</span>
      )}
      {error && (
        <span className="error-text small" role="alert" data-testid="probe-error">
          {error.message}
        </span>
      )}
    </div>
  );
}
