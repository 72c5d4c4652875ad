// The Check's "Compare methods" in Chromium: the demo (8 layers) scored briefly and pruned by 2; 'last' and
// 'magnitude' compared for N = 1..2 on 2 held-out rows — the table has each (method, N)'s loss and accuracy (a share
// of the 2 ARC questions), the chart one line per method; angular for N = 3 (beyond the ⌈8/4⌉ = 2 gathered) is refused
// with the worker's message under the panel.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoPruned, numberOf, openStudio, privacyProblems, STEP_ERRORS, until } from './harness';

test('the Check compares several methods’ plans in one go: table and chart', { timeout: 10 * 60_000 }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  page.setDefaultTimeout(5 * 60_000);
  await demoPruned(page);

  await page.getByTestId('eval-max').fill('2');
  for (const m of ['igia', 'last', 'magnitude']) {
    const box = page.getByTestId(`compare-method-${m}`);
    if (m === 'igia') await box.uncheck();
    else await box.check();
  }
  await page.getByTestId('compare-from').fill('1');
  await page.getByTestId('compare-to').fill('2');
  await page.getByTestId('compare-run').click();
  await until(page, '[data-testid=compare-table]', `${STEP_ERRORS}, [data-testid=compare-error]`);
  for (const m of ['last', 'magnitude']) {
    for (const n of [0, 1, 2]) {
      assert.ok((await numberOf(page, `compare-${m}-${n}-loss`)) > 0, `${m} N=${n}: a held-out loss`);
      const acc = await numberOf(page, `compare-${m}-${n}-acc`);
      assert.ok([0, 0.5, 1].includes(acc), `${m} N=${n}: acc ${acc} is a share of 2 questions`);
    }
  }
  // Both lines start at the dense model: the same numbers in both rows' dense column.
  assert.equal(await numberOf(page, 'compare-last-0-loss'), await numberOf(page, 'compare-magnitude-0-loss'));
  assert.equal(await page.getByTestId('compare-chart').getAttribute('data-lines'), '2');
  assert.equal(await page.getByTestId('compare-chart').getAttribute('data-metric'), 'acc');
  await studio.shot('compare-plans', 'check-step');

  await page.getByTestId('compare-method-angular').check();
  await page.getByTestId('compare-to').fill('3');
  await page.getByTestId('compare-run').click();
  await page.waitForSelector('[data-testid=compare-error]');
  assert.match(await page.getByTestId('compare-error').innerText(), /Angular distance was gathered for blocks of up to 2 layers/);
  assert.deepEqual(privacyProblems(studio), []);
});
