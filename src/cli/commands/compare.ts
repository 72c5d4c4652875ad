// `gradprune compare <model-dir> --data <file> --layers N [--methods igia,igia-code,bi,angular,taylor,magnitude,last]
// [--recover-steps S] [--held-out X] [--width IMPORTANCE] [the scoring options of score] [--json]`: every layer-importance method ranked
// from one scoring run, each plan (N layers dropped) evaluated on the same held-out split — and after S recovery
// steps — with its cost, and the rankings' agreement (gradprune/compare.ts). Writes nothing; the table (or JSON) on
// stdout, progress on stderr.

import { DATASET_FORMATS } from '../../data/formats';
import { formatBytes } from '../../format';
import { compareMethods, type Comparison, type Evaluation } from '../../gradprune/compare';
import { IMPORTANCE_METHODS, importanceMethod, type ImportanceMethodId } from '../../gradprune/importance';
import { requestGpu } from '../../gpu/device';
import { resolveWeightStorage, precisionLine } from '../../nn/precision';
import { DEFAULT_SCORING_SETTINGS, resolveScoringSettings } from '../../nn/run-settings';
import { flag, intOption, numberOption, stringOption, usageError, type Command } from '../command';
import { DATA_OPTIONS, dataOptionsFrom } from '../data-options';
import { checkDataFile, openModelFolder, readTrainingData } from '../load';
import { scoringLine, throttled } from '../progress';
import { SCORING_OPTIONS, scoringSettingsFrom } from './score';
import { IMPORTANCE_KINDS } from '../../gradprune/width/importance';

const ALL_METHODS = [...IMPORTANCE_METHODS.keys()];
const DEFAULT_HELD_OUT = 0.2;

/** --methods a,b,c: known ids, each once. */
function methodsFrom(value: unknown): ImportanceMethodId[] {
  if (value === undefined) return ALL_METHODS;
  const ids = String(value).split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length === 0) throw usageError(`--methods needs at least one of ${ALL_METHODS.join(', ')}.`, 'methods');
  return [...new Set(ids.map((id) => importanceMethod(id).id))];
}

const fixed = (x: number | null | undefined, digits: number) => (x === null || x === undefined ? '–' : x.toFixed(digits));
const evalCells = (e: Evaluation | undefined) => [fixed(e?.loss, 4), fixed(e?.perplexity, 2), fixed(e?.accuracy?.acc, 3)];

const flops = (f: number) => (f >= 1e9 ? `${(f / 1e9).toFixed(2)} G` : `${(f / 1e6).toFixed(2)} M`);

/** The comparison as an aligned text table, then the agreement between the rankings. */
export function comparisonText(c: Comparison): string {
  const recovered = c.methods.some((m) => m.recovered) || !!c.width?.recovered;
  const header = ['method', 'removed', 'params', 'FLOPs/token', 'ms/token', 'loss', 'ppl', 'acc', ...(recovered ? ['rec. loss', 'rec. ppl', 'rec. acc'] : []), 'seconds', 'extra memory'];
  const perf = (f: number, e: Evaluation) => [flops(f), fixed(e.msPerToken, 3)];
  const none = recovered ? ['–', '–', '–'] : [];
  const rows = [
    ['dense', '–', c.dense.params.toLocaleString('en-US'), ...perf(c.dense.flopsPerToken, c.dense.evaluation), ...evalCells(c.dense.evaluation), ...none, fixed(c.scoringSeconds, 1) + ' (scoring)', '–'],
    ...c.methods.map((m) => [
      m.method,
      `layers ${m.pruned.join(' ')}`,
      m.params.toLocaleString('en-US'),
      ...perf(m.flopsPerToken, m.evaluation),
      ...evalCells(m.evaluation),
      ...(recovered ? evalCells(m.recovered) : []),
      fixed(m.seconds, 2),
      m.cost.gpuBytes + m.cost.hostBytes > 0 ? `${formatBytes(m.cost.gpuBytes)} GPU, ${formatBytes(m.cost.hostBytes)} host` : '–',
    ]),
    ...(c.width
      ? [[
          `width (${c.width.importance})`,
          `heads ${c.width.widths.heads}/${c.width.widths.kvHeads} kv, MLP ${c.width.widths.intermediate}`,
          c.width.params.toLocaleString('en-US'),
          ...perf(c.width.flopsPerToken, c.width.evaluation),
          ...evalCells(c.width.evaluation),
          ...(recovered ? evalCells(c.width.recovered) : []),
          fixed(c.width.seconds, 2),
          '–',
        ]]
      : []),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  const ids = c.agreement.methods;
  const w = Math.max(...ids.map((id) => id.length), 9);
  const matrix = (title: string, m: number[][]) => [title, ''.padEnd(w) + ids.map((id) => id.padStart(w + 1)).join(''), ...ids.map((id, i) => id.padEnd(w) + m[i].map((x) => fixed(x, 2).padStart(w + 1)).join(''))];
  return [
    line(header),
    ...rows.map(line),
    '',
    `held-out: ${c.heldOutExamples} examples; training (scoring${recovered ? ' and recovery' : ''}): ${c.trainExamples}. ms/token: one run's forward passes on this GPU (compare within the table).`,
    '',
    ...matrix('Kendall τ-b between the layer rankings:', c.agreement.kendall),
    '',
    ...matrix('Overlap of the removed layers (|A∩B| / |A∪B|):', c.agreement.overlap),
  ].join('\n');
}

/** The JSON the issue asks for: one object per method, and the agreement. */
export function comparisonJson(c: Comparison) {
  const flat = (e: Evaluation) => ({ loss: e.loss, perplexity: e.perplexity, ...(e.accuracy ? { accuracy: e.accuracy.acc, accuracyNorm: e.accuracy.accNorm } : {}), msPerToken: e.msPerToken ?? null });
  return {
    dense: { params: c.dense.params, flopsPerToken: c.dense.flopsPerToken, ...flat(c.dense.evaluation) },
    methods: c.methods.map((m) => ({
      method: m.method,
      layerScores: m.layerScores,
      pruned: m.pruned,
      ...(m.block ? { block: m.block } : {}),
      params: m.params,
      ...flat(m.evaluation),
      ...(m.recovered ? { recovered: flat(m.recovered) } : {}),
      flopsPerToken: m.flopsPerToken,
      seconds: m.seconds,
      cost: m.cost,
    })),
    ...(c.width && {
      width: {
        importance: c.width.importance,
        targetRatio: c.width.targetRatio,
        widths: c.width.widths,
        kept: c.width.kept,
        params: c.width.params,
        flopsPerToken: c.width.flopsPerToken,
        ...flat(c.width.evaluation),
        ...(c.width.recovered ? { recovered: flat(c.width.recovered) } : {}),
        seconds: c.width.seconds,
      },
    }),
    agreement: c.agreement,
    scoringSeconds: c.scoringSeconds,
    trainExamples: c.trainExamples,
    heldOutExamples: c.heldOutExamples,
  };
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'Compare layer-importance methods (GradPruner, Block Influence, angular, Taylor, magnitude, last layers) on your data.',
  description:
    'One scoring run (LoRA steps; IGIA, and the hidden-state statistics Block Influence and angular distance need) ranks the layers ' +
    'by every method; each method\'s plan removes --layers N layers (dropped, no merge, so the rows differ only in which layers go) ' +
    'and is evaluated on the same seeded held-out split — loss, perplexity, multiple-choice accuracy — and, with --recover-steps, ' +
    'again after that many LoRA steps on the training split. Prints the table and the agreement between the rankings (Kendall τ-b, ' +
    'overlap of the removed layers). Writes nothing.',
  positionals: [{ name: 'model-dir', description: 'a Hugging Face model folder' }],
  options: {
    data: { type: 'string', valueName: 'FILE', description: 'the downstream dataset (.jsonl, .json, .csv, .tsv, .parquet)' },
    format: { type: 'string', valueName: 'FORMAT', description: `read the data as ${DATASET_FORMATS.join(' | ')} (default: detected)` },
    ...DATA_OPTIONS,
    layers: { type: 'string', valueName: 'N', description: 'how many layers every plan removes' },
    methods: { type: 'string', valueName: 'LIST', description: `comma-separated, from ${ALL_METHODS.join(', ')} (default all)` },
    'recover-steps': { type: 'string', valueName: 'S', description: 'LoRA recovery steps per plan after the first evaluation (default 0: none)' },
    'held-out': { type: 'string', valueName: 'X', description: `share (0..1) or count of examples held out for the evaluation (default ${DEFAULT_HELD_OUT})` },
    ...SCORING_OPTIONS,
    width: { type: 'string', valueName: 'IMPORTANCE', description: `add LLM-Pruner's width pruning at the same parameter budget, ranked by ${IMPORTANCE_KINDS.join(' | ')}` },
    json: { type: 'boolean', description: 'print the comparison as JSON' },
  },
  async run({ positionals, options }, io) {
    const dataFile = options.data;
    if (typeof dataFile !== 'string') throw usageError('compare needs --data <file>: the dataset to compare the methods on.', 'data');
    if (options.layers === undefined) throw usageError('compare needs --layers N: how many layers every plan removes.', 'layers');
    const prune = intOption(options, 'layers', 1, { min: 1 });
    const methods = methodsFrom(options.methods);
    const recoverSteps = intOption(options, 'recover-steps', 0, { min: 0 });
    const heldOut = numberOption(options, 'held-out', DEFAULT_HELD_OUT, { min: 0 });
    const format = options.format === undefined ? undefined : stringOption(options, 'format', 'text', DATASET_FORMATS);
    const settings = resolveScoringSettings(scoringSettingsFrom(options));
    const width = options.width === undefined ? undefined : { importance: stringOption(options, 'width', 'l1', IMPORTANCE_KINDS) };
    await checkDataFile(dataFile);
    const ckpt = await openModelFolder(positionals['model-dir']!);
    if (prune >= ckpt.config.numLayers) {
      throw usageError(`--layers ${prune}: the model has ${ckpt.config.numLayers} layers, and layer 0 is always kept; remove at most ${ckpt.config.numLayers - 1}.`, 'layers');
    }
    const { set } = await readTrainingData(dataFile, ckpt.tokenizer, { format, ...dataOptionsFrom(options), maxSeqLen: settings.seqLen ?? DEFAULT_SCORING_SETTINGS.seqLen }, io);
    const gpu = await requestGpu();
    const report = throttled(io);
    try {
      const weights = resolveWeightStorage(settings.weights ?? DEFAULT_SCORING_SETTINGS.weights, gpu.adapter);
      io.err(precisionLine(weights));
      const comparison = await compareMethods(
        gpu,
        ckpt,
        { examples: set.examples, padTokenId: set.padTokenId, tokenizer: ckpt.tokenizer },
        { methods, prune, recoverSteps, heldOut, seed: settings.seed ?? 0, settings: { ...settings, weights: weights.storage }, weights: weights.storage, width },
        { scoring: { progressIntervalMs: 1000, onStep: (p) => report(scoringLine(p), p.step === p.steps - 1) }, onPhase: (line) => io.err(line) },
      );
      io.out(flag(options, 'json') ? JSON.stringify(comparisonJson(comparison), null, 2) : comparisonText(comparison));
      return 0;
    } finally {
      gpu.device.destroy();
    }
  },
};
