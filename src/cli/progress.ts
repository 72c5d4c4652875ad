// Progress on stderr for long CLI commands: one line per report (a terminal redraws it in place).

import { formatRate } from '../format';
import type { ScoringProgress } from '../gradprune/pipeline';
import type { LoraStepProgress } from '../nn/step-loop';
import type { CliIO } from './command';

const BAR = 24;

export const bar = (fraction: number): string => {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * BAR);
  return `[${'#'.repeat(full)}${'-'.repeat(BAR - full)}]`;
};

export const seconds = (s: number): string => (s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(s < 10 ? 1 : 0)}s`);

/**
 * A training step's throughput and time: "0.421 tok/s  elapsed 1m05s  ETA 3m20s" (the ETA reads "estimating…"
 * until a step after the first, which carries the one-time costs, has ended).
 */
export const stepTimeText = (p: Pick<LoraStepProgress, 'tokensPerSecond' | 'elapsedSeconds' | 'etaSeconds'>): string =>
  `${formatRate(p.tokensPerSecond)} tok/s  elapsed ${seconds(p.elapsedSeconds)}  ETA ${p.etaSeconds === null ? 'estimating…' : seconds(p.etaSeconds)}`;

export function scoringLine(p: ScoringProgress): string {
  const tau = Number.isFinite(p.kendallTau) ? p.kendallTau.toFixed(2) : '–';
  return (
    `score ${bar((p.step + 1) / p.steps)} step ${p.step + 1}/${p.steps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(1)}  ` +
    `|g| ${p.gradNorm.toFixed(3)}  τ ${tau}  ${stepTimeText(p)}`
  );
}

/** A pass over batches or items with how far it is: "eval  [####----] 12/40 batches". */
export const passLine = (what: string, done: number, total: number, unit: string): string => `${what} ${bar(total ? done / total : 1)} ${done}/${total} ${unit}`;

export function loadLine(done: number, total: number): string {
  return `load  ${bar(total ? done / total : 1)} ${(done / 2 ** 20).toFixed(1)} / ${(total / 2 ** 20).toFixed(1)} MiB`;
}

/** Reports at most every `everyMs` (the last one always), as lines on stderr. */
export function throttled(io: CliIO, everyMs = 1000): (line: string, last?: boolean) => void {
  let at = -Infinity;
  return (line, last = false) => {
    const t = Date.now();
    if (!last && t - at < everyMs) return;
    at = t;
    io.err(line);
  };
}
