// The ONNX writer streams: one weight in hand at a time, external data above protobuf's 2 GiB at real sizes, and a
// failed export leaves nothing under the final name.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { fixtureDir } from '../../testing/paths';
import { tempDir } from '../../testing/onnx';
import { writeSparseCheckpoint } from '../../testing/sparse-checkpoint';
import { FolderSink } from '../node-sink';
import { CountingSink } from '../sink';
import { emptyExportStats, WRITE_CHUNK_BYTES } from '../weights';
import { exportOnnxFolder, onnxWeightsBytes } from './folder';
import { PROTOBUF_LIMIT_BYTES } from './stream';

describe('ONNX export streaming', () => {
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

  it('a weight that fails midway aborts the folder: nothing under the final name, no temporary left', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-llama')));
    const broken = Object.create(ckpt.store, {
      readBytes: { value: async (name: string) => (name.includes('layers.3') ? Promise.reject(new Error('disk went away')) : ckpt.store.readBytes(name)) },
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
      expect(stats.peakHeldBytes).toBe(151936 * 1024 * 4); // the embedding, the largest weight, never two at once
      expect(sink.largestWrite).toBeLessThanOrEqual(WRITE_CHUNK_BYTES);
    } finally {
      await sparse.remove();
    }
  }, 120_000);
});
