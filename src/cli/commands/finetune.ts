// `gradprune finetune <model-dir> --data <file> [--steps N | --epochs E] … [--merge-adapter] --out <dir> [--measure]`:
// recovery fine-tuning of a (pruned) model with a fresh LoRA on the GPU, the held-out loss before → after, then
// either the merged model as a full Hugging Face checkpoint or the adapter as a PEFT folder, written first; with
// `--mode partial --last-layers K`, full fine-tuning of lm_head and the last K layers instead (eval/partial-recovery.ts),
// written as a plain checkpoint with the trained tensors replaced, its memory estimate printed before it starts; the
// before / after table (timed forward passes of each model) only with --measure, after the output is in place.
// Progress on stderr; the losses and the table on stdout. The first Ctrl-C stops training after the step in flight
// and writes the result of the steps done (a second one aborts, leaving nothing behind).

import path from 'node:path';
import { DATASET_FORMATS } from '../../data/formats';
import type { MultipleChoiceItem, TokenizedExample } from '../../data/types';
import { comparisonRows, formatComparisonTable, measureModel, type MeasureOptions, type ModelMeasurement } from '../../eval/before-after';
import { GradPruneError } from '../../errors';
import { runPartialRecovery, type PartialRecoveryResult } from '../../eval/partial-recovery';
import { recoverySplit, runRecovery, type RecoveryProgress, type RecoveryResult } from '../../eval/recovery';
import { DEFAULT_RECOVERY_SETTINGS as D, loraConfigOf, resolveRecoverySettings, type RecoverySettingsInput } from '../../nn/run-settings';
import { exportMergedCheckpointTo, exportReplacedCheckpointTo, RECOVERY_FILE } from '../../export/merge-adapter';
import { checkOutputFolder, FolderSink } from '../../export/node-sink';
import { writeFolderTo } from '../../export/sink';
import { writePeftAdapter } from '../../export/peft';
import { sha256Hex } from '../../model/fingerprint';
import { requestGpu, type Gpu } from '../../gpu/device';
import type { Checkpoint } from '../../model/checkpoint';
import { memoryLine, planResidency } from '../../nn/memory';
import { partialLayers, partialMemoryLine, planPartialMemory } from '../../nn/partial-finetune';
import { precisionLine, resolveWeightStorage } from '../../nn/precision';
import { flag, intOption, MAX_GPU_MEMORY_OPTION, maxGpuMemoryOption, numberOption, PRECISION_OPTION, precisionOption, stringOption, usageError, type CliIO, type Command, type OptionValues } from '../command';
import { checkDataFile, openModelFolder, readTrainingData } from '../load';
import { DATA_OPTIONS, dataOptionsFrom } from '../data-options';
import { RESUME_OPTIONS, resumeFor } from '../resume';
import { OVERWRITE_OPTION, overwriteOption, stopOnInterrupt } from '../outputs';
import { bar, loadLine, passLine, stepTimeText, throttled } from '../progress';

/** Fine-tuning settings from the command line (checked again, with the data, by resolveRecoverySettings). */
export function recoverySettingsFrom(options: OptionValues): RecoverySettingsInput {
  if (options.steps !== undefined && options.epochs !== undefined) throw usageError('Give --steps or --epochs, not both.', 'steps');
  const clip = numberOption(options, 'clip', D.maxGradNorm ?? 0, { min: 0 });
  return {
    steps: options.steps === undefined ? undefined : intOption(options, 'steps', D.steps, { min: 1 }),
    epochs: options.epochs === undefined ? undefined : numberOption(options, 'epochs', 1, { min: Number.MIN_VALUE }),
    rank: intOption(options, 'rank', D.rank, { min: 1 }),
    alpha: numberOption(options, 'alpha', D.alpha, { min: Number.MIN_VALUE }),
    lr: numberOption(options, 'lr', D.lr, { min: 0 }),
    batchSize: intOption(options, 'batch', D.batchSize, { min: 1 }),
    seqLen: intOption(options, 'seq', D.seqLen, { min: 2 }),
    warmupSteps: options['warmup-steps'] === undefined ? undefined : intOption(options, 'warmup-steps', 0, { min: 0 }),
    schedule: stringOption(options, 'schedule', D.schedule, ['constant', 'linear', 'cosine'] as const),
    weightDecay: numberOption(options, 'weight-decay', D.weightDecay, { min: 0 }),
    maxGradNorm: clip === 0 ? null : clip,
    seed: intOption(options, 'seed', D.seed),
    shuffle: !flag(options, 'no-shuffle'),
    heldOut: numberOption(options, 'held-out', D.heldOut, { min: 0 }),
    weights: precisionOption(options),
    maxGpuMemory: maxGpuMemoryOption(options),
  };
}

export function recoveryLine(p: RecoveryProgress): string {
  return (
    `train ${bar((p.step + 1) / p.steps)} step ${p.step + 1}/${p.steps}  epoch ${p.epoch.toFixed(2)}  loss ${p.loss.toFixed(4)}  ` +
    `lr ${p.lr.toExponential(1)}  |g| ${p.gradNorm.toFixed(3)}  ${stepTimeText(p)}`
  );
}

/** "held-out loss 3.2100 → 2.9000 (perplexity 24.80 → 18.17) over N tokens of M examples" */
export function lossLine(r: Pick<RecoveryResult, 'before' | 'after' | 'heldOutExamples' | 'accuracyBefore' | 'accuracyAfter'>): string {
  if (!r.before || !r.after) return 'held-out loss: not measured (nothing held out; use --held-out to keep some examples aside)';
  const acc = r.accuracyBefore && r.accuracyAfter
    ? `\nheld-out accuracy ${(r.accuracyBefore.acc * 100).toFixed(1)}% → ${(r.accuracyAfter.acc * 100).toFixed(1)}% over ${r.accuracyAfter.items} questions`
    : '';
  return (
    `held-out loss ${r.before.loss.toFixed(4)} → ${r.after.loss.toFixed(4)} ` +
    `(perplexity ${r.before.perplexity.toFixed(2)} → ${r.after.perplexity.toFixed(2)}) over ${r.after.tokens} tokens of ${r.heldOutExamples} examples${acc}`
  );
}

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'Recover a pruned model with LoRA (or partial-layer) fine-tuning on the GPU; writes the merged model or a PEFT adapter.',
  description:
    'Trains a fresh LoRA (default rank 8, alpha 32, all seven modules, lr 1e-4, as the paper) on the dataset for --steps or --epochs, ' +
    'measuring the loss on held-out examples before and after. With --merge-adapter the output folder is a full Hugging Face ' +
    'checkpoint with W + (alpha/r)·B·A merged into the weights (stored in the model\'s dtype); without it, a PEFT adapter folder ' +
    '(adapter_config.json + adapter_model.safetensors) that PeftModel.from_pretrained loads on top of the model. ' +
    'With --mode partial, no LoRA: lm_head and the last --last-layers layers\' linear weights (Qwen2: their biases) are trained in full ' +
    'with AdamW, everything else frozen (norms and embedding included), the mode "Reassessing Layer Pruning in LLMs" finds best; ' +
    'the output is a full checkpoint with those tensors replaced (a tied lm_head is untied). It runs on f32 weights resident on the GPU.',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder (e.g. the output of `gradprune prune`)' }],
  options: {
    data: { type: 'string', valueName: 'FILE', description: 'the fine-tuning dataset (.jsonl, .json, .csv, .tsv, .parquet)' },
    format: { type: 'string', valueName: 'FORMAT', description: `read the data as ${DATASET_FORMATS.join(' | ')} (default: detected)` },
    ...DATA_OPTIONS,
    steps: { type: 'string', valueName: 'N', description: `training steps (default ${D.steps})` },
    epochs: { type: 'string', valueName: 'E', description: 'passes over the training examples instead of --steps' },
    rank: { type: 'string', valueName: 'R', description: `LoRA rank (default ${D.rank})` },
    alpha: { type: 'string', valueName: 'A', description: `LoRA alpha (default ${D.alpha})` },
    lr: { type: 'string', valueName: 'X', description: `peak learning rate (default ${D.lr})` },
    batch: { type: 'string', valueName: 'B', description: `rows per step (default ${D.batchSize})` },
    seq: { type: 'string', valueName: 'T', description: `tokens per row; longer examples are truncated (default ${D.seqLen})` },
    schedule: { type: 'string', valueName: 'KIND', description: `constant | linear | cosine decay after warmup (default ${D.schedule})` },
    'warmup-steps': { type: 'string', valueName: 'W', description: 'linear warmup steps (default 3% of the steps, rounded up)' },
    'weight-decay': { type: 'string', valueName: 'X', description: `AdamW weight decay (default ${D.weightDecay})` },
    clip: { type: 'string', valueName: 'X', description: `clip the global gradient norm to X; 0 = no clipping (default ${D.maxGradNorm})` },
    seed: { type: 'string', valueName: 'S', description: 'seed of the split, the shuffle and the LoRA init (default 0)' },
    'no-shuffle': { type: 'boolean', description: 'take examples in file order, B at a time' },
    'held-out': { type: 'string', valueName: 'X', description: `share (0..1) or count of examples kept aside for the loss before → after (default ${D.heldOut})` },
    mode: { type: 'string', valueName: 'MODE', description: 'lora (default): a fresh LoRA on every layer | partial: full fine-tuning of lm_head and the last --last-layers layers' },
    'last-layers': { type: 'string', valueName: 'K', description: 'with --mode partial: how many of the last layers to train (default 1)' },
    'merge-adapter': { type: 'boolean', description: 'write the merged model (a full checkpoint) instead of a PEFT adapter folder' },
    dense: { type: 'string', valueName: 'DIR', description: 'the unpruned model, measured as the first row of the before / after table (with --measure)' },
    measure: {
      type: 'boolean',
      description: 'after writing the output, measure the before / after table (parameters, forward time per token, loss, accuracy of each model); off by default: it loads and times every model again',
    },
    precision: PRECISION_OPTION,
    'max-gpu-memory': MAX_GPU_MEMORY_OPTION,
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'the output folder' },
    overwrite: OVERWRITE_OPTION,
    ...RESUME_OPTIONS,
  },
  async run({ positionals, options }, io) {
    const dataFile = options.data;
    if (typeof dataFile !== 'string') throw usageError('finetune needs --data <file>: the dataset to fine-tune on.', 'data');
    const out = options.out;
    if (typeof out !== 'string') throw usageError('finetune needs --out <dir>: where to write the adapter or the merged model.', 'out');
    const format = options.format === undefined ? undefined : stringOption(options, 'format', 'text', DATASET_FORMATS);
    const mode = stringOption(options, 'mode', 'lora', ['lora', 'partial'] as const);
    if (mode === 'partial') return runPartialCommand(positionals['model-dir']!, dataFile, out, format, options, io);
    if (options['last-layers'] !== undefined) throw usageError('--last-layers goes with --mode partial (LoRA trains every layer).', 'last-layers');
    const given = recoverySettingsFrom(options);
    const merge = flag(options, 'merge-adapter');
    await checkDataFile(dataFile);
    // Checked before any GPU work; nothing appears under --out (or beside it) until the output is complete.
    const overwrite = overwriteOption(options);
    const target = await checkOutputFolder(out, { sourceFolders: [positionals['model-dir']!, ...(typeof options.dense === 'string' ? [options.dense] : [])], inputFiles: [dataFile], overwrite });
    const resume = await resumeFor(out, options, { sourceFolders: [positionals['model-dir']!], inputFiles: [dataFile], overwrite }, io);
    const outSink = () => new FolderSink(target, { overwrite, given: out });
    const ckpt = await openModelFolder(positionals['model-dir']!);
    const dense = typeof options.dense === 'string' ? await openModelFolder(options.dense) : null;

    const { blob, fileName, dataset, set } = await readTrainingData(dataFile, ckpt.tokenizer, { format, ...dataOptionsFrom(options), maxSeqLen: given.seqLen ?? D.seqLen }, io);

    const gpu = await requestGpu();
    const report = throttled(io);
    let result: RecoveryResult;
    const stop = stopRequest(io);
    try {
      const weights = resolveWeightStorage(given.weights ?? D.weights, gpu.adapter);
      io.err(precisionLine(weights));
      const full = resolveRecoverySettings({ ...given, weights: weights.storage }, recoverySplit(set.examples, given).train.length);
      const budget = full.maxGpuMemory ?? undefined;
      const plan = { batchSize: full.batchSize, seqLen: full.seqLen, lora: loraConfigOf(full), weights: weights.storage, checkpointing: full.checkpointing, training: true };
      io.err(memoryLine(planResidency(ckpt.config, plan, gpu.adapter, 'auto', budget).estimate, gpu.adapter, budget));
      result = await runRecovery(gpu, ckpt, { examples: set.examples, padTokenId: set.padTokenId, tokenizer: ckpt.tokenizer }, given, {
        progressIntervalMs: 1000,
        onLoad: (done, total) => report(loadLine(done, total), done === total),
        onEval: (phase, done, total) => report(`eval  ${phase === 'before' ? 'before' : 'after '} ${bar(done / total)} ${done}/${total} batches`, done === total),
        onStep: (p) => report(recoveryLine(p), p.step === p.steps - 1),
        checkpoint: resume.checkpoint,
        resumeFrom: resume.resumeFrom,
        beforeStep: async () => !stop.asked,
      });
      if (result.steps === 0) throw new GradPruneError('cancelled', `Fine-tuning was stopped before its first step; nothing was written to ${out}.`, { subject: 'finetune' });
    } catch (e) {
      gpu.device.destroy();
      throw e;
    } finally {
      stop.end();
    }
    const s = result.settings;
    const adapter = { config: result.lora, adapters: result.adapters };
    try {
      await writeRecovery(outSink(), { modelDir: positionals['model-dir']!, ckpt, merge, result, data: { fileName, sha256: await sha256Hex(blob), rows: dataset.totalRows } });
      await resume.finished(result.steps, s.steps);
      const stoppedNote = result.steps < s.steps ? `, stopped early: ${s.steps} were planned` : '';
      io.err(`wrote ${merge ? 'the merged checkpoint' : 'the PEFT adapter'} to ${out} (${result.steps} steps${stoppedNote}, ${result.elapsedSeconds.toFixed(1)} s)`);
      io.out(lossLine(result));
      if (!flag(options, 'measure')) {
        io.err('before / after table not measured (add --measure to time and compare the models)');
        return 0;
      }
      const measured = await measureTable(gpu, ckpt, dense, merge ? await openModelFolder(out) : null, adapter, result, set, given, measureReporter(io));
      io.out(formatComparisonTable(comparisonRows(measured)));
    } finally {
      gpu.device.destroy();
    }
    return 0;
  },
};

/** The before / after rows: dense (with --dense), pruned (its losses from the run), pruned + recovered (as exported); each model's progress through `progress(label)`. */
async function measureTable(
  gpu: Gpu,
  pruned: Checkpoint,
  dense: Checkpoint | null,
  merged: Checkpoint | null,
  adapter: (NonNullable<ModelMeasurement['lora']> & { adapters: RecoveryResult['adapters'] }) | null,
  result: Pick<RecoveryResult, 'settings' | 'before' | 'after' | 'accuracyBefore' | 'accuracyAfter'>,
  set: { examples: readonly TokenizedExample[]; padTokenId: number },
  given: RecoverySettingsInput,
  progress: (label: string) => MeasureOptions['onProgress'],
): Promise<ModelMeasurement[]> {
  const { heldOut } = recoverySplit(set.examples, given);
  const items: MultipleChoiceItem[] = heldOut.flatMap((e) => (e.mc ? [e.mc] : []));
  const shape = { batchSize: result.settings.batchSize, seqLen: result.settings.seqLen, padTokenId: set.padTokenId, repeats: 3, weights: result.settings.weights };
  const measure = (label: string, model: Checkpoint, more: Partial<MeasureOptions> = {}) => measureModel(gpu, label, model, { ...shape, ...more, onProgress: progress(label) });
  const rows: ModelMeasurement[] = [];
  if (dense) rows.push(await measure('dense', dense, { heldOut, multipleChoice: items.length ? { tokenizer: dense.tokenizer, items } : null }));
  const prunedRow = await measure('pruned', pruned);
  rows.push({ ...prunedRow, heldOut: result.before, accuracy: result.accuracyBefore });
  const mc = items.length ? { tokenizer: pruned.tokenizer, items } : null;
  rows.push(
    merged
      ? await measure('pruned + recovered', merged, { heldOut, multipleChoice: mc })
      : { ...(await measure('pruned + recovered', pruned, { lora: adapter! })), heldOut: result.after, accuracy: result.accuracyAfter },
  );
  return rows;
}

/** The first Ctrl-C while training: stop after the step in flight (said on stderr); `end()` once training is over. */
function stopRequest(io: CliIO): { readonly asked: boolean; end: () => void } {
  const state = { asked: false, end: () => {} };
  state.end = stopOnInterrupt(() => {
    state.asked = true;
    io.err('stopping after the step in flight: the result of the steps done will be written (Ctrl-C again to abort and write nothing)');
  });
  return state;
}

const MEASURE_UNITS = { loss: 'held-out batches', choices: 'choices', timing: 'timed passes' } as const;

/** Progress of the before / after measurements: one line per model and phase, throttled. */
function measureReporter(io: CliIO): (label: string) => MeasureOptions['onProgress'] {
  const report = throttled(io);
  return (label) => (phase, done, total) => report(passLine(`measure ${label}: ${phase}`, done, total, MEASURE_UNITS[phase]), done === total);
}

/**
 * The output, complete or not at all (FolderSink: a temporary folder renamed into place): the merged checkpoint or
 * the PEFT adapter folder, with gradprune_recovery.json recording the steps actually run (and planned, when stopped).
 */
async function writeRecovery(
  sink: FolderSink,
  { modelDir, ckpt, merge, result, data }: { modelDir: string; ckpt: Checkpoint; merge: boolean; result: RecoveryResult; data: { fileName: string; sha256: string; rows: number } },
): Promise<void> {
  const record = {
    kind: 'gradprune-recovery',
    baseModel: ckpt.name,
    data: { ...data, train: result.trainExamples, heldOut: result.heldOutExamples },
    settings: result.settings,
    steps: result.steps,
    stopped: result.steps < result.settings.steps,
    heldOutLossBefore: result.before?.loss ?? null,
    heldOutLossAfter: result.after?.loss ?? null,
    accuracyBefore: result.accuracyBefore,
    accuracyAfter: result.accuracyAfter,
    losses: result.losses,
    elapsedSeconds: result.elapsedSeconds,
    merged: merge,
  };
  if (merge) {
    await exportMergedCheckpointTo(sink, ckpt, { lora: result.lora, adapters: result.adapters, recovery: record });
  } else {
    const files = writePeftAdapter({ baseModel: path.resolve(modelDir), lora: result.lora, adapters: result.adapters, model: ckpt.config });
    files.set(RECOVERY_FILE, new Blob([JSON.stringify(record, null, 2) + '\n']));
    await writeFolderTo(sink, files);
  }
}

/** Options that only mean something for a LoRA run. */
const LORA_ONLY = ['rank', 'alpha', 'merge-adapter', 'resume', 'checkpoint-every'] as const;

/**
 * `--mode partial`: lm_head + the last K layers trained in full; the memory estimate before anything is loaded; the
 * output a plain checkpoint (trained tensors replaced) through the safe-output path; --measure as for LoRA.
 */
async function runPartialCommand(modelDir: string, dataFile: string, out: string, format: (typeof DATASET_FORMATS)[number] | undefined, options: OptionValues, io: CliIO): Promise<number> {
  for (const name of LORA_ONLY) {
    if (options[name] !== undefined) {
      throw usageError(`--${name} is for LoRA runs; --mode partial trains the weights themselves and always writes a full checkpoint.`, name);
    }
  }
  const given = recoverySettingsFrom(options);
  if (given.weights === 'f16') throw usageError('--mode partial updates the weights in place in f32; leave --precision out (or give f32).', 'precision');
  const lastLayers = intOption(options, 'last-layers', 1, { min: 1 });
  await checkDataFile(dataFile);
  const overwrite = overwriteOption(options);
  const target = await checkOutputFolder(out, { sourceFolders: [modelDir, ...(typeof options.dense === 'string' ? [options.dense] : [])], inputFiles: [dataFile], overwrite });
  const ckpt = await openModelFolder(modelDir);
  partialLayers(ckpt.config, lastLayers); // a bad K is named before the data is read
  const dense = typeof options.dense === 'string' ? await openModelFolder(options.dense) : null;
  const { blob, fileName, dataset, set } = await readTrainingData(dataFile, ckpt.tokenizer, { format, ...dataOptionsFrom(options), maxSeqLen: given.seqLen ?? D.seqLen }, io);

  const gpu = await requestGpu();
  const report = throttled(io);
  const stop = stopRequest(io);
  let result: PartialRecoveryResult;
  try {
    const full = resolveRecoverySettings({ ...given, weights: 'f32' }, recoverySplit(set.examples, given).train.length);
    const plan = planPartialMemory(ckpt.config, lastLayers, { batchSize: full.batchSize, seqLen: full.seqLen, checkpointing: full.checkpointing }, gpu.adapter, full.maxGpuMemory ?? undefined);
    io.err(`partial fine-tuning: lm_head + layers ${partialLayers(ckpt.config, lastLayers).join(', ')} of 0..${ckpt.config.numLayers - 1} (f32 weights, updated in place; norms and embedding frozen)`);
    io.err(partialMemoryLine(plan));
    result = await runPartialRecovery(gpu, ckpt, { examples: set.examples, padTokenId: set.padTokenId, tokenizer: ckpt.tokenizer }, { ...given, lastLayers }, {
      progressIntervalMs: 1000,
      onLoad: (done, total) => report(loadLine(done, total), done === total),
      onEval: (phase, done, total) => report(`eval  ${phase === 'before' ? 'before' : 'after '} ${bar(done / total)} ${done}/${total} batches`, done === total),
      onStep: (p) => report(recoveryLine(p), p.step === p.steps - 1),
      beforeStep: async () => !stop.asked,
    });
    if (result.steps === 0) throw new GradPruneError('cancelled', `Fine-tuning was stopped before its first step; nothing was written to ${out}.`, { subject: 'finetune' });
  } catch (e) {
    gpu.device.destroy();
    throw e;
  } finally {
    stop.end();
  }
  try {
    const record = {
      kind: 'gradprune-recovery',
      mode: 'partial',
      baseModel: ckpt.name,
      data: { fileName, sha256: await sha256Hex(blob), rows: dataset.totalRows, train: result.trainExamples, heldOut: result.heldOutExamples },
      settings: { ...result.settings, lastLayers },
      trainedLayers: result.layers,
      trainedTensors: [...result.tensors.keys()],
      untiedLmHead: result.untied,
      steps: result.steps,
      stopped: result.steps < result.settings.steps,
      heldOutLossBefore: result.before?.loss ?? null,
      heldOutLossAfter: result.after?.loss ?? null,
      accuracyBefore: result.accuracyBefore,
      accuracyAfter: result.accuracyAfter,
      losses: result.losses,
      elapsedSeconds: result.elapsedSeconds,
      merged: true,
    };
    await exportReplacedCheckpointTo(new FolderSink(target, { overwrite, given: out }), ckpt, { replaced: result.tensors, recovery: record });
    const stoppedNote = result.steps < result.settings.steps ? `, stopped early: ${result.settings.steps} were planned` : '';
    io.err(`wrote the fine-tuned checkpoint to ${out} (lm_head + last ${lastLayers} layer${lastLayers === 1 ? '' : 's'}${result.untied ? ', lm_head untied' : ''}; ${result.steps} steps${stoppedNote}, ${result.elapsedSeconds.toFixed(1)} s)`);
    if (ckpt.dtype !== 'F32') {
      io.err(`note: the checkpoint stores ${ckpt.dtype}, so the trained tensors were rounded to it; the held-out loss after is the f32 weights' (--measure measures the written checkpoint)`);
    }
    io.out(lossLine(result));
    if (!flag(options, 'measure')) {
      io.err('before / after table not measured (add --measure to time and compare the models)');
      return 0;
    }
    const measured = await measureTable(gpu, ckpt, dense, await openModelFolder(out), null, result, set, given, measureReporter(io));
    io.out(formatComparisonTable(comparisonRows(measured)));
  } finally {
    gpu.device.destroy();
  }
  return 0;
}
