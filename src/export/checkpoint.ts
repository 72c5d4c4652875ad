// A pruned Hugging Face checkpoint folder, streamed into a CheckpointSink (./sink.ts) or as files (name → Blob): weights in the input's dtype (sharded above
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
import { MemorySink, withSink, writeBlobFile, writeBytesFile, type CheckpointSink, type WrittenFiles } from './sink';
import { DEFAULT_MAX_SHARD_BYTES, storedTensorBytes, streamWeightFiles, type ExportStats, type ExportTensor } from './weights';

/** What is exported from: the parts of an opened checkpoint (model/checkpoint.ts's Checkpoint fits). */
export interface ExportSource {
  config: ModelConfig;
  store: TensorStore;
  dtype: WeightDType;
  files: ReadonlyMap<string, Blob>;
}

/**
 * The receivers' merged weights by ORIGINAL tensor name, f32: values in hand (MergeResult.weights), or made on
 * demand one at a time while the export writes (LayerMerger: merged on the GPU as the writer reaches them).
 */
export interface MergedWeights {
  keys(): Iterable<string>;
  has(name: string): boolean;
  get(name: string): Float32Array | Promise<Float32Array> | undefined;
}

export interface ExportOptions {
  plan: PrunePlan;
  merged: MergedWeights;
  /** What the model card and recipe say; a function is called after the weights are written (when lazy merges have counted their elements). */
  run: PruneRunInfo | (() => PruneRunInfo | Promise<PruneRunInfo>);
  /** Shard the weights above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Filled in while writing: the most bytes held at once vs the largest tensor. */
  stats?: ExportStats;
}

/** Files copied unchanged: tokenizer, chat template and generation settings. */
export const COPIED_FILE = /^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|generation_config\.json|vocab\.json|merges\.txt|chat_template\..+)$/;

export const RECIPE_FILE = 'gradprune_recipe.json';

/** The pruned tensors in export order, each producing its bytes on demand (checked before anything is written). */
export function prunedExportTensors(source: ExportSource, plan: PrunePlan, merged: MergedWeights): ExportTensor[] {
  const { config, store, dtype } = source;
  if (plan.numLayers !== config.numLayers) {
    throw new GradPruneError('input', `The plan is for ${plan.numLayers} layers but the model has ${config.numLayers}.`, { subject: 'plan' });
  }
  const names = prunedTensorNames(plan, store.tensors.keys()).filter((n) => !(config.tiedEmbeddings && n.name === 'lm_head.weight'));
  for (const name of merged.keys()) {
    if (!store.has(name)) throw new GradPruneError('tensor', `A merged weight "${name}" is not in the checkpoint.`, { subject: name });
  }
  return names.map(({ name, from }) => {
    const info = store.info(from);
    if (!isWeightDType(info.dtype)) {
      throw new GradPruneError('tensor', `Tensor "${from}" in ${info.file} is ${info.dtype}; only F32, F16 and BF16 tensors can be exported.`, { subject: from });
    }
    return {
      name,
      dtype,
      shape: [...info.shape],
      // Unchanged tensors keep their exact bytes when the dtype is the same; merged ones are rounded once.
      bytes: async () => (merged.has(from) ? fromFloat32(await merged.get(from)!, dtype) : storedTensorBytes(store, from, dtype)),
    };
  });
}

/**
 * The pruned checkpoint written into `sink` as it is made: weights tensor by tensor (sharded above a size), then
 * config.json, the copied tokenizer files, the model card and the recipe; committed at the end, aborted on failure.
 */
export async function exportCheckpointTo(sink: CheckpointSink, source: ExportSource, opts: ExportOptions): Promise<WrittenFiles> {
  const { config, dtype } = source;
  const { plan } = opts;
  const tensors = prunedExportTensors(source, plan, opts.merged);
  return withSink(sink, async () => {
    const written = await streamWeightFiles(sink, tensors, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, opts.stats);
    const text = (name: string, value: string) => writeBytesFile(sink, name, new TextEncoder().encode(value)).then((n) => written.set(name, n));
    await text('config.json', configText(prunedConfig(config.raw, plan.kept.length)));
    for (const [name, blob] of source.files) if (COPIED_FILE.test(name)) written.set(name, await writeBlobFile(sink, name, blob));
    const run = typeof opts.run === 'function' ? await opts.run() : opts.run;
    const configBlob = source.files.get('config.json');
    const configSha = await sha256Hex(configBlob ?? JSON.stringify(config.raw));
    await text('README.md', modelCard(run, plan, dtype));
    await text(RECIPE_FILE, JSON.stringify(buildRecipe(run, plan, configSha, dtype), null, 2) + '\n');
    return written;
  });
}

/** The pruned checkpoint as files in memory (name → Blob): small models, the studio's pruned model, tests. */
export async function exportCheckpoint(source: ExportSource, opts: ExportOptions): Promise<Map<string, Blob>> {
  const sink = new MemorySink();
  await exportCheckpointTo(sink, source, opts);
  return sink.files;
}
