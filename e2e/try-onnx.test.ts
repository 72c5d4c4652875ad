// The Download step's "try it" for the ONNX export, in Chromium: the demo model scored and pruned, its ONNX export
// run in the tab by onnxruntime-web (its wasm served from the app's own files, under the page's CSP), and the
// continuation shown beside our engine's — the same text — with no request leaving the origin. Then the Download
// step's formats with their sizes, the ONNX folder downloaded as listed, and the GGUF choices.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { demoPruned, numberAttribute, openStudio, privacyProblems } from './harness';

test('the pruned demo model runs as ONNX in the page with our engine\'s continuation', { timeout: 15 * 60_000 }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  page.setDefaultTimeout(10 * 60_000);
  await demoPruned(page);
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

  // The Download step's formats, each with its size before anything is written; ONNX's download holds what it listed.
  const option = (format: string) => page.locator(`[data-testid=format-option][data-format=${format}]`);
  for (const format of ['safetensors', 'onnx', 'gguf']) await page.waitForSelector(`[data-testid=format-option][data-format=${format}]:not([data-bytes=""])`);
  const onnxBytes = Number(await option('onnx').getAttribute('data-bytes'));
  await option('onnx').locator('input').check();
  await page.waitForSelector('[data-testid=export-files][data-format=onnx][data-folder="demo-llama-3.5M-gradprune-6L-onnx"]');
  assert.equal(await numberAttribute(page.getByTestId('export-total'), 'data-value'), onnxBytes);
  const listed = await page.getByTestId('export-file').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-name')));
  assert.deepEqual(listed.filter((n) => n?.startsWith('onnx/')).sort(), ['onnx/model.onnx', 'onnx/model_fp16.onnx']);
  await page.getByTestId('prepare-download').click();
  await page.waitForSelector('[data-testid=download-zip]');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-zip').click()]);
  assert.equal(download.suggestedFilename(), 'demo-llama-3.5M-gradprune-6L-onnx.zip');
  const entries = unzipSync(new Uint8Array(readFileSync(await download.path())));
  const root = 'demo-llama-3.5M-gradprune-6L-onnx/';
  const sizes = Object.entries(entries).filter(([n]) => n.length > root.length && !n.endsWith('/'));
  assert.deepEqual(sizes.map(([n]) => n.slice(root.length)).sort(), [...listed].sort());
  assert.equal(sizes.reduce((s, [, bytes]) => s + bytes.byteLength, 0), onnxBytes);
  // GGUF: its own panel, f16 and q8_0 with the sizes the format list shows.
  await option('gguf').locator('input').check();
  await page.waitForSelector('[data-testid=export-gguf]');
  const gguf = await page.getByTestId('gguf-option').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-bytes'))));
  assert.equal(gguf.length, 2);
  assert.equal(Number(await option('gguf').getAttribute('data-bytes')), gguf[0]);
  assert.equal(await page.getByTestId('export-files').count(), 0);
  await studio.shot('download-formats', 'download-step');
  assert.deepEqual(privacyProblems(studio), []);
});
