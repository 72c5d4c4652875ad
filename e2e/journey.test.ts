// The whole journey as a person walks it, in Chromium with WebGPU on SwiftShader: model → dataset (format
// detected, changed, mapped) → score (loss chart, 6 × 7 heatmap) → prune slider → apply → evaluate → recover
// (a short fine-tuning, dense / pruned / recovered table) → download the zip (PEFT adapter, then merged) → load
// the downloaded checkpoint back. Expected numbers come from ../shared/fixtures/README.md
// (tiny-llama: 6 layers, 7 LoRA modules) and the test's own arithmetic, never from the code under test.
// Scoring runs only a few steps: SwiftShader is slow.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { strFromU8, unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { FIXTURES, numberAttribute, numberOf, numbersOf, openStudio, privacyProblems, REPO_ROOT, until, valueOf } from './harness';

const DATASETS = path.resolve(REPO_ROOT, '../shared/datasets');
const JOURNEY_TIMEOUT = 15 * 60_000;

async function setNumber(page: Page, testId: string, value: number): Promise<void> {
  await page.getByTestId(testId).fill(String(value));
}

async function scoreFewSteps(page: Page, steps: number, batch: number): Promise<void> {
  await setNumber(page, 'setting-steps', steps);
  await setNumber(page, 'setting-batch', batch);
  await page.getByTestId('score-start').click();
}

/** The studio opened for one journey (GPU steps get minutes), with a scratch folder; both go when the test ends. */
async function openJourney(t: TestContext, name: string) {
  const work = mkdtempSync(path.join(tmpdir(), `gradprune-${name}-`));
  const studio = await openStudio();
  t.after(async () => {
    await studio.close();
    rmSync(work, { recursive: true, force: true });
  });
  studio.page.setDefaultTimeout(10 * 60_000);
  return { studio, page: studio.page, work };
}

test('the whole journey on tiny-llama with ARC-Easy rows', { timeout: JOURNEY_TIMEOUT }, async (t) => {
  const { studio, page, work } = await openJourney(t, 'journey');

  // 1. Model.
  await page.getByTestId('input-folder').setInputFiles(path.join(FIXTURES, 'tiny-llama'));
  await page.getByTestId('summary-card').waitFor();
  assert.equal(await valueOf(page, 'summary-layers'), '6');

  // 2. Dataset: 24 ARC-Easy rows in llm-foundry's layout (query / choices / gold).
  const rows = readFileSync(path.join(DATASETS, 'arc/arc_easy.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 24);
  const file = path.join(work, 'arc_24.jsonl');
  writeFileSync(file, rows.join('\n') + '\n');
  await page.getByTestId('dataset-input').setInputFiles(file);
  await page.getByTestId('dataset-view').waitFor();
  assert.equal(await valueOf(page, 'dataset-format'), 'multiple-choice');
  assert.equal(await valueOf(page, 'dataset-rows'), '24');
  assert.equal(await valueOf(page, 'dataset-heldout'), String(Math.round(24 * 0.1)));
  const firstRow = page.getByTestId('preview-row').first();
  assert.ok((await firstRow.locator('[data-target=true]').count()) > 0, 'the answer tokens are marked as trained on');
  assert.ok((await firstRow.locator('[data-target=false]').count()) > 0, 'the question tokens are marked as prompt');
  await page.getByTestId('length-histogram').waitFor();
  await studio.screenshot('journey-01-dataset');
  await studio.shot('journey-01-dataset-card', 'dataset-step');

  // Pick a format the columns do not fit: the error says which column is missing; the previous reading stays.
  await page.getByTestId('format-select').selectOption('text');
  await page.getByTestId('format-apply').click();
  await page.getByTestId('dataset-error').waitFor();
  assert.match(await page.getByTestId('dataset-error-message').innerText(), /text/);
  await studio.screenshot('journey-02-format-error');
  // Back to multiple choice, mapping the columns by hand, holding out a quarter.
  await page.getByTestId('format-select').selectOption('multiple-choice');
  await page.getByTestId('column-question').selectOption('query');
  await page.getByTestId('column-choices').selectOption('choices');
  await page.getByTestId('column-answer').selectOption('gold');
  await setNumber(page, 'heldout-input', 25);
  await page.getByTestId('format-apply').click();
  await page.waitForSelector('[data-testid=dataset-heldout][data-value="6"]');
  assert.equal(await page.getByTestId('dataset-error').count(), 0);
  assert.equal(await valueOf(page, 'dataset-train'), '18');

  // 3. Score: the memory estimate is there before starting; then the loss chart and the 6 × 7 heatmap.
  assert.ok((await numberOf(page, 'memory-estimate')) > 0);
  // The GPU memory limit: empty means what the adapter allows (shown); one byte below the resident need, the
  // weights stream layer by layer, with the host memory that takes and the bytes a training step uploads.
  const estimate = page.getByTestId('memory-estimate');
  assert.equal(await estimate.getAttribute('data-residency'), 'resident');
  const allowed = await numberOf(page, 'setting-max-gpu-memory-allowed');
  assert.ok(allowed > 0, "the adapter's own limit is shown");
  assert.equal(await numberAttribute(estimate, 'data-budget'), allowed);
  const residentNeed = await numberOf(page, 'memory-estimate');
  await page.getByTestId('setting-max-gpu-memory').fill(String(residentNeed - 1));
  await page.getByTestId('setting-max-gpu-memory').press('Enter');
  await page.waitForSelector('[data-testid=memory-estimate][data-residency=streamed][data-fits=yes]');
  assert.equal(await valueOf(page, 'memory-residency'), 'streamed');
  assert.match(await page.getByTestId('memory-residency').innerText(), /streamed layer by layer/);
  // tiny-llama in f32 (SwiftShader has no shader-f16): 6 layers of 46 208 parameters; the host holds all six, a
  // training step uploads 2 · (6 − 2) of them (the slots keep the first and last two between passes).
  const layerBytes = 4 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 176 + 2 * 64);
  assert.equal(await numberAttribute(estimate, 'data-stream-host'), 6 * layerBytes);
  assert.equal(await numberAttribute(estimate, 'data-upload-per-step'), 8 * layerBytes);
  // A size that is not one is refused where it is typed; emptied, the adapter's limit is back and the weights resident.
  await page.getByTestId('setting-max-gpu-memory').fill('lots');
  await page.getByTestId('setting-max-gpu-memory').press('Enter');
  await page.waitForSelector('[data-testid=setting-max-gpu-memory-problem]');
  await page.getByTestId('setting-max-gpu-memory').fill('');
  await page.getByTestId('setting-max-gpu-memory').press('Enter');
  await page.waitForSelector('[data-testid=memory-estimate][data-residency=resident]');
  await scoreFewSteps(page, 3, 2);
  await until(page, '[data-testid=heatmap-cell]');
  await studio.screenshot('journey-03-scoring');
  await studio.shot('journey-03-scoring-card', 'score-step');
  await until(page, '[data-testid=prune-slider]'); // the run is done
  assert.equal(await page.getByTestId('heatmap-cell').count(), 6 * 7);
  assert.equal(await page.getByTestId('loss-chart').getAttribute('data-points'), '3');
  assert.equal(await page.getByTestId('stability-chart').getAttribute('data-points'), '3');
  const cellValues = await numbersOf(page, 'heatmap-cell');
  assert.ok(cellValues.every((v) => v >= 0));
  assert.ok(cellValues.some((v) => v > 0), 'after the warmup step the LoRA B matrices have moved');
  await page.getByTestId('heatmap-cell').nth(8).hover();
  assert.match(await page.getByTestId('heatmap-hover').innerText(), /layer 1 · k_proj/);
  await studio.screenshot('journey-04-scored');
  await studio.shot('journey-04-scored-card', 'score-step');

  // 4. Prune: moving the slider changes the plan and the numbers.
  const layerParams = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 176 + 2 * 64; // q, k+v (2 kv heads × 16), o, MLP, norms
  await page.getByTestId('prune-slider').fill('1');
  await page.waitForSelector('[data-testid=after-layers][data-value="5"]');
  const paramsAt1 = await numberOf(page, 'after-params');
  await page.getByTestId('prune-slider').fill('2');
  await page.waitForSelector('[data-testid=after-layers][data-value="4"]');
  const paramsAt2 = await numberOf(page, 'after-params');
  assert.equal(paramsAt1 - paramsAt2, layerParams);
  assert.equal((await valueOf(page, 'plan-kept')).split(',').length, 4);
  // The slider works from the keyboard too.
  await page.getByTestId('prune-slider').focus();
  await page.keyboard.press('ArrowLeft');
  await page.waitForSelector('[data-testid=after-layers][data-value="5"]');
  await page.keyboard.press('ArrowRight');
  await page.waitForSelector('[data-testid=after-layers][data-value="4"]');
  assert.ok((await numberOf(page, 'speedup')) > 1);
  await setNumber(page, 'merge-input', 1);
  assert.equal((await valueOf(page, 'plan-merged')).split(',').length, 1);
  assert.equal((await valueOf(page, 'plan-kept')).split(',')[0], '0', 'layer 0 is never pruned');
  await studio.screenshot('journey-05-plan');
  await studio.shot('journey-05-plan-card', 'prune-step');
  await page.getByTestId('prune-apply').click();
  await until(page, '[data-testid=pruned][data-layers="4"]');

  // 5. Check: dense vs pruned on the held-out rows, accuracy (ARC is multiple choice), a generation each.
  await setNumber(page, 'eval-max', 4);
  await setNumber(page, 'eval-generations', 1);
  await setNumber(page, 'eval-new-tokens', 4);
  await page.getByTestId('evaluate').click();
  await until(page, '[data-testid=eval-table]');
  for (const id of ['eval-dense-loss', 'eval-pruned-loss', 'eval-dense-ppl', 'eval-pruned-ppl']) await numberOf(page, id); // each there, and a finite number
  const denseLoss = await numberOf(page, 'eval-dense-loss');
  assert.ok(Math.abs((await numberOf(page, 'eval-dense-ppl')) - Math.exp(denseLoss)) < 1e-6 * Math.exp(denseLoss));
  const acc = await numberOf(page, 'eval-pruned-acc');
  assert.ok(acc >= 0 && acc <= 1 && Number.isInteger(acc * 4), 'accuracy over 4 questions');
  assert.equal(await page.getByTestId('generation').count(), 1);
  // Both models ran in the session's precision ('auto': f32 here, SwiftShader has no shader-f16), weights resident.
  assert.equal(await valueOf(page, 'check-precision'), 'f32');
  assert.match(await page.getByTestId('check-precision').innerText(), /adapter has no shader-f16/);
  // The person's own prompt, answered by both models.
  await page.getByTestId('own-prompt').fill('Question: What gives plants their energy?\nAnswer:');
  await page.getByTestId('own-generate').click();
  await until(page, '[data-testid=own-generations]');
  assert.match(await page.getByTestId('own-generations').innerText(), /What gives plants their energy/);
  // The table has the sizes and a measured forward time per token for both models.
  const denseParams = 6 * layerParams + 2 * 512 * 64 + 64; // + embedding, lm_head (untied), final norm
  const prunedParams = 4 * layerParams + 2 * 512 * 64 + 64;
  assert.equal(await valueOf(page, 'eval-dense-params'), String(denseParams));
  assert.equal(await valueOf(page, 'eval-pruned-params'), String(prunedParams));
  assert.equal(await valueOf(page, 'eval-pruned-weights'), String(4 * prunedParams)); // F32
  for (const id of ['eval-dense-ms', 'eval-pruned-ms']) assert.ok((await numberOf(page, id)) > 0, id);
  await studio.screenshot('journey-06-check');
  await studio.shot('journey-06-check-card', 'check-step');

  // 5b. Recover: three steps of a fresh LoRA on short rows, the live loss chart, then dense / pruned / recovered.
  await setNumber(page, 'recover-steps', 3);
  await setNumber(page, 'recover-batch', 2);
  await setNumber(page, 'recover-seqlen', 48);
  await setNumber(page, 'recover-lr', 0.001);
  await page.getByTestId('recover-start').click();
  await until(page, '[data-testid=recovery-table]');
  assert.equal(await page.getByTestId('recover-loss-chart').getAttribute('data-points'), '3');
  const tableRows = page.getByTestId('recovery-table').getByTestId('comparison-row');
  const shown = await tableRows.evaluateAll((els) => els.map((e) => [e.getAttribute('data-label'), e.getAttribute('data-layers'), e.getAttribute('data-parameters')]));
  assert.deepEqual(shown, [
    ['dense', '6', String(denseParams)],
    ['pruned', '4', String(prunedParams)],
    ['pruned + recovered', '4', String(prunedParams)], // the adapter merged: no extra parameters
  ]);
  // Same held-out rows as the Check above: the dense and pruned losses agree with it.
  for (const key of ['dense', 'pruned']) {
    const check = await numberOf(page, `eval-${key}-loss`);
    assert.ok(Math.abs((await numberOf(page, `recovery-${key}-loss`)) - check) < 1e-4 * check, key);
  }
  for (const id of ['recovery-recovered-loss', 'recovery-recovered-ppl', 'recovery-recovered-ms']) assert.ok((await numberOf(page, id)) > 0, id);
  assert.equal(await valueOf(page, 'recover-precision'), 'f32');
  assert.ok(((await numberOf(page, 'recovery-recovered-acc')) * 4) % 1 === 0, 'accuracy over 4 questions');
  await page.getByTestId('recovery-table').scrollIntoViewIfNeeded();
  await page.mouse.move(0, 0); // no chart tooltip left open under the pointer
  await studio.screenshot('journey-06b-recovered');
  await studio.shot('journey-06b-recover-panel', 'recover-panel');

  // 6. Download. First the adapter kept apart: the pruned weights plus a PEFT folder.
  await page.getByTestId('adapter-peft').check();
  await page.getByTestId('prepare-download').click();
  await until(page, '[data-testid=download-zip]');
  const [peftDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-zip').click()]);
  assert.equal(peftDownload.suggestedFilename(), 'tiny-llama-gradprune-4L-recovered-peft.zip');
  const peftZip = path.join(work, 'peft.zip');
  await peftDownload.saveAs(peftZip);
  const peftEntries = unzipSync(new Uint8Array(readFileSync(peftZip)));
  for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'model.safetensors', 'gradprune_recovery.json']) {
    assert.ok(peftEntries['tiny-llama-gradprune-4L-recovered-peft/' + f], `${f} is in the PEFT zip`);
  }
  assert.equal(JSON.parse(strFromU8(peftEntries['tiny-llama-gradprune-4L-recovered-peft/adapter/adapter_config.json'])).r, 8);

  // Then merged (the default): a Hugging Face folder with 4 layers, the model card and the recipe.
  await page.getByTestId('adapter-merged').check();
  await page.getByTestId('prepare-download').click();
  await until(page, '[data-testid=download-zip]');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-zip').click()]);
  const zipPath = path.join(work, download.suggestedFilename());
  await download.saveAs(zipPath);
  assert.equal(download.suggestedFilename(), 'tiny-llama-gradprune-4L-recovered.zip');
  await studio.screenshot('journey-07-download');
  await studio.shot('journey-07-download-card', 'download-step');
  const entries = unzipSync(new Uint8Array(readFileSync(zipPath)));
  const folder = 'tiny-llama-gradprune-4L-recovered/';
  assert.ok(!Object.keys(entries).some((n) => n.includes('adapter_')), 'the merged zip has no adapter files');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'README.md', 'gradprune_recipe.json']) {
    assert.ok(entries[folder + f], `${f} is in the zip`);
  }
  assert.equal(JSON.parse(strFromU8(entries[folder + 'config.json'])).num_hidden_layers, 4);
  const recipe = JSON.parse(strFromU8(entries[folder + 'gradprune_recipe.json']));
  assert.equal(recipe.plan.num_layers_after, 4);
  assert.equal(recipe.plan.merged_layers.length, 1);
  // The Check above is recorded in the recipe and the model card.
  assert.equal(recipe.evaluation[0].after, await numberOf(page, 'eval-pruned-loss'));
  assert.match(strFromU8(entries[folder + 'README.md']), /## Evaluation/);
  // …and so is the recovery, with the numbers the table shows.
  const card = strFromU8(entries[folder + 'README.md']);
  assert.match(card, /## Recovery fine-tuning/);
  assert.match(card, /merged into the weights/);
  const afterLoss = await numberOf(page, 'recovery-recovered-loss');
  assert.ok(card.includes(afterLoss.toFixed(4)), 'the card gives the recovered loss');
  const record = JSON.parse(strFromU8(entries[folder + 'gradprune_recovery.json']));
  assert.equal(record.steps, 3);
  assert.equal(record.merged, true);
  assert.equal(record.heldOutLossAfter, afterLoss);

  // The downloaded (merged) checkpoint loads back into the studio with the pruned layer count.
  const back = path.join(work, 'tiny-llama-gradprune-4L-recovered');
  mkdirSync(back);
  for (const [name, bytes] of Object.entries(entries)) if (name.startsWith(folder) && name.length > folder.length) writeFileSync(path.join(back, name.slice(folder.length)), bytes);
  await page.getByTestId('input-folder').setInputFiles(back);
  await page.waitForSelector('[data-testid=summary-layers][data-value="4"]');
  assert.equal((await page.getByTestId('summary-name').innerText()).trim(), 'tiny-llama-gradprune-4L-recovered');
  await studio.screenshot('journey-08-reloaded');
  assert.deepEqual(studio.errors, []);
  assert.deepEqual(privacyProblems(studio), [], 'from opening the page to the downloaded model: nothing beyond the origin, nothing blocked');
});

test('"Try the demo" leads to a downloaded checkpoint', { timeout: JOURNEY_TIMEOUT }, async (t) => {
  const { studio, page, work } = await openJourney(t, 'demo');
  await page.getByTestId('demo-button').click();
  // The demo goes straight on to its dataset (public/demo/arc_easy_300.jsonl: 300 ARC-Easy questions).
  await until(page, '[data-testid=dataset-view]');
  assert.equal(await valueOf(page, 'dataset-rows'), '300');
  assert.equal(await valueOf(page, 'dataset-format'), 'multiple-choice');
  await setNumber(page, 'setting-seqlen', 96);
  // Three steps: step 0 trains at lr 0 (warmup) and B is still 0 at step 1, so step 2 is the first with importance.
  await scoreFewSteps(page, 3, 1);
  // Pause after the first step: no step finishes while paused; resume finishes the run.
  await page.waitForSelector('[data-testid=score-pause]:not([disabled])');
  await page.getByTestId('score-pause').click();
  await page.waitForSelector('[data-testid=score-state][data-value=paused]');
  // The worker answers with the steps the run holds after (data-paused-at): a step in flight still finishes and
  // reports; a pause taken between steps holds at once. After that, nothing moves.
  const atPause = await numberAttribute(page.getByTestId('score-paused'), 'data-paused-at');
  assert.ok(atPause >= 1 && atPause < 3, `holds after ${atPause} of 3 steps: the pause must come before the last step`);
  await page.waitForSelector(`[data-testid=live-step][data-value="${atPause}"]`);
  await page.waitForSelector(`[data-testid=score-paused]:has-text("Paused after step ${atPause} of 3")`);
  // No further step in one and a half times what a step has taken so far (a step not held would report within about one).
  const stepMs = (1000 * (await numberOf(page, 'live-elapsed'))) / atPause;
  await assert.rejects(page.waitForSelector(`[data-testid=live-step][data-value="${atPause + 1}"]`, { timeout: Math.max(3000, 1.5 * stepMs) }), /Timeout/);
  assert.equal(await numberOf(page, 'live-step'), atPause);
  assert.equal(await page.getByTestId('prune-slider').count(), 0);
  await studio.shot('demo-01-paused', 'score-step');
  await page.getByTestId('score-resume').click();
  await until(page, '[data-testid=prune-slider]');
  assert.equal(await page.getByTestId('heatmap-cell').count(), 8 * 7);
  const cells = await numbersOf(page, 'heatmap-cell');
  assert.ok(cells.some((v) => v > 0));
  await page.getByTestId('prune-slider').fill('2');
  await page.waitForSelector('[data-testid=after-layers][data-value="6"]');
  await page.getByTestId('prune-apply').click();
  await until(page, '[data-testid=pruned][data-layers="6"]');
  await page.getByTestId('prepare-download').click();
  await until(page, '[data-testid=download-zip]');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-zip').click()]);
  const zipPath = path.join(work, download.suggestedFilename());
  await download.saveAs(zipPath);
  const entries = unzipSync(new Uint8Array(readFileSync(zipPath)));
  const config = Object.entries(entries).find(([n]) => n.endsWith('/config.json'));
  assert.ok(config);
  assert.equal(JSON.parse(strFromU8(config[1])).num_hidden_layers, 6);
  await studio.screenshot('demo-02-downloaded');

  // "Save into a folder" (File System Access API): the picker is stood in for by the origin-private file system.
  await page.evaluate(() => {
    (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = () => navigator.storage.getDirectory();
  });
  await page.getByTestId('save-folder').click();
  await until(page, '[data-testid=saved-folder]');
  const saved = await page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle('demo-llama-3.5M-gradprune-6L');
    const names: string[] = [];
    for await (const key of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(key);
    const config = JSON.parse(await (await (await dir.getFileHandle('config.json')).getFile()).text());
    return { names: names.sort(), layers: config.num_hidden_layers as number };
  });
  assert.equal(saved.layers, 6);
  assert.deepEqual(saved.names, Object.keys(entries).map((n) => n.split('/').pop()!).filter(Boolean).sort());

  // After a reload the settings and the last scores are back (IndexedDB) for the same model.
  await page.reload();
  await page.getByTestId('demo-button').click();
  await until(page, '[data-testid=score-restored]');
  assert.equal(await page.getByTestId('setting-steps').inputValue(), '3');
  assert.equal(await page.getByTestId('setting-seqlen').inputValue(), '96');
  const restored = await numbersOf(page, 'heatmap-cell');
  assert.deepEqual(restored, cells);
  assert.ok(await page.getByTestId('prune-apply').isDisabled(), 'a restored run cannot merge: its gradients are gone');
  await studio.shot('demo-03-restored', 'score-step');
  assert.deepEqual(studio.errors, []);
  assert.deepEqual(privacyProblems(studio), []);
});
