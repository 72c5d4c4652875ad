// Pruned (and recovered) checkpoints as views over the dense one, read on demand, so that an 8B model's pruned
// copy never sits in the tab: a view's tensors are the dense store's (pruned layers dropped, kept layers renumbered)
// read when a job or the export reaches them; only the merged receivers' weights are computed (GradPruner's merge on
// the GPU, one weight at a time, LayerMerger) and kept — as Blobs in the checkpoint's dtype, which the browser may
// page out to disk. A recovered view adds (alpha / r)·B·A to each adapted weight when it is read (not kept).
// The views themselves: model/view-store.ts, gradprune/pruned-view.ts. The export streams a view into a
// CheckpointSink tensor by tensor, as runPruneTo does; its file list and sizes are known before anything is written.

import type { Gpu } from '../gpu/device';
import { LayerMerger, type MergeResult, type MergeSource } from '../gradprune/merge';
import type { PrunePlan } from '../gradprune/plan';
import { prunedFolderFiles } from '../gradprune/pruned-folder';
import { prunedView } from '../gradprune/pruned-view';
import type { PruneRunInfo } from '../gradprune/recipe';
import type { Checkpoint } from '../model/checkpoint';
import { fromFloat32, type WeightDType } from '../model/dtype';
import { safetensorsHeader } from '../model/safetensors';
import { ViewStore, type ViewSource } from '../model/view-store';
import { exportFolderTo } from '../export/checkpoint';
import { adaptersByWeight, mergedWeight } from '../export/merge-adapter';
import type { CheckpointSink, WrittenFiles } from '../export/sink';
import { DEFAULT_MAX_SHARD_BYTES, planShards, storedTensorBytes, tensorBytes, type ExportTensor } from '../export/weights';
import type { LoraAdapter, LoraConfig } from '../nn/lora';

/** A checkpoint whose weights are a view (Checkpoint.files holds only the small files: config, tokenizer, card, recipe). */
export interface LazyCheckpoint extends Checkpoint {
  store: ViewStore;
}

export interface MergedReceivers {
  /** Each merged receiver weight (ORIGINAL name) in the checkpoint's dtype, as the export rounds it. */
  weights: Map<string, Blob>;
  addedElements: MergeResult['addedElements'];
  thresholds: MergeResult['thresholds'];
}

/**
 * GradPruner's merge of every receiver weight of the plan, one weight at a time on the GPU (weights and F from
 * `source`, preparePrune's), each rounded to the checkpoint's dtype and kept as a Blob: the only tensors of a pruned
 * model that are not the dense model's own.
 */
export async function mergeReceivers(
  gpu: Gpu,
  dense: Pick<Checkpoint, 'config' | 'dtype'>,
  plan: PrunePlan,
  source: MergeSource,
  onProgress?: (done: number, total: number) => void,
): Promise<MergedReceivers> {
  const merger = new LayerMerger(gpu.device, plan, dense.config, source);
  try {
    const weights = new Map<string, Blob>();
    for (const [i, name] of merger.names.entries()) {
      const values = await merger.get(name);
      weights.set(name, new Blob([fromFloat32(values, dense.dtype) as Uint8Array<ArrayBuffer>]));
      onProgress?.(i + 1, merger.names.length);
    }
    const { addedElements, thresholds } = await merger.finish();
    gpu.throwIfFailed();
    return { weights, addedElements, thresholds };
  } finally {
    merger.destroy();
  }
}

/**
 * The pruned checkpoint as a view over the dense one: tensors in the dense store's order (renamed, pruned layers
 * dropped; a tied model gains no lm_head), merged receivers from `merged`; the small files (config.json with the new
 * layer count, the tokenizer and generation files, model card and recipe) in memory, in the order the export writes them.
 */
export async function prunedCheckpoint(dense: Checkpoint, plan: PrunePlan, merged: ReadonlyMap<string, Blob>, name: string, run: PruneRunInfo): Promise<LazyCheckpoint> {
  const { config, store, dtype, extraTensors } = prunedView(dense, plan, merged);
  const files = await prunedFolderFiles(dense, plan, run);
  return { name, config, store, tokenizer: dense.tokenizer, dtype, files, generationConfig: dense.generationConfig, extraTensors };
}

/**
 * The pruned model with a LoRA adapter merged in (W + (alpha / r)·B·A, rounded once to the checkpoint's dtype, as
 * the merged export writes it), computed each time an adapted weight is read; every other tensor is the pruned view's.
 */
export function recoveredCheckpoint(pruned: LazyCheckpoint, lora: LoraConfig, adapters: readonly Pick<LoraAdapter, 'layer' | 'module' | 'A' | 'B'>[], name: string): LazyCheckpoint {
  const byWeight = adaptersByWeight(pruned.config, lora, adapters);
  const store = ViewStore.of(
    [...pruned.store.tensors.values()].map((info) => {
      const adapter = byWeight.get(info.name);
      const source: ViewSource = adapter
        ? { bytes: async () => fromFloat32(await mergedWeight(pruned.store, pruned.config, lora, adapter), pruned.dtype) }
        : pruned.store.sourceOf(info.name);
      return { name: info.name, info, source };
    }),
  );
  return { ...pruned, name, store, files: new Map(pruned.files) };
}

/** The view's tensors as the export writes them: every tensor of the view, in order, in the checkpoint's dtype. */
function exportTensors(ckpt: LazyCheckpoint): ExportTensor[] {
  return [...ckpt.store.tensors.values()].map((t) => ({
    name: t.name,
    dtype: ckpt.dtype,
    shape: [...t.shape],
    bytes: () => storedTensorBytes(ckpt.store, t.name, ckpt.dtype),
  }));
}

const shardName = (i: number, n: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;

/**
 * The files the export of `ckpt` (with `files` as its small files) will write and their sizes, without reading a
 * weight: the safetensors headers and the shard plan follow from names, dtypes and shapes (export/weights.ts).
 */
export function plannedFiles(ckpt: LazyCheckpoint, files: ReadonlyMap<string, Blob> = ckpt.files, maxShardBytes = DEFAULT_MAX_SHARD_BYTES): { name: string; bytes: number }[] {
  const shards = planShards(exportTensors(ckpt), maxShardBytes);
  const size = (ts: ExportTensor[]) => safetensorsHeader(ts, { format: 'pt' }).byteLength + ts.reduce((s, t) => s + tensorBytes(t), 0);
  const out: { name: string; bytes: number }[] = [];
  if (shards.length <= 1) out.push({ name: 'model.safetensors', bytes: size(shards[0] ?? []) });
  else {
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    shards.forEach((shard, i) => {
      out.push({ name: shardName(i, shards.length), bytes: size(shard) });
      for (const t of shard) {
        weightMap[t.name] = shardName(i, shards.length);
        totalSize += tensorBytes(t);
      }
    });
    const index = JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n';
    out.push({ name: 'model.safetensors.index.json', bytes: new TextEncoder().encode(index).byteLength });
  }
  for (const [name, blob] of files) out.push({ name, bytes: blob.size });
  return out;
}

/**
 * The checkpoint streamed into `sink`: the weight files tensor by tensor (each tensor read from the dense files, or
 * the merged receiver, or merged with the adapter, as the writer reaches it), then `files` (default the checkpoint's
 * small files) in order; committed at the end, aborted on failure.
 */
export async function writeCheckpointTo(sink: CheckpointSink, ckpt: LazyCheckpoint, files: ReadonlyMap<string, Blob> = ckpt.files, maxShardBytes = DEFAULT_MAX_SHARD_BYTES): Promise<WrittenFiles> {
  return exportFolderTo(sink, exportTensors(ckpt), () => files, { maxShardBytes });
}

export type { WeightDType };
