// The Score step's table of every method's ranking and the Prune step's "rank by" choice, rendered statically from
// a hand-made scored result on tiny-llama's config (6 layers): ranks by hand, the layers each plan removes at N,
// no merge for another method's plan, and angular beyond the blocks the run gathered.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeEach, describe, expect, it } from 'vitest';
import { normalizeConfig } from '../model/config';
import type { ModelSummary } from '../model/summary';
import { fixtureDir } from '../testing/paths';
import type { MethodRanking, ScoredEvent } from '../worker/protocol';
import { DEFAULT_PLAN_CHOICE, DEFAULT_SETTINGS } from './defaults';
import { MethodRankings } from './components/MethodRankings';
import { PruneStep } from './components/PruneStep';
import { layerRanks } from './plan-view';
import { initialState, useStudio } from './store';
import type { PlanChoice } from '../worker/protocol';

const config = normalizeConfig(JSON.parse(readFileSync(path.join(fixtureDir('tiny-llama'), 'config.json'), 'utf8')));
const cost = { seconds: 0.25, gpuBytes: 0, hostBytes: 0 };
const igiaScores = [6, 5, 4, 3, 2, 1];
const rankings: MethodRanking[] = [
  { method: 'igia', rankedBy: 'paper', title: 'IGIA', reference: 'r', layerScores: igiaScores, cost },
  { method: 'magnitude', rankedBy: 'magnitude', title: 'Magnitude', reference: 'r', layerScores: [0.9, 0.1, 0.5, 0.2, 0.8, 0.7], cost },
  {
    method: 'last', rankedBy: 'last', title: 'Last', reference: 'r', cost,
    byPrune: [1, 2, 3, 4].map((n) => ({ prune: n, layerScores: igiaScores.map((_, l) => (l >= 5 - n && l < 5 ? 0 : 1)) })),
  },
  { method: 'angular', rankedBy: 'angular', title: 'Angular', reference: 'r', cost, byPrune: [1, 2].map((n) => ({ prune: n, layerScores: [1, 0.5, 0.4, 0.3, 0.6, 0.7] })) },
];
const result: ScoredEvent = {
  type: 'scored', requestId: 1, scores: { steps: 3, layerScores: igiaScores, layerScoresCode: igiaScores, moduleScores: igiaScores.map(() => new Array(7).fill(1)) },
  kendall: [1], losses: [3], stopped: false, settings: DEFAULT_SETTINGS, elapsedSeconds: 1, targetTokens: 10, rankings,
};

/** data-value of every rank cell of a method, by layer, and which are marked removed. */
function column(html: string, method: string): { ranks: string[]; removed: number[] } {
  const cells = [...html.matchAll(/<td[^>]*data-testid="rank-cell"[^>]*>/g)].map((m) => m[0]).filter((t) => t.includes(`data-method="${method}"`));
  return {
    ranks: cells.map((t) => /data-value="([^"]*)"/.exec(t)![1]),
    removed: cells.filter((t) => t.includes('data-removed="true"')).map((t) => Number(/data-layer="(\d+)"/.exec(t)![1])),
  };
}

let choice: PlanChoice;
beforeEach(() => {
  choice = { ...DEFAULT_PLAN_CHOICE, prune: 2, merge: 1 };
});

/**
 * The Prune step rendered on the server with a loaded model, this result and `choice`: a server render reads the
 * store's initial state (zustand's server snapshot), so the state goes there for the render and is put back after.
 */
function renderPruneStep(): string {
  const initial = useStudio.getInitialState();
  const before = { ...initial };
  const s = initialState();
  Object.assign(initial, {
    model: { ...s.model, loaded: { summary: { name: 'tiny-llama', numLayers: 6 } as ModelSummary, config, fit: null, fingerprint: 'fp' } },
    score: { ...s.score, result },
    planChoice: choice,
  });
  try {
    return renderToStaticMarkup(createElement(PruneStep));
  } finally {
    Object.assign(initial, before);
  }
}

describe('method rankings in the studio', () => {
  it('ranks 1 = most important, ties sharing the better rank', () => {
    expect(layerRanks([0.5, 0.1, 0.3, 0.3])).toEqual([1, 4, 2, 2]);
  });

  it("the Score step's table: each method's rank per layer, the layers its plan removes at N highlighted", () => {
    const html = renderToStaticMarkup(createElement(MethodRankings, { rankings, config, choice }));
    expect([...html.matchAll(/data-testid="ranking-method" data-value="([^"]+)"/g)].map((m) => m[1])).toEqual(['igia', 'magnitude', 'last', 'angular']);
    expect(column(html, 'igia')).toEqual({ ranks: ['1', '2', '3', '4', '5', '6'], removed: [4, 5] });
    expect(column(html, 'magnitude')).toEqual({ ranks: ['1', '6', '4', '5', '2', '3'], removed: [1, 3] });
    expect(column(html, 'last')).toEqual({ ranks: ['1', '1', '1', '5', '5', '1'], removed: [3, 4] });
    expect(column(html, 'angular').removed).toEqual([2, 3]);
    // Beyond the gathered blocks angular has no column values, and says so.
    choice = { ...choice, prune: 3 };
    const beyond = renderToStaticMarkup(createElement(MethodRankings, { rankings, config, choice }));
    expect(column(beyond, 'angular')).toEqual({ ranks: ['', '', '', '', '', ''], removed: [] });
    expect(beyond).toContain('not gathered for N = 3');
  });

  it("the Prune step ranks by the chosen method: magnitude's plan drops its lowest layers and cannot merge", () => {
    choice = { ...choice, rankedBy: 'magnitude' };
    const html = renderPruneStep();
    expect(html).toMatch(/data-testid="rank-by" data-value="magnitude"/);
    expect(html).toMatch(/data-testid="plan-dropped" data-value="1,3"/);
    expect(html).not.toContain('data-testid="plan-merged"');
    expect(html).toMatch(/<input[^>]*disabled=""[^>]*data-testid="merge-input"/);
    expect(html).toContain('data-testid="rank-by-no-merge"');
    expect(html).toContain('Apply: drop the layers');
  });

  it('the Prune step with IGIA merges as before; angular beyond its bound says why there is no plan', () => {
    const igia = renderPruneStep();
    expect(igia).toMatch(/data-testid="plan-merged" data-value="4"/);
    expect(igia).not.toContain('rank-by-no-merge');
    choice = { ...choice, rankedBy: 'angular', prune: 3 };
    const html = renderPruneStep();
    expect(html).toContain('data-testid="rank-by-unavailable"');
    expect(html).toContain('blocks of 1 to 2 layers');
    expect(html).not.toContain('data-testid="plan-kept"');
  });
});
