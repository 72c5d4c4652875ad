// `gradprune score <model-dir> --data <file> … --out scores.json`: GradPruner's scoring run (t LoRA steps, IGIA
// from the clipped gradients) on the GPU; writes scores.json and, beside it, scores.igia.safetensors (what a
// later `gradprune prune` needs to merge layers). Progress on stderr; the layer ranking on stdout. Every
// --checkpoint-every steps the run's state is saved beside them (scores.resume.safetensors, ../resume.ts) for --resume.

import path from 'node:path';
import { DATASET_FORMATS } from '../../data/formats';
import type { DatasetFormat } from '../../data/types';
import { writeFilesReplacing } from '../../export/node-output';
import { readPeftAdapter } from '../../export/peft';
import { sha256Hex } from '../../model/fingerprint';
import { requestGpu } from '../../gpu/device';
import { igiaMemory } from '../../gradprune/igia';
import { encodeIgiaState } from '../../gradprune/igia-state';
import { formatBytes } from '../../format';
import { defaultGpuBudget, memoryLine, planResidency } from '../../nn/memory';
import { runScoring, type ScoringResult } from '../../gradprune/pipeline';
import { DEFAULT_SCORING_SETTINGS, loraConfigOf, resolveScoringSettings, type ScoringSettings } from '../../nn/run-settings';
import { rankLayers } from '../../gradprune/scores';
import { igiaFileFor, scoresDocument } from '../../gradprune/scores-file';
import type { Checkpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import type { LoraAdapter } from '../../nn/lora';
import { resolveWeightStorage, precisionLine } from '../../nn/precision';
import { flag, intOption, MAX_GPU_MEMORY_OPTION, maxGpuMemoryOption, numberOption, PRECISION_OPTION, precisionOption, stringOption, usageError, type CliIO, type Command, type OptionSpec, type OptionValues } from '../command';
import { checkDataFile, openModelFolder, readTrainingData } from '../load';
import { DATA_OPTIONS, dataOptionsFrom } from '../data-options';
import { gradientStepsWarning, plannedGradientSteps } from '../../gradprune/gradient-steps';
import type { ReadOptions } from '../../data/types';
import { checkOutputs, OVERWRITE_OPTION, overwriteOption } from '../outputs';
import { RESUME_OPTIONS, resumeFor } from '../resume';
import { loadLine, scoringLine, throttled } from '../progress';

const D = DEFAULT_SCORING_SETTINGS;

/** The scoring options shared by `score` and `demo`. */
export const SCORING_OPTIONS: Record<string, OptionSpec> = {
  steps: { type: 'string', valueName: 'N', description: `LoRA steps t (default ${D.steps})` },
  rank: { type: 'string', valueName: 'R', description: `LoRA rank (default ${D.rank})` },
  alpha: { type: 'string', valueName: 'A', description: `LoRA alpha (default ${D.alpha})` },
  lr: { type: 'string', valueName: 'X', description: `peak learning rate (default ${D.lr})` },
  batch: { type: 'string', valueName: 'B', description: `rows per step (default ${D.batchSize})` },
  seq: { type: 'string', valueName: 'T', description: `tokens per row; longer examples are truncated (default ${D.seqLen})` },
  'warmup-steps': { type: 'string', valueName: 'W', description: 'linear warmup steps (default 3% of the steps, rounded up)' },
  schedule: { type: 'string', valueName: 'KIND', description: 'constant | linear | cosine decay after warmup (default constant)' },
  'weight-decay': { type: 'string', valueName: 'X', description: `AdamW weight decay (default ${D.weightDecay})` },
  clip: { type: 'string', valueName: 'X', description: `clip the global gradient norm to X; 0 = no clipping (default ${D.maxGradNorm})` },
  seed: { type: 'string', valueName: 'S', description: 'seed of the shuffle and the LoRA init (default 0)' },
  'no-shuffle': { type: 'boolean', description: 'take examples in file order, B at a time' },
  precision: PRECISION_OPTION,
  'max-gpu-memory': MAX_GPU_MEMORY_OPTION,
};

/** Scoring settings from the command line; `defaults` are the command's own (the demo's are smaller). */
export function scoringSettingsFrom(options: OptionValues, defaults: Partial<ScoringSettings> = {}): Partial<ScoringSettings> {
  const base = { ...D, ...defaults };
  const clip = numberOption(options, 'clip', base.maxGradNorm ?? 0, { min: 0 });
  return {
    steps: intOption(options, 'steps', base.steps, { min: 1 }),
    rank: intOption(options, 'rank', base.rank, { min: 1 }),
    alpha: numberOption(options, 'alpha', base.alpha, { min: Number.MIN_VALUE }),
    lr: numberOption(options, 'lr', base.lr, { min: 0 }),
    batchSize: intOption(options, 'batch', base.batchSize, { min: 1 }),
    seqLen: intOption(options, 'seq', base.seqLen, { min: 2 }),
    warmupSteps: options['warmup-steps'] === undefined ? defaults.warmupSteps : intOption(options, 'warmup-steps', 0, { min: 0 }),
    schedule: stringOption(options, 'schedule', base.schedule, ['constant', 'linear', 'cosine'] as const),
    weightDecay: numberOption(options, 'weight-decay', base.weightDecay, { min: 0 }),
    maxGradNorm: clip === 0 ? null : clip,
    seed: intOption(options, 'seed', base.seed),
    shuffle: !flag(options, 'no-shuffle') && base.shuffle,
    weights: options.precision === undefined ? base.weights : precisionOption(options),
    maxGpuMemory: options['max-gpu-memory'] === undefined ? (base.maxGpuMemory ?? null) : maxGpuMemoryOption(options),
  };
}

export interface ScoreJob {
  ckpt: Checkpoint;
  dataFile: string;
  format?: DatasetFormat;
  /** --template and --eos / --no-eos (absent: the format's defaults). */
  dataOptions?: Pick<ReadOptions, 'template' | 'appendEos'>;
  settings: Partial<ScoringSettings>;
  initialAdapters?: readonly LoraAdapter[];
  out: string;
  /** Folders the run reads (the model, --lora-init): the outputs may not go there. */
  readsFrom: string[];
  /** Replace existing scores (and IGIA state) once the new ones are complete. */
  overwrite?: boolean;
  /** The command line's --checkpoint-every and --resume (absent: no snapshots, as in the demo). */
  resume?: OptionValues;
}

/** Read and tokenize the data, score on the GPU, write scores.json and its IGIA state. */
export async function scoreToFiles(job: ScoreJob, io: CliIO): Promise<{ result: ScoringResult; scoresFile: string; igiaFile: string }> {
  const { ckpt, settings } = job;
  await checkDataFile(job.dataFile);
  const scoresFile = job.out;
  const igiaFile = igiaFileFor(scoresFile);
  const [scoresTarget, igiaTarget] = await checkOutputs(
    [{ path: scoresFile, kind: 'file', fileName: 'scores.json' }, { path: igiaFile, kind: 'file' }],
    { sourceFolders: job.readsFrom, inputFiles: [job.dataFile], overwrite: job.overwrite },
  );
  const resume = job.resume && (await resumeFor(scoresFile, job.resume, { sourceFolders: job.readsFrom, inputFiles: [job.dataFile], overwrite: !!job.overwrite }, io));
  const { blob, fileName, dataset, set } = await readTrainingData(job.dataFile, ckpt.tokenizer, { format: job.format, ...job.dataOptions, maxSeqLen: settings.seqLen ?? D.seqLen }, io);
  const gpu = await requestGpu();
  const report = throttled(io);
  try {
    const weights = resolveWeightStorage(settings.weights ?? D.weights, gpu.adapter);
    io.err(precisionLine(weights));
    const full = resolveScoringSettings({ ...settings, weights: weights.storage });
    const tooFew = gradientStepsWarning(plannedGradientSteps(full, job.initialAdapters !== undefined), full.steps);
    if (tooFew) io.err(`warning: ${tooFew}`);
    const igia = igiaMemory(ckpt.config, full.modules, full.rank, full.steps);
    // What runScoring gives the model: the budget less IGIA's staging ring on the GPU.
    const budget = (full.maxGpuMemory ?? defaultGpuBudget(gpu.adapter)) - igia.gpuBytes;
    const { estimate } = planResidency(ckpt.config, { batchSize: full.batchSize, seqLen: full.seqLen, lora: loraConfigOf(full), weights: weights.storage, checkpointing: full.checkpointing, training: true }, gpu.adapter, 'auto', budget);
    io.err(`${memoryLine(estimate, gpu.adapter, budget)}; IGIA gradient factors ${formatBytes(igia.hostBytes)} of host memory`);
    const result = await runScoring(gpu, ckpt, { kind: 'examples', examples: set.examples, padTokenId: set.padTokenId }, settings, {
      initialAdapters: job.initialAdapters,
      checkpoint: resume?.checkpoint,
      resumeFrom: resume?.resumeFrom,
      progressIntervalMs: 1000,
      onLoad: (done, total) => report(loadLine(done, total), done === total),
      onStep: (p) => report(scoringLine(p), p.step === p.steps - 1),
    });
    const data = { fileName, sha256: await sha256Hex(blob), rows: dataset.totalRows, format: dataset.format, template: dataset.template, appendEos: set.appendEos };
    const doc = scoresDocument(result, { name: ckpt.name, architecture: ckpt.config.architecture, numLayers: ckpt.config.numLayers }, { data, igiaFile: path.basename(igiaFile), startsNonZero: job.initialAdapters !== undefined });
    const igiaBytes = new Uint8Array(await encodeIgiaState(result.igia).arrayBuffer());
    // The pair from one run, or neither: both are written in full before either is renamed into place.
    await writeFilesReplacing(
      [
        { target: igiaTarget, content: igiaBytes, given: igiaFile },
        { target: scoresTarget, content: JSON.stringify(doc, null, 2) + '\n', given: scoresFile },
      ],
      { overwrite: job.overwrite },
    );
    await resume?.remove();
    return { result, scoresFile, igiaFile };
  } finally {
    gpu.device.destroy();
  }
}

export function rankingTable(result: Pick<ScoringResult, 'layerScores' | 'layerScoresCode'>): string {
  const order = rankLayers(result.layerScores);
  const rows = result.layerScores.map((s, l) => `  ${String(l).padStart(5)}  ${s.toExponential(4).padStart(12)}  ${result.layerScoresCode[l].toExponential(4).padStart(12)}  ${String(order.indexOf(l) + 1).padStart(4)}`);
  return ['  layer   paper score    code score  rank', ...rows].join('\n');
}

export const scoreCommand: Command = {
  name: 'score',
  summary: 'Score every layer of a model for a dataset with GradPruner (LoRA steps on the GPU); writes scores.json.',
  description:
    'Runs the first t steps of LoRA fine-tuning on the dataset and gathers GradPruner\'s importance (IGIA) from the clipped LoRA ' +
    'gradients of every step. Writes scores.json (layer scores, module scores, per-step losses, settings) and, beside it, ' +
    'scores.igia.safetensors: the per-step gradient factors `gradprune prune` needs to merge layers.',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder' }],
  options: {
    data: { type: 'string', valueName: 'FILE', description: 'the downstream dataset (.jsonl, .json, .csv, .tsv, .parquet)' },
    format: { type: 'string', valueName: 'FORMAT', description: `read the data as ${DATASET_FORMATS.join(' | ')} (default: detected)` },
    ...DATA_OPTIONS,
    ...SCORING_OPTIONS,
    'lora-init': { type: 'string', valueName: 'DIR', description: 'start from this PEFT LoRA adapter folder (its rank, alpha and modules)' },
    out: { type: 'string', short: 'o', valueName: 'FILE', description: 'where to write the scores (default scores.json)' },
    overwrite: OVERWRITE_OPTION,
    ...RESUME_OPTIONS,
  },
  async run({ positionals, options }, io) {
    const dataFile = options.data;
    if (typeof dataFile !== 'string') throw usageError('score needs --data <file>: the dataset to score the layers for.', 'data');
    const format = options.format === undefined ? undefined : stringOption(options, 'format', 'text', DATASET_FORMATS);
    let settings: Partial<ScoringSettings> = resolveScoringSettings(scoringSettingsFrom(options));
    const out = stringOption(options, 'out', 'scores.json');
    const ckpt = await openModelFolder(positionals['model-dir']!);
    let initialAdapters: readonly LoraAdapter[] | undefined;
    if (typeof options['lora-init'] === 'string') {
      const peft = await readPeftAdapter(await openFolder(options['lora-init']), ckpt.config);
      for (const [key, value] of [['rank', peft.lora.rank], ['alpha', peft.lora.alpha]] as const) {
        if (options[key] !== undefined && settings[key] !== value) {
          throw usageError(`--${key} ${settings[key]} differs from the adapter's ${key} ${value} (--lora-init): leave --${key} out.`, key);
        }
      }
      settings = { ...settings, rank: peft.lora.rank, alpha: peft.lora.alpha, modules: [...peft.lora.modules] };
      initialAdapters = peft.adapters;
    }
    const readsFrom = [positionals['model-dir']!, ...(typeof options['lora-init'] === 'string' ? [options['lora-init']] : [])];
    const { result, scoresFile, igiaFile } = await scoreToFiles({ ckpt, dataFile, format, dataOptions: dataOptionsFrom(options), settings, initialAdapters, out, readsFrom, overwrite: overwriteOption(options), resume: options }, io);
    io.out(rankingTable(result));
    io.err(`wrote ${scoresFile} and ${igiaFile} (${result.steps} steps, ${result.elapsedSeconds.toFixed(1)} s)`);
    return 0;
  },
};
