import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import { normalizeConfig } from '../model/config';
import { DEFAULT_LORA } from './lora';
import { checkMemory, estimateMemory, type MemoryPlan } from './memory';

// Llama-3.2-1B's shape: 16 layers, hidden 2048, 32/8 heads of 64, intermediate 8192, vocab 128256, tied.
const llama1b = normalizeConfig({
  model_type: 'llama', hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8,
  intermediate_size: 8192, vocab_size: 128256, tie_word_embeddings: true,
});
const adapter = (maxBufferSize: number, maxStorageBufferBindingSize = maxBufferSize): AdapterSummary => ({
  name: 'test', isSoftware: false, shaderF16: true, timestampQuery: false, subgroups: false,
  maxBufferSize, maxStorageBufferBindingSize, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 10,
});
const plan: MemoryPlan = { batchSize: 4, seqLen: 512, lora: DEFAULT_LORA, weights: 'f16', checkpointing: false, training: true };
const GiB = 2 ** 30;

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
    expect(full.largest).toEqual({ name: 'logits', bytes: 2048 * 128256 * 4 }); // over the f16 embedding's 2 bytes × 128256 × 2048
  });

  it('refuses a job over the budget, saying what it needs and what is available', () => {
    const e = estimateMemory(llama1b, plan);
    try {
      checkMemory(e, adapter(2 * GiB), 8 * GiB);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(GradPruneError);
      expect((err as GradPruneError).code).toBe('memory');
      expect((err as GradPruneError).message).toMatch(/needs \d+\.\d+ GiB of GPU memory \(weights 2\.3\d GiB.*more than the 8\.00 GiB available/);
    }
    expect(() => checkMemory(e, adapter(2 * GiB), 32 * GiB)).not.toThrow();
  });

  it('refuses a buffer larger than one storage binding, naming it', () => {
    const e = estimateMemory(llama1b, plan);
    expect(() => checkMemory(e, adapter(4 * GiB, 256 * 2 ** 20), 64 * GiB)).toThrow(/logits needs 1002\.0 MiB, over this GPU's largest binding \(256\.0 MiB\).*smaller batch/);
  });
});
