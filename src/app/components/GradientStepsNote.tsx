import { gradientStepsWarning, MIN_GRADIENT_STEPS, plannedGradientSteps } from '../../gradprune/gradient-steps';
import { useStudio } from '../store';

/**
 * How many of the scoring steps carry gradient information: LoRA's B starts at 0 and moves only after a step with a
 * learning rate above 0, so the warmup's first steps add nothing to IGIA. A warning under MIN_GRADIENT_STEPS.
 */
export function GradientStepsNote() {
  const settings = useStudio((s) => s.settings);
  const informative = plannedGradientSteps(settings);
  const warning = gradientStepsWarning(informative, settings.steps);
  return warning ? (
    <span className="notice-inline small" data-testid="gradient-steps-warning" data-value={informative} title={warning}>
      Only {informative} of {settings.steps} steps carry gradient information (fewer than {MIN_GRADIENT_STEPS}): the ranking rests on too few batches.
    </span>
  ) : (
    <span className="muted small" data-testid="gradient-steps" data-value={informative}>
      {informative} of {settings.steps} steps carry gradient information (B starts at 0).
    </span>
  );
}
