// `gradprune width-prune <model-dir> (--ratio R | --target-params N | --heads N --channels N) [--importance l1|l2|random] [--reduction
// sum|max|prod] [--seed S] [--uniform] [--data FILE [--examples N] [--seq T]] --out <dir> [--overwrite]`: LLM-Pruner-style width pruning with uniform
// widths (every layer loses the same number of key/value heads, with their query heads, and MLP channels), so the
// folder loads with `from_pretrained` unchanged. Streamed to disk tensor by tensor and renamed into place when
// complete, as `prune` does. l1 / l2 / random read only the weights; the param_* Taylor importances take the
// frozen weights' gradients on --data on the GPU (gradprune/importance/taylor.ts).

import path from 'node:path';
import { openFile } from '../../model/node-files';
import { checkOutputFolder, FolderSink } from '../../export/node-sink';
import { requestGpu } from '../../gpu/device';
import type { TaylorImportanceKind } from '../../gradprune/importance/taylor';
import { TAYLOR_EXAMPLES, TAYLOR_SEQ, taylorLineScorer } from '../../gradprune/width/taylor';
import { sha256Hex } from '../../model/fingerprint';
import type { Checkpoint } from '../../model/checkpoint';
import { exportWidthPrunedTo, planWidthPrune, type WidthPlan, type WidthTarget } from '../../gradprune/width';
import { parseParamCount, resolveWidthCounts } from '../../gradprune/width/plan';
import { GRADIENT_IMPORTANCES, GROUP_REDUCTIONS, IMPORTANCE_KINDS, type LineScorer } from '../../gradprune/width/importance';
import { intOption, numberOption, stringOption, usageError, type CliIO, type Command, type OptionValues } from '../command';
import { checkDataFile, openModelFolder, readTrainingData } from '../load';
import { OVERWRITE_OPTION, overwriteOption } from '../outputs';

/** --ratio R, --target-params N, or --heads N and/or --channels N. */
export function widthTargetFrom(options: OptionValues): WidthTarget {
  const given = [options.ratio !== undefined, options['target-params'] !== undefined, options.heads !== undefined || options.channels !== undefined];
  if (given.filter(Boolean).length !== 1) {
    throw usageError(
      'Give one of --ratio R (the fraction of all parameters to remove, 0 < R < 1), --target-params N (the parameters to end with, e.g. 5.39B) or --heads N and/or --channels N (removed in every layer).',
      'ratio',
    );
  }
  if (given[0]) return { ratio: numberOption(options, 'ratio', 0) };
  if (given[1]) return { params: parseParamCount(String(options['target-params']), 'target-params') };
  return { heads: intOption(options, 'heads', 0, { min: 0 }), channels: intOption(options, 'channels', 0, { min: 0 }) };
}

/** The task data's frozen-weight saliences on the GPU, as the LineScorer of a Taylor importance. */
async function taylorScorer(ckpt: Checkpoint, dataFile: string, kind: TaylorImportanceKind, opts: { examples: number; seqLen: number; seed: number }, io: CliIO): Promise<LineScorer> {
  const { set } = await readTrainingData(dataFile, ckpt.tokenizer, { maxSeqLen: opts.seqLen }, io);
  const gpu = await requestGpu();
  try {
    const t = await taylorLineScorer(gpu, ckpt, { kind: 'examples', examples: set.examples, padTokenId: set.padTokenId }, kind, opts);
    io.err(`taylor ${kind}: gradients over ${t.examples} examples in ${t.passes} pass${t.passes === 1 ? '' : 'es'}, ${t.seconds.toFixed(1)} s`);
    return t.scorer;
  } finally {
    gpu.device.destroy();
  }
}

const millions = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 3 : 1)} M`;

export function widthPlanText(plan: WidthPlan): string {
  const { widthsBefore: b, widthsAfter: a } = plan;
  return [
    `every layer (${plan.numLayers}): heads ${b.heads} → ${a.heads}, key/value heads ${b.kvHeads} → ${a.kvHeads}, intermediate ${b.intermediate} → ${a.intermediate}`,
    ...plan.layers.map((l, i) => `  layer ${String(i).padStart(3)}: kept kv heads [${l.keptKvHeads.join(', ')}], ${l.keptChannels.length} channels`),
    `parameters ${millions(plan.before.params)} → ${millions(plan.after.params)} (${(100 * (1 - plan.after.params / plan.before.params)).toFixed(1)}% fewer` +
      `${plan.targetRatio !== null ? `; asked ${(100 * plan.targetRatio).toFixed(1)}% of all parameters` : ''}); ` +
      `FLOPs/token ${(100 * (1 - plan.after.flopsPerToken / plan.before.flopsPerToken)).toFixed(1)}% fewer`,
  ].join('\n');
}

export const widthPruneCommand: Command = {
  name: 'width-prune',
  summary: 'Width-prune a model in the LLM-Pruner style (key/value head groups and MLP channels), uniform widths, HF-loadable.',
  description:
    'Removes from every layer the same number of key/value heads (each with the query heads that share it: their q/k/v rows and ' +
    'o_proj columns) and MLP channels (gate/up rows, down columns), the lowest by importance in each layer, so config.json changes ' +
    'only num_attention_heads, num_key_value_heads and intermediate_size (and states head_dim) and transformers loads the result ' +
    'unchanged. Every layer is pruned: a layer left out would need its own width, which transformers cannot load. ' +
    '--ratio is a fraction of all parameters (embeddings included), as LLM-Pruner reports it.',
  positionals: [{ name: 'model-dir', description: 'the Hugging Face model folder' }],
  options: {
    ratio: { type: 'string', valueName: 'R', description: 'the fraction of all parameters to remove (0 < R < 1)' },
    'target-params': { type: 'string', valueName: 'N', description: 'or: the parameters to end with (5.39B, 900M, 750k or a count), all parameters counted as --ratio counts them' },
    heads: { type: 'string', valueName: 'N', description: 'or: key/value heads (each with its query heads) to remove per layer' },
    channels: { type: 'string', valueName: 'N', description: 'and/or: MLP intermediate channels to remove per layer' },
    importance: { type: 'string', valueName: 'I', description: `${IMPORTANCE_KINDS.join(' | ')} (default l1; param_* are LLM-Pruner's Taylor importances from --data's gradients, on the GPU)` },
    reduction: { type: 'string', valueName: 'G', description: `how a unit's weights' scores combine: ${GROUP_REDUCTIONS.join(' | ')} (default sum)` },
    seed: { type: 'string', valueName: 'S', description: 'seed of --importance random (default 0)' },
    uniform: { type: 'boolean', description: 'the same widths in every layer, loadable by transformers (the default, and the only mode so far)' },
    data: { type: 'string', valueName: 'FILE', description: 'task data for the param_* importances (not read by l1, l2, random)' },
    examples: { type: 'string', valueName: 'N', description: `examples the param_* gradients are taken over, one at a time (default ${TAYLOR_EXAMPLES})` },
    seq: { type: 'string', valueName: 'T', description: `tokens per example for param_* (default ${TAYLOR_SEQ})` },
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'the folder to write the pruned checkpoint to' },
    overwrite: OVERWRITE_OPTION,
  },
  async run({ positionals, options }, io: CliIO) {
    if (typeof options.out !== 'string') throw usageError('width-prune needs --out <dir>: where to write the pruned checkpoint.', 'out');
    const target = widthTargetFrom(options);
    const importance = stringOption(options, 'importance', 'l1', IMPORTANCE_KINDS);
    const reduction = stringOption(options, 'reduction', 'sum', GROUP_REDUCTIONS);
    const seed = intOption(options, 'seed', 0, { min: 0 });
    const dataFile = typeof options.data === 'string' ? options.data : null;
    if (dataFile) await checkDataFile(dataFile);
    const modelDir = positionals['model-dir']!;
    const outDir = stringOption(options, 'out', '');
    const overwrite = overwriteOption(options);
    const ckpt = await openModelFolder(modelDir);
    const targetDir = await checkOutputFolder(outDir, { sourceFolders: [modelDir], inputFiles: dataFile ? [dataFile] : [], overwrite });
    const taylor = GRADIENT_IMPORTANCES.has(importance);
    if (taylor && !dataFile) throw usageError(`--importance ${importance} needs --data <file>: its gradients are taken on the task data.`, 'data');
    const examples = intOption(options, 'examples', TAYLOR_EXAMPLES, { min: 1 });
    const seqLen = intOption(options, 'seq', TAYLOR_SEQ, { min: 2 });
    resolveWidthCounts(ckpt.config, target); // a bad target is answered before any GPU work
    const gradientScorer = taylor ? await taylorScorer(ckpt, dataFile!, importance as TaylorImportanceKind, { examples, seqLen, seed }, io) : undefined;
    const { plan } = await planWidthPrune(ckpt, target, { importance, reduction, seed, gradientScorer });
    if (dataFile && !taylor) io.err(`note: --importance ${importance} does not read --data (${dataFile})`);
    const sink = new FolderSink(targetDir, { overwrite, given: outDir });
    const data = taylor ? { fileName: path.basename(dataFile!), sha256: await sha256Hex(await openFile(dataFile!)), examples, seqLen } : null;
    const files = await exportWidthPrunedTo(sink, ckpt, plan, { baseModel: ckpt.name, importance, reduction, seed: importance === 'random' || taylor ? seed : null, data });
    io.out(widthPlanText(plan));
    for (const note of sink.notes) io.err(note);
    io.err(`wrote ${[...files.keys()].sort().join(', ')} to ${outDir}`);
    return 0;
  },
};
