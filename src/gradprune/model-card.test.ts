// The pruned folder's model card and recipe say what was run: the settings once each (the seed lives in the
// settings), and for a scoring run stopped early the steps it trained — 4 of 10 says 4, and says it stopped early.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeConfig } from '../model/config';
import { fixtureDir } from '../testing/paths';
import { modelCard } from './model-card';
import { makePlan } from './plan';
import { buildRecipe, type PruneRunInfo } from './recipe';

const config = normalizeConfig(JSON.parse(await readFile(path.join(fixtureDir('tiny-llama'), 'config.json'), 'utf8')));
const layerScore = Array.from({ length: config.numLayers }, (_, l) => (l + 1) / 10);
const plan = makePlan(layerScore, config, { prune: 2, merge: 1 });
const settings = { rank: 8, alpha: 32, steps: 10, learningRate: 1e-4, batchSize: 4, seqLen: 32, seed: 7 };
const run = (extra: Partial<PruneRunInfo> = {}): PruneRunInfo => ({ baseModel: 'tiny-llama', settings, seed: 7, scores: { layerScore }, ...extra });

/** The card's settings table as key → value. */
function settingsTable(card: string): [string, string][] {
  const section = card.split('## Settings')[1].split('## Plan')[0];
  return [...section.matchAll(/^\| (\w+) \| (.*) \|$/gm)].map((m) => [m[1], m[2]] as [string, string]).filter(([k]) => k !== 'setting');
}

describe('model card and recipe', () => {
  it('list the seed once', () => {
    const rows = settingsTable(modelCard(run(), plan, 'F32'));
    expect(rows.filter(([k]) => k === 'seed')).toEqual([['seed', '7']]);
    // A seed given apart from the settings still gets its row.
    const apart = settingsTable(modelCard(run({ settings: { rank: 8, steps: 10 } }), plan, 'F32'));
    expect(apart.filter(([k]) => k === 'seed')).toEqual([['seed', '7']]);
  });

  it('record the steps of a run that ran to the end as they were planned', () => {
    const rows = settingsTable(modelCard(run({ stepsRun: 10 }), plan, 'F32'));
    expect(rows.find(([k]) => k === 'steps')).toEqual(['steps', '10']);
    const recipe = buildRecipe(run({ stepsRun: 10 }), plan, 'sha', 'F32');
    expect(recipe.settings.steps).toBe(10);
    expect(recipe.settings).not.toHaveProperty('planned_steps');
    expect(recipe.stopped_early).toBe(false);
  });

  it('record the steps a stopped run trained, and that it stopped early', () => {
    const card = modelCard(run({ stepsRun: 4 }), plan, 'F32');
    expect(settingsTable(card).find(([k]) => k === 'steps')).toEqual(['steps', '4 (stopped early: 10 were planned)']);
    expect(card).toContain('The scoring run was stopped early, after 4 of its 10 planned steps');
    expect(card).not.toMatch(/\| steps \| 10 \|/);
    const recipe = buildRecipe(run({ stepsRun: 4 }), plan, 'sha', 'F32');
    expect(recipe.settings).toMatchObject({ steps: 4, planned_steps: 10 });
    expect(recipe.stopped_early).toBe(true);
    // The settings the run was given are not changed for the next export.
    expect(settings.steps).toBe(10);
  });
});
