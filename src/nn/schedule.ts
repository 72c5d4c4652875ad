// Learning-rate schedules (Hugging Face transformers semantics): linear warmup from 0, then constant, linear decay
// to 0 at `totalSteps`, or cosine decay to 0. Steps count from 0; step s uses lrAt(schedule, s).

import { GradPruneError } from '../errors';

export type DecayKind = 'constant' | 'linear' | 'cosine';

export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  decay: DecayKind;
  /** Needed by linear and cosine decay. */
  totalSteps?: number;
}

export function validateSchedule(s: LrSchedule): void {
  if (!Number.isFinite(s.lr) || s.lr < 0) {
    throw new GradPruneError('input', `The learning rate must be a non-negative number (got ${s.lr}).`, { subject: 'lr', hint: 'LoRA usually trains well with 1e-4 to 1e-3.' });
  }
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) {
    throw new GradPruneError('input', `Warmup steps must be a non-negative integer (got ${s.warmupSteps}).`, { subject: 'warmupSteps' });
  }
  if (s.decay !== 'constant' && !(Number.isInteger(s.totalSteps) && s.totalSteps! > s.warmupSteps)) {
    throw new GradPruneError('input', `A ${s.decay} schedule needs totalSteps greater than warmupSteps (got ${s.totalSteps}).`, {
      subject: 'totalSteps',
      hint: 'Set the number of training steps, or use a constant schedule.',
    });
  }
}

export function lrAt(s: LrSchedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * step) / s.warmupSteps;
  if (s.decay === 'constant') return s.lr;
  const total = s.totalSteps!;
  const progress = Math.min(1, (step - s.warmupSteps) / (total - s.warmupSteps));
  if (s.decay === 'linear') return s.lr * Math.max(0, 1 - progress);
  return s.lr * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** The GradPruner scoring run's schedule (as in the fixtures): lr 1e-3, 2 warmup steps, then constant. */
export const SCORING_SCHEDULE: LrSchedule = Object.freeze({ lr: 1e-3, warmupSteps: 2, decay: 'constant' });
