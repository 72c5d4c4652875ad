// Privacy enforced by the browser, not promised: the built studio carries a Content-Security-Policy that lets the
// page and its engine worker connect to their own origin only. Opening the page requests nothing beyond the
// origin and the policy blocks nothing the studio needs; a request to a model hub or a CDN, from the page or from
// the worker, is refused by the browser and reported. (The full journeys assert the same up to the download.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Worker } from 'playwright-core';
import { openStudio, privacyProblems } from './harness';

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('the page and its worker may connect to their own origin only', { timeout: 120_000 }, async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;

  const policy = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  assert.ok(policy?.includes("connect-src 'self'"), `the built page carries the policy (got ${policy})`);
  const worker: Worker = await until('the engine worker', () => page.workers()[0]);
  await page.getByTestId('demo-button').waitFor();
  await page.waitForTimeout(1000);
  assert.deepEqual(privacyProblems(studio), [], 'opening the page: nothing beyond the origin, nothing blocked');

  // WebAssembly compiles in the worker ('wasm-unsafe-eval'): what onnxruntime-web and tokenizers may need.
  const wasm = await worker.evaluate(() => WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])).then(() => 'compiled', (e: Error) => e.message));
  assert.equal(wasm, 'compiled');

  const fromPage = await page.evaluate(() => fetch('https://huggingface.co/api/models').then(() => 'fetched', () => 'refused'));
  assert.equal(fromPage, 'refused');
  const fromWorker = await worker.evaluate(() => fetch('https://cdn.jsdelivr.net/npm/onnxruntime-web/package.json').then(() => 'fetched', () => 'refused'));
  assert.equal(fromWorker, 'refused');
  const blocked = await until('both refusals reported', () => {
    const v = studio.cspViolations();
    return v.some((l) => l.includes('huggingface.co')) && v.some((l) => l.includes('cdn.jsdelivr.net')) ? v : undefined;
  });
  assert.ok(blocked.every((l) => /connect-src/.test(l)), blocked.join('\n'));
  assert.deepEqual(studio.requests.filter((u) => !u.startsWith(`${studio.origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:')), []);
});
