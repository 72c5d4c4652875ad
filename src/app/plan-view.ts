// What the Prune step shows as the slider moves: the plan (pure makePlan, cheap enough for every change), the
// share of parameters removed, and the before → after figures. Also the colour scale of the importance heatmap.

import { makePlan, type PrunePlan } from '../gradprune/plan';
import { kendallTau } from '../gradprune/scores';
import type { ModelConfig } from '../model/config';
import type { ErrorInfo } from '../errors';
import { toErrorInfo } from '../errors';
import type { MethodRanking, PlanChoice, PlanRankedBy, ScoreSnapshot } from '../worker/protocol';

export interface PlanView {
  plan: PrunePlan;
  /** Fraction of all parameters removed. */
  paramsRemoved: number;
  /** Forward FLOPs per token before ÷ after: the estimated speed-up. */
  speedup: number;
}

export function scoresFor(s: ScoreSnapshot, metric: 'paper' | 'code'): number[] {
  return metric === 'code' ? s.layerScoresCode : s.layerScores;
}

/** IGIA's own score for the heatmap's bars and the live stability curve: the released code's when chosen, else the paper's. */
export const igiaMetric = (rankedBy: PlanRankedBy): 'paper' | 'code' => (rankedBy === 'code' ? 'code' : 'paper');

/** A method ranking's layer scores for N = prune (null: not computed for that N, e.g. angular beyond its bound). */
export function rankingScores(r: MethodRanking, prune: number): { layerScores: number[]; prune?: number } | null {
  if (r.layerScores) return { layerScores: r.layerScores };
  const hit = r.byPrune?.find((b) => b.prune === prune);
  return hit ? { layerScores: hit.layerScores, prune } : null;
}

/** The scores a plan ranked by `rankedBy` uses for N = prune: IGIA's from the snapshot, the others from the run's rankings. */
export function planScores(result: { scores: ScoreSnapshot; rankings?: MethodRanking[] }, rankedBy: PlanRankedBy, prune: number): number[] | null {
  if (rankedBy === 'paper' || rankedBy === 'code') return scoresFor(result.scores, rankedBy);
  const r = result.rankings?.find((x) => x.rankedBy === rankedBy);
  return r ? (rankingScores(r, prune)?.layerScores ?? null) : null;
}

/** The largest N angular distance has scores for in these rankings (0: none). */
export const angularBound = (rankings: readonly MethodRanking[] | undefined): number => Math.max(0, ...(rankings?.find((r) => r.method === 'angular')?.byPrune?.map((b) => b.prune) ?? []));

/** Each layer's rank under its scores: 1 = most important (kept first); ties share the better rank. */
export const layerRanks = (scores: readonly number[]): number[] => scores.map((s) => 1 + scores.filter((t) => t > s).length);

/** The plan for a choice, or why there is none (e.g. more layers than may go). */
export function planView(scores: readonly number[], config: ModelConfig, choice: PlanChoice): { view: PlanView } | { error: ErrorInfo } {
  try {
    const plan = makePlan(scores, config, { prune: choice.prune, merge: Math.min(choice.merge, choice.prune), keepFraction: choice.keepFraction, protectLast: choice.protectLast });
    return {
      view: {
        plan,
        paramsRemoved: 1 - plan.after.params / plan.before.params,
        speedup: plan.before.flopsPerToken / plan.after.flopsPerToken,
      },
    };
  } catch (e) {
    return { error: toErrorInfo(e) };
  }
}

/** The most layers the slider offers: all but layer 0 (and the last one when protected). */
export const maxPrunable = (layers: number, protectLast: boolean): number => Math.max(0, layers - 1 - (protectLast ? 1 : 0));

/** Kendall τ of each snapshot's layer ranking against the latest snapshot (the live rank-stability curve). */
export function stabilityAgainstLatest(snapshots: readonly ScoreSnapshot[], metric: 'paper' | 'code'): { step: number; tau: number | null }[] {
  const latest = snapshots.at(-1);
  if (!latest) return [];
  const ref = scoresFor(latest, metric);
  return snapshots.map((s) => {
    const tau = kendallTau(scoresFor(s, metric), ref);
    return { step: s.steps, tau: Number.isFinite(tau) ? tau : null };
  });
}

// viridis, 9 stops (matplotlib): perceptually uniform and readable by colour-blind people.
const VIRIDIS = ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'];

function mix(a: string, b: string, t: number): string {
  const pa = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16));
  const pb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
  return `#${pa.map((x, i) => Math.round(x + (pb[i] - x) * t).toString(16).padStart(2, '0')).join('')}`;
}

/** viridis at t in [0, 1]. */
export function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  return mix(VIRIDIS[i], VIRIDIS[i + 1], x - i);
}

/**
 * A log colour scale over the positive values: zero and the smallest positive value map to 0, the largest to 1.
 * Scores span orders of magnitude (and are all 0 before the LoRA B matrices move), so a linear scale would show
 * one bright cell and the rest dark.
 */
export function logScale(values: readonly number[]): (v: number) => number {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return () => 0;
  const lo = Math.log10(Math.min(...positive));
  const hi = Math.log10(Math.max(...positive));
  if (hi - lo < 1e-12) return (v) => (v > 0 ? 1 : 0);
  return (v) => (v > 0 ? (Math.log10(v) - lo) / (hi - lo) : 0);
}

/** "1.23e-8" style for scores (they are tiny and span decades). */
export const formatScore = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toPrecision(3) : v.toExponential(2));

export const formatDuration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};
