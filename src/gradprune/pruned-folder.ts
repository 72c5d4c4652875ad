// The pruned checkpoint folder: the kept tensors renumbered (merged receivers from the merge), config.json with
// the new layer count, the tokenizer and generation files byte for byte, the model card and the pruning recipe —
// and after a recovery run its card section and record. `prunedFolderFiles` assembles the small files, once, for
// the CLI's prune (through exportCheckpointTo) and the studio's worker (its lazy pruned checkpoint and its export).

import { GradPruneError } from '../errors';
import { COPIED_FILE, exportFolderTo, RECIPE_FILE, type ExportSource, type FolderWriteOptions } from '../export/checkpoint';
import { configText, prunedConfig } from '../export/config';
import { RECOVERY_FILE } from '../export/merge-adapter';
import { MemorySink, type CheckpointSink, type WrittenFiles } from '../export/sink';
import { storedTensorBytes, type ExportTensor } from '../export/weights';
import { fromFloat32, isWeightDType } from '../model/dtype';
import { modelCard } from './model-card';
import type { PrunePlan } from './plan';
import { prunedTensorNames, type PrunedTensorName } from './prune';
import { sha256Hex } from '../model/fingerprint';
import { buildRecipe, type PruneRunInfo } from './recipe';

/**
 * The receivers' merged weights by ORIGINAL tensor name, f32: values in hand (MergeResult.weights), or made on
 * demand one at a time while the export writes (LayerMerger: merged on the GPU as the writer reaches them).
 */
export interface MergedWeights {
  keys(): Iterable<string>;
  has(name: string): boolean;
  get(name: string): Float32Array | Promise<Float32Array> | undefined;
}

/** What a recovery run adds to the folder: a section of the model card and its record (gradprune_recovery.json). */
export interface RecoveryNotes {
  cardSection: string;
  record: Record<string, unknown>;
}

export interface ExportOptions extends FolderWriteOptions {
  plan: PrunePlan;
  merged: MergedWeights;
  /** What the model card and recipe say; a function is called after the weights are written (when lazy merges have counted their elements). */
  run: PruneRunInfo | (() => PruneRunInfo | Promise<PruneRunInfo>);
}

const textBlob = (text: string) => new Blob([text]);

/**
 * The pruned folder's small files in the order the export writes them: config.json, the copied tokenizer and
 * generation files, README.md (with the recovery's section), the recipe (with the run's evaluation, when it has one),
 * and gradprune_recovery.json after a recovery run.
 */
export async function prunedFolderFiles(dense: Pick<ExportSource, 'config' | 'files' | 'dtype'>, plan: PrunePlan, run: PruneRunInfo, recovery: RecoveryNotes | null = null): Promise<Map<string, Blob>> {
  const files = new Map<string, Blob>([['config.json', textBlob(configText(prunedConfig(dense.config.raw, plan.kept.length)))]]);
  for (const [name, blob] of dense.files) if (COPIED_FILE.test(name)) files.set(name, blob);
  const card = modelCard(run, plan, dense.dtype);
  files.set('README.md', textBlob(recovery ? `${card.trimEnd()}\n\n${recovery.cardSection}` : card));
  const configSha = await sha256Hex(dense.files.get('config.json') ?? JSON.stringify(dense.config.raw));
  files.set(RECIPE_FILE, textBlob(JSON.stringify(buildRecipe(run, plan, configSha, dense.dtype), null, 2) + '\n'));
  if (recovery) files.set(RECOVERY_FILE, textBlob(JSON.stringify(recovery.record, null, 2) + '\n'));
  return files;
}

/** The pruned model's tensor names (new ← original) in the dense store's order; a tied model gains no lm_head. */
export function prunedTensors(dense: Pick<ExportSource, 'config' | 'store'>, plan: PrunePlan): PrunedTensorName[] {
  const { config, store } = dense;
  if (plan.numLayers !== config.numLayers) {
    throw new GradPruneError('input', `The plan is for ${plan.numLayers} layers but the model has ${config.numLayers}.`, { subject: 'plan' });
  }
  return prunedTensorNames(plan, store.tensors.keys()).filter((n) => !(config.tiedEmbeddings && n.name === 'lm_head.weight'));
}

/** The pruned tensors in export order, each producing its bytes on demand (checked before anything is written). */
export function prunedExportTensors(source: ExportSource, plan: PrunePlan, merged: MergedWeights): ExportTensor[] {
  const { store, dtype } = source;
  const names = prunedTensors(source, plan);
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

/** The pruned checkpoint written into `sink` as it is made: weights tensor by tensor, then the small files; committed at the end, aborted on failure. */
export async function exportCheckpointTo(sink: CheckpointSink, source: ExportSource, opts: ExportOptions): Promise<WrittenFiles> {
  const { plan, run } = opts;
  const tensors = prunedExportTensors(source, plan, opts.merged);
  return exportFolderTo(sink, tensors, async () => prunedFolderFiles(source, plan, typeof run === 'function' ? await run() : run), opts);
}

/** The pruned checkpoint as files in memory (name → Blob): small models, tests. */
export async function exportCheckpoint(source: ExportSource, opts: ExportOptions): Promise<Map<string, Blob>> {
  const sink = new MemorySink();
  await exportCheckpointTo(sink, source, opts);
  return sink.files;
}
