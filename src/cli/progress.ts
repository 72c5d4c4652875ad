// Progress on stderr for long CLI commands: one line per report (a terminal redraws it in place).

import type { ScoringProgress } from '../gradprune/pipeline';
import type { CliIO } from './command';

const BAR = 24;

export const bar = (fraction: number): string => {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * BAR);
  return `[${'#'.repeat(full)}${'-'.repeat(BAR - full)}]`;
};

const seconds = (s: number): string => (s >= 90 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(s < 10 ? 1 : 0)}s`);

export function scoringLine(p: ScoringProgress): string {
  const tau = Number.isFinite(p.kendallTau) ? p.kendallTau.toFixed(2) : '–';
  return (
    `score ${bar((p.step + 1) / p.steps)} step ${p.step + 1}/${p.steps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(1)}  ` +
    `|g| ${p.gradNorm.toFixed(3)}  ${p.tokensPerSecond.toFixed(0)} tok/s  τ ${tau}  ETA ${seconds(p.etaSeconds)}`
  );
}

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
