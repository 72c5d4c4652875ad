// The CPU reference's residual stream, as Block Influence and angular distance read it (../hidden-stats.ts).

import type { ForwardTape } from './model';

/** The residual stream of a forward pass, (L + 1) × (N, C): [0] the embeddings, [l + 1] layer l's output (before the final norm). */
export function hiddenStates(tape: ForwardTape): ArrayLike<number>[] {
  return [...tape.layers.map((l) => l.x), tape.xf];
}
