// scores.json: a scoring run's result as a file (the IGIA state goes beside it, see ./igia-state.ts), and its
// reading back, checked against the model about to be pruned: same layer count, same model fingerprint.

import { GradPruneError } from '../errors';
import type { PruneRunInfo } from './recipe';
import { LINEAR_MODULES } from '../model/config';
import { isJsonObject, parseJsonFile } from '../model/json';
import type { GpuUsage, ScoringResult } from './pipeline';
import type { ScoringSettings } from '../nn/run-settings';
import { gradientSteps, gradientStepsWarning } from './gradient-steps';

export const SCORES_FORMAT = 'gradprune-scores';
export const SCORES_VERSION = 1;

export interface ScoresDocument {
  format: typeof SCORES_FORMAT;
  version: number;
  model: { name: string; architecture: string; numLayers: number; fingerprint: string };
  /** The data file, and how its rows were read: format, prompt template, whether targets end with EOS. */
  data: PruneRunInfo['data'] | null;
  /** The run's settings, with `gpu`: where the weights lived, the peak allocation and the budget. */
  settings: ScoringSettings & { gpu?: GpuUsage };
  steps: number;
  layerScores: number[];
  layerScoresCode: number[];
  moduleScores: number[][];
  moduleOrder: string[];
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  /** Steps whose S was not zero by construction (B ≠ 0 by then, see gradient-steps.ts), and the warning when too few. */
  gradientSteps: number;
  gradientStepsWarning: string | null;
  /** history[s][layer] and Kendall τ of each step's ranking against the final one. */
  history: number[][];
  kendall: (number | null)[];
  tokens: number;
  targetTokens: number;
  elapsedSeconds: number;
  /** The IGIA state's file name, beside this file. */
  igiaFile: string | null;
}

/** `scores.json` → `scores.igia.safetensors` (any name: the extension is replaced, or appended). */
export const igiaFileFor = (scoresFile: string): string => `${scoresFile.replace(/\.json$/i, '')}.igia.safetensors`;

export function scoresDocument(
  result: ScoringResult,
  model: { name: string; architecture: string; numLayers: number },
  opts: { data?: PruneRunInfo['data']; igiaFile?: string | null; startsNonZero?: boolean } = {},
): ScoresDocument {
  const informative = gradientSteps(result.lrs, opts.startsNonZero);
  return {
    format: SCORES_FORMAT,
    version: SCORES_VERSION,
    model: { ...model, fingerprint: result.modelFingerprint },
    data: opts.data ?? null,
    settings: { ...result.settings, gpu: result.gpu },
    steps: result.steps,
    layerScores: result.layerScores,
    layerScoresCode: result.layerScoresCode,
    moduleScores: result.moduleScores,
    moduleOrder: [...LINEAR_MODULES],
    losses: result.losses,
    lrs: result.lrs,
    gradNorms: result.gradNorms,
    gradientSteps: informative,
    gradientStepsWarning: gradientStepsWarning(informative, result.steps),
    history: result.history,
    // JSON has no NaN: a ranking of all-zero scores has no τ.
    kendall: result.kendall.map((k) => (Number.isFinite(k) ? k : null)),
    tokens: result.tokens,
    targetTokens: result.targetTokens,
    elapsedSeconds: result.elapsedSeconds,
    igiaFile: opts.igiaFile ?? null,
  };
}

/**
 * Parse scores.json and check it belongs to the model (layer count, then fingerprint). Every problem is a
 * GradPruneError('file') naming the file.
 */
export function parseScoresDocument(text: string, fileName: string, model: { numLayers: number; fingerprint: string }): ScoresDocument {
  const fail = (what: string, hint?: string) => new GradPruneError('file', `${fileName}: ${what}.`, { subject: fileName, hint });
  const doc = parseJsonFile(text, fileName, 'file', { hint: 'Give the scores.json written by `gradprune score`.' });
  if (!isJsonObject(doc) || doc.format !== SCORES_FORMAT) {
    throw fail('not a GradPruner scores file (no "format": "gradprune-scores")', 'Give the scores.json written by `gradprune score`.');
  }
  if (doc.version !== SCORES_VERSION) throw fail(`scores file version ${String(doc.version)} is not supported (expected ${SCORES_VERSION})`);
  const numbers = (key: string, n: number) => {
    const v = doc[key];
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw fail(`"${key}" must be a list of ${n} finite numbers`);
    }
    return v as number[];
  };
  const m = doc.model as ScoresDocument['model'] | undefined;
  if (!m || typeof m.numLayers !== 'number' || typeof m.fingerprint !== 'string') throw fail('it has no "model" with numLayers and fingerprint');
  if (m.numLayers !== model.numLayers) {
    throw fail(`it scores a model of ${m.numLayers} layers (${m.name}), but this model has ${model.numLayers}`, 'Score this model first (`gradprune score`), or prune the model that was scored.');
  }
  if (m.fingerprint !== model.fingerprint) {
    throw fail(`it was computed on a different model (${m.name}; the model fingerprint differs)`, 'Score this model first (`gradprune score`), or prune the model that was scored.');
  }
  numbers('layerScores', m.numLayers);
  numbers('layerScoresCode', m.numLayers);
  const modules = doc.moduleScores;
  if (!Array.isArray(modules) || modules.length !== m.numLayers || !modules.every((row) => Array.isArray(row) && row.length === LINEAR_MODULES.length)) {
    throw fail(`"moduleScores" must be ${m.numLayers} rows of ${LINEAR_MODULES.length} numbers`);
  }
  return doc as unknown as ScoresDocument;
}
