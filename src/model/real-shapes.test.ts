// The seven published configs in shared/configs, as header-only sparse checkpoints of their real shapes and
// shards (weights left as holes: no disk, nothing read but headers and tokenizers): openCheckpoint accepts
// them, the parameter counts are exact against arithmetic from config.json and the published totals,
// `gradprune inspect` reports the 8B's 4 shards of ~5 GB without calling them truncated, and plans on real
// shapes prune and keep the layers the rules say.

import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../cli/main';
import { makePlan } from '../gradprune/plan';
import { REAL_MODELS, realConfigPath, writeSparseCheckpoint, type RealModel, type SparseCheckpoint } from '../testing/sparse-checkpoint';
import { openCheckpoint } from './checkpoint';
import { normalizeConfig } from './config';
import { openFolder } from './node-files';
import { summarizeModel } from './summary';

/**
 * Published totals (the model cards / safetensors metadata). Every one agrees with the arithmetic below.
 * Qwen3-0.6B: 596,049,920 is the model's own parameters with lm_head tied to embed_tokens (what we check);
 * the 751,632,384 Hugging Face shows counts the stored lm_head copy (151,936 × 1,024 = 155,582,464) again.
 */
const PUBLISHED: Record<RealModel, number> = {
  'llama-3.2-1b': 1_235_814_400,
  'llama-3.1-8b': 8_030_261_248,
  'mistral-7b-v0.3': 7_248_023_552,
  'qwen2.5-0.5b': 494_032_768,
  'qwen2.5-7b': 7_615_616_512,
  'qwen3-0.6b': 596_049_920,
  'qwen3-8b': 8_190_735_360,
};

/**
 * The real tokenizers (Llama-3.1's, Qwen3's, and Llama-2's for Mistral's 32,768-token vocabulary) on three models:
 * openCheckpoint checks them against vocab_size. The others get the fixtures' tiny tokenizer: a real one takes
 * a second or two to build and says nothing about shapes.
 */
const REAL_TOKENIZER: readonly RealModel[] = ['llama-3.1-8b', 'mistral-7b-v0.3', 'qwen3-8b'];

/** Shards as published: save_pretrained's max_shard_size, and how many files that gives. */
const SHARDING: Record<RealModel, { shardBytes: number; files: number }> = {
  'llama-3.2-1b': { shardBytes: 5e9, files: 1 },
  'llama-3.1-8b': { shardBytes: 5e9, files: 4 },
  'mistral-7b-v0.3': { shardBytes: 5e9, files: 3 },
  'qwen2.5-0.5b': { shardBytes: 5e9, files: 1 },
  'qwen2.5-7b': { shardBytes: 4e9, files: 4 },
  'qwen3-0.6b': { shardBytes: 5e9, files: 1 },
  'qwen3-8b': { shardBytes: 4e9, files: 5 },
};

/** Parameter counts from config.json fields alone (written here, not taken from src/model). */
function arithmetic(c: Record<string, number | boolean | string>) {
  const C = c.hidden_size as number;
  const L = c.num_hidden_layers as number;
  const H = c.num_attention_heads as number;
  const KV = c.num_key_value_heads as number;
  const D = typeof c.head_dim === 'number' ? c.head_dim : C / H;
  const I = c.intermediate_size as number;
  const V = c.vocab_size as number;
  const attention = C * H * D + 2 * C * KV * D + H * D * C;
  const mlp = 3 * C * I;
  const norms = 2 * C;
  const qkvBias = c.model_type === 'qwen2' ? H * D + 2 * KV * D : 0;
  const qkNorm = c.model_type === 'qwen3' ? 2 * D : 0;
  const perLayer = attention + mlp + norms + qkvBias + qkNorm;
  const embeddings = V * C;
  const lmHead = c.tie_word_embeddings ? 0 : V * C;
  return { perLayer, embeddings, lmHead, allLayers: L * perLayer, finalNorm: C, total: embeddings + L * perLayer + C + lmHead };
}

const ckpts = new Map<RealModel, SparseCheckpoint>();
const configs = new Map<RealModel, Record<string, number | boolean | string>>();

beforeAll(async () => {
  for (const m of REAL_MODELS) {
    configs.set(m, JSON.parse(await readFile(realConfigPath(m), 'utf8')));
    const tokenizer = REAL_TOKENIZER.includes(m) ? undefined : 'tiny';
    ckpts.set(m, await writeSparseCheckpoint(m, { shardBytes: SHARDING[m].shardBytes, tokenizer }));
  }
});
afterAll(async () => {
  await Promise.all([...ckpts.values()].map((c) => c.remove()));
});

describe('sparse checkpoints of the published configs', () => {
  it('shard like the published checkpoints (Llama-3.1-8B: 4 files, the first three over 4 GiB)', () => {
    for (const m of REAL_MODELS) {
      const ck = ckpts.get(m)!;
      expect(ck.shards.length, m).toBe(SHARDING[m].files);
      expect(ck.totalSize, m).toBe(PUBLISHED[m] * 2);
      for (const s of ck.shards) expect(s.size - s.layout.dataStart, `${m} ${s.name}`).toBeLessThanOrEqual(SHARDING[m].shardBytes);
    }
    const llama = ckpts.get('llama-3.1-8b')!;
    expect(llama.shards.map((s) => s.name)).toEqual([1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`));
    // The published index says total_size 16,060,522,496 (BF16).
    expect(llama.totalSize).toBe(16_060_522_496);
    for (const s of llama.shards.slice(0, 3)) expect(s.size).toBeGreaterThan(2 ** 32);
    // The published files are 4.98, 5.00, 4.92 and 1.17 GB.
    expect(llama.shards.map((s) => (s.size / 1e9).toFixed(2))).toEqual(['4.98', '5.00', '4.92', '1.17']);
  });

  for (const m of REAL_MODELS) {
    it(`${m}: openCheckpoint accepts it; parameter counts are exact`, async () => {
      const ck = ckpts.get(m)!;
      const files = await openFolder(ck.dir);
      for (const s of ck.shards) expect(files.get(s.name)!.size, s.name).toBe(s.size);
      const ckpt = await openCheckpoint(files);
      expect(ckpt.dtype).toBe('BF16');
      if (REAL_TOKENIZER.includes(m)) {
        const vocab = { 'llama-3.1-8b': 128_256, 'mistral-7b-v0.3': 32_000, 'qwen3-8b': 151_669 }[m as string];
        expect(ckpt.tokenizer.vocabSize).toBe(vocab);
      }
      expect(ckpt.extraTensors).toEqual([]);
      const s = summarizeModel(ckpt);
      const want = arithmetic(configs.get(m)!);
      expect(s.params).toEqual(want);
      expect(s.params.total).toBe(PUBLISHED[m]);
      expect(s.tensorCount).toBe(ck.tensors.length);
      expect(s.weightBytes.stored).toBe(2 * PUBLISHED[m]);
      expect(s.numLayers).toBe(configs.get(m)!.num_hidden_layers);
      // Every shard's size is what the summary lists (exact past 4 GiB).
      for (const sh of ck.shards) expect(s.files.find((f) => f.name === sh.name)!.bytes).toBe(sh.size);
      // Every tensor's range: where the header put it, in the shard the index names.
      for (const t of ck.tensors) {
        const info = ckpt.store.info(t.name);
        const layout = ck.shards.find((x) => x.name === t.shard)!.layout;
        expect(info.file).toBe(t.shard);
        expect([info.begin, info.end]).toEqual([layout.ranges.get(t.name)!.begin, layout.ranges.get(t.name)!.end]);
      }
    });
  }

  it('Qwen3-0.6B with the tied lm_head also stored: 596,049,920 used, the copy ignored, 751,632,384 stored', async () => {
    const raw = configs.get('qwen3-0.6b')!;
    const ck = await writeSparseCheckpoint('qwen3-0.6b', { storeTiedHead: true, tokenizer: 'tiny' });
    try {
      const ckpt = await openCheckpoint(await openFolder(ck.dir));
      expect(ckpt.extraTensors).toEqual(['lm_head.weight']);
      const s = summarizeModel(ckpt);
      expect(s.params.total).toBe(596_049_920);
      const stored = [...ckpt.store.tensors.values()].reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
      expect(stored).toBe(751_632_384);
      expect(stored - s.params.total).toBe((raw.vocab_size as number) * (raw.hidden_size as number));
    } finally {
      await ck.remove();
    }
  });
});

/** Collects what a command prints. */
function memoryIO() {
  const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += `${t}\n`), err: (t: string) => void (io.stderr += `${t}\n`) };
  return io;
}

describe('gradprune inspect on Llama-3.1-8B (4 shards of ~5 GB)', () => {
  it('prints the exact count and the shard sizes, and no truncation error', async () => {
    const ck = ckpts.get('llama-3.1-8b')!;
    const io = memoryIO();
    expect(await main(['inspect', ck.dir, '--no-gpu'], io)).toBe(0);
    expect(io.stderr).not.toMatch(/gradprune:/);
    expect(io.stdout).not.toMatch(/truncated/);
    expect(io.stdout).toMatch(/^llama-3\.1-8b: LlamaForCausalLM \(llama\), BF16 weights/);
    expect(io.stdout).toMatch(/total\s+8,030,261,248 \(8\.03 B\)/);
    expect(io.stdout).toMatch(/lm_head\s+525,336,576 \(525 M\)/);
    expect(io.stdout).toMatch(/per layer\s+218,112,000 \(218 M\)/);
    // 16,060,522,496 bytes = 14.96 GiB, printed as 15 GiB; each of the first three shards is over 4 GiB (4.6 GiB), not its size modulo 2^32.
    expect(io.stdout).toMatch(/stored as BF16\s+15 GiB/);
    for (const s of ck.shards.slice(0, 3)) expect(io.stdout).toMatch(new RegExp(`${s.name}\\s+4\\.\\d\\d GiB`));
    expect(io.stdout).toMatch(/model-00004-of-00004\.safetensors\s+1\.09 GiB/);
  });
});

describe('plans on real shapes, from synthetic layer scores', () => {
  it('Llama-3.1-8B: prune 12 of 32 (the paper\'s ~40% of block parameters), merge 3, last layer important', () => {
    const config = normalizeConfig(configs.get('llama-3.1-8b')!);
    // Importance falls with depth, except the last layer: s_i = 32 − i, s_31 = 100.
    const scores = Array.from({ length: 32 }, (_, i) => (i === 31 ? 100 : 32 - i));
    const plan = makePlan(scores, config, { prune: 12 });
    // The 12 lowest: layers 30 (s=2) down to 19 (s=13); of those the 3 highest (19, 20, 21) merge into 18.
    expect(plan.pruned).toEqual([19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(plan.merged).toEqual([19, 20, 21]);
    expect(plan.dropped).toEqual([22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(plan.receiver).toEqual({ 19: 18, 20: 18, 21: 18 });
    expect(plan.kept).toEqual([...Array.from({ length: 19 }, (_, i) => i), 31]);
    expect(plan.newIndex[31]).toBe(19);
    // One Llama-3.1-8B layer: 2·4096 + 4096² + 2·4096·1024 + 4096² + 3·4096·14336 = 218,112,000.
    const layer = 218_112_000;
    expect(plan.before.params).toBe(8_030_261_248);
    expect(plan.after.params).toBe(8_030_261_248 - 12 * layer);
    expect(plan.after.params).toBe(5_412_917_248);
    expect(plan.after.decoderParams).toBe(20 * layer);
    expect(plan.dtype).toBe('BF16');
    expect(plan.after.weightBytes).toBe(2 * 5_412_917_248);
    // 40% of the layers rounds to 13; a 5.5B target needs 8,030,261,248 − n·218,112,000 ≤ 5.5e9, so n = 12.
    expect(makePlan(scores, config, { pruneRatio: 0.4 }).pruned).toHaveLength(13);
    expect(makePlan(scores, config, { targetParams: 5.5e9 }).pruned).toHaveLength(12);
  });

  it('Qwen3-0.6B with equal scores: the deepest layers go first, the lowest of them merge', () => {
    const config = normalizeConfig(configs.get('qwen3-0.6b')!);
    const scores = new Array(28).fill(1);
    const plan = makePlan(scores, config, { prune: 8 });
    expect(plan.pruned).toEqual([20, 21, 22, 23, 24, 25, 26, 27]);
    expect(plan.merged).toEqual([20, 21, 22]);
    expect(plan.receiver).toEqual({ 20: 19, 21: 19, 22: 19 });
    const guarded = makePlan(scores, config, { prune: 8, protectLast: true });
    expect(guarded.pruned).toEqual([19, 20, 21, 22, 23, 24, 25, 26]);
    expect(guarded.kept).toEqual([...Array.from({ length: 19 }, (_, i) => i), 27]);
    expect(guarded.receiver).toEqual({ 19: 18, 20: 18, 21: 18 });
    // A Qwen3-0.6B layer: 2·1024 + 1024·2048 + 2·1024·1024 + 2048·1024 + 3·1024·3072 + 2·128 = 15,730,944; tied head.
    const layer = 15_730_944;
    expect(plan.before.params).toBe(596_049_920);
    expect(plan.after.params).toBe(596_049_920 - 8 * layer);
  });
});
