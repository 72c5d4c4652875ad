// A real vocabulary through the whole engine: Llama-3's 128256 tokens (text tokenized by its real tokenizer) on a
// model with tiny layers. The lm_head + cross-entropy run in row chunks, so the (B·T, V) logits are never whole;
// loss and every LoRA gradient equal the float32 CPU reference (which does materialise the logits), and the
// chunked loss head allocates a fraction of what the logits alone would take.
import { describe, expect, it } from 'vitest';
import { batchOfRows } from '../data/batch';
import { randomStore } from '../bench/random-model';
import { normalizeConfig } from '../model/config';
import { loadTokenizer } from '../model/tokenizer';
import { openFolder } from '../model/node-files';
import { testGpu } from '../testing/gpu';
import { tokenizerDir } from '../testing/sparse-checkpoint';
import { DEFAULT_LORA, initLoraAdapters } from './lora';
import { GpuModel } from './model';
import { relError, relL2 } from './reference/compare';
import { loraState, ReferenceModel } from './reference/model';
import { loadModelWeights } from './reference/weights';

const gpu = await testGpu();

const V = 128256;
const config = normalizeConfig({
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: V, hidden_size: 64, intermediate_size: 96,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 500000,
  max_position_embeddings: 256, tie_word_embeddings: false,
});

describe('a 128256-token vocabulary with tiny layers', () => {
  it('gives the CPU reference loss and LoRA gradients with the logits in row chunks', async () => {
    const tokenizer = await loadTokenizer(await openFolder(tokenizerDir('llama3_1')));
    const texts = ['The quick brown fox jumps over the lazy dog near the riverbank.', 'Pruning removes the layers a task does not need: 𝛼β, 東京, naïve café.'];
    const rows = texts.map((t) => tokenizer.encode(t, { addSpecialTokens: true }));
    const T = Math.max(...rows.map((r) => r.length));
    const B = rows.length;
    expect(Math.max(...rows.flat())).toBeGreaterThan(100_000); // ids from the top of the vocabulary are in play
    const ids = new Int32Array(B * T);
    const mask = new Int32Array(B * T);
    rows.forEach((r, b) => r.forEach((id, t) => ((ids[b * T + t] = id), (mask[b * T + t] = t > 0 ? 1 : 0))));

    const store = await randomStore(config, 11);
    const adapters = initLoraAdapters(config, DEFAULT_LORA, 4).map((a) => ({ ...a, B: a.B.map((_, i) => Math.sin(i) * 0.02) }));
    const cpu = new ReferenceModel(await loadModelWeights(config, store), loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const expected = cpu.lossAndGrads(ids, mask, B, T);

    // 16 rows per chunk: B·T rows in several chunks, the last one ragged.
    const model = await GpuModel.load(gpu, config, store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, lossChunkRows: 16 });
    const batch = batchOfRows(rows, rows.map((r) => r.map((_, t) => (t > 0 ? 1 : 0))));
    const { loss, count } = await model.run(batch, true);
    expect(count).toBe(rows.reduce((n, r) => n + r.length - 1, 0));
    expect(relError(loss, expected.loss)).toBeLessThanOrEqual(1e-5);
    for (const a of await model.readAdapters()) {
      const g = expected.grads.get(a.name)!;
      expect(relL2(a.dA, g.dA), `${a.name} dA`).toBeLessThanOrEqual(1e-4);
      expect(relL2(a.dB, g.dB), `${a.name} dB`).toBeLessThanOrEqual(1e-4);
    }
    // The job's buffers all together are smaller than the (B·T, V) logits and their gradient would be.
    expect(model.jobBytes).toBeLessThan(2 * B * T * V * 4);
    model.destroy();
  });
});
