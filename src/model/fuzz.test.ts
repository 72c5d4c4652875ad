// Fuzzing the model-file readers (fast-check): the safetensors header parser, the shard index reader and the
// config normaliser, with mutated valid inputs and arbitrary ones. Each must either accept its input, keeping its
// promises (tensors tile the data exactly; a config's sizes are bounded), or refuse it with a GradPruneError;
// never another exception, never a hang (a time bound per case), never unbounded memory.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { MAX_CONFIG_SIZE, normalizeConfig } from './config';
import { SAFETENSORS_DTYPE_BYTES, type SafetensorsDType } from './dtype';
import { runs, typedOnly } from '../testing/fuzz';
import { readSafetensorsIndex } from './safetensors-index';
import { SafetensorsFile, TensorStore, encodeSafetensors, numel } from './safetensors';

const DTYPES = Object.keys(SAFETENSORS_DTYPE_BYTES) as SafetensorsDType[];

const tensorsArb = fc.uniqueArray(
  fc.record({
    name: fc.oneof(fc.constantFrom('a', 'b', 'model.norm.weight', '__metadata__x', ''), fc.string({ maxLength: 12 })),
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
  }),
  { selector: (t) => t.name, minLength: 0, maxLength: 5 },
).map((ts) => ts.filter((t) => t.name !== '__metadata__'));

/** A valid safetensors file of the given tensors (random bytes as data), as one byte array. */
async function validFile(tensors: { name: string; dtype: SafetensorsDType; shape: number[] }[], seed: number, metadata?: Record<string, string>): Promise<Uint8Array> {
  const parts = encodeSafetensors(
    tensors.map((t, i) => ({ ...t, data: Uint8Array.from({ length: numel(t.shape) * SAFETENSORS_DTYPE_BYTES[t.dtype] }, (_, k) => (seed + 31 * i + 7 * k) & 0xff) })),
    metadata,
  );
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'length'; delta: number }
  | { kind: 'append'; bytes: number[] };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('length' as const), delta: fc.integer({ min: -16, max: 16 }).filter((d) => d !== 0) }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const b = [...bytes];
  const at = b.length ? m.kind !== 'length' && m.kind !== 'append' ? m.at % (b.length + 1) : 0 : 0;
  switch (m.kind) {
    case 'flip':
      if (at < b.length) b[at] = m.value;
      break;
    case 'insert':
      b.splice(at, 0, ...m.bytes);
      break;
    case 'delete':
      b.splice(at, m.count);
      break;
    case 'truncate':
      b.length = at;
      break;
    case 'length': {
      if (b.length < 8) break;
      const view = new DataView(new Uint8Array(b).buffer);
      const n = Number(view.getBigUint64(0, true)) + m.delta;
      view.setBigUint64(0, BigInt(Math.max(0, n)), true);
      for (let i = 0; i < 8; i++) b[i] = view.getUint8(i);
      break;
    }
    case 'append':
      b.push(...m.bytes);
  }
  return Uint8Array.from(b);
}

/** What an accepted file must hold: every tensor's bytes fit its shape, and together they tile the data exactly. */
function expectTiled(file: SafetensorsFile, size: number): void {
  const ts = [...file.tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataStart = ts.length ? ts[0].begin : size;
  let at = dataStart;
  for (const t of ts) {
    expect(t.begin).toBe(at);
    expect(t.end - t.begin).toBe(numel(t.shape) * SAFETENSORS_DTYPE_BYTES[t.dtype]);
    at = t.end;
  }
  expect(at).toBe(size);
}

const RUNS = runs(1500);

describe('fuzz: the safetensors header parser', () => {
  it('a valid file with one to three byte-level mutations is refused with a GradPruneError or read at the offsets it declares', async () => {
    await fc.assert(
      fc.asyncProperty(tensorsArb, fc.nat(255), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), async (tensors, seed, mutations) => {
        const bytes = mutations.reduce(mutate, await validFile(tensors, seed, { format: 'pt' }));
        const out = await typedOnly(() => SafetensorsFile.open(new Blob([bytes as BlobPart]), 'fuzz.safetensors'));
        if (out instanceof GradPruneError) {
          expect(out.message).toMatch(/^fuzz\.safetensors: /);
          return;
        }
        expectTiled(out, bytes.byteLength);
      }),
      RUNS,
    );
  });

  it('a header of arbitrary JSON is refused with a GradPruneError or accepted whole', async () => {
    const entry = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.record(
        {
          dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
          shape: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -2, max: 6 }), fc.double(), fc.constant(2 ** 53)), { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 })),
          data_offsets: fc.oneof(fc.tuple(fc.integer({ min: -1, max: 64 }), fc.integer({ min: -1, max: 64 })), fc.jsonValue({ maxDepth: 2 })),
        },
        { requiredKeys: [] },
      ),
    );
    const header = fc.dictionary(fc.oneof(fc.constantFrom('__metadata__', 'a', 'b'), fc.string({ maxLength: 6 })), entry, { maxKeys: 5 });
    await fc.assert(
      fc.asyncProperty(fc.oneof(header, fc.jsonValue({ maxDepth: 5 })), fc.integer({ min: 0, max: 64 }), async (h, dataBytes) => {
        const json = new TextEncoder().encode(JSON.stringify(h) ?? 'null');
        const bytes = new Uint8Array(8 + json.byteLength + dataBytes);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.byteLength), true);
        bytes.set(json, 8);
        const out = await typedOnly(() => SafetensorsFile.open(new Blob([bytes]), 'fuzz.safetensors'));
        if (!(out instanceof GradPruneError)) expectTiled(out, bytes.byteLength);
      }),
      RUNS,
    );
  });

  it('arbitrary bytes are refused with a GradPruneError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 96 }), async (bytes) => {
        const out = await typedOnly(() => SafetensorsFile.open(new Blob([bytes as BlobPart]), 'fuzz.safetensors'));
        if (!(out instanceof GradPruneError)) expectTiled(out, bytes.byteLength);
      }),
      runs(1000),
    );
  });
});

describe('fuzz: model.safetensors.index.json', () => {
  const shard = validFile([{ name: 'a', dtype: 'F32', shape: [2] }, { name: 'b', dtype: 'F16', shape: [3] }], 1);
  const weightMap = fc.dictionary(
    fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.string({ maxLength: 6 })),
    fc.oneof(fc.constantFrom('model-00001-of-00001.safetensors', 'other.safetensors', '../x.safetensors', '.safetensors'), fc.jsonValue({ maxDepth: 2 })),
    { maxKeys: 4 },
  );
  const index = fc.oneof(fc.record({ weight_map: weightMap, metadata: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 4 }));

  it('the reader refuses anything but a map of tensor → shard file name with a GradPruneError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(index.map((v) => JSON.stringify(v) ?? ''), fc.string({ maxLength: 64 })), async (text) => {
        const out = await typedOnly(() => readSafetensorsIndex(text));
        if (out instanceof GradPruneError) return;
        for (const [, file] of out) expect(file).toMatch(/^[^\\/]+\.safetensors$/);
      }),
      RUNS,
    );
  });

  it('opening a checkpoint through an arbitrary index fails typed, or every indexed tensor is in its shard', async () => {
    const bytes = await shard;
    await fc.assert(
      fc.asyncProperty(index, async (idx) => {
        const files = new Map<string, Blob>([
          ['model.safetensors.index.json', new Blob([JSON.stringify(idx) ?? ''])],
          ['model-00001-of-00001.safetensors', new Blob([bytes as BlobPart])],
        ]);
        const out = await typedOnly(() => TensorStore.open(files));
        if (out instanceof GradPruneError) return;
        for (const [name, file] of Object.entries((idx as { weight_map: Record<string, string> }).weight_map)) expect(out.info(name).file).toBe(file);
      }),
      runs(1000),
    );
  });
});

describe('fuzz: the config normaliser', () => {
  const base = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    hidden_size: 64,
    intermediate_size: 176,
    num_hidden_layers: 6,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 512,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-5,
  };
  const KEYS = [
    ...Object.keys(base),
    'head_dim', 'hidden_act', 'rope_scaling', 'rope_parameters', 'tie_word_embeddings', 'attention_bias', 'mlp_bias',
    'sliding_window', 'use_sliding_window', 'bos_token_id', 'eos_token_id', 'torch_dtype', 'dtype',
  ];
  const value = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom(0, -1, 1, 2, 3, 1e8, 1e15, 1e300, 2 ** 53, 0.5, 'llama', 'qwen3', 'yarn', 'llama3', true, null),
    fc.record({ rope_type: fc.constantFrom('default', 'linear', 'llama3', 'yarn'), factor: fc.jsonValue({ maxDepth: 1 }), rope_theta: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }),
  );
  const edited = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 4 }).map((patch) => ({ ...base, ...patch }));

  it('normalizeConfig accepts a config with bounded, consistent sizes, or refuses it with a GradPruneError naming config.json', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(edited, fc.jsonValue({ maxDepth: 4 })), async (json) => {
        const out = await typedOnly(() => normalizeConfig(json));
        if (out instanceof GradPruneError) {
          expect(out.message).toMatch(/^config\.json: /);
          return;
        }
        for (const n of [out.numLayers, out.hiddenSize, out.numHeads, out.numKvHeads, out.headDim, out.intermediateSize, out.vocabSize]) {
          expect(Number.isInteger(n) && n > 0 && n <= MAX_CONFIG_SIZE).toBe(true);
        }
        expect(out.numHeads % out.numKvHeads).toBe(0);
        expect(out.maxPositionEmbeddings).toBeGreaterThan(0);
      }),
      runs(3000),
    );
  });
});
