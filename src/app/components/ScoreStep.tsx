import { startScoring } from '../actions/score';
import { useStudio } from '../store';
import { ResumeInterrupted } from './ResumeRun';
import { ResumeSavedScores } from './ResumeSaved';
import { RunControls } from './RunControls';
import { ScoreLive } from './ScoreLive';
import { ScoreSettings } from './ScoreSettings';
import { ErrorBox } from './StepBits';

/** Step 3: GradPruner's scoring run, its settings and its live view. */
export function ScoreStep() {
  const ready = useStudio((s) => s.model.loaded !== null && s.dataset.info !== null && s.dataset.loading === null);
  const busy = useStudio((s) => s.score.state !== 'idle');
  const scored = useStudio((s) => s.score.result !== null);
  const error = useStudio((s) => s.score.error);
  return (
    <section className="card" id="step-score" aria-labelledby="step-score-title" data-testid="score-step">
      <h2 id="step-score-title">3. Score</h2>
      {!ready ? (
        <p className="muted">Load a model and a dataset first.</p>
      ) : (
        <>
          <ResumeInterrupted run="score" />
          <ResumeSavedScores />
          <ScoreSettings disabled={busy} />
          <RunControls run="score" startLabel={scored ? 'Score again' : 'Start scoring'} onStart={() => void startScoring()} pausedHint="The GPU is idle; Resume continues where it stopped." />
          {error && <ErrorBox error={error} testId="score-error" what="score the layers" next="Change the settings (a smaller batch or sequence length uses less memory) and start again." />}
          <ScoreLive />
        </>
      )}
    </section>
  );
}
