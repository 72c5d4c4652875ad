// The ONNX writer streams: one weight in hand at a time, external data above protobuf's 2 GiB at real sizes, and a
// failed export leaves nothing under the final name.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { encodeSafetensors } from '../../model/safetensors';
import { fixtureDir } from '../../testing/paths';
import { tempDir } from '../../testing/onnx';
import { writeSparseCheckpoint } from '../../testing/sparse-checkpoint';
import { FolderSink } from '../node-sink';
import { CountingSink } from '../sink';
import { emptyExportStats, WRITE_CHUNK_BYTES } from '../weights';
import { exportOnnxFolder, onnxFolderFiles, onnxWeightsBytes } from './folder';
import { PROTOBUF_LIMIT_BYTES } from './stream';
import protobuf from 'protobufjs';
import { ONNX_PROTO_DESCRIPTOR } from './proto';
import { MemorySink } from '../sink';
import { f16BitsToNumber } from '../../model/dtype';

describe('ONNX export streaming', () => {
  it('writes a ModelProto that protobufjs (an independent reader) decodes: opset, inputs with their symbolic dims, initializers', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen3')));
    const sink = new MemorySink();
    await exportOnnxFolder(sink, ckpt, { precisions: ['fp16'] });
    const ModelProto = protobuf.Root.fromJSON(ONNX_PROTO_DESCRIPTOR).lookupType('onnx.ModelProto');
    const model = ModelProto.toObject(ModelProto.decode(new Uint8Array(await sink.files.get('onnx/model_fp16.onnx')!.arrayBuffer())), { longs: Number }) as {
      irVersion: number;
      opsetImport: { domain?: string; version: number }[];
      graph: { input: { name: string; type: { tensorType: { elemType: number; shape: { dim: { dimValue?: number; dimParam?: string }[] } } } }[]; initializer: { name: string; dataType: number; dims: number[]; rawData: Uint8Array }[] };
    };
    expect(model.irVersion).toBe(8);
    expect(model.opsetImport).toEqual([{ domain: '', version: 17 }]);
    const past = model.graph.input.find((i) => i.name === 'past_key_values.4.value')!;
    expect(past.type.tensorType.elemType).toBe(10); // FLOAT16
    expect(past.type.tensorType.shape.dim).toEqual([{ dimParam: 'batch_size' }, { dimValue: 2 }, { dimParam: 'past_sequence_length' }, { dimValue: 24 }]);
    const qNorm = model.graph.initializer.find((t) => t.name === 'model.layers.0.self_attn.q_norm.weight')!;
    expect(qNorm).toMatchObject({ dataType: 10, dims: [24] });
    const stored = await ckpt.store.readF32('model.layers.0.self_attn.q_norm.weight');
    const bits = new Uint16Array(Uint8Array.from(qNorm.rawData).buffer);
    bits.forEach((h, i) => expect(Math.abs(f16BitsToNumber(h) - stored[i])).toBeLessThanOrEqual(Math.abs(stored[i]) * 2 ** -11));
    expect(model.graph.initializer.some((t) => t.name === 'lm_head.weight')).toBe(false); // tied: the head reads the embedding
  });

  it('holds one weight at a time and writes in bounded pieces (tiny-qwen2, both files)', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')));
    const sink = new CountingSink();
    const stats = emptyExportStats();
    await exportOnnxFolder(sink, ckpt, { stats });
    const embed = 512 * 96;
    expect(stats.largestTensorBytes).toBe(embed * 4);
    expect(stats.peakHeldBytes).toBe(stats.largestTensorBytes);
    expect(stats.bytesWritten).toBe(onnxWeightsBytes(ckpt.config, 'fp32') + onnxWeightsBytes(ckpt.config, 'fp16'));
    expect(sink.committed).toBe(true);
    expect([...sink.sizes.keys()]).toEqual(['onnx/model.onnx', 'onnx/model_fp16.onnx', 'config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('knows every file and its size before writing: inline, and with external data chunks (tiny-qwen2, both files)', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')));
    for (const opts of [{}, { maxInlineBytes: 1024, maxChunkBytes: 150_000 }]) {
      const planned = onnxFolderFiles(ckpt, opts);
      const sink = new CountingSink();
      await exportOnnxFolder(sink, ckpt, opts);
      expect([...planned]).toEqual([...sink.sizes]);
    }
  });

  it('refuses, for the fp16 file, a weight f16 cannot hold, naming the tensor and the element; the fp32 file takes it', async () => {
    const files = new Map(await openFolder(fixtureDir('tiny-llama')));
    const store = (await openCheckpoint(files)).store;
    const big = 'model.layers.1.mlp.down_proj.weight';
    const tensors = await Promise.all([...store.tensors.values()].map(async (t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: await store.readBytes(t.name) })));
    const target = tensors.find((t) => t.name === big)!;
    const values = new Float32Array(target.data.slice().buffer); // the fixture is f32
    values[200] = 1e5; // beyond f16's ±65504, in row 1 of [64, 176]: read in another piece than row 0
    target.data = new Uint8Array(values.buffer);
    files.set('model.safetensors', new Blob(encodeSafetensors(tensors)));
    const ckpt = await openCheckpoint(files);
    await expect(exportOnnxFolder(new CountingSink(), ckpt, { precisions: ['fp16'], pieceBytes: 256 })).rejects.toThrow(new RegExp(`"${big.replace(/\./g, '\\.')}".*float16.*element 200`));
    await expect(exportOnnxFolder(new CountingSink(), ckpt, { precisions: ['fp32'] })).resolves.toBeDefined();
  });

  it('a weight that fails midway aborts the folder: nothing under the final name, no temporary left', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')));
    const broken = Object.create(ckpt.store, {
      readRows: { value: async (name: string, r0: number, r1: number, as: 'f32' | 'f16') => (name.includes('layers.3') ? Promise.reject(new Error('disk went away')) : ckpt.store.readRows(name, r0, r1, as)) },
    });
    const parent = await tempDir('onnx-abort');
    await expect(exportOnnxFolder(new FolderSink(path.join(parent, 'out')), { ...ckpt, store: broken })).rejects.toThrow(/disk went away/);
    expect(await readdir(parent)).toEqual([]);
  });

  it('Qwen3-0.6B at its real shapes (2.4 GB in fp32): external data in chunks under 2 GiB, declared in config.json, one weight held at a time', async () => {
    const sparse = await writeSparseCheckpoint('qwen3-0.6b', { tokenizer: 'tiny', dtype: 'F32' }); // F32: bytes copied, not converted
    try {
      const ckpt = await openCheckpoint(await openFolder(sparse.dir));
      expect(onnxWeightsBytes(ckpt.config, 'fp32')).toBeGreaterThan(PROTOBUF_LIMIT_BYTES);
      let configJson = '';
      const sink = new CountingSink((name, bytes) => void (name === 'config.json' && (configJson += new TextDecoder().decode(bytes))));
      const stats = emptyExportStats();
      await exportOnnxFolder(sink, ckpt, { precisions: ['fp32'], stats });
      expect(JSON.parse(configJson)['transformers.js_config']).toEqual({ use_external_data_format: { 'model.onnx': 2 } });
      const names = [...sink.sizes.keys()];
      expect(names.slice(0, 3)).toEqual(['onnx/model.onnx_data', 'onnx/model.onnx_data_1', 'onnx/model.onnx']);
      for (const n of names.filter((f) => f.includes('_data'))) expect(sink.sizes.get(n)).toBeLessThanOrEqual(PROTOBUF_LIMIT_BYTES);
      expect(sink.sizes.get('onnx/model.onnx')).toBeLessThan(2 ** 20); // the graph alone
      expect(stats.largestTensorBytes).toBe(151936 * 1024 * 4); // the embedding…
      expect(stats.peakHeldBytes).toBeLessThanOrEqual(WRITE_CHUNK_BYTES); // …read in row slices, never whole
      expect(sink.largestWrite).toBeLessThanOrEqual(WRITE_CHUNK_BYTES);
      expect([...onnxFolderFiles(ckpt, { precisions: ['fp32'] })]).toEqual([...sink.sizes]); // the sizes shown before the download
    } finally {
      await sparse.remove();
    }
  }, 120_000);
});
