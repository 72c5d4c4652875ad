// `gradprune eval <model-dir> --data <file> [--lora <dir>] [--limit N] [--exact-match [--max-new-tokens N]
// [--generations <file.jsonl>]] [--json]`: held-out loss and perplexity of a model (optionally with a PEFT LoRA adapter)
// on a dataset file, multiple-choice accuracy (acc, acc_norm, as lm-evaluation-harness) when the file holds questions,
// and with --exact-match each row's greedy answer scored against its label (exact_match and the normalised variant).

import path from 'node:path';
import { buildExamples, evalBatches, readDataset, type Dataset } from '../../data';
import { GradPruneError } from '../../errors';
import { loadEvalEngine, type EngineKind, type EvalEngineOptions } from '../../eval/engines';
import { encodeItems, scoreMultipleChoice, type MultipleChoiceResult } from '../../eval/multiple-choice';
import { heldOutLoss, type HeldOutLoss } from '../../eval/loss';
import { exactMatchItems, generationLength, marginFor, requireExactMatchItems, scoreExactMatch, type ExactMatchItem, type ExactMatchRow } from '../../eval/exact-match';
import { checkpointStopIds } from '../../eval/generation';
import { loadGenerationEngine } from '../../eval/engines';
import { writeFilesReplacing } from '../../export/node-output';
import type { Checkpoint } from '../../model/checkpoint';
import { readPeftAdapter } from '../../export/peft';
import type { ModelConfig } from '../../model/config';
import { precisionLine, type WeightStorage } from '../../nn/precision';
import { openFile, openFolder } from '../../model/node-files';
import { flag, intOption, MAX_GPU_MEMORY_OPTION, maxGpuMemoryOption, PRECISION_OPTION, precisionOption, usageError, type CliIO, type Command, type OptionValues } from '../command';
import { dataSettingsLine, openModelFolder } from '../load';
import { DATA_OPTIONS, dataOptionsFrom } from '../data-options';
import { passLine, throttled } from '../progress';
import { checkOutputs, OVERWRITE_OPTION, overwriteOption } from '../outputs';

/** `--lora <dir>`: a PEFT adapter folder read and checked against the model. */
export async function loraOption(options: OptionValues, config: ModelConfig): Promise<EvalEngineOptions['lora']> {
  const dir = options.lora;
  if (dir === undefined) return null;
  if (typeof dir !== 'string') throw usageError('--lora needs the path of a PEFT adapter folder.', 'lora');
  const adapter = await readPeftAdapter(await openFolder(dir), config);
  return { config: adapter.lora, adapters: adapter.adapters };
}

export const engineOption = (options: OptionValues): EngineKind => (flag(options, 'cpu') ? 'cpu' : 'gpu');

export interface EvalReport {
  model: string;
  data: string;
  format: string;
  engine: EngineKind;
  /** How the weights were stored ('auto' resolved against the adapter; always f32 on the CPU). */
  weights: WeightStorage;
  lora: string | null;
  /** Rows read, rows evaluated (after --limit and rejects), rows rejected. */
  rows: number;
  examples: number;
  rejected: number;
  seqLen: number;
  loss: number;
  perplexity: number;
  tokens: number;
  truncatedExamples: number;
  acc: number | null;
  accNorm: number | null;
  multipleChoice: Omit<MultipleChoiceResult, 'scores'> | null;
  /** With --exact-match: the share of rows whose greedy answer equals the label (trimmed), and after normalising. */
  exactMatch: number | null;
  normalizedExactMatch: number | null;
  /** With --exact-match: how the answers were generated, and each row's. */
  generation: ExactMatchReport | null;
}

export interface ExactMatchReport {
  /** Rows answered, and rows without a prompt and label (plain text, chat, token rows). */
  items: number;
  skipped: number;
  /** The fixed --max-new-tokens, or null: each label's tokens + `margin`. */
  maxNewTokens: number | null;
  margin: number;
  /** The --generations file written (null: none). */
  file: string | null;
  rows: ExactMatchRow[];
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Held-out loss, perplexity, multiple-choice accuracy and (--exact-match) exact match of greedy answers of a model (optionally with a LoRA adapter) on a dataset.',
  description:
    'Every usable row of the file is scored: loss and perplexity over its target tokens (as training counts them), and, for ' +
    'multiple-choice files (ARC, PIQA, WinoGrande, HellaSwag, MedMCQA, PubMedQA, …), accuracy by log-likelihood as ' +
    'lm-evaluation-harness computes acc and acc_norm. With --exact-match, each row\'s prompt is also answered greedily (up to the ' +
    "label's tokens + 4, or --max-new-tokens; stopping at EOS) and compared with its label: exact_match after trimming, and " +
    'normalised as SQuAD does (case, punctuation, articles, spacing). Runs on the GPU (WebGPU), or with --cpu on the float32 CPU reference (tiny models).',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder' }],
  options: {
    data: { type: 'string', valueName: 'FILE', description: 'the dataset file (.jsonl, .json, .csv, .parquet)' },
    ...DATA_OPTIONS,
    lora: { type: 'string', valueName: 'DIR', description: 'a PEFT LoRA adapter folder to apply (adapter_config.json + adapter_model.safetensors)' },
    limit: { type: 'string', valueName: 'N', description: 'evaluate only the first N rows' },
    'max-seq-len': { type: 'string', valueName: 'N', description: 'tokens per sequence at most (default 512 or the model maximum)' },
    'batch-size': { type: 'string', valueName: 'N', description: 'sequences per forward pass (default 4)' },
    cpu: { type: 'boolean', description: 'use the float32 CPU reference instead of the GPU (slow: tiny models only)' },
    precision: PRECISION_OPTION,
    'max-gpu-memory': MAX_GPU_MEMORY_OPTION,
    'exact-match': {
      type: 'boolean',
      description: "also answer each row's prompt greedily and score exact match against its label (prompt/answer, instruction, classification, multiple-choice rows): exact_match (trimmed) and normalised (case, punctuation, articles, spacing as SQuAD)",
    },
    'max-new-tokens': { type: 'string', valueName: 'N', description: "with --exact-match: new tokens per answer (default: the label's tokens + 4, + 0 where targets carry no EOS); stops at EOS" },
    generations: { type: 'string', valueName: 'FILE', description: 'with --exact-match: write each row\'s prompt, label, answer and match to this JSON Lines file' },
    overwrite: OVERWRITE_OPTION,
    json: { type: 'boolean', description: 'print the results as JSON (on stdout), with every exact-match answer' },
  },
  async run({ positionals, options }, io) {
    const report = await runEval(positionals['model-dir']!, options, io);
    io.out(flag(options, 'json') ? JSON.stringify(report, null, 2) : formatReport(report));
    return 0;
  },
};

async function runEval(modelDir: string, options: OptionValues, io: CliIO): Promise<EvalReport> {
  const dataPath = options.data;
  if (typeof dataPath !== 'string') throw usageError('eval needs --data <file>.', 'data');
  const limit = intOption(options, 'limit', Number.MAX_SAFE_INTEGER, { min: 1 });
  const batchSize = intOption(options, 'batch-size', 4, { min: 1, max: 1024 });
  const ckpt = await openModelFolder(modelDir);
  const maxLen = Math.min(ckpt.config.maxPositionEmbeddings, intOption(options, 'max-seq-len', Math.min(512, ckpt.config.maxPositionEmbeddings), { min: 2 }));
  const lora = await loraOption(options, ckpt.config);
  const weights = precisionOption(options);
  const exactMatch = flag(options, 'exact-match');
  const maxNewTokens = options['max-new-tokens'] === undefined ? null : intOption(options, 'max-new-tokens', 1, { min: 1, max: 100_000 });
  const generationsFile = options.generations;
  if (!exactMatch && (maxNewTokens !== null || generationsFile !== undefined)) {
    throw usageError(`${maxNewTokens !== null ? '--max-new-tokens' : '--generations'} goes with --exact-match (the answers it generates).`, maxNewTokens !== null ? 'max-new-tokens' : 'generations');
  }
  if (generationsFile !== undefined && typeof generationsFile !== 'string') throw usageError('--generations needs the path of a .jsonl file to write.', 'generations');
  const [generationsTarget] = typeof generationsFile === 'string'
    ? await checkOutputs([{ path: generationsFile, kind: 'file', fileName: 'generations.jsonl' }], {
        sourceFolders: [modelDir, ...(typeof options.lora === 'string' ? [options.lora] : [])],
        inputFiles: [dataPath],
        overwrite: overwriteOption(options),
        option: '--generations',
      })
    : [];

  const full = await readDataset(await openFile(dataPath), path.basename(dataPath), dataOptionsFrom(options));
  io.err(dataSettingsLine(full));
  const examples = full.examples.slice(0, limit);
  const multipleChoice = examples.flatMap((e) => (e.kind === 'text' && e.mc ? [e.mc] : []));
  const dataset: Dataset = { ...full, examples, multipleChoice };
  const set = buildExamples(dataset, ckpt.tokenizer, { maxSeqLen: maxLen });
  // Before any model work: a file with nothing to answer is refused at once.
  const answering = exactMatch ? exactMatchItems(examples, ckpt.tokenizer, dataset.lineKind) : null;
  if (answering) requireExactMatchItems(dataset.fileName, dataset.format, answering.items, answering.skipped);
  if (set.examples.length === 0) {
    throw new GradPruneError('dataset', `${dataset.fileName}: no row could be evaluated (${set.rejected.length} rejected${set.rejected[0] ? `; ${set.rejected[0].where}: ${set.rejected[0].reason}` : ''}).`, {
      subject: dataset.fileName,
    });
  }
  // The sequence length the engine is built for: the longest sequence to score, within the model's maximum.
  const mcRequests = encodeItems(ckpt.tokenizer, dataset.multipleChoice);
  const longest = mcRequests.reduce((m, r) => Math.max(m, r.contextIds.length + r.continuationIds.length), set.stats.maxLength);
  const seqLen = Math.min(maxLen, longest);
  const kind = engineOption(options);
  io.err(`Scoring ${set.examples.length} rows${dataset.multipleChoice.length ? ` and ${mcRequests.length} choices` : ''} on the ${kind === 'gpu' ? 'GPU' : 'CPU reference'} (sequences up to ${seqLen} tokens)…`);
  const engine = await loadEvalEngine(ckpt.config, ckpt.store, { kind, batchSize, seqLen, lora, weights, maxGpuMemory: maxGpuMemoryOption(options) });
  io.err(precisionLine(engine.precision));
  let report: EvalReport;
  try {
    const batches = Math.ceil(set.examples.length / batchSize);
    const line = throttled(io);
    line(passLine('loss ', 0, batches, 'batches'));
    const loss: HeldOutLoss = await heldOutLoss(engine.model, evalBatches(set.examples, { batchSize, padTokenId: set.padTokenId }), (done) =>
      line(passLine('loss ', done, batches, 'batches'), done === batches),
    );
    const mc = dataset.multipleChoice.length
      ? await scoreMultipleChoice(engine.model, ckpt.tokenizer, dataset.multipleChoice, { batchSize, onProgress: progress(io, 'choices') })
      : null;
    const { scores: _scores, ...mcSummary } = mc ?? { scores: null };
    report = {
      model: ckpt.name,
      data: dataset.fileName,
      format: dataset.multipleChoiceSchema ? `${dataset.format} (${dataset.multipleChoiceSchema})` : dataset.format,
      engine: kind,
      weights: engine.precision.storage,
      lora: typeof options.lora === 'string' ? options.lora : null,
      rows: full.totalRows,
      examples: set.examples.length,
      rejected: set.rejected.length,
      seqLen,
      loss: loss.loss,
      perplexity: loss.perplexity,
      tokens: loss.tokens,
      truncatedExamples: set.stats.truncatedPrompt + set.stats.truncatedTarget,
      acc: mc?.acc ?? null,
      accNorm: mc?.accNorm ?? null,
      multipleChoice: mc ? (mcSummary as Omit<MultipleChoiceResult, 'scores'>) : null,
      exactMatch: null,
      normalizedExactMatch: null,
      generation: null,
    };
  } finally {
    engine.destroy();
  }
  if (!answering) return report;
  const job = { kind, lora, weights, maxGpuMemory: maxGpuMemoryOption(options), maxLength: maxLen, maxNewTokens, margin: marginFor(set.appendEos) };
  const em = await answerAll(ckpt, answering.items, job, io);
  if (generationsTarget) {
    const lines = em.rows.map((r, i) => JSON.stringify({ ...r, prompt: ckpt.tokenizer.decode(answering.items[i].promptIds, { skipSpecialTokens: true }) }));
    await writeFilesReplacing([{ target: generationsTarget, content: lines.join('\n') + '\n', given: generationsFile as string }], { overwrite: overwriteOption(options), option: '--generations' });
  }
  return {
    ...report,
    exactMatch: em.exactMatch,
    normalizedExactMatch: em.normalizedExactMatch,
    generation: { items: em.items, skipped: answering.skipped.length, maxNewTokens, margin: job.margin, file: typeof generationsFile === 'string' ? generationsFile : null, rows: em.rows },
  };
}

/** Every item answered greedily on a generation engine of its own (the KV-cache Generator on the GPU). */
async function answerAll(
  ckpt: Checkpoint,
  items: ExactMatchItem[],
  job: { kind: EngineKind; lora: EvalEngineOptions['lora']; weights: ReturnType<typeof precisionOption>; maxGpuMemory: number | null; maxLength: number; maxNewTokens: number | null; margin: number },
  io: CliIO,
) {
  const maxLength = generationLength(items, job, job.maxLength);
  io.err(`Answering ${items.length} prompts greedily (${job.maxNewTokens ?? `label tokens + ${job.margin}`} new tokens at most, stopping at EOS)…`);
  const engine = await loadGenerationEngine(ckpt.config, ckpt.store, { kind: job.kind, maxLength, lora: job.lora, weights: job.weights, maxGpuMemory: job.maxGpuMemory });
  try {
    return await scoreExactMatch(engine.model, ckpt.tokenizer, items, { maxNewTokens: job.maxNewTokens, margin: job.margin, stopIds: checkpointStopIds(ckpt), onProgress: progress(io, 'answers') });
  } finally {
    engine.destroy();
  }
}

/** A progress line on stderr about every tenth of the way. */
function progress(io: CliIO, what: string): (done: number, total: number) => void {
  let shown = 0;
  return (done, total) => {
    if (done === total || done - shown >= total / 10) {
      shown = done;
      io.err(`  ${what} scored: ${done} / ${total}`);
    }
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function formatReport(r: EvalReport): string {
  const lines = [
    `${r.model}${r.lora ? ` + LoRA ${r.lora}` : ''} on ${r.data} (${r.format}; ${r.examples} of ${r.rows} rows; ${r.engine === 'gpu' ? 'GPU' : 'CPU reference'})`,
    `  loss        ${r.loss.toFixed(4)} nats per target token over ${r.tokens} tokens`,
    `  perplexity  ${r.perplexity.toFixed(3)}`,
  ];
  if (r.multipleChoice) {
    const m = r.multipleChoice;
    lines.push(`  accuracy    ${(m.acc * 100).toFixed(1)}% (acc_norm ${(m.accNorm * 100).toFixed(1)}%) over ${m.items} questions`);
    if (m.truncatedRequests) lines.push(`  note        ${m.truncatedRequests} of ${m.requests} choices were cut on the left to ${r.seqLen} tokens`);
  }
  if (r.generation) {
    const g = r.generation;
    lines.push(`  exact match ${pct(r.exactMatch!)} (normalised ${pct(r.normalizedExactMatch!)}) over ${g.items} greedy answers`);
    if (g.skipped) lines.push(`  note        ${g.skipped} ${g.skipped === 1 ? 'row has' : 'rows have'} no prompt and label to answer`);
    if (g.file) lines.push(`  answers     ${g.file}`);
  }
  if (r.truncatedExamples) lines.push(`  note        ${r.truncatedExamples} rows were truncated to ${r.seqLen} tokens for the loss`);
  if (r.rejected) lines.push(`  note        ${r.rejected} rows could not be used`);
  return lines.join('\n');
}
