// Every method's ranking in Chromium: the demo (8 layers) scored briefly — the Score step's table has a column per
// studio method with every layer's rank — then the Prune step ranked by "last layers": its plan drops the two layers
// before the last (5, 6), merging is off for it, and applying it gives a 6-layer model.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoScoring, openStudio, privacyProblems, until } from './harness';

test("the Score step shows every method's ranking and the Prune step applies another method's plan", { timeout: 15 * 60_000 }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  page.setDefaultTimeout(10 * 60_000);
  await demoScoring(page);
  await until(page, '[data-testid=method-rankings]');

  const methods = await page.locator('[data-testid=ranking-method]').evaluateAll((els) => els.map((e) => e.getAttribute('data-value')));
  assert.deepEqual(methods, ['igia', 'igia-code', 'bi', 'angular', 'magnitude', 'last']);
  for (const m of methods) {
    const ranks = await page.locator(`[data-testid=rank-cell][data-method="${m}"]`).evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))));
    assert.equal(ranks.length, 8, `${m}: a rank per layer`);
    for (const r of ranks) assert.ok(Number.isInteger(r) && r >= 1 && r <= 8, `${m}: rank ${r} in 1..8`);
  }

  await page.getByTestId('prune-slider').fill('2');
  await page.getByTestId('rank-by').selectOption('last');
  assert.equal(await page.getByTestId('plan-dropped').getAttribute('data-value'), '5,6');
  assert.equal(await page.getByTestId('plan-merged').count(), 0);
  assert.ok(await page.getByTestId('merge-input').isDisabled(), 'no merge for a plan ranked by another method');
  await page.getByTestId('rank-by-no-merge').waitFor();
  const removed = await page.locator('[data-testid=rank-cell][data-method=last][data-removed=true]').evaluateAll((els) => els.map((e) => e.getAttribute('data-layer')));
  assert.deepEqual(removed, ['5', '6']);

  await page.getByTestId('prune-apply').click();
  await until(page, '[data-testid=pruned]');
  assert.equal(await page.getByTestId('pruned').getAttribute('data-layers'), '6');
  await studio.shot('method-rankings', 'score-step');
  assert.deepEqual(privacyProblems(studio), []);
});
