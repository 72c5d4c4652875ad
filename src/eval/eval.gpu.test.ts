// Evaluation on the GPU engine against the fixtures: continuation log-likelihoods against sums of the reference
// logits, the fused held-out loss with LoRA against lora_grad's loss, `generate --json` and `eval --json` through the
// CLI, greedy and sampled generation through the KV cache against the CPU reference's recompute path, the
// dense-vs-pruned side-by-side and cost measurement.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, forwardFirstSequence, loraGradFixtureFiles } from '../testing/cli';
import { requestGpu } from '../gpu/device';
import { LINEAR_MODULES, linearShape, normalizeConfig } from '../model/config';
import { openFile, openFolder } from '../model/node-files';
import { SafetensorsFile, TensorStore } from '../model/safetensors';
import { loadTokenizer } from '../model/tokenizer';
import { Generator } from '../nn/generate';
import { GpuModel } from '../nn/model';
import { DEFAULT_LORA, loadLoraAdapters } from '../nn/lora';
import { loadFixtureModel, openReference } from '../nn/reference/fixture';
import { fixtureDir } from '../testing/paths';
import { compareForwardCost } from './cost';
import { gpuScoringModel, loadGenerationEngine } from './engines';
import { generateIds, sideBySide } from './generation';
import { scoreRequests } from './harness';
import { heldOutLoss } from './loss';

describe('GPU scoring on tiny-llama', () => {
  it('continuation log-likelihoods equal sums of the fixture log-softmax', async () => {
    const dir = fixtureDir('tiny-llama');
    const { config, store } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const [, T] = ref.info('input_ids').shape;
    const V = config.vocabSize;
    const ids = Array.from(await ref.readI32('input_ids'));
    const logits = await ref.readF32('logits');
    const handSum = (b: number, from: number, to: number) => {
      let s = 0;
      for (let k = from; k < to; k++) {
        const row = logits.subarray((b * T + k - 1) * V, (b * T + k) * V);
        const max = Math.max(...row);
        s += row[ids[b * T + k]] - max - Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0));
      }
      return s;
    };
    const gpu = await requestGpu();
    const model = await GpuModel.load(gpu, config, store, { batchSize: 2, seqLen: T, lora: null });
    try {
      const seq = (b: number) => ids.slice(b * T, (b + 1) * T);
      const requests = [
        { contextIds: seq(0).slice(0, 12), continuationIds: seq(0).slice(12) },
        { contextIds: seq(1).slice(0, 5), continuationIds: seq(1).slice(5) },
        { contextIds: seq(0).slice(0, 3), continuationIds: seq(0).slice(3, 9) },
      ];
      const scores = await scoreRequests(gpuScoringModel(model), requests, { batchSize: 3 });
      const expected = [handSum(0, 12, T), handSum(1, 5, T), handSum(0, 3, 9)];
      scores.forEach((s, i) => expect(Math.abs(s.logLikelihood - expected[i]), `request ${i}`).toBeLessThan(2e-4 * (1 + Math.abs(expected[i]))));
    } finally {
      model.destroy();
      gpu.device.destroy();
    }
  });

  it('the fused held-out loss with LoRA equals lora_grad.safetensors’ loss', async () => {
    const dir = fixtureDir('tiny-llama');
    const { config, store } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'lora_grad.safetensors');
    const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n));
    const [B, T] = ref.info('input_ids').shape;
    const gpu = await requestGpu();
    // B = 2 < 3 rows: the batch goes through in two chunks and is token-weighted back together.
    const model = await GpuModel.load(gpu, config, store, { batchSize: 2, seqLen: T, lora: DEFAULT_LORA, adapters, training: false });
    try {
      const r = await heldOutLoss(gpuScoringModel(model), [{ inputIds: await ref.readI32('input_ids'), lossMask: await ref.readI32('loss_mask'), B, T, padTokenId: 0 }]);
      const expected = (await ref.readF32('loss'))[0];
      expect(Math.abs(r.loss - expected) / expected).toBeLessThanOrEqual(1e-5);
    } finally {
      model.destroy();
      gpu.device.destroy();
    }
  });
});

describe('generation: the GPU KV cache against the CPU reference recomputing', () => {
  const engines = async (name: string, lora: boolean) => {
    const dir = fixtureDir(name);
    const { config, store } = await loadFixtureModel(dir);
    const lg = await openReference(dir, 'lora_grad.safetensors');
    const adapter = lora ? { config: DEFAULT_LORA, adapters: await loadLoraAdapters(config, DEFAULT_LORA, (n) => lg.readF32(n)) } : null;
    const opts = { maxLength: 24, lora: adapter };
    return { gpu: await loadGenerationEngine(config, store, { kind: 'gpu', ...opts }), cpu: await loadGenerationEngine(config, store, { kind: 'cpu', ...opts }) };
  };

  it.each([
    ['tiny-llama', true],
    ['tiny-qwen2', false],
    ['tiny-qwen3', true],
  ])('%s (LoRA: %s): the same 8 greedy ids, and the same seeded top-k / top-p samples', async (name, lora) => {
    const { gpu, cpu } = await engines(name, lora);
    try {
      expect(gpu.model).toBeInstanceOf(Generator);
      const { ids } = await forwardFirstSequence(name);
      for (const prompt of [ids.slice(0, 5), ids.slice(0, 12)]) {
        const greedy = await generateIds(gpu.model, prompt, { maxNewTokens: 8 });
        expect(greedy.ids).toHaveLength(8);
        expect(greedy).toEqual(await generateIds(cpu.model, prompt, { maxNewTokens: 8 }));
      }
      const sampled = { maxNewTokens: 8, temperature: 1.5, topK: 50, topP: 0.95, seed: 11 };
      const a = await generateIds(gpu.model, ids.slice(0, 3), sampled);
      expect(a).toEqual(await generateIds(cpu.model, ids.slice(0, 3), sampled));
      expect(await generateIds(gpu.model, ids.slice(0, 3), sampled)).toEqual(a);
      expect(await generateIds(gpu.model, ids.slice(0, 3), { ...sampled, stopIds: [a.ids[1]] })).toEqual({ ids: a.ids.slice(0, 2), stop: 'eos' });
      expect(await generateIds(gpu.model, ids.slice(0, 20), { maxNewTokens: 8 })).toMatchObject({ stop: 'max-length' });
    } finally {
      gpu.destroy();
      cpu.destroy();
    }
  });
});

describe('gradprune generate / eval on the GPU', () => {
  it('generate --json: the first greedy token is the argmax of the fixture logits at the last position', async () => {
    const { ids, nextGreedy } = await forwardFirstSequence('tiny-llama');
    const { code, stdout, stderr } = await cli('generate', fixtureDir('tiny-llama'), '--prompt-ids', ids.join(','), '--max-new-tokens', '2', '--json');
    expect(stderr).not.toMatch(/gradprune:/);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.engine).toBe('gpu');
    expect(r.ids[0]).toBe(nextGreedy);
  });

  it('eval --json --lora reproduces the fixture loss on its token rows', async () => {
    const { data, adapter, loss } = await loraGradFixtureFiles('tiny-mistral');
    const { code, stdout, stderr } = await cli('eval', fixtureDir('tiny-mistral'), '--data', data, '--lora', adapter, '--json');
    expect(stderr).not.toMatch(/gradprune:/);
    expect(code).toBe(0);
    const r = JSON.parse(stdout);
    expect(r.engine).toBe('gpu');
    expect(Math.abs(r.loss - loss) / loss).toBeLessThanOrEqual(1e-5);
  });
});

describe('dense vs pruned (tiny-llama, pruned_prune2_merge1)', () => {
  it('answers prompts side by side and measures both models in one run', async () => {
    const dir = fixtureDir('tiny-llama');
    const { config, store } = await loadFixtureModel(dir);
    const tokenizer = await loadTokenizer(await openFolder(dir));
    const prunedFile = 'pruned_prune2_merge1.safetensors';
    const prunedStore = TensorStore.fromFiles([await SafetensorsFile.open(await openFile(path.join(dir, 'reference', prunedFile)), prunedFile)]);
    const prunedConfig = normalizeConfig({ ...config.raw, num_hidden_layers: config.numLayers - 2 });
    const gpu = await requestGpu();
    const opts = { batchSize: 1, seqLen: 16, lora: null } as const;
    const dense = await GpuModel.load(gpu, config, store, opts);
    const pruned = await GpuModel.load(gpu, prunedConfig, prunedStore, opts);
    let denseGen: Generator | null = null;
    let prunedGen: Generator | null = null;
    try {
      const rows = await sideBySide(['Once upon a time', 'The cat'], [
        { label: 'dense', model: (denseGen = new Generator(dense, 16)) },
        { label: 'pruned', model: (prunedGen = new Generator(pruned, 16)) },
      ], tokenizer, { maxNewTokens: 4 });
      expect(rows.map((r) => r.prompt)).toEqual(['Once upon a time', 'The cat']);
      for (const r of rows) {
        expect(r.outputs.map((o) => o.label)).toEqual(['dense', 'pruned']);
        for (const o of r.outputs) {
          expect(o.ids.length).toBeGreaterThan(0);
          expect(o.text).toBe(tokenizer.decode(o.ids, { skipSpecialTokens: true }));
        }
      }

      const cost = await compareForwardCost(dense, pruned, { repeats: 2, warmup: 1 });
      expect(cost.dense.passMs.length).toBe(2);
      expect(cost.pruned.passMs.length).toBe(2);
      expect(cost.speedup).toBeGreaterThan(0);
      // Weights on the GPU (f32): the pruned model has two layers fewer, everything else the same.
      const C = config.hiddenSize;
      const layerParams = 2 * C + LINEAR_MODULES.reduce((s, m) => s + linearShape(config, m)[0] * linearShape(config, m)[1], 0);
      const common = 2 * config.vocabSize * C + C; // embeddings, lm_head (not tied), final norm
      expect(cost.dense.weightBytes).toBe(4 * (common + config.numLayers * layerParams));
      expect(cost.pruned.weightBytes).toBe(4 * (common + (config.numLayers - 2) * layerParams));
      expect(cost.weightRatio).toBeCloseTo(cost.pruned.weightBytes / cost.dense.weightBytes, 12);
    } finally {
      denseGen?.destroy();
      prunedGen?.destroy();
      dense.destroy();
      pruned.destroy();
      gpu.device.destroy();
    }
  });
});
