import type { ErrorInfo } from '../../errors';
import { useStudio, type Activity } from '../store';

/** The running job of a step: its stage and, when known, how far along it is. */
export function Progress({ step, fallback }: { step: Activity['step']; fallback: string }) {
  const activity = useStudio((s) => (s.activity?.step === step ? s.activity : null));
  const stage = activity?.stage ?? fallback;
  const fraction = activity?.fraction;
  return (
    <div className="status" role="status" data-testid={`${step}-progress`}>
      <span className="spinner" aria-hidden="true" /> {stage}…
      {fraction !== undefined && (
        <progress max={1} value={fraction} aria-label={stage}>
          {Math.round(fraction * 100)}%
        </progress>
      )}
    </div>
  );
}

/** A step's failure, where it belongs, with what to do next. */
export function ErrorBox({ error, testId, what, next }: { error: ErrorInfo; testId: string; what: string; next: string }) {
  return (
    <div className="load-error" role="alert" data-testid={testId} data-code={error.code}>
      <strong>Could not {what}.</strong>
      <p data-testid={`${testId}-message`}>{error.message}</p>
      <p className="muted">{next}</p>
    </div>
  );
}
