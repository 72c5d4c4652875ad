// The GGUF file as bytes: read back by a reader written here from the GGUF v3 spec (not the writer's code), checked
// against llama.cpp's conventions and the fixtures' own tensors; Q8_0 blocks as ggml defines them; and what GGUF
// cannot express refused before anything is written.

import { mkdtemp, readFile, rm, writeFile, copyFile, mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16BitsToNumber, numberToF16Bits } from '../../model/dtype';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { cli } from '../../testing/cli';
import { fixtureDir } from '../../testing/paths';
import { planGguf } from './gguf';
import { encodeQ8_0 } from './quantize';
import { ropeFreqs } from './tensors';
import { normalizeConfig } from '../../model/config';

interface ReadTensor { name: string; ne: number[]; type: number; offset: number }
interface ReadGguf { version: number; kv: Map<string, unknown>; tensors: Map<string, ReadTensor>; dataStart: number; bytes: Uint8Array }

/** GGUF v3, from the spec: header, key/values, tensor infos, data aligned to general.alignment (32). */
function readGguf(bytes: Uint8Array): ReadGguf {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), view.getUint32(at - 4, true));
  const u64 = () => ((at += 8), Number(view.getBigUint64(at - 8, true)));
  const str = () => {
    const n = u64();
    at += n;
    return new TextDecoder().decode(bytes.subarray(at - n, at));
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 4: return u32();
      case 5: return ((at += 4), view.getInt32(at - 4, true));
      case 6: return ((at += 4), view.getFloat32(at - 4, true));
      case 7: return ((at += 1), bytes[at - 1] === 1);
      case 8: return str();
      case 9: {
        const inner = u32();
        return Array.from({ length: u64() }, () => value(inner));
      }
      case 10: return u64();
      default: throw new Error(`value type ${type} not expected here`);
    }
  };
  expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
  at = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    kv.set(key, value(u32()));
  }
  const tensors = new Map<string, ReadTensor>();
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const ne = Array.from({ length: u32() }, () => u64());
    tensors.set(name, { name, ne, type: u32(), offset: u64() });
  }
  return { version, kv, tensors, dataStart: Math.ceil(at / 32) * 32, bytes };
}

let tmp: string;
beforeAll(async () => void (tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-gguf-file-'))));
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function exportFile(dir: string, dtype = 'f16', name = `${path.basename(dir)}-${dtype}.gguf`) {
  const out = path.join(tmp, name);
  const r = await cli('export', dir, '--format', 'gguf', '--dtype', dtype, '--out', out);
  return { ...r, out };
}

const f16Row = (g: ReadGguf, t: ReadTensor, row: number): number[] => {
  const cols = t.ne[0];
  const start = g.dataStart + t.offset + row * cols * 2;
  const bits = new Uint16Array(g.bytes.slice(start, start + cols * 2).buffer);
  return Array.from(bits, f16BitsToNumber);
};

describe('the GGUF file of each fixture', () => {
  it.each([
    ['tiny-llama', 'llama', { tied: false, bias: false, qkNorm: false, keyLength: undefined }],
    ['tiny-mistral', 'llama', { tied: false, bias: false, qkNorm: false, keyLength: undefined }],
    ['tiny-qwen2', 'qwen2', { tied: true, bias: true, qkNorm: false, keyLength: undefined }],
    ['tiny-qwen3', 'qwen3', { tied: true, bias: false, qkNorm: true, keyLength: 24 }],
  ] as const)('%s: architecture %s, hyperparameters, tensor names and aligned offsets as llama.cpp reads them', async (name, arch, want) => {
    const { code, out } = await exportFile(fixtureDir(name));
    expect(code).toBe(0);
    const g = readGguf(new Uint8Array(await readFile(out)));
    const config = JSON.parse(await readFile(path.join(fixtureDir(name), 'config.json'), 'utf8'));
    expect(g.version).toBe(3);
    expect(g.kv.get('general.architecture')).toBe(arch);
    expect(g.kv.get('general.file_type')).toBe(1);
    expect(g.kv.get(`${arch}.block_count`)).toBe(config.num_hidden_layers);
    expect(g.kv.get(`${arch}.embedding_length`)).toBe(config.hidden_size);
    expect(g.kv.get(`${arch}.feed_forward_length`)).toBe(config.intermediate_size);
    expect(g.kv.get(`${arch}.attention.head_count`)).toBe(config.num_attention_heads);
    expect(g.kv.get(`${arch}.attention.head_count_kv`)).toBe(config.num_key_value_heads);
    expect(g.kv.get(`${arch}.context_length`)).toBe(config.max_position_embeddings);
    expect(g.kv.get(`${arch}.attention.key_length`)).toBe(want.keyLength);
    expect(g.kv.get(`${arch}.attention.layer_norm_rms_epsilon`)).toBeCloseTo(config.rms_norm_eps, 12);
    expect(g.kv.get(`${arch}.rope.freq_base`)).toBe(config.rope_theta ?? config.rope_parameters.rope_theta);
    expect(g.kv.get('tokenizer.ggml.model')).toBe('llama');
    expect((g.kv.get('tokenizer.ggml.tokens') as string[]).length).toBe(config.vocab_size);
    expect(g.kv.get('tokenizer.ggml.add_bos_token')).toBe(true);
    expect(g.tensors.has('output.weight')).toBe(!want.tied);
    expect(g.tensors.has('blk.0.attn_q.bias')).toBe(want.bias);
    expect(g.tensors.has('blk.0.attn_q_norm.weight')).toBe(want.qkNorm);
    expect(g.tensors.get('token_embd.weight')!.ne).toEqual([config.hidden_size, config.vocab_size]);
    expect(g.tensors.get('blk.0.attn_norm.weight')!.type).toBe(0); // f32
    for (const t of g.tensors.values()) expect(t.offset % 32).toBe(0);
    const last = [...g.tensors.values()].at(-1)!;
    const lastBytes = last.ne.length === 1 ? last.ne[0] * 4 : last.ne[0] * last.ne[1] * 2;
    expect((await stat(out)).size).toBe(g.dataStart + Math.ceil((last.offset + lastBytes) / 32) * 32);
  });

  it('stores the embedding as its f16 values, and q/k rows of the llama architecture permuted per head as llama.cpp rotates pairs', async () => {
    const { out } = await exportFile(fixtureDir('tiny-llama'));
    const g = readGguf(new Uint8Array(await readFile(out)));
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')));
    const C = ckpt.config.hiddenSize, HD = ckpt.config.headDim;
    const embed = await ckpt.store.readF32('model.embed_tokens.weight');
    const roundF16 = (x: number) => f16BitsToNumber(numberToF16Bits(x));
    expect(f16Row(g, g.tensors.get('token_embd.weight')!, 5)).toEqual(Array.from(embed.subarray(5 * C, 6 * C), roundF16));
    // Head h, rotary pair i: Hugging Face's rows (i, i + HD/2) become GGUF rows (2i, 2i + 1).
    for (const [gguf, hf] of [['blk.1.attn_q.weight', 'model.layers.1.self_attn.q_proj.weight'], ['blk.1.attn_k.weight', 'model.layers.1.self_attn.k_proj.weight']]) {
      const w = await ckpt.store.readF32(hf);
      const t = g.tensors.get(gguf)!;
      for (const [h, i] of [[0, 0], [1, 3], [1, HD / 2 - 1]]) {
        expect(f16Row(g, t, h * HD + 2 * i)).toEqual(Array.from(w.subarray((h * HD + i) * C, (h * HD + i + 1) * C), roundF16));
        expect(f16Row(g, t, h * HD + 2 * i + 1)).toEqual(Array.from(w.subarray((h * HD + i + HD / 2) * C, (h * HD + i + HD / 2 + 1) * C), roundF16));
      }
    }
  });

  it('q8_0: general.file_type 7, Q8_0 where rows are whole blocks of 32, f16 where not (as the converter falls back)', async () => {
    const { code, out, stderr } = await exportFile(fixtureDir('tiny-llama'), 'q8_0'); // hidden 64, intermediate 176
    expect(code).toBe(0);
    expect(stderr).toMatch(/6 matrices have rows that are not whole Q8_0 blocks of 32 and are stored as f16/);
    const g = readGguf(new Uint8Array(await readFile(out)));
    expect(g.kv.get('general.file_type')).toBe(7);
    expect(g.tensors.get('token_embd.weight')!.type).toBe(8);
    expect(g.tensors.get('blk.0.attn_q.weight')!.type).toBe(8);
    expect(g.tensors.get('blk.0.ffn_down.weight')!.type).toBe(1); // ne[0] = 176
    expect(g.tensors.get('blk.0.ffn_norm.weight')!.type).toBe(0);
    const embd = g.tensors.get('token_embd.weight')!;
    const next = [...g.tensors.values()][[...g.tensors.keys()].indexOf('token_embd.weight') + 1];
    expect(next.offset - embd.offset).toBe(Math.ceil((512 * 2 * 34) / 32) * 32); // 512 rows × 2 blocks × 34 bytes
  });
});

describe('Q8_0 blocks', () => {
  it('are an f16 scale max|x|/127 and 32 int8 round(x/scale), half away from zero', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => (i < 32 ? (i - 16) / 4 : 0));
    const q = encodeQ8_0(x);
    expect(q.byteLength).toBe(2 * 34);
    const view = new DataView(q.buffer);
    const d = f16BitsToNumber(view.getUint16(0, true));
    expect(d).toBeCloseTo(4 / 127, 4);
    for (let i = 0; i < 32; i++) {
      const qi = view.getInt8(2 + i);
      expect(qi).toBe(Math.sign(x[i]) * Math.round(Math.abs(x[i]) * 127 / 4));
      expect(Math.abs(qi * d - x[i])).toBeLessThanOrEqual(d / 2 + 1e-3);
    }
    expect(view.getInt8(2)).toBe(-127); // the largest magnitude maps to ±127
    expect(Array.from(q.subarray(34))).toEqual(new Array(34).fill(0)); // a zero block: d = 0, q = 0
  });
});

describe('Llama-3 RoPE scaling as rope_freqs', () => {
  it('divides low frequencies by the factor, keeps high ones, and blends between (transformers\' llama3 bands)', () => {
    const config = normalizeConfig({
      model_type: 'llama', hidden_size: 2048, num_hidden_layers: 1, num_attention_heads: 32, intermediate_size: 64, vocab_size: 16, rope_theta: 500000,
      rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    });
    const f = ropeFreqs(config)!;
    expect(f.length).toBe(32);
    expect(f[0]).toBe(1);
    expect(f[31]).toBe(32);
    for (let i = 0; i < 32; i++) {
      const inv = 500000 ** (-(2 * i) / 64);
      const wavelen = (2 * Math.PI) / inv;
      const want = wavelen < 8192 / 4 ? inv : wavelen > 8192 ? inv / 32 : (() => {
        const s = (8192 / wavelen - 1) / (4 - 1);
        return (1 - s) * (inv / 32) + s * inv;
      })();
      expect(inv / f[i]).toBeCloseTo(want, 10);
    }
  });
});

describe('what GGUF cannot express is refused before anything is written', () => {
  async function variant(name: string, edit: (files: { config: Record<string, unknown>; tokenizer: Record<string, unknown> }) => void): Promise<string> {
    const from = fixtureDir('tiny-qwen3');
    const dir = path.join(tmp, name);
    await mkdir(dir);
    const config = JSON.parse(await readFile(path.join(from, 'config.json'), 'utf8'));
    const tokenizer = JSON.parse(await readFile(path.join(from, 'tokenizer.json'), 'utf8'));
    edit({ config, tokenizer });
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
    for (const f of ['model.safetensors', 'tokenizer_config.json']) await copyFile(path.join(from, f), path.join(dir, f));
    return dir;
  }

  it.each([
    ['byte-level BPE with a split pattern llama.cpp has no name for', 'unknown-pre', (f: { tokenizer: Record<string, unknown> }) => {
      const model = f.tokenizer.model as Record<string, unknown>;
      model.byte_fallback = false;
      f.tokenizer.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: '\\w+|\\s+' }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, use_regex: false }] };
    }, /tokenizer\.json: the byte-level pre-tokenizer splits by the pattern .* that llama\.cpp has no named pre-tokenizer for/],
    ['a BPE tokenizer with neither byte fallback nor byte-level', 'no-fallback', (f: { tokenizer: Record<string, unknown> }) => {
      (f.tokenizer.model as Record<string, unknown>).byte_fallback = false;
    }, /tokenizer\.json: a BPE tokenizer with neither byte fallback nor a ByteLevel pre-tokenizer, which GGUF cannot express/],
  ])('%s', async (_what, name, edit, message) => {
    const dir = await variant(name, edit);
    const r = await exportFile(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    await expect(stat(r.out)).rejects.toThrow();
  });

  it('a Qwen3 model with attention biases (llama.cpp\'s qwen3 has none), by the config alone', async () => {
    const config = normalizeConfig({ ...JSON.parse(await readFile(path.join(fixtureDir('tiny-qwen3'), 'config.json'), 'utf8')), attention_bias: true });
    const source = { name: 'x', config, store: null as never, tokenizer: null as never, files: new Map() };
    await expect(planGguf(source, 'f16')).rejects.toThrow(/config\.json: "attention_bias": true on a Qwen3 model, which llama\.cpp's qwen3 architecture has no tensors for/);
  });

  it('an existing --out without --overwrite, and an --out inside the model folder', async () => {
    const out = path.join(tmp, 'exists.gguf');
    await writeFile(out, 'keep me');
    const r = await cli('export', fixtureDir('tiny-llama'), '--format', 'gguf', '--out', out);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already exists/);
    expect(await readFile(out, 'utf8')).toBe('keep me');
    const inside = await cli('export', fixtureDir('tiny-llama'), '--format', 'gguf', '--out', path.join(fixtureDir('tiny-llama'), 'model.gguf'));
    expect(inside.stderr).toMatch(/inside the model folder/);
    const again = await cli('export', fixtureDir('tiny-llama'), '--format', 'gguf', '--out', out, '--overwrite');
    expect(again.code).toBe(0);
    expect(readGguf(new Uint8Array(await readFile(out))).kv.get('general.architecture')).toBe('llama');
  });
});
