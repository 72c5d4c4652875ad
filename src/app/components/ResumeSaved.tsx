import { discardSavedScores } from '../actions/score';
import { useStudio } from '../store';

/** Scores offered back from an earlier visit: whose they are (model and dataset), when they were saved, and a way to put them away. */
export function ResumeSavedScores() {
  const from = useStudio((s) => s.score.restoredFrom);
  if (!from) return null;
  return (
    <p className="notice-inline small" data-testid="saved-scores-from" data-model={from.modelName} data-dataset={from.datasetName}>
      Scores of <strong>{from.modelName}</strong> on <code>{from.datasetName}</code>, saved {new Date(from.savedAt).toLocaleString()}.{' '}
      <button type="button" className="link-button" data-testid="saved-scores-discard" onClick={() => void discardSavedScores()}>
        Discard
      </button>
    </p>
  );
}
