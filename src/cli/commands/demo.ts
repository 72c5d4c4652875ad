// `gradprune demo [--out dir]`: the whole pipeline on the embedded demo model (public/demo) and its ARC-Easy
// sample: score, plan, merge, export. Fewer steps and shorter rows than the paper by default, so that it
// finishes in a few minutes on software WebGPU; every scoring option can be raised.

import path from 'node:path';
import { resolveScoringSettings } from '../../nn/run-settings';
import { igiaFileFor } from '../../gradprune/scores-file';
import { intOption, stringOption, type Command } from '../command';
import { EMBEDDED_DEMO as DEMO, openModelFolder } from '../load';
import { checkOutputs, OVERWRITE_OPTION, overwriteOption } from '../outputs';
import { pruneToFolder, reportPrune } from './prune';
import { rankingTable, scoreToFiles, scoringSettingsFrom, SCORING_OPTIONS } from './score';

export const DEMO_DATA = 'arc_easy_300.jsonl';
/** Small on purpose: the paper scores with 40 steps of 4 × 256 tokens. */
export const DEMO_SCORING = { steps: 6, seqLen: 64, batchSize: 2 } as const;
export const DEMO_PRUNE_LAYERS = 3;

export const demoCommand: Command = {
  name: 'demo',
  summary: `Run the whole pipeline on the embedded demo model and ARC-Easy sample (${DEMO_SCORING.steps} scoring steps by default).`,
  description:
    `Scores the demo model (public/demo, 8 layers) on ${DEMO_DATA} with ${DEMO_SCORING.steps} LoRA steps of ${DEMO_SCORING.batchSize} × ${DEMO_SCORING.seqLen} ` +
    `tokens (the paper uses 40 steps of 4 × 256): two to three minutes on software WebGPU (SwiftShader), seconds on a GPU. It prunes ${DEMO_PRUNE_LAYERS} layers, merges, and writes ` +
    'scores.json, scores.igia.safetensors and the pruned checkpoint (pruned/) into --out.',
  positionals: [],
  options: {
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'where to write everything (default ./gradprune-demo)' },
    overwrite: OVERWRITE_OPTION,
    layers: { type: 'string', valueName: 'N', description: `layers to prune (default ${DEMO_PRUNE_LAYERS})` },
    ...SCORING_OPTIONS,
    steps: { ...SCORING_OPTIONS.steps, description: `LoRA steps t (default ${DEMO_SCORING.steps})` },
    batch: { ...SCORING_OPTIONS.batch, description: `rows per step (default ${DEMO_SCORING.batchSize})` },
    seq: { ...SCORING_OPTIONS.seq, description: `tokens per row; longer examples are truncated (default ${DEMO_SCORING.seqLen})` },
  },
  async run({ options }, io) {
    const out = stringOption(options, 'out', 'gradprune-demo');
    const settings = resolveScoringSettings(scoringSettingsFrom(options, DEMO_SCORING));
    const layers = intOption(options, 'layers', DEMO_PRUNE_LAYERS, { min: 0 });
    io.err(`demo: ${settings.steps} scoring steps of ${settings.batchSize} × ${settings.seqLen} tokens (the paper uses 40 of 4 × 256; raise --steps / --seq for a closer run)`);
    const overwrite = overwriteOption(options);
    const scores = path.join(out, 'scores.json');
    const pruned = path.join(out, 'pruned');
    const dataFile = path.join(DEMO, DEMO_DATA);
    // All three outputs, before the scoring run: a pruned/ that exists must not be found only after it.
    await checkOutputs([{ path: scores, kind: 'file' }, { path: igiaFileFor(scores), kind: 'file' }, { path: pruned, kind: 'folder' }], { sourceFolders: [DEMO], inputFiles: [dataFile], overwrite });
    const ckpt = await openModelFolder(DEMO);
    const { result } = await scoreToFiles({ ckpt, dataFile, settings, out: scores, readsFrom: [DEMO], overwrite }, io);
    io.out(rankingTable(result));
    const pruneResult = await pruneToFolder(ckpt, scores, { prune: layers }, pruned, DEMO, { overwrite });
    await reportPrune(io, pruneResult, pruned);
    return 0;
  },
};
