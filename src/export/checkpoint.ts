// A pruned Hugging Face checkpoint folder as files (name → Blob): weights in the input's dtype (sharded above
// a size), config.json with the new layer count, the tokenizer and generation files byte for byte, a model
// card and the pruning recipe. Pure TypeScript: the same in the browser worker and in Node.

import { GradPruneError } from '../errors';
import type { PrunePlan } from '../gradprune/plan';
import { prunedTensorNames } from '../gradprune/prune';
import type { ModelConfig } from '../model/config';
import { fromFloat32, isWeightDType, type WeightDType } from '../model/dtype';
import type { TensorStore } from '../model/safetensors';
import { configText, prunedConfig } from './config';
import { modelCard } from './model-card';
import { buildRecipe, sha256Hex, type PruneRunInfo } from './recipe';
import { DEFAULT_MAX_SHARD_BYTES, storedTensorBytes, writeWeightFiles, type ExportTensor } from './weights';

/** What is exported from: the parts of an opened checkpoint (model/checkpoint.ts's Checkpoint fits). */
export interface ExportSource {
  config: ModelConfig;
  store: TensorStore;
  dtype: WeightDType;
  files: ReadonlyMap<string, Blob>;
}

export interface ExportOptions {
  plan: PrunePlan;
  /** The receivers' merged weights by ORIGINAL tensor name (MergeResult.weights), f32. */
  merged: ReadonlyMap<string, Float32Array>;
  run: PruneRunInfo;
  /** Shard the weights above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

/** Files copied unchanged: tokenizer, chat template and generation settings. */
export const COPIED_FILE = /^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|generation_config\.json|vocab\.json|merges\.txt|chat_template\..+)$/;

export const RECIPE_FILE = 'gradprune_recipe.json';

export async function exportCheckpoint(source: ExportSource, opts: ExportOptions): Promise<Map<string, Blob>> {
  const { config, store, dtype } = source;
  const { plan, merged } = opts;
  if (plan.numLayers !== config.numLayers) {
    throw new GradPruneError('input', `The plan is for ${plan.numLayers} layers but the model has ${config.numLayers}.`, { subject: 'plan' });
  }
  const names = prunedTensorNames(plan, store.tensors.keys()).filter((n) => !(config.tiedEmbeddings && n.name === 'lm_head.weight'));
  for (const name of merged.keys()) {
    if (!store.has(name)) throw new GradPruneError('tensor', `A merged weight "${name}" is not in the checkpoint.`, { subject: name });
  }
  const tensors: ExportTensor[] = names.map(({ name, from }) => {
    const info = store.info(from);
    if (!isWeightDType(info.dtype)) {
      throw new GradPruneError('tensor', `Tensor "${from}" in ${info.file} is ${info.dtype}; only F32, F16 and BF16 tensors can be exported.`, { subject: from });
    }
    const values = merged.get(from);
    return {
      name,
      dtype,
      shape: [...info.shape],
      // Unchanged tensors keep their exact bytes when the dtype is the same; merged ones are rounded once.
      bytes: async () => (values ? fromFloat32(values, dtype) : storedTensorBytes(store, from, dtype)),
    };
  });

  const out = await writeWeightFiles(tensors, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  out.set('config.json', new Blob([configText(prunedConfig(config.raw, plan.kept.length))]));
  for (const [name, blob] of source.files) if (COPIED_FILE.test(name)) out.set(name, blob);

  const configBlob = source.files.get('config.json');
  const configSha = await sha256Hex(configBlob ?? JSON.stringify(config.raw));
  out.set('README.md', new Blob([modelCard(opts.run, plan, dtype)]));
  out.set(RECIPE_FILE, new Blob([JSON.stringify(buildRecipe(opts.run, plan, configSha, dtype), null, 2) + '\n']));
  return out;
}
