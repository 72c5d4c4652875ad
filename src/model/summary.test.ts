import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import { DEMO, fixtureDir } from '../testing/paths';
import { openCheckpoint } from './checkpoint';
import { openFolder } from './node-files';
import { assertFits, checkFit, formatSummary, summarizeModel, WEIGHT_BUDGET_BUFFERS } from './summary';

/** Shapes straight from the safetensors header, parsed here without the project's reader. */
async function headerShapes(dir: string): Promise<Record<string, { dtype: string; shape: number[] }>> {
  const bytes = await readFile(path.join(dir, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  delete header.__metadata__;
  return header;
}
const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

const adapter = (over: Partial<AdapterSummary> = {}): AdapterSummary => ({
  name: 'test adapter',
  isSoftware: false,
  shaderF16: false,
  timestampQuery: false,
  subgroups: false,
  maxBufferSize: 2 ** 30,
  maxStorageBufferBindingSize: 2 ** 30,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxStorageBuffersPerShaderStage: 8,
  ...over,
});

describe('summarizeModel', () => {
  it('counts tiny-qwen2 (tied) parameters exactly, as the file header adds up', async () => {
    const header = await headerShapes(fixtureDir('tiny-qwen2'));
    const sum = (pred: (name: string) => boolean) => Object.entries(header).reduce((s, [n, t]) => (pred(n) ? s + product(t.shape) : s), 0);
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')), 'tiny-qwen2'));
    expect(s.params.total).toBe(sum(() => true));
    expect(s.params.embeddings).toBe(sum((n) => n === 'model.embed_tokens.weight'));
    expect(s.params.lmHead).toBe(0);
    expect(s.params.finalNorm).toBe(sum((n) => n === 'model.norm.weight'));
    expect(s.params.perLayer).toBe(sum((n) => n.startsWith('model.layers.0.')));
    expect(s.params.allLayers).toBe(sum((n) => n.startsWith('model.layers.')));
    // And by hand from the README's table (hidden 96, 6/2 heads of 16, intermediate 256, vocab 512, q/k/v biases):
    const perLayer = 2 * 96 + (96 * 96 + 96) + 2 * (32 * 96 + 32) + 96 * 96 + 3 * 256 * 96;
    expect(s.params.perLayer).toBe(perLayer);
    expect(s.params.total).toBe(512 * 96 + 5 * perLayer + 96);
    expect(s.weightBytes).toEqual({ f16: 2 * s.params.total, f32: 4 * s.params.total, stored: 2 * s.params.total });
    expect(s.tensorCount).toBe(Object.keys(header).length);
    expect(s).toMatchObject({ architecture: 'Qwen2ForCausalLM', numLayers: 5, hiddenSize: 96, numHeads: 6, numKvHeads: 2, headDim: 16, dtype: 'BF16', tiedEmbeddings: true });
  });
  it('counts tiny-qwen3 (tied, head_dim 24 ≠ hidden / heads) with its q/k norms exactly', async () => {
    const header = await headerShapes(fixtureDir('tiny-qwen3'));
    const sum = (pred: (name: string) => boolean) => Object.entries(header).reduce((s, [n, t]) => (pred(n) ? s + product(t.shape) : s), 0);
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-qwen3')), 'tiny-qwen3'));
    expect(s.params.total).toBe(sum(() => true));
    expect(s.params.perLayer).toBe(sum((n) => n.startsWith('model.layers.0.')));
    // By hand (hidden 64, 4/2 heads of 24, intermediate 160, vocab 512, no biases, q_norm + k_norm of 24 each):
    const perLayer = 2 * 64 + 96 * 64 + 2 * 48 * 64 + 64 * 96 + 3 * 160 * 64 + 2 * 24;
    expect(s.params.perLayer).toBe(perLayer);
    expect(s.params.total).toBe(512 * 64 + 5 * perLayer + 64);
    expect(s.tensorCount).toBe(Object.keys(header).length);
    expect(s).toMatchObject({ architecture: 'Qwen3ForCausalLM', numLayers: 5, hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 24, dtype: 'BF16', tiedEmbeddings: true });
  });
  it('counts an untied model\'s lm_head (tiny-llama, F32)', async () => {
    const header = await headerShapes(fixtureDir('tiny-llama'));
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-llama'))));
    expect(s.params.lmHead).toBe(product(header['lm_head.weight'].shape));
    expect(s.params.total).toBe(Object.values(header).reduce((a, t) => a + product(t.shape), 0));
    expect(s.params.total).toBe(s.params.embeddings + s.params.lmHead + s.params.allLayers + s.params.finalNorm);
    expect(s.weightBytes.stored).toBe(4 * s.params.total);
  });
  it('agrees with the demo README: 3.54M parameters', async () => {
    const s = summarizeModel(await openCheckpoint(await openFolder(DEMO)));
    expect((s.params.total / 1e6).toFixed(2)).toBe('3.54');
    expect(s.files.map((f) => f.name)).toContain('model.safetensors');
  });
});

describe('checkFit', () => {
  it('fits a tiny model, at f16 when the adapter has shader-f16', async () => {
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-llama'))));
    const f32 = checkFit(s, adapter());
    expect(f32).toMatchObject({ fits: true, weightPrecision: 'f32', neededBytes: 4 * s.params.total, availableBytes: WEIGHT_BUDGET_BUFFERS * 2 ** 30, reasons: [] });
    // tiny-llama's largest tensors are embed_tokens and lm_head, both [512, 64].
    expect(f32.largestTensor).toEqual({ name: 'model.embed_tokens.weight', bytes: 512 * 64 * 4 });
    expect(checkFit(s, adapter({ shaderF16: true }))).toMatchObject({ fits: true, weightPrecision: 'f16', neededBytes: 2 * s.params.total });
  });
  it('splits a tensor over bindings by rows, but not when one row exceeds a binding', async () => {
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-llama'))));
    // Embedding [512, 64] f32 = 128 KiB, a row 256 B: a 4 KiB binding still works by splitting rows.
    expect(checkFit(s, adapter({ maxStorageBufferBindingSize: 4096 })).fits).toBe(true);
    // down_proj rows are 176 × 4 = 704 bytes: a 512-byte binding cannot hold one.
    const fit = checkFit(s, adapter({ maxStorageBufferBindingSize: 512 }));
    expect(fit.fits).toBe(false);
    expect(fit.reasons.join('\n')).toMatch(/tensor model\.layers\.0\.mlp\.down_proj\.weight \[64, 176\] .* one of its rows 704 B/);
  });
  it('refuses weights beyond the budget and assertFits says needs vs allows', async () => {
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-llama'))));
    const small = adapter({ maxBufferSize: 65536, maxStorageBufferBindingSize: 65536 });
    const fit = checkFit(s, small);
    expect(fit.fits).toBe(false);
    expect(fit.availableBytes).toBe(WEIGHT_BUDGET_BUFFERS * 65536);
    const err = (() => {
      try {
        assertFits(s, small);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).code).toBe('memory');
    expect((err as GradPruneError).message).toMatch(/needs 1\.31 MiB of f32 weights, the adapter \(test adapter\) allows 256 KiB/);
    expect(checkFit(s, adapter(), { extraBytes: 5 * 2 ** 30 }).fits).toBe(false);
  });
  it('formats the summary with counts, memory, adapter and fit', async () => {
    const s = summarizeModel(await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')), 'tiny-qwen2'));
    const text = formatSummary(s, checkFit(s, adapter()), adapter());
    expect(text).toMatch(/^tiny-qwen2: Qwen2ForCausalLM \(qwen2\), BF16 weights/);
    expect(text).toContain('542,528');
    expect(text).toContain('0 (tied)');
    expect(text).toContain('test adapter');
    expect(text).toMatch(/fit \(all resident\)\s+yes/);
    expect(formatSummary(s, undefined, null)).toMatch(/none available/);
  });
});
