// The Download step's "try it" for the ONNX export, in Chromium: the demo model scored and pruned, its ONNX export
// run in the tab by onnxruntime-web (its wasm served from the app's own files, under the page's CSP), and the
// continuation shown beside our engine's — the same text — with no request leaving the origin.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStudio, privacyProblems } from './harness';

test('the pruned demo model runs as ONNX in the page with our engine\'s continuation', { timeout: 15 * 60_000 }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  page.setDefaultTimeout(10 * 60_000);
  await page.getByTestId('demo-button').click();
  await page.waitForSelector('[data-testid=dataset-view]');
  await page.getByTestId('setting-seqlen').fill('96');
  await page.getByTestId('setting-steps').fill('3');
  await page.getByTestId('setting-batch').fill('1');
  await page.getByTestId('score-start').click();
  await page.waitForSelector('[data-testid=prune-slider]');
  await page.getByTestId('prune-slider').fill('2');
  await page.getByTestId('prune-apply').click();
  await page.waitForSelector('[data-testid=pruned]');
  await page.locator('[data-testid=try-onnx] summary').click();
  await page.getByTestId('try-onnx-prompt').fill('Question: Which is a gas?');
  await page.getByTestId('try-onnx-run').click();
  const done = await page.waitForSelector('[data-testid=try-onnx-result], [data-testid=try-onnx-error]');
  assert.equal(await done.getAttribute('data-testid'), 'try-onnx-result', await done.innerText());
  const onnx = await page.getByTestId('try-onnx-onnx').innerText();
  assert.ok(onnx.length > 0);
  assert.equal(onnx, await page.getByTestId('try-onnx-engine').innerText());
  assert.equal(await done.getAttribute('data-same'), 'true');
  assert.ok(await page.getByTestId('try-onnx-download').isVisible());
  await studio.shot('try-onnx', 'try-onnx');
  assert.deepEqual(privacyProblems(studio), []);
});
