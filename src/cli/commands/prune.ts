// `gradprune prune <model-dir> --scores scores.json (--layers N | --ratio R) [--merge M] [--keep F] [--protect-last]
// --out <dir>`: GradPruner's plan from the scores, the sign-consistent merge with F rebuilt from the IGIA state
// beside scores.json, and the pruned Hugging Face checkpoint folder, streamed to disk tensor by tensor and renamed
// into place when complete. The plan table goes to stdout.

import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { GradPruneError } from '../../errors';
import { requestGpu } from '../../gpu/device';
import { modelFingerprint } from '../../model/fingerprint';
import { decodeIgiaState, type IgiaState } from '../../gradprune/igia-state';
import { runPruneTo, type PruneResult, type StreamedPruneResult } from '../../gradprune/pipeline';
import { checkOutputFolder, FolderSink } from '../../export/node-sink';
import { makePlan, type PlanOptions, type PrunePlan } from '../../gradprune/plan';
import { igiaFileFor, parseScoresDocument, type ScoresDocument } from '../../gradprune/scores-file';
import type { Checkpoint } from '../../model/checkpoint';
import { openFile } from '../../model/node-files';
import { flag, intOption, numberOption, stringOption, usageError, type CliIO, type Command, type OptionValues } from '../command';
import { openModelFolder } from '../load';
import { OVERWRITE_OPTION, overwriteOption } from '../outputs';

/** --layers N | --ratio R, --merge, --keep, --protect-last. */
export function planOptionsFrom(options: OptionValues): PlanOptions {
  const hasLayers = options.layers !== undefined;
  const hasRatio = options.ratio !== undefined;
  if (hasLayers === hasRatio) throw usageError('Give exactly one of --layers N (layers to prune) or --ratio R (fraction of the layers, 0 ≤ R < 1).', 'layers');
  return {
    ...(hasLayers ? { prune: intOption(options, 'layers', 0, { min: 0 }) } : { pruneRatio: numberOption(options, 'ratio', 0, { min: 0, max: 0.999999 }) }),
    ...(options.merge !== undefined && { merge: intOption(options, 'merge', 0, { min: 0 }) }),
    ...(options.keep !== undefined && { keepFraction: numberOption(options, 'keep', 0.2, { min: Number.MIN_VALUE, max: 1 }) }),
    protectLast: flag(options, 'protect-last'),
  };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** scores.json and its IGIA state, checked against the model. */
export async function loadScores(ckpt: Checkpoint, scoresFile: string): Promise<{ scores: ScoresDocument; igia: IgiaState | null; igiaFile: string }> {
  let text: string;
  try {
    text = await readFile(scoresFile, 'utf8');
  } catch (e) {
    throw new GradPruneError('file', `Cannot read ${scoresFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`, {
      subject: scoresFile,
      hint: 'Run `gradprune score` first, or give the path of its scores.json.',
    });
  }
  const fingerprint = await modelFingerprint(ckpt);
  const scores = parseScoresDocument(text, scoresFile, { numLayers: ckpt.config.numLayers, fingerprint });
  const igiaFile = path.join(path.dirname(scoresFile), scores.igiaFile ?? path.basename(igiaFileFor(scoresFile)));
  const igia = (await exists(igiaFile)) ? await decodeIgiaState(await openFile(igiaFile), igiaFile, ckpt.config, fingerprint) : null;
  return { scores, igia, igiaFile };
}

/**
 * Plan, merge, export to `outDir`, streamed to disk tensor by tensor (into a hidden partial folder beside it, renamed
 * into place when complete). Refuses before any GPU work an --out that is (inside) the model folder or would
 * overwrite an input, and a plan that merges layers when the IGIA state is missing.
 */
export async function pruneToFolder(ckpt: Checkpoint, scoresFile: string, planOptions: PlanOptions, outDir: string, modelDir?: string, opts: { overwrite?: boolean } = {}): Promise<StreamedPruneResult & { notes: string[] }> {
  const { scores, igia, igiaFile } = await loadScores(ckpt, scoresFile);
  const target = await checkOutputFolder(outDir, { sourceFolders: modelDir ? [modelDir] : [], inputFiles: [scoresFile, igiaFile], overwrite: opts.overwrite });
  const preview = makePlan(scores.layerScores, ckpt.config, planOptions);
  if (!igia && preview.merged.length > 0) {
    throw new GradPruneError('file', `The plan merges layer${preview.merged.length > 1 ? 's' : ''} ${preview.merged.join(', ')}, but the IGIA state ${igiaFile} is missing.`, {
      subject: igiaFile,
      hint: '`gradprune score` writes it beside scores.json: keep the two together, score again, or prune with --merge 0.',
    });
  }
  const gpu = await requestGpu();
  try {
    const sink = new FolderSink(target, { overwrite: opts.overwrite, given: outDir });
    const result = await runPruneTo(gpu, ckpt, scores, igia, sink, planOptions);
    return { ...result, notes: sink.notes };
  } finally {
    gpu.device.destroy();
  }
}

const millions = (n: number) => `${(n / 1e6).toFixed(n < 1e7 ? 3 : 1)} M`;

export function planTable(plan: PrunePlan): string {
  const rows = plan.fates.map((f, l) => {
    const fate = f.kind === 'kept' ? `kept → layer ${f.newIndex}` : f.kind === 'merged' ? `merged into ${f.into}` : 'dropped';
    return `  ${String(l).padStart(5)}  ${plan.scores[l].toExponential(4).padStart(12)}  ${fate}`;
  });
  return [
    '  layer         score  fate',
    ...rows,
    `layers ${plan.numLayers} → ${plan.kept.length}; parameters ${millions(plan.before.params)} → ${millions(plan.after.params)} ` +
      `(${(100 * (1 - plan.after.params / plan.before.params)).toFixed(1)}% fewer); keep ${plan.keepFraction} of each merged weight`,
  ].join('\n');
}

export async function reportPrune(io: CliIO, result: Pick<PruneResult, 'plan'> & { merge: Pick<PruneResult['merge'], 'addedElements'>; files: ReadonlyMap<string, unknown>; notes?: string[] }, outDir: string): Promise<void> {
  io.out(planTable(result.plan));
  const added = Object.values(result.merge.addedElements).reduce((a, b) => a + b, 0);
  if (result.plan.merged.length) io.err(`merged ${added} weight elements from layers ${result.plan.merged.join(', ')}`);
  for (const note of result.notes ?? []) io.err(note);
  io.err(`wrote ${[...result.files.keys()].sort().join(', ')} to ${outDir}`);
}

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'Prune a scored model: plan, merge the most useful pruned layers into their neighbours, write the checkpoint.',
  description:
    'Prunes the N layers with the lowest GradPruner score (never layer 0); of those, the M highest-scoring are merged into the ' +
    'nearest lower kept layer (top --keep of their elements by importance, sign-consistent with the receiver) and the rest dropped. ' +
    'Reads scores.json and the scores.igia.safetensors beside it; writes a Hugging Face checkpoint folder.',
  positionals: [{ name: 'model-dir', description: 'the Hugging Face model folder that was scored' }],
  options: {
    scores: { type: 'string', valueName: 'FILE', description: 'scores.json from `gradprune score`' },
    layers: { type: 'string', valueName: 'N', description: 'how many layers to prune' },
    ratio: { type: 'string', valueName: 'R', description: 'or: the fraction of the layers to prune (N = round(R · layers))' },
    merge: { type: 'string', valueName: 'M', description: 'how many pruned layers to merge (default min(3, N))' },
    keep: { type: 'string', valueName: 'F', description: 'fraction of a merged layer\'s elements kept by importance (default 0.2)' },
    'protect-last': { type: 'boolean', description: 'never prune the last layer' },
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'the folder to write the pruned checkpoint to' },
    overwrite: OVERWRITE_OPTION,
  },
  async run({ positionals, options }, io) {
    if (typeof options.scores !== 'string') throw usageError('prune needs --scores <scores.json> (written by `gradprune score`).', 'scores');
    if (typeof options.out !== 'string') throw usageError('prune needs --out <dir>: where to write the pruned checkpoint.', 'out');
    const planOptions = planOptionsFrom(options);
    const outDir = stringOption(options, 'out', '');
    const ckpt = await openModelFolder(positionals['model-dir']!);
    const result = await pruneToFolder(ckpt, options.scores, planOptions, outDir, positionals['model-dir']!, { overwrite: overwriteOption(options) });
    await reportPrune(io, result, outDir);
    return 0;
  },
};
