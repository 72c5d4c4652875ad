// config.json of a pruned model: the input's JSON with the same keys in the same order, except
// `num_hidden_layers` (the kept count) and `layer_types` (truncated to that count, as the fixtures' reference does).

import { GradPruneError } from '../errors';

export function prunedConfig(raw: Readonly<Record<string, unknown>>, numLayers: number): Record<string, unknown> {
  if (!Number.isInteger(numLayers) || numLayers < 1) {
    throw new GradPruneError('input', `A pruned model needs at least one layer (asked for ${numLayers}).`, { subject: 'num_hidden_layers' });
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'num_hidden_layers') out[k] = numLayers;
    else if (k === 'layer_types' && Array.isArray(v)) out[k] = v.slice(0, numLayers);
    else out[k] = v;
  }
  return out;
}

/** As transformers writes config.json: two-space indent and a final newline. */
export const configText = (config: Record<string, unknown>): string => JSON.stringify(config, null, 2) + '\n';
