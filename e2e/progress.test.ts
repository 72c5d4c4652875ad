// Progress that tells the truth, in Chromium with WebGPU on SwiftShader with the embedded demo: a time estimate from
// a measured probe appears before a run starts (and scales with the steps without measuring again); Elapsed ticks
// while a step runs (between step reports) and Time left says "estimating…" until a steady step has ended; Stop
// says which step the run stops after the moment it is pressed. Values are read with the strict number readers and
// waited for by polling with a deadline (no fixed sleeps).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { numberAttribute, numberOf, openStudio, valueOf } from './harness';

const TIMEOUT = 15 * 60_000;

/** Poll `read` until `ok` holds or the deadline passes; returns the last value read. */
async function pollUntil<T>(read: () => Promise<T>, ok: (v: T) => boolean, deadlineMs: number, what: string): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)} after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const setNumber = (page: Page, testId: string, value: number) => page.getByTestId(testId).fill(String(value));

test('the estimate before starting, a ticking clock while a step runs, and Stop at once', { timeout: TIMEOUT }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  page.setDefaultTimeout(10 * 60_000);
  await page.getByTestId('demo-button').click();
  await page.waitForSelector('[data-testid=dataset-view]');

  // The Quick preset, then the estimate: two real steps measured with these settings.
  await page.getByTestId('preset-quick').click();
  assert.equal(await page.getByTestId('setting-steps').inputValue(), '10');
  await page.getByTestId('probe-start').click();
  await page.waitForSelector('[data-testid=time-estimate]');
  const estimate = page.getByTestId('time-estimate');
  const total = await numberAttribute(estimate, 'data-value', 'time-estimate');
  const perStep = await numberAttribute(estimate, 'data-step-seconds', 'time-estimate');
  assert.ok(perStep > 0, `a step takes time (${perStep} s)`);
  assert.ok(total >= 10 * perStep, `10 steps take at least 10 steps' time (${total} s vs ${perStep} s a step)`);
  assert.match(await estimate.innerText(), /^About .+ on this GPU for 10 steps/);
  // More steps: the same step time, scaled (no new measurement).
  await setNumber(page, 'setting-steps', 30);
  const scaled = await pollUntil(() => numberAttribute(page.getByTestId('time-estimate'), 'data-value', 'time-estimate'), (v) => v !== total, 10_000, 'the estimate for 30 steps');
  assert.ok(Math.abs(scaled - total - 20 * perStep) < 1e-6 * Math.max(1, scaled), `30 steps: ${scaled} s = ${total} s + 20 × ${perStep} s`);

  // Long steps (4 × 256 tokens on SwiftShader), so that a step outlasts the clock's one-second tick.
  await setNumber(page, 'setting-steps', 4);
  await setNumber(page, 'setting-batch', 4);
  await setNumber(page, 'setting-seqlen', 256);
  await page.getByTestId('score-start').click();
  // Before the first report the clock already runs (upload, compile, the first step).
  await page.waitForSelector('[data-testid=score-clock-elapsed]');
  await pollUntil(() => numberOf(page, 'score-clock-elapsed'), (v) => v >= 1, 60_000, 'the elapsed time before the first step reports');
  await page.waitForSelector('[data-testid=live-step][data-value="1"]');
  // Time left is estimated only once a step after the first (which carries the one-time costs) has ended.
  assert.equal(await valueOf(page, 'live-eta'), '');
  assert.equal(await page.getByTestId('live-eta').innerText(), 'estimating…');
  // Elapsed moves on while step 2 runs: the step shown stays 1 while the elapsed value grows.
  const first = await numberOf(page, 'live-elapsed');
  const later = await pollUntil(() => numberOf(page, 'live-elapsed'), (v) => v >= first + 1, 30_000, 'Elapsed while step 2 runs');
  assert.ok(later > first);
  assert.equal(await numberOf(page, 'live-step'), 1, 'Elapsed changed between step reports, not because a step ended');

  // Stop: the message is up at once, naming the step the run ends after (resident weights: the step in flight finishes).
  const before = await numberOf(page, 'live-step');
  await page.getByTestId('score-stop').click();
  const stopping = page.getByTestId('score-stopping');
  await stopping.waitFor({ timeout: 1000 });
  // The worker's answer then says whether a step was in flight (it may have been between steps).
  await page.waitForSelector('[data-testid=score-stopping][data-confirmed=yes]');
  const after = await numberAttribute(stopping, 'data-after', 'score-stopping');
  assert.ok(after === before || after === before + 1, `stops after step ${after} (${before} reported when Stop was pressed)`);
  assert.match(await stopping.innerText(), new RegExp(`^Stopping after step ${after}…`));
  await page.waitForSelector('[data-testid=score-stopped]');
  assert.match(await page.getByTestId('score-stopped').innerText(), new RegExp(`^Stopped after ${after} steps`));
  assert.deepEqual(studio.errors, []);
});
