import { dismissNotice } from '../actions/model';
import { useStudio } from '../store';

/** A failure that belongs to no request (the worker crashed, a stray error): said, never swallowed. */
export function Notice() {
  const notice = useStudio((s) => s.notice);
  if (!notice) return null;
  return (
    <div className="notice" role="alert" data-testid="notice">
      <span>{notice.message}</span>
      <button type="button" className="link-button" onClick={dismissNotice}>
        Dismiss
      </button>
    </div>
  );
}
