// The width-pruned checkpoint folder: every tensor of the original in its order and dtype, the attention and MLP
// weights (and biases) sliced to the kept heads and channels on their bytes, everything else byte for byte;
// config.json with the new widths, the tokenizer and generation files, the model card and the recipe. Streamed
// tensor by tensor through the same writer as the depth-pruned folder (export/checkpoint.ts).

import { COPIED_FILE, exportFolderTo, RECIPE_FILE, type ExportSource, type FolderWriteOptions } from '../../export/checkpoint';
import { configText } from '../../export/config';
import { MemorySink, type CheckpointSink, type WrittenFiles } from '../../export/sink';
import { storedTensorBytes, type ExportTensor } from '../../export/weights';
import { LINEAR_MODULES, normalizeConfig, type LinearModule, type ModelConfig } from '../../model/config';
import { ViewStore } from '../../model/view-store';
import { dtypeBytes, isWeightDType } from '../../model/dtype';
import { GradPruneError } from '../../errors';
import { sha256Hex } from '../../model/fingerprint';
import { keptLines, slicingOf } from './groups';
import type { WidthPlan } from './plan';
import { buildWidthRecipe, widthModelCard, type WidthRunInfo } from './recipe';
import { sliceLines } from './slice';

const LINEAR_TENSOR = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.(weight|bias)$/;

/** The kept rows / columns of a checkpoint tensor, or null when it is written unchanged. */
export function tensorSlicing(plan: WidthPlan, config: ExportSource['config'], name: string): { rows: number[] | null; cols: number[] | null } | null {
  const m = LINEAR_TENSOR.exec(name);
  if (!m || !(LINEAR_MODULES as readonly string[]).includes(m[2])) return null;
  const layer = plan.layers[Number(m[1])];
  if (!layer) throw new GradPruneError('tensor', `The checkpoint has tensor "${name}" but the config declares ${plan.numLayers} layers.`, { subject: name });
  const s = slicingOf(m[2] as LinearModule, keptLines(config, layer.keptKvHeads, layer.keptChannels));
  // A bias runs along the output rows: it follows the row slicing and is untouched by column slicing.
  if (m[3] === 'bias') return s.rows ? { rows: s.rows, cols: null } : null;
  return s;
}

/** The pruned tensors in export order, each producing its bytes on demand (checked before anything is written). */
export function widthExportTensors(source: ExportSource, plan: WidthPlan): ExportTensor[] {
  const { store, dtype, config } = source;
  if (plan.numLayers !== config.numLayers) {
    throw new GradPruneError('input', `The width plan is for ${plan.numLayers} layers but the model has ${config.numLayers}.`, { subject: 'plan' });
  }
  const names = [...store.tensors.keys()].filter((n) => !(config.tiedEmbeddings && n === 'lm_head.weight'));
  return names.map((name) => {
    const info = store.info(name);
    if (!isWeightDType(info.dtype)) {
      throw new GradPruneError('tensor', `Tensor "${name}" in ${info.file} is ${info.dtype}; only F32, F16 and BF16 tensors can be exported.`, { subject: name });
    }
    const slicing = tensorSlicing(plan, config, name);
    const shape = [...info.shape];
    if (slicing?.rows) shape[0] = slicing.rows.length;
    if (slicing?.cols) shape[1] = slicing.cols.length;
    return {
      name,
      dtype,
      shape,
      bytes: async () => {
        const bytes = await storedTensorBytes(store, name, dtype);
        return slicing ? sliceLines(bytes, info.shape, dtypeBytes(dtype), slicing.rows, slicing.cols) : bytes;
      },
    };
  });
}

/** config.json, the copied tokenizer and generation files, README.md and the recipe. */
export async function widthFolderFiles(source: Pick<ExportSource, 'config' | 'files' | 'dtype'>, plan: WidthPlan, run: WidthRunInfo): Promise<Map<string, Blob>> {
  const files = new Map<string, Blob>([['config.json', new Blob([configText(plan.config)])]]);
  for (const [name, blob] of source.files) if (COPIED_FILE.test(name)) files.set(name, blob);
  files.set('README.md', new Blob([widthModelCard(run, plan, source.dtype)]));
  const configSha = await sha256Hex(source.files.get('config.json') ?? JSON.stringify(source.config.raw));
  files.set(RECIPE_FILE, new Blob([JSON.stringify(buildWidthRecipe(run, plan, configSha, source.dtype), null, 2) + '\n']));
  return files;
}

/** The width-pruned checkpoint written into `sink` as it is made; committed at the end, aborted on failure. */
export async function exportWidthPrunedTo(sink: CheckpointSink, source: ExportSource, plan: WidthPlan, run: WidthRunInfo, opts: FolderWriteOptions = {}): Promise<WrittenFiles> {
  const tensors = widthExportTensors(source, plan);
  return exportFolderTo(sink, tensors, () => widthFolderFiles(source, plan, run), opts);
}

/** The width-pruned checkpoint as files in memory (small models, tests). */
export async function exportWidthPruned(source: ExportSource, plan: WidthPlan, run: WidthRunInfo): Promise<Map<string, Blob>> {
  const sink = new MemorySink();
  await exportWidthPrunedTo(sink, source, plan, run);
  return sink.files;
}

/** The width-pruned model as a view over the original (sliced when a tensor is read): for evaluating it in place. */
export function widthPrunedView(source: ExportSource, plan: WidthPlan): { config: ModelConfig; store: ViewStore; dtype: ExportSource['dtype'] } {
  const store = ViewStore.of(
    widthExportTensors(source, plan).map((t) => ({ name: t.name, info: { name: t.name, dtype: t.dtype, shape: t.shape, begin: 0, end: 0, file: '(width-pruned view)' }, source: { bytes: t.bytes } })),
  );
  return { config: normalizeConfig(plan.config, 'config.json'), store, dtype: source.dtype };
}
