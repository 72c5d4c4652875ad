import { reprobeGpu } from '../actions/model';
import { continueRecovery } from '../actions/recover';
import { discardInterrupted } from '../actions/resume';
import { continueScoring } from '../actions/score';
import { useStudio, type RunName } from '../store';

const WHAT: { readonly [N in RunName]: { noun: string; resume: () => Promise<void> } } = {
  score: { noun: 'scoring run', resume: continueScoring },
  recover: { noun: 'fine-tuning', resume: continueRecovery },
};

/**
 * A training run that was cut short (a reload, a crashed tab, a lost device), kept by the worker: continue it from
 * its last snapshot (the result is that of an uninterrupted run), or discard it. Test ids: `<prefix>resume-…`.
 */
export function ResumeInterrupted({ run, testPrefix = '' }: { run: RunName; testPrefix?: string }) {
  const saved = useStudio((s) => (s[run].state === 'idle' ? s[run].interrupted : null));
  const gpu = useStudio((s) => s.gpu.state);
  if (!saved) return null;
  const { noun, resume } = WHAT[run];
  return (
    <div className="notice-inline small" role="status" data-testid={`${testPrefix}resume-offer`} data-step={saved.step} data-steps={saved.steps}>
      <p>
        A {noun} of <strong>{saved.modelName}</strong> on <code>{saved.datasetName}</code> was interrupted after step {saved.step} of {saved.steps} (saved{' '}
        {new Date(saved.savedAt).toLocaleString()}).
      </p>
      {gpu === 'lost' && (
        <p>
          The GPU device was lost: the run can continue once a device is available again.{' '}
          <button type="button" className="link-button" data-testid={`${testPrefix}resume-reprobe`} onClick={() => void reprobeGpu()}>
            Try the GPU again
          </button>
        </p>
      )}
      <div className="control-row">
        <button type="button" data-testid={`${testPrefix}resume-continue`} disabled={gpu !== 'ready'} onClick={() => void resume()}>
          Continue the {noun} from step {saved.step} of {saved.steps}
        </button>
        <button type="button" className="button-secondary" data-testid={`${testPrefix}resume-discard`} onClick={() => void discardInterrupted(run)}>
          Discard
        </button>
      </div>
    </div>
  );
}
