import { controlRun } from '../actions/run';
import { formatDuration } from '../plan-view';
import { useStudio, type RunName } from '../store';
import { Progress } from './StepBits';

/**
 * A training run's controls (scoring's or recovery's): start, then pause / resume and stop with the run's state,
 * its progress while it trains and a note while it is paused. Test ids are `${run}-start`, `${run}-pause`, ….
 */
export function RunControls({ run, startLabel, startDisabled, onStart, pausedHint }: { run: RunName; startLabel: string; startDisabled?: boolean; onStart: () => void; pausedHint: string }) {
  const state = useStudio((s) => s[run].state);
  if (state === 'idle') {
    return (
      <div className="control-row">
        <button type="button" data-testid={`${run}-start`} disabled={startDisabled} onClick={onStart}>
          {startLabel}
        </button>
      </div>
    );
  }
  return (
    <>
      <div className="control-row">
        {state === 'paused' ? (
          <button type="button" data-testid={`${run}-resume`} onClick={() => void controlRun(run, 'resume')}>
            Resume
          </button>
        ) : (
          <button type="button" data-testid={`${run}-pause`} disabled={state !== 'running'} onClick={() => void controlRun(run, 'pause')}>
            Pause
          </button>
        )}
        <button type="button" className="button-secondary" data-testid={`${run}-stop`} disabled={state === 'stopping'} onClick={() => void controlRun(run, 'stop')}>
          Stop
        </button>
        <span className="muted small" data-testid={`${run}-state`} data-value={state}>
          {state}
        </span>
      </div>
      {state === 'paused' ? <PausedNote run={run} hint={pausedHint} /> : <Progress step={run} fallback="Starting" />}
    </>
  );
}

/** Where a paused run stands; data-paused-at is the steps reported when the worker took the pause. */
function PausedNote({ run, hint }: { run: RunName; hint: string }) {
  const live = useStudio((s) => s[run].live);
  const pausedAt = useStudio((s) => s[run].pausedAt);
  return (
    <p className="status" role="status" data-testid={`${run}-paused`} data-paused-at={pausedAt ?? undefined}>
      Paused after step {(live?.step ?? -1) + 1}
      {live ? ` of ${live.steps}` : ''}. {hint}
    </p>
  );
}

/**
 * A run's latest step: step, epoch (recovery), loss, learning rate, throughput, time spent and left. Each number
 * carries its exact value in data-value, with the test id `${testPrefix}live-…`.
 */
export function LiveStats({ run, testPrefix }: { run: RunName; testPrefix: string }) {
  const live = useStudio((s) => s[run].live);
  const done = useStudio((s) => s[run].state === 'idle');
  if (!live) return null;
  const stat = (label: string, id: string, value: number, text: string) => (
    <div>
      <dt>{label}</dt>
      <dd data-testid={`${testPrefix}live-${id}`} data-value={value}>
        {text}
      </dd>
    </div>
  );
  return (
    <dl className="live-stats">
      {stat('Step', 'step', live.step + 1, `${live.step + 1} / ${live.steps}`)}
      {live.epoch !== undefined && stat('Epoch', 'epoch', live.epoch, live.epoch.toFixed(2))}
      {stat('Loss', 'loss', live.losses.at(-1) ?? NaN, live.losses.at(-1)?.toFixed(4) ?? '—')}
      {stat('Learning rate', 'lr', live.lr, live.lr.toExponential(1))}
      {stat('Tokens/s', 'tps', live.tokensPerSecond, live.tokensPerSecond.toFixed(1))}
      {stat('Elapsed', 'elapsed', live.elapsedSeconds, formatDuration(live.elapsedSeconds))}
      {stat('Time left', 'eta', done ? 0 : live.etaSeconds, done ? 'done' : formatDuration(live.etaSeconds))}
    </dl>
  );
}
