// The Check step's exact match in Chromium: the demo model scored and pruned, then checked with "Exact match of
// generated answers" on — the comparison table gains both numbers for dense and pruned, and the answers list shows
// each held-out ARC prompt with its label (the gold choice), both models' answers and a match mark each.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { demoPruned, numberOf, openStudio, privacyProblems, until } from './harness';

test('the Check answers the held-out prompts with both models and shows exact match', { timeout: 15 * 60_000 }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  page.setDefaultTimeout(10 * 60_000);
  await demoPruned(page);

  await page.getByTestId('eval-max').fill('2');
  await page.getByTestId('eval-generations').fill('0');
  await page.getByTestId('eval-exact-match').check();
  await page.getByTestId('evaluate').click();
  await until(page, '[data-testid=eval-table]');
  for (const id of ['eval-dense-em', 'eval-pruned-em', 'eval-dense-em-norm', 'eval-pruned-em-norm']) {
    const v = await numberOf(page, id);
    assert.ok([0, 0.5, 1].includes(v), `${id} = ${v}: a share of 2 answers`);
  }
  const rows = page.getByTestId('exact-match-row');
  assert.equal(await rows.count(), 2);
  await page.locator('[data-testid=exact-match-answers] summary').click();
  for (let i = 0; i < 2; i++) {
    const row = rows.nth(i);
    assert.match((await row.getAttribute('data-where')) ?? '', /^(line|element) \d+$/);
    assert.ok((await row.getByTestId('em-label').innerText()).trim().length > 0, 'the label (the gold choice) is shown');
    for (const side of ['em-dense', 'em-pruned']) assert.match(await row.getByTestId(side).innerText(), /^[✓≈✗] /);
  }
  // The marks agree with the table's numbers.
  const exact = await page.locator('[data-testid=em-dense] [data-match=exact]').count();
  assert.equal(exact / 2, await numberOf(page, 'eval-dense-em'));
  await studio.shot('check-exact-match', 'check-step');
  assert.deepEqual(privacyProblems(studio), []);
});
