// The Prune step's view logic against the fixtures: tiny-llama's reference scores (gradprune.json) and the plans
// the reference run made; parameter arithmetic from the README's shapes, written out here.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeConfig } from '../model/config';
import { fixtureDir } from '../testing/paths';
import type { ScoreSnapshot } from '../worker/protocol';
import { DEFAULT_PLAN_CHOICE } from './defaults';
import { logScale, maxPrunable, planView, stabilityAgainstLatest, viridis } from './plan-view';

const dir = fixtureDir('tiny-llama');
const config = normalizeConfig(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')));
const ref = JSON.parse(readFileSync(path.join(dir, 'reference/gradprune.json'), 'utf8'));

describe('planView', () => {
  const scores: number[] = ref.layer_score;
  // README: hidden 64, 4 / 2 heads of 16, intermediate 176, vocab 512, untied.
  const perLayer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 176 + 2 * 64;
  const total = (layers: number) => 2 * 512 * 64 + 64 + layers * perLayer;

  it('follows the slider: the reference plans, parameter counts and share removed', () => {
    for (const p of ref.plans as { prune: number; merge: number; merged_layers: number[]; pruned_layers?: number[] }[]) {
      const r = planView(scores, config, { ...DEFAULT_PLAN_CHOICE, prune: p.prune, merge: p.merge });
      if (!('view' in r)) throw new Error(r.error.message);
      expect(r.view.plan.merged).toEqual(p.merged_layers);
      expect(r.view.plan.after.params).toBe(total(6 - p.prune));
      expect(r.view.paramsRemoved).toBeCloseTo((p.prune * perLayer) / total(6), 12);
      expect(r.view.speedup).toBeGreaterThan(1);
    }
  });

  it('says why a plan is impossible instead of throwing', () => {
    const r = planView(scores, config, { ...DEFAULT_PLAN_CHOICE, prune: 6 });
    expect('error' in r && r.error.message).toMatch(/at most 5/);
    expect(maxPrunable(6, false)).toBe(5);
    expect(maxPrunable(6, true)).toBe(4);
  });

  it('ranks by the released code\'s score when asked', () => {
    const code: number[] = ref.layer_score_code;
    const r = planView(code, config, { ...DEFAULT_PLAN_CHOICE, prune: 2, merge: 0 });
    if (!('view' in r)) throw new Error('no plan');
    const lowest = code.map((s, i) => ({ s, i })).filter((x) => x.i !== 0).sort((a, b) => a.s - b.s).slice(0, 2).map((x) => x.i).sort();
    expect(r.view.plan.pruned).toEqual(lowest);
  });
});

describe('heatmap colour scale', () => {
  it('is logarithmic over the positive values; zero maps to the bottom', () => {
    const f = logScale([0, 1e-9, 1e-6, 1e-3]);
    expect(f(1e-9)).toBe(0);
    expect(f(1e-6)).toBeCloseTo(0.5, 12);
    expect(f(1e-3)).toBe(1);
    expect(f(0)).toBe(0);
    expect(logScale([0, 0])(0)).toBe(0);
  });
  it('uses viridis end points', () => {
    expect(viridis(0)).toBe('#440154');
    expect(viridis(1)).toBe('#fde725');
  });
});

describe('rank stability against the latest snapshot', () => {
  const snap = (steps: number, layerScores: number[]): ScoreSnapshot => ({ steps, layerScores, layerScoresCode: layerScores, moduleScores: [] });
  it('is 1 for the latest, −1 for a reversed ranking, null while all scores are 0', () => {
    const s = stabilityAgainstLatest([snap(1, [0, 0, 0]), snap(2, [3, 2, 1]), snap(3, [1, 2, 3])], 'paper');
    expect(s).toEqual([{ step: 1, tau: null }, { step: 2, tau: -1 }, { step: 3, tau: 1 }]);
  });
});
