import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import { normalizeConfig } from '../model/config';
import { SHARED } from '../testing/paths';
import { DEFAULT_LORA } from './lora';
import { checkMemory, estimateMemory, planResidency, type MemoryPlan } from './memory';

const publishedConfig = (file: string) => normalizeConfig(JSON.parse(readFileSync(path.join(SHARED, 'configs', file), 'utf8')));
// Llama-3.2-1B's shape: 16 layers, hidden 2048, 32/8 heads of 64, intermediate 8192, vocab 128256, tied.
const llama1b = publishedConfig('llama-3.2-1b.json');
const llama8b = publishedConfig('llama-3.1-8b.json');
const adapter = (maxBufferSize: number, maxStorageBufferBindingSize = maxBufferSize): AdapterSummary => ({
  name: 'test', isSoftware: false, shaderF16: true, timestampQuery: false, subgroups: false,
  maxBufferSize, maxStorageBufferBindingSize, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 10,
});
const plan: MemoryPlan = { batchSize: 4, seqLen: 512, lora: DEFAULT_LORA, weights: 'f16', checkpointing: false, training: true };
const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe('memory estimate', () => {
  it('counts f16 weights at two bytes per parameter (1.24 B parameters for Llama-3.2-1B)', () => {
    const e = estimateMemory(llama1b, plan);
    expect(e.weights / 2 / 1e9).toBeCloseTo(1.236, 2);
    expect(estimateMemory(llama1b, { ...plan, weights: 'f32' }).weights / e.weights).toBeCloseTo(2, 3);
  });

  it('keeps one layer of activations under checkpointing, and no backward buffers for inference', () => {
    const full = estimateMemory(llama1b, plan);
    const ckpt = estimateMemory(llama1b, { ...plan, checkpointing: true });
    expect(ckpt.activations).toBeLessThan(full.activations / 3);
    expect(estimateMemory(llama1b, { ...plan, training: false }).backward).toBe(0);
  });

  it('never holds the (B·T, V) logits: a 128k vocabulary at 4 × 600 tokens costs one chunk, not 1.15 GiB', () => {
    const evalPlan = { ...plan, seqLen: 600, lora: null, training: false };
    const e = estimateMemory(llama1b, { ...evalPlan, bindingBytes: GiB });
    const fullLogits = 4 * 600 * 128256 * 4; // the buffer the engine used to need
    expect(fullLogits).toBeGreaterThan(GiB);
    expect(e.largest.bytes).toBeLessThanOrEqual(GiB);
    expect(() => checkMemory(e, adapter(GiB), 8 * GiB)).not.toThrow();
    // Training adds one dlogits chunk: the loss head stays within 2 × 64 MiB plus its per-row state.
    const train = estimateMemory(llama1b, { ...plan, seqLen: 600, bindingBytes: GiB });
    const withoutHead = estimateMemory(llama1b, { ...plan, seqLen: 600, bindingBytes: GiB, lossChunkRows: 64 });
    expect(train.activations - withoutHead.activations).toBeLessThan(2 * 64 * MiB);
  });

  it('splits an embedding over the binding limit into row parts instead of refusing it', () => {
    // Llama-3.1-8B in f32: the embedding is 128256 × 4096 × 4 = 2.1 GB, over a 1 GiB binding: two parts of 64128 rows.
    const e = estimateMemory(llama8b, { ...plan, weights: 'f32', bindingBytes: GiB });
    expect(e.largest.bytes).toBeLessThanOrEqual(GiB);
    expect(e.largest.name).toMatch(/^(model\.embed_tokens|lm_head)\.weight \(one of 2 parts\)$/);
  });

  it('refuses a job over the budget, saying what it needs and what is available', () => {
    const e = estimateMemory(llama1b, plan);
    try {
      checkMemory(e, adapter(2 * GiB), 2 * GiB);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GradPruneError);
      expect((err as GradPruneError).code).toBe('memory');
      expect((err as GradPruneError).message).toMatch(/needs \d+\.\d+ GiB of GPU memory \(weights 2\.3\d* GiB.*more than the 2 GiB available/);
    }
    expect(() => checkMemory(e, adapter(2 * GiB), 32 * GiB)).not.toThrow();
  });

  it('refuses an activation larger than one storage binding, naming it', () => {
    const e = estimateMemory(llama1b, { ...plan, bindingBytes: 32 * MiB });
    // (B·T, intermediate) = 2048 × 8192 f32 = 64 MiB
    expect(() => checkMemory(e, adapter(4 * GiB, 32 * MiB), 64 * GiB)).toThrow(/activation \(B, T, intermediate\) needs 64 MiB, over this GPU's largest binding \(32 MiB\).*smaller batch/);
  });
});

describe('resident or streamed', () => {
  // Per decoder layer of Llama-3.1-8B: q, o 4096²; k, v 1024 × 4096; gate, up, down 14336 × 4096; two norms of 4096.
  const layerParams = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096;
  const layerBytesF16 = 2 * layerParams + 2 * 4096 * 4;
  const scoring: MemoryPlan = { batchSize: 4, seqLen: 256, lora: DEFAULT_LORA, weights: 'f16', checkpointing: false, training: true };
  const gpu16 = adapter(4 * GiB, 2 * GiB);

  it('streams Llama-3.1-8B scoring (4 × 256, f16) on a 16 GB GPU, saying what it needs in host memory and uploads', () => {
    const { residency, estimate } = planResidency(llama8b, scoring, gpu16, 'auto', 16e9);
    expect(residency).toBe('streamed');
    expect(estimate.total).toBeLessThanOrEqual(16e9);
    // Host memory keeps as many layers as fit 4 GiB (9 of 32); the other 23 are re-read from the files at each upload.
    expect(estimate.hostBytes).toBe(Math.floor(4 * GiB / layerBytesF16) * layerBytesF16);
    expect(estimate.rereadLayers).toBe(32 - 9);
    expect(estimateMemory(llama8b, { ...scoring, residency: 'streamed', hostCacheBytes: 64 * GiB }).hostBytes).toBe(32 * layerBytesF16);
    expect(estimate.uploadBytesPerStep).toBe(2 * 30 * layerBytesF16);
    // The resident job would not fit the same budget.
    expect(() => checkMemory(estimateMemory(llama8b, { ...scoring, bindingBytes: 2 * GiB }), gpu16, 16e9)).toThrow(/more than the 14\.9\d* GiB available/);
  });

  it('keeps a model resident when it fits, and refuses when even streaming does not fit', () => {
    expect(planResidency(llama1b, plan, gpu16, 'auto', 16e9).residency).toBe('resident');
    expect(() => planResidency(llama8b, scoring, gpu16, 'auto', 2e9)).toThrow(/even with the weights streamed layer by layer/);
    expect(planResidency(llama1b, plan, gpu16, 'streamed', 16e9).estimate.residency).toBe('streamed');
  });
});
