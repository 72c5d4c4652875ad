// Seeded, reproducible order: the same seed gives the same split and the same shuffles in every JS engine.
import { GradPruneError } from '../errors';
import { seededRandom } from '../random';

/** Fisher-Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const random = seededRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export interface SplitOptions {
  /** A fraction in [0, 1) of the items, or a count (an integer ≥ 1) to hold out. */
  heldOut: number;
  seed: number;
}

/**
 * A seeded random train / held-out split. Both parts keep file order (the held-out items are chosen at random,
 * not reordered), so the split reads the same in a preview as in the file.
 */
export function splitTrainHeldOut<T>(items: readonly T[], opts: SplitOptions): { train: T[]; heldOut: T[] } {
  const n = items.length;
  const { heldOut } = opts;
  if (!(heldOut >= 0) || (heldOut >= 1 && !Number.isInteger(heldOut))) {
    throw new GradPruneError('input', `The held-out share must be a fraction in [0, 1) or a whole count (got ${heldOut}).`, { subject: 'heldOut' });
  }
  const count = heldOut < 1 ? Math.round(n * heldOut) : heldOut;
  if (count >= n && n > 0 && count > 0) {
    throw new GradPruneError('input', `Holding out ${count} of ${n} examples leaves none to train on.`, {
      subject: 'heldOut',
      hint: 'Hold out fewer examples, or use a bigger dataset.',
    });
  }
  const chosen = new Set(shuffled([...Array(n).keys()], opts.seed).slice(0, count));
  const train: T[] = [];
  const held: T[] = [];
  items.forEach((item, i) => (chosen.has(i) ? held : train).push(item));
  return { train, heldOut: held };
}
