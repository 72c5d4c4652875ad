// A Hugging Face checkpoint folder streamed into a CheckpointSink (./sink.ts): the weight files tensor by tensor
// (sharded above a size), then the small files (config, tokenizer, model card, …). What goes in is the caller's: a
// pruned model (gradprune/pruned-folder.ts), a lazy view (the worker), a merged adapter (./merge-adapter.ts).
// Pure TypeScript: the same in the browser worker and in Node.

import type { ModelConfig } from '../model/config';
import type { WeightDType } from '../model/dtype';
import type { TensorStore } from '../model/safetensors';
import { withSink, writeBlobFile, type CheckpointSink, type WrittenFiles } from './sink';
import { DEFAULT_MAX_SHARD_BYTES, streamWeightFiles, type ExportStats, type ExportTensor } from './weights';

/** What is exported from: the parts of an opened checkpoint (model/checkpoint.ts's Checkpoint fits). */
export interface ExportSource {
  config: ModelConfig;
  store: TensorStore;
  dtype: WeightDType;
  files: ReadonlyMap<string, Blob>;
}

/** Files copied unchanged: tokenizer, chat template and generation settings. */
export const COPIED_FILE = /^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|generation_config\.json|vocab\.json|merges\.txt|chat_template\..+)$/;

export const RECIPE_FILE = 'gradprune_recipe.json';

export interface FolderWriteOptions {
  /** Shard the weights above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Filled in while writing: the most bytes held at once vs the largest tensor. */
  stats?: ExportStats;
}

/**
 * The folder written into `sink`: the weight files tensor by tensor, then the small files, made once the weights
 * are written (a lazy merge counts its elements while they are); committed at the end, aborted on failure.
 */
export async function exportFolderTo(
  sink: CheckpointSink,
  tensors: ExportTensor[],
  files: () => ReadonlyMap<string, Blob> | Promise<ReadonlyMap<string, Blob>>,
  opts: FolderWriteOptions = {},
): Promise<WrittenFiles> {
  return withSink(sink, async () => {
    const written = await streamWeightFiles(sink, tensors, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, opts.stats);
    for (const [name, blob] of await files()) written.set(name, await writeBlobFile(sink, name, blob));
    return written;
  });
}
