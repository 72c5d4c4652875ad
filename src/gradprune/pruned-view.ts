// A pruned model as a view over the dense checkpoint: the plan's pruned layers gone, kept layers renumbered (a tied
// model gains no lm_head), merged receivers' weights from `merged` where given; config.json with the new layer count.
// Nothing model-sized is copied: a tensor is read from the dense store when a job or the export reaches it.

import { checkTensors } from '../model/checkpoint';
import { normalizeConfig, type ModelConfig } from '../model/config';
import type { WeightDType } from '../model/dtype';
import type { TensorStore } from '../model/safetensors';
import { ViewStore } from '../model/view-store';
import { prunedConfig } from '../export/config';
import type { PrunePlan } from './plan';
import { prunedTensors } from './pruned-folder';

export interface PrunedView {
  config: ModelConfig;
  store: ViewStore;
  dtype: WeightDType;
  extraTensors: string[];
}

const blobBytes = async (b: Blob) => new Uint8Array(await b.arrayBuffer());

/** `dense` pruned by `plan`; `merged` holds the merged receivers' weights (ORIGINAL names) in the dense dtype. */
export function prunedView(dense: { config: ModelConfig; store: TensorStore }, plan: PrunePlan, merged: ReadonlyMap<string, Blob> = new Map()): PrunedView {
  const store = ViewStore.of(
    prunedTensors(dense, plan).map(({ name: to, from }) => {
      const blob = merged.get(from);
      return { name: to, info: dense.store.info(from), source: blob ? { bytes: () => blobBytes(blob) } : { store: dense.store, from } };
    }),
  );
  const config = normalizeConfig(prunedConfig(dense.config.raw, plan.kept.length), 'config.json');
  const { dtype, extraTensors } = checkTensors(config, store);
  return { config, store, dtype, extraTensors };
}
