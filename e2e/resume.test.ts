// Resume after a reload, in Chromium with WebGPU on SwiftShader: a scoring run of the demo keeps a snapshot in the
// origin's private file system every few steps; reloaded mid-run, the page offers "Continue the scoring run from
// step k of N" for the same model and dataset, and the continued run's heatmap equals a straight run's, value for
// value (both runs in this test, on this device). Four short steps (SwiftShader is slow).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { numberAttribute, numbersOf, openStudio, until } from './harness';

const STEPS = 4;

/** The files the worker keeps its runs in (OPFS gradprune-runs/), as the page sees them. */
const storedRuns = (page: Page): Promise<string[]> =>
  page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    let dir: FileSystemDirectoryHandle;
    try {
      dir = await root.getDirectoryHandle('gradprune-runs');
    } catch {
      return [];
    }
    const names: string[] = [];
    for await (const key of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(key);
    return names.sort();
  });

/** The step of the stored scoring run's note (written after its snapshot), or -1 while there is none. */
const storedStep = (page: Page): Promise<number> =>
  page.evaluate(async () => {
    try {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('gradprune-runs');
      for await (const key of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) {
        if (!key.endsWith('.json')) continue;
        return (JSON.parse(await (await (await dir.getFileHandle(key)).getFile()).text()) as { info: { step: number } }).info.step;
      }
    } catch {
      // not yet (or being written)
    }
    return -1;
  });

async function demoWithSettings(page: Page): Promise<void> {
  await page.getByTestId('demo-button').click();
  await until(page, '[data-testid=dataset-view]');
  await page.getByTestId('setting-seqlen').fill('64');
  await page.getByTestId('setting-steps').fill(String(STEPS));
  await page.getByTestId('setting-batch').fill('1');
}

/** The run is over and its scores are this session's (a restored result cannot be applied). */
const scoredHere = '[data-testid=prune-apply]:not([disabled])';

test('a scoring run reloaded mid-run continues from its snapshot to the scores of a straight run', { timeout: 25 * 60_000 }, async (t) => {
  const studio = await openStudio({ profile: true });
  t.after(async () => {
    await studio.screenshot('resume-last').catch(() => {}); // where it stood, when a wait ran out
    await studio.close();
  });
  const { page } = studio;
  page.setDefaultTimeout(12 * 60_000);
  const started = Date.now();
  const phase = (what: string) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(0)} s: ${what}`);

  // A straight run: nothing is left in storage when it completes.
  await demoWithSettings(page);
  await page.getByTestId('score-start').click();
  await until(page, scoredHere);
  phase('straight run done');
  const straight = await numbersOf(page, 'heatmap-cell');
  assert.equal(straight.length, 8 * 7);
  assert.ok(straight.some((v) => v > 0));
  assert.deepEqual(await storedRuns(page), [], 'a completed run leaves no snapshot');

  // The same run again, paused after its first step; once a snapshot is stored, the page is reloaded.
  await page.getByTestId('score-start').click();
  await page.waitForSelector('[data-testid=score-pause]:not([disabled])');
  await page.getByTestId('score-pause').click();
  await page.waitForSelector('[data-testid=score-state][data-value=paused]');
  phase('paused');
  // The snapshot is written first, then the note beside it that says which step it is from: wait for the note.
  // (Polled from here: waitForFunction takes an async predicate's promise for a truthy answer at once.)
  const deadline = Date.now() + 5 * 60_000;
  while ((await storedStep(page)) < 1) {
    assert.ok(Date.now() < deadline, 'no snapshot of step ≥ 1 was stored within 5 min');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  phase('snapshot stored');
  await page.reload();

  // The same model and dataset: the interrupted run is offered (and the straight run's scores, restored).
  await page.getByTestId('demo-button').click();
  await until(page, '[data-testid=resume-offer]');
  phase('offer shown');
  const offer = page.getByTestId('resume-offer');
  const from = await numberAttribute(offer, 'data-step');
  assert.ok(from >= 1 && from < STEPS, `interrupted after ${from} of ${STEPS} steps`);
  assert.equal(await numberAttribute(offer, 'data-steps'), STEPS);
  assert.match(await offer.innerText(), /demo-llama-3\.5M/);
  assert.match(await page.getByTestId('resume-continue').innerText(), new RegExp(`from step ${from} of ${STEPS}`));
  await studio.screenshot('resume-01-offered');

  phase('offered');
  await page.getByTestId('resume-continue').click();
  await until(page, scoredHere);
  assert.equal(await page.getByTestId('score-restored').count(), 0);
  assert.equal(await page.getByTestId('loss-chart').getAttribute('data-points'), String(STEPS), 'the continued run has every step’s loss');
  assert.deepEqual(await numbersOf(page, 'heatmap-cell'), straight, 'the same scores as the straight run');
  assert.equal(await page.getByTestId('resume-offer').count(), 0);
  assert.deepEqual(await storedRuns(page), [], 'the completed run’s snapshot is gone');
  await studio.screenshot('resume-02-continued');
  assert.deepEqual(studio.errors, []);
});
