import { useStudio } from '../store';

// The workflow, in order. Later steps become links as they are built; until then they are listed, not offered.
const STEPS = [
  { id: 'model', title: 'Model', blurb: 'a Hugging Face checkpoint' },
  { id: 'dataset', title: 'Dataset', blurb: 'your downstream task' },
  { id: 'score', title: 'Score', blurb: 'LoRA gradients rank the layers' },
  { id: 'prune', title: 'Prune', blurb: 'choose how many layers to cut' },
  { id: 'check', title: 'Check', blurb: 'before and after, on your data' },
  { id: 'download', title: 'Download', blurb: 'the smaller checkpoint' },
] as const;

export function StepList() {
  const hasModel = useStudio((s) => s.model.loaded !== null);
  return (
    <nav className="steps" aria-label="Workflow">
      <ol>
        {STEPS.map((step, i) => {
          const current = step.id === 'model';
          const done = step.id === 'model' && hasModel;
          return (
            <li key={step.id} className={current ? 'step step-current' : 'step step-later'} aria-current={current ? 'step' : undefined}>
              {current ? (
                <a href={`#step-${step.id}`}>
                  <span className="step-number">{done ? '✓' : i + 1}</span> {step.title}
                </a>
              ) : (
                <span>
                  <span className="step-number">{i + 1}</span> {step.title}
                </span>
              )}
              <span className="step-blurb">{step.blurb}</span>
            </li>
          );
        })}
      </ol>
    </nav>
  );
}
