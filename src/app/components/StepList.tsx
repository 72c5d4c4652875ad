import { useShallow } from 'zustand/react/shallow';
import { useStudio } from '../store';

// The workflow, in order: each step links to its card; done steps are ticked, the next one is highlighted.
const STEPS = [
  { id: 'model', title: 'Model', blurb: 'a Hugging Face checkpoint' },
  { id: 'dataset', title: 'Dataset', blurb: 'your downstream task' },
  { id: 'score', title: 'Score', blurb: 'LoRA gradients rank the layers' },
  { id: 'prune', title: 'Prune', blurb: 'choose how many layers to cut' },
  { id: 'check', title: 'Check', blurb: 'before and after, on your data' },
  { id: 'download', title: 'Download', blurb: 'the smaller checkpoint' },
] as const;

export function StepList() {
  const done = useStudio(useShallow((s) => ({
    model: s.model.loaded !== null,
    dataset: s.dataset.info !== null,
    score: s.score.result !== null,
    prune: s.prune.result !== null,
    check: s.check.result !== null,
    download: s.download.result !== null,
  })));
  const current = STEPS.find((st) => !done[st.id])?.id ?? 'download';
  return (
    <nav className="steps" aria-label="Workflow">
      <ol>
        {STEPS.map((step, i) => {
          const here = step.id === current;
          return (
            <li key={step.id} className={here ? 'step step-current' : done[step.id] ? 'step step-done' : 'step step-later'} aria-current={here ? 'step' : undefined}>
              <a href={`#step-${step.id}`}>
                <span className="step-number">{done[step.id] ? '✓' : i + 1}</span> {step.title}
              </a>
              <span className="step-blurb">{step.blurb}</span>
            </li>
          );
        })}
      </ol>
    </nav>
  );
}
