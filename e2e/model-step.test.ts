// The model step as a person uses it, in Chromium with WebGPU on SwiftShader: pick a model folder, read its
// summary, survive a damaged file, try the demo. Expected numbers come from ../shared/fixtures/README.md's table
// and public/demo/README.md (parameter counts follow from those shapes by hand-written arithmetic below),
// never from the code under test.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { dropPaths, FIXTURES, numberOf, openStudio, valueOf, type Studio } from './harness';

interface Expected {
  architecture: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  dtype: string;
  tied: boolean;
  /** Which linear modules carry a bias (Qwen2: q, k, v). */
  qkvBias: boolean;
}

/** Parameter counts of a Llama-family decoder from its shapes (the definition, written out independently). */
function paramCounts(e: Expected) {
  const q = e.heads * e.headDim;
  const kv = e.kvHeads * e.headDim;
  const attention = e.hidden * q + 2 * e.hidden * kv + q * e.hidden + (e.qkvBias ? q + 2 * kv : 0);
  const mlp = 3 * e.hidden * e.intermediate;
  const perLayer = attention + mlp + 2 * e.hidden;
  const embeddings = e.vocab * e.hidden;
  const lmHead = e.tied ? 0 : e.vocab * e.hidden;
  const total = embeddings + e.layers * perLayer + e.hidden + lmHead;
  return { perLayer, allLayers: e.layers * perLayer, embeddings, lmHead, total };
}

// ../shared/fixtures/README.md, "Models" table.
const TINY_QWEN2: Expected = {
  architecture: 'Qwen2ForCausalLM', layers: 5, hidden: 96, heads: 6, kvHeads: 2, headDim: 16, intermediate: 256, vocab: 512, dtype: 'BF16', tied: true, qkvBias: true,
};
const TINY_LLAMA: Expected = {
  architecture: 'LlamaForCausalLM', layers: 6, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 176, vocab: 512, dtype: 'F32', tied: false, qkvBias: false,
};
// public/demo/README.md: 8 layers, hidden 192, 6 / 2 heads (head_dim 32), intermediate 512, tied, vocab 2048, f16, 3.54M parameters.
const DEMO: Expected = {
  architecture: 'LlamaForCausalLM', layers: 8, hidden: 192, heads: 6, kvHeads: 2, headDim: 32, intermediate: 512, vocab: 2048, dtype: 'F16', tied: true, qkvBias: false,
};

async function expectSummary(studio: Studio, e: Expected, name: string): Promise<void> {
  const { page } = studio;
  await page.getByTestId('summary-card').waitFor();
  const text = async (id: string) => (await page.getByTestId(id).innerText()).trim();
  assert.equal(await text('summary-name'), name);
  assert.equal(await text('summary-architecture'), e.architecture);
  assert.equal(await valueOf(page, 'summary-layers'), String(e.layers));
  assert.equal(await valueOf(page, 'summary-hidden'), String(e.hidden));
  assert.equal(await valueOf(page, 'summary-heads'), String(e.heads));
  assert.equal(await valueOf(page, 'summary-kv-heads'), String(e.kvHeads));
  assert.equal(await valueOf(page, 'summary-head-dim'), String(e.headDim));
  assert.equal(await valueOf(page, 'summary-intermediate'), String(e.intermediate));
  assert.equal(await valueOf(page, 'summary-vocab'), String(e.vocab));
  assert.equal(await valueOf(page, 'summary-dtype'), e.dtype);
  assert.equal(await valueOf(page, 'summary-tied'), String(e.tied));
  const p = paramCounts(e);
  assert.equal(await numberOf(page, 'params-total'), p.total);
  assert.equal(await numberOf(page, 'params-embeddings'), p.embeddings);
  assert.equal(await numberOf(page, 'params-lm-head'), p.lmHead);
  assert.equal(await numberOf(page, 'params-per-layer'), p.perLayer);
  assert.equal(await numberOf(page, 'params-all-layers'), p.allLayers);
  assert.equal(await numberOf(page, 'memory-f16'), 2 * p.total);
  assert.equal(await numberOf(page, 'memory-f32'), 4 * p.total);
  // The exact count is also in the title, for people hovering over the rounded number.
  assert.equal(await page.getByTestId('params-total').getAttribute('title'), `${p.total.toLocaleString('en-US')} parameters`);
  // SwiftShader has 1 GiB buffers: tiny models fit.
  assert.equal(await valueOf(page, 'fit-status'), 'fits');
}

function assertOffline(studio: Studio): void {
  const foreign = studio.requests.filter((u) => !u.startsWith(studio.origin) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], 'the studio must make no requests beyond its own origin');
  assert.deepEqual(studio.errors, [], 'no uncaught errors or console errors');
}

test('the header shows the SwiftShader adapter', async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  await page.waitForSelector('[data-testid=adapter][data-state=ready]');
  assert.match(await page.getByTestId('adapter-name').innerText(), /swiftshader/i);
  assert.equal(await page.getByTestId('adapter-software').count(), 1);
  assert.equal(await page.getByTestId('adapter-f16').innerText(), 'no'); // SwiftShader has no shader-f16
  assert.ok((await numberOf(page, 'adapter-max-buffer')) >= 256 * 2 ** 20);
  assert.ok((await numberOf(page, 'adapter-max-binding')) >= 128 * 2 ** 20);
  assert.equal(await page.getByTestId('no-webgpu').count(), 0);
  await studio.screenshot('01-start');
  assertOffline(studio);
});

test('a model folder chosen with the folder picker is summarised', async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  // The folder holds reference/ too: the picker walks it, and the model's own files win by name.
  await page.getByTestId('input-folder').setInputFiles(path.join(FIXTURES, 'tiny-qwen2'));
  await expectSummary(studio, TINY_QWEN2, 'tiny-qwen2');
  assert.equal(await page.getByTestId('load-error').count(), 0);
  await studio.screenshot('02-tiny-qwen2');
  assertOffline(studio);
});

test('a truncated safetensors file is reported by name, and another model loads afterwards', async (t) => {
  const broken = mkdtempSync(path.join(tmpdir(), 'gradprune-broken-'));
  const studio = await openStudio();
  t.after(async () => {
    await studio.close();
    rmSync(broken, { recursive: true, force: true });
  });
  const { page } = studio;
  const src = path.join(FIXTURES, 'tiny-qwen2');
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(path.join(src, f), path.join(broken, f));
  const weights = readFileSync(path.join(src, 'model.safetensors'));
  writeFileSync(path.join(broken, 'model.safetensors'), weights.subarray(0, Math.floor(weights.length / 2)));

  await page.getByTestId('input-files').setInputFiles(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].map((f) => path.join(broken, f)));
  const error = page.getByTestId('load-error');
  await error.waitFor();
  assert.equal(await error.getAttribute('data-subject'), 'model.safetensors');
  const message = await page.getByTestId('load-error-message').innerText();
  assert.match(message, /model\.safetensors/);
  assert.match(message, /truncated/);
  assert.equal(await page.getByTestId('summary-card').count(), 0);
  await studio.screenshot('03-truncated-error');

  // The page stays usable: the next model loads and the error goes away.
  await page.getByTestId('input-folder').setInputFiles(path.join(FIXTURES, 'tiny-llama'));
  await expectSummary(studio, TINY_LLAMA, 'tiny-llama');
  assert.equal(await page.getByTestId('load-error').count(), 0);
  await studio.screenshot('04-after-error-tiny-llama');
  assertOffline(studio);
});

test('"Try the demo" loads the embedded demo model and its dataset', async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  await page.getByTestId('demo-button').click();
  await expectSummary(studio, DEMO, 'demo-llama-3.5M');
  assert.equal(paramCounts(DEMO).total, 3_542_208);
  assert.equal(await page.getByTestId('params-total').innerText(), '3.54 M'); // README: "3.54M parameters"
  assert.equal(await valueOf(page, 'demo-dataset-rows'), '300');
  await studio.screenshot('05-demo');
  assertOffline(studio);
});

test('opening the studio with ?demo loads the demo at once', async (t) => {
  const studio = await openStudio({ query: '?demo' });
  t.after(() => studio.close());
  await expectSummary(studio, DEMO, 'demo-llama-3.5M');
  assertOffline(studio);
});

test('the model step works from the keyboard', async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const { page } = studio;
  await page.getByTestId('demo-button').waitFor(); // tab only once the page has rendered
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName);
  const reached: (string | undefined)[] = [];
  for (let i = 0; i < 16 && !reached.includes('demo-button'); i++) {
    await page.keyboard.press('Tab');
    reached.push(await focused());
  }
  // The pickers are real, labelled file inputs in tab order, then the demo button.
  assert.deepEqual(reached.filter((r) => r === 'input-folder' || r === 'input-files' || r === 'demo-button'), ['input-folder', 'input-files', 'demo-button']);
  assert.equal(await page.getByLabel('Choose a model folder').count(), 1);
  assert.equal(await page.getByLabel('Choose model files').count(), 1);
  await page.keyboard.press('Enter');
  await expectSummary(studio, DEMO, 'demo-llama-3.5M');
  await studio.screenshot('07-keyboard-demo');
  assertOffline(studio);
});

test('a model folder dropped on the drop zone is walked and summarised', async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  await dropPaths(studio.page, 'drop-zone', [path.join(FIXTURES, 'tiny-qwen2')]);
  await expectSummary(studio, TINY_QWEN2, 'tiny-qwen2');
  assertOffline(studio);
});

test('loose files dropped on the drop zone are loaded', async (t) => {
  const studio = await openStudio();
  t.after(() => studio.close());
  const dir = path.join(FIXTURES, 'tiny-llama');
  await dropPaths(studio.page, 'drop-zone', ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((f) => path.join(dir, f)));
  // Loose files have no folder name: the model is named "model".
  await expectSummary(studio, TINY_LLAMA, 'model');
  assertOffline(studio);
});

test('without WebGPU the studio explains what to do and still summarises a model', async (t) => {
  const studio = await openStudio({ webgpu: false });
  t.after(() => studio.close());
  const { page } = studio;
  await page.getByTestId('no-webgpu').waitFor();
  assert.equal(await page.getByTestId('adapter').getAttribute('data-state'), 'unavailable');
  const text = await page.getByTestId('no-webgpu').innerText();
  assert.match(text, /chrome:\/\/gpu/);
  assert.match(text, /enable-unsafe-webgpu/);
  await page.getByTestId('input-folder').setInputFiles(path.join(FIXTURES, 'tiny-qwen2'));
  await page.getByTestId('summary-card').waitFor();
  assert.equal(await valueOf(page, 'summary-layers'), '5');
  assert.equal(await valueOf(page, 'fit-status'), 'unknown');
  await studio.screenshot('06-no-webgpu');
  assertOffline(studio);
});
