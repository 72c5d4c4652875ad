// The pruned model's tensors: kept layers renumbered 0..n-1, pruned layers' tensors (norms included) gone,
// everything outside the decoder layers (embeddings, final norm, lm_head) unchanged. A tied checkpoint has no
// lm_head.weight to begin with and gains none.

import { GradPruneError } from '../errors';
import type { PrunePlan } from './plan';

const LAYER_NAME = /^model\.layers\.(\d+)\.(.+)$/;

export interface PrunedTensorName {
  /** Name in the pruned checkpoint. */
  name: string;
  /** Name in the original checkpoint. */
  from: string;
}

/** Names of the pruned model's tensors, in the original order, from the original checkpoint's names. */
export function prunedTensorNames(plan: PrunePlan, names: Iterable<string>): PrunedTensorName[] {
  const out: PrunedTensorName[] = [];
  for (const from of names) {
    const m = LAYER_NAME.exec(from);
    if (!m) {
      out.push({ name: from, from });
      continue;
    }
    const layer = Number(m[1]);
    if (layer >= plan.numLayers) {
      throw new GradPruneError('tensor', `The checkpoint has tensor "${from}" but the config declares ${plan.numLayers} layers.`, {
        subject: from,
        hint: 'config.json and the weights do not belong together.',
      });
    }
    const newIndex = plan.newIndex[layer];
    if (newIndex !== null) out.push({ name: `model.layers.${newIndex}.${m[2]}`, from });
  }
  return out;
}
