import { useEffect, useMemo, useState } from 'react';
import { formatRate } from '../../format';
import { controlRun } from '../actions/run';
import { formatDuration } from '../plan-view';
import { useStudio, type LiveRun, type RunName } from '../store';
import { Progress } from './StepBits';

/** How often the clocks between step reports tick. */
const TICK_MS = 1000;

/** When each run started, as this page saw it (the clock before its first step report). */
const startedAt: Partial<Record<RunName, number>> = {};

/** The time now, updated every second while `active`. */
function useNow(active: boolean): number {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    if (!active) return;
    setNow(performance.now());
    const id = setInterval(() => setNow(performance.now()), TICK_MS);
    return () => clearInterval(id);
  }, [active]);
  return now;
}

/**
 * A run's elapsed and remaining time, ticking every second between step reports: the last report's values moved on
 * by the time since it arrived (the time left does not count down while paused, nor before it is estimated).
 * Before the first report, the time since the run started.
 */
export function useRunClock(run: RunName): { elapsed: number; eta: number | null; live: LiveRun | null } {
  const state = useStudio((s) => s[run].state);
  const live = useStudio((s) => s[run].live);
  const going = state !== 'idle';
  const now = useNow(going);
  // The page's time when this report arrived (a new live object per report).
  const reportedAt = useMemo(() => performance.now(), [live]);
  if (!going) return { elapsed: live?.elapsedSeconds ?? 0, eta: live ? 0 : null, live };
  if (!live) return { elapsed: Math.max(0, (now - (startedAt[run] ?? now)) / 1000), eta: null, live };
  const since = Math.max(0, (now - reportedAt) / 1000);
  const eta = live.etaSeconds === null ? null : state === 'paused' ? live.etaSeconds : Math.max(0, live.etaSeconds - since);
  return { elapsed: live.elapsedSeconds + since, eta, live };
}

/** Residency of the weights the run trains on, when the page knows it (scoring's memory estimate). */
const useStreamed = (run: RunName): boolean => useStudio((s) => run === 'score' && s.memory?.estimate.residency === 'streamed');

/**
 * A training run's controls (scoring's or recovery's): start, then pause / resume and stop with the run's state,
 * its progress while it trains and a note while it is paused. Test ids are `${run}-start`, `${run}-pause`, ….
 */
export function RunControls({ run, startLabel, startDisabled, onStart, pausedHint }: { run: RunName; startLabel: string; startDisabled?: boolean; onStart: () => void; pausedHint: string }) {
  const state = useStudio((s) => s[run].state);
  const live = useStudio((s) => s[run].live);
  const streamed = useStreamed(run);
  // The step the run stops after, set the moment Stop is pressed (the worker's answer comes after).
  const [stopAfter, setStopAfter] = useState<number | null>(null);
  const [confirmed, setConfirmed] = useState(false);
  useEffect(() => {
    if (state !== 'idle') startedAt[run] ??= performance.now();
    else {
      setStopAfter(null);
      setConfirmed(false);
      delete startedAt[run];
    }
  }, [state, run]);
  if (state === 'idle') {
    return (
      <div className="control-row">
        <button type="button" data-testid={`${run}-start`} disabled={startDisabled} onClick={onStart}>
          {startLabel}
        </button>
      </div>
    );
  }
  const stop = () => {
    const finished = live ? live.step + 1 : 0;
    // Resident weights submit a step at once: the step in flight finishes. Streamed ones stop at its next layer.
    setStopAfter(streamed || state === 'paused' ? finished : Math.min(finished + 1, live?.steps ?? Infinity));
    // The worker knows whether a step is in flight: its answer corrects the guess (resident weights).
    void controlRun(run, 'stop').then((answer) => {
      if (!streamed && answer?.holdsAfter != null) setStopAfter(answer.holdsAfter);
      setConfirmed(true);
    });
  };
  const stopping = stopAfter !== null || state === 'stopping';
  return (
    <>
      <div className="control-row">
        {state === 'paused' ? (
          <button type="button" data-testid={`${run}-resume`} disabled={stopping} onClick={() => void controlRun(run, 'resume')}>
            Resume
          </button>
        ) : (
          <button type="button" data-testid={`${run}-pause`} disabled={state !== 'running' || stopping} onClick={() => void controlRun(run, 'pause')}>
            Pause
          </button>
        )}
        <button type="button" className="button-secondary" data-testid={`${run}-stop`} disabled={stopping} onClick={stop}>
          Stop
        </button>
        <span className="muted small" data-testid={`${run}-state`} data-value={state}>
          {state}
        </span>
      </div>
      {stopping ? (
        <StoppingNote run={run} after={stopAfter} streamed={streamed} confirmed={confirmed} />
      ) : state === 'paused' ? (
        <PausedNote run={run} hint={pausedHint} />
      ) : (
        <Progress step={run} fallback="Starting" />
      )}
      <RunClock run={run} />
    </>
  );
}

/** Shown from the moment Stop is pressed: which step the run ends after, and why not at once. */
function StoppingNote({ run, after, streamed, confirmed }: { run: RunName; after: number | null; streamed: boolean; confirmed: boolean }) {
  const live = useStudio((s) => s[run].live);
  const k = after ?? (live ? live.step + 1 : 0);
  return (
    <p className="status" role="status" data-testid={`${run}-stopping`} data-after={k} data-confirmed={confirmed ? 'yes' : 'no'}>
      <span className="spinner" aria-hidden="true" /> {k === 0 ? 'Stopping before the first step…' : `Stopping after step ${k}…`}{' '}
      <span className="muted small">
        {streamed
          ? 'The weights stream layer by layer, so the step in flight ends at its next layer and is not counted.'
          : 'With the weights resident a step is one GPU submission, so the step in flight finishes first.'}
      </span>
    </p>
  );
}

/** The run's elapsed and remaining time, ticking between step reports. */
function RunClock({ run }: { run: RunName }) {
  const { elapsed, eta } = useRunClock(run);
  return (
    <p className="muted small" data-testid={`${run}-clock`}>
      Elapsed <span data-testid={`${run}-clock-elapsed`} data-value={elapsed}>{formatDuration(elapsed)}</span>
      {' · '}Time left <span data-testid={`${run}-clock-eta`} data-value={eta ?? ''}>{eta === null ? 'estimating…' : formatDuration(eta)}</span>
    </p>
  );
}

/** Where a paused run stands; data-paused-at is the steps it holds after (the step in flight finishes first). */
function PausedNote({ run, hint }: { run: RunName; hint: string }) {
  const live = useStudio((s) => s[run].live);
  const pausedAt = useStudio((s) => s[run].pausedAt);
  const reported = (live?.step ?? -1) + 1;
  const holdsAt = Math.max(pausedAt ?? 0, reported);
  return (
    <p className="status" role="status" data-testid={`${run}-paused`} data-paused-at={pausedAt ?? undefined}>
      {reported < holdsAt ? `Pausing after step ${holdsAt}…` : `Paused after step ${holdsAt}`}
      {live ? ` of ${live.steps}` : ''}. {hint}
    </p>
  );
}

/**
 * A run's latest step: step, epoch (recovery), loss, learning rate, throughput, time spent and left (ticking between
 * reports). Each number carries its exact value in data-value, with the test id `${testPrefix}live-…`.
 */
export function LiveStats({ run, testPrefix }: { run: RunName; testPrefix: string }) {
  const { live, elapsed, eta } = useRunClock(run);
  const done = useStudio((s) => s[run].state === 'idle');
  if (!live) return null;
  const stat = (label: string, id: string, value: number | string, text: string) => (
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
      {stat('Tokens/s', 'tps', live.tokensPerSecond, formatRate(live.tokensPerSecond))}
      {stat('Elapsed', 'elapsed', elapsed, formatDuration(elapsed))}
      {stat('Time left', 'eta', done ? 0 : (eta ?? ''), done ? 'done' : eta === null ? 'estimating…' : formatDuration(eta))}
    </dl>
  );
}
