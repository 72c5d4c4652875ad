import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { fixtureDir } from '../testing/paths';
import { openCheckpoint } from './checkpoint';
import { openFolder } from './node-files';
import { encodeSafetensors, numel, SafetensorsFile, TensorStore } from './safetensors';

/** A safetensors file from a header (object or raw text) and data bytes; `declaredHeaderLen` lies about the length. */
function craft(header: unknown, data: Uint8Array<ArrayBuffer> = new Uint8Array(0), declaredHeaderLen?: number): Blob {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(declaredHeaderLen ?? json.byteLength), true);
  return new Blob([prefix, json, data]);
}

async function openError(blob: Blob, name = 'bad.safetensors'): Promise<GradPruneError> {
  const err = await SafetensorsFile.open(blob, name).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GradPruneError);
  const e = err as GradPruneError;
  expect(e.code).toBe('file');
  expect(e.message).toContain(name);
  return e;
}

const f32 = (...values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe('SafetensorsFile validation', () => {
  it('rejects an empty file', async () => {
    expect((await openError(new Blob([]))).message).toMatch(/empty/);
  });
  it('rejects a file shorter than the 8-byte length prefix', async () => {
    expect((await openError(new Blob([new Uint8Array(5)]))).message).toMatch(/only 5 bytes \(truncated\)/);
  });
  it('rejects a header length larger than the file', async () => {
    const e = await openError(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1), 10_000));
    expect(e.message).toMatch(/header length \(10000 bytes\) is larger than the file/);
  });
  it('rejects a file cut inside its header (truncated download)', async () => {
    const whole = craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32(1, 2));
    const e = await openError(whole.slice(0, 20));
    expect(e.message).toMatch(/larger than the file \(20 bytes\)/);
  });
  it('rejects a header that is not JSON', async () => {
    expect((await openError(craft('{"a": {"dtype": "F32",'))).message).toMatch(/not valid JSON/);
  });
  it('rejects a header that is JSON but not an object', async () => {
    expect((await openError(craft('[1, 2, 3]'))).message).toMatch(/not a JSON object/);
  });
  it('rejects tensor bytes outside the file, naming the tensor', async () => {
    const e = await openError(craft({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(1, 2)));
    expect(e.message).toMatch(/tensor "w" ends at byte \d+, past the end of the file/);
  });
  it('rejects overlapping tensors, naming both', async () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    const e = await openError(craft(header, f32(1, 2, 3)));
    expect(e.message).toMatch(/tensors "a" and "b" overlap/);
  });
  it('names an unknown dtype and the tensor that has it', async () => {
    const e = await openError(craft({ w: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 8] } }, f32(1, 2)));
    expect(e.message).toMatch(/tensor "w" has an unknown dtype "Q4_K"/);
    expect(e.message).toMatch(/F32, F16, BF16/);
  });
  it('rejects a shape that disagrees with the byte length', async () => {
    const e = await openError(craft({ w: { dtype: 'F16', shape: [3, 2], data_offsets: [0, 8] } }, f32(1, 2)));
    expect(e.message).toMatch(/tensor "w" has 8 bytes but its shape \[3, 2\] of F16 needs 12/);
  });
  it('rejects malformed shapes and offsets', async () => {
    expect((await openError(craft({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)))).message).toMatch(/invalid shape/);
    expect((await openError(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1, 2)))).message).toMatch(/invalid data_offsets/);
    expect((await openError(craft({ w: { shape: [1], data_offsets: [0, 4] } }, f32(1)))).message).toMatch(/"w" has no dtype/);
    expect((await openError(craft({ __metadata__: 'x' }))).message).toMatch(/__metadata__/);
  });
  it('accepts a valid file and reads each tensor from its own bytes', async () => {
    const header = {
      __metadata__: { format: 'pt' },
      b: { dtype: 'F32', shape: [1, 2], data_offsets: [8, 16] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    };
    const file = await SafetensorsFile.open(craft(header, f32(1, 2, 3, 4)), 'ok.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.keys()].sort()).toEqual(['a', 'b']);
    const store = TensorStore.fromFiles([file]);
    expect([...(await store.readF32('a'))]).toEqual([1, 2]);
    expect([...(await store.readF32('b'))]).toEqual([3, 4]);
  });
});

describe('encodeSafetensors', () => {
  it('round-trips every dtype, shape and the metadata, with 8-byte aligned data', async () => {
    const tensors = [
      { name: 'f32', dtype: 'F32' as const, shape: [2, 3], data: f32(1, -2, 3.5, 0, 1e-30, -7) },
      { name: 'f16', dtype: 'F16' as const, shape: [3], data: new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x0001]).buffer) },
      { name: 'bf16', dtype: 'BF16' as const, shape: [1], data: new Uint8Array(new Uint16Array([0x3f80]).buffer) },
      { name: 'ids', dtype: 'I32' as const, shape: [2], data: new Uint8Array(new Int32Array([7, -1]).buffer) },
      { name: 'empty', dtype: 'F32' as const, shape: [0, 4], data: new Uint8Array(0) },
    ];
    const parts = encodeSafetensors(tensors, { format: 'pt', note: 'é' });
    const headerLen = Number(new DataView(parts[0].buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const file = await SafetensorsFile.open(new Blob(parts), 'rt.safetensors');
    expect(file.metadata).toEqual({ format: 'pt', note: 'é' });
    const store = TensorStore.fromFiles([file]);
    for (const t of tensors) {
      expect(store.info(t.name).shape).toEqual(t.shape);
      expect(store.info(t.name).dtype).toBe(t.dtype);
      expect([...(await store.readBytes(t.name))]).toEqual([...t.data]);
    }
    expect([...(await store.readF32('f16'))]).toEqual([1, -2, 2 ** -24]);
    expect([...(await store.readI32('ids'))]).toEqual([7, -1]);
  });
  it('refuses data whose length disagrees with the shape, naming the tensor', () => {
    expect(() => encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: f32(1, 2) }])).toThrow(/Cannot write "w": 8 bytes for shape \[3\]/);
  });
  it('re-encodes a fixture checkpoint byte for byte in tensor content', async () => {
    const files = await openFolder(fixtureDir('tiny-mistral'));
    const store = await TensorStore.open(files);
    const names = [...store.tensors.keys()];
    const parts = encodeSafetensors(await Promise.all(names.map(async (name) => ({ ...store.info(name), data: await store.readBytes(name) }))));
    const copy = TensorStore.fromFiles([await SafetensorsFile.open(new Blob(parts), 'copy.safetensors')]);
    for (const name of names) {
      expect(copy.info(name).shape).toEqual(store.info(name).shape);
      expect(Buffer.from(await copy.readBytes(name)).equals(Buffer.from(await store.readBytes(name)))).toBe(true);
    }
  });
});

/** Split a fixture's tensors into `n` shards plus an index, as save_pretrained(max_shard_size=…) does. */
async function writeSharded(fixture: string, n: number): Promise<{ dir: string; weightMap: Record<string, string> }> {
  const src = await openFolder(fixtureDir(fixture));
  const store = await TensorStore.open(src);
  const dir = await mkdtemp(path.join(os.tmpdir(), `gradprune-sharded-${fixture}-`));
  const names = [...store.tensors.keys()].sort();
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < n; s++) {
    const shardName = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const mine = names.filter((_, i) => i % n === s);
    const tensors = await Promise.all(mine.map(async (name) => ({ ...store.info(name), data: await store.readBytes(name) })));
    await writeFile(path.join(dir, shardName), new Uint8Array(await new Blob(encodeSafetensors(tensors, { format: 'pt' })).arrayBuffer()));
    for (const t of tensors) {
      weightMap[t.name] = shardName;
      totalSize += t.data.byteLength;
    }
  }
  await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }));
  for (const [name, blob] of src) {
    if (name !== 'model.safetensors') await writeFile(path.join(dir, name), new Uint8Array(await blob.arrayBuffer()));
  }
  return { dir, weightMap };
}

describe('sharded checkpoints', () => {
  it('opens shards through the index with the same tensors as the single file', async () => {
    const { dir, weightMap } = await writeSharded('tiny-llama', 3);
    const single = await TensorStore.open(await openFolder(fixtureDir('tiny-llama')));
    const sharded = await TensorStore.open(await openFolder(dir));
    expect(new Set(Object.values(weightMap)).size).toBe(3);
    expect([...sharded.tensors.keys()].sort()).toEqual([...single.tensors.keys()].sort());
    for (const name of single.tensors.keys()) {
      expect(sharded.info(name).file).toBe(weightMap[name]);
      expect(numel(sharded.info(name).shape)).toBe(numel(single.info(name).shape));
      expect(Buffer.from(await sharded.readBytes(name)).equals(Buffer.from(await single.readBytes(name)))).toBe(true);
    }
    const ckpt = await openCheckpoint(await openFolder(dir), 'sharded');
    expect(ckpt.config.numLayers).toBe(6);
    expect(ckpt.dtype).toBe('F32');
    expect(ckpt.store.info('model.layers.5.mlp.down_proj.weight').shape).toEqual([64, 176]);
  });
  it('names a shard the index lists but the folder lacks', async () => {
    const { dir } = await writeSharded('tiny-llama', 2);
    const files = await openFolder(dir);
    files.delete('model-00002-of-00002.safetensors');
    const err = await TensorStore.open(files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).message).toMatch(/The index names shard model-00002-of-00002\.safetensors, which was not provided/);
    expect((err as GradPruneError).subject).toBe('model-00002-of-00002.safetensors');
  });
  it('names a tensor the index places in the wrong shard', async () => {
    const { dir, weightMap } = await writeSharded('tiny-llama', 2);
    const files = await openFolder(dir);
    const moved = 'model.norm.weight';
    const wrong = weightMap[moved] === 'model-00001-of-00002.safetensors' ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors';
    files.set('model.safetensors.index.json', new Blob([JSON.stringify({ weight_map: { ...weightMap, [moved]: wrong } })]));
    await expect(TensorStore.open(files)).rejects.toThrow(/The index places "model\.norm\.weight" in model-0000\d-of-00002\.safetensors, but it is in/);
  });
  it('rejects shards without their index, and an index that is not JSON', async () => {
    const { dir } = await writeSharded('tiny-llama', 2);
    const files = await openFolder(dir);
    const index = files.get('model.safetensors.index.json')!;
    files.delete('model.safetensors.index.json');
    await expect(TensorStore.open(files)).rejects.toThrow(/No weights found.*model-00001-of-00002\.safetensors, model-00002-of-00002\.safetensors but no index/);
    files.set('model.safetensors.index.json', index.slice(0, 10));
    await expect(TensorStore.open(files)).rejects.toThrow(/model\.safetensors\.index\.json is not valid JSON/);
    files.set('model.safetensors.index.json', new Blob([JSON.stringify({ metadata: {} })]));
    await expect(TensorStore.open(files)).rejects.toThrow(/model\.safetensors\.index\.json has no "weight_map"/);
    files.set('model.safetensors.index.json', new Blob([JSON.stringify({ weight_map: { 'model.norm.weight': 3 } })]));
    await expect(TensorStore.open(files)).rejects.toThrow(/maps "model\.norm\.weight" to 3, not a \.safetensors file name/);
  });
});

describe('NaN / Inf weights', () => {
  /** tiny-llama's weights with one value of one tensor replaced, as a folder's files. */
  async function withValue(tensor: string, index: number, value: number): Promise<Map<string, Blob>> {
    const files = await openFolder(fixtureDir('tiny-llama'));
    const store = await TensorStore.open(files);
    const tensors = await Promise.all(
      [...store.tensors.values()].map(async (t) => {
        const data = (await store.readBytes(t.name)).slice();
        if (t.name === tensor) new DataView(data.buffer).setFloat32(index * 4, value, true);
        return { name: t.name, dtype: t.dtype, shape: t.shape, data };
      }),
    );
    files.set('model.safetensors', new Blob(encodeSafetensors(tensors)));
    return files;
  }

  it('are refused when read for the GPU, naming the tensor, the value and where it is', async () => {
    const files = await withValue('model.layers.2.mlp.down_proj.weight', 3 * 176 + 5, NaN);
    const store = await TensorStore.open(files); // headers only: loading stays cheap
    const err = await store.readF32('model.layers.2.mlp.down_proj.weight').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).message).toMatch(/^Tensor "model\.layers\.2\.mlp\.down_proj\.weight" in model\.safetensors holds NaN at row 3, column 5 \[shape 64, 176\]\. The weights are damaged/);
    expect((err as GradPruneError).subject).toBe('model.layers.2.mlp.down_proj.weight');
    await expect(store.readF16Bits('model.layers.2.mlp.down_proj.weight')).rejects.toThrow(/holds NaN at row 3, column 5/);
    // Row slices (how a large matrix is uploaded) report the row in the whole tensor.
    await expect(store.readRows('model.layers.2.mlp.down_proj.weight', 2, 4, 'f32')).rejects.toThrow(/holds NaN at row 3, column 5/);
    await expect(store.readRows('model.layers.2.mlp.down_proj.weight', 0, 3, 'f32')).resolves.toHaveLength(3 * 176);
    await expect(store.readF32('model.layers.2.mlp.up_proj.weight')).resolves.toHaveLength(176 * 64);
  });

  it('+Inf and -Inf are named as such, in every weight dtype', async () => {
    const store = await TensorStore.open(await withValue('model.norm.weight', 7, -Infinity));
    await expect(store.readF32('model.norm.weight')).rejects.toThrow(/"model\.norm\.weight" in model\.safetensors holds -Inf at element 7/);
    for (const dtype of ['F16', 'BF16'] as const) {
      const bits = new Uint16Array([0x3c00, dtype === 'F16' ? 0x7c00 : 0x7f80]);
      const blob = new Blob(encodeSafetensors([{ name: 'w', dtype, shape: [2], data: new Uint8Array(bits.buffer) }]));
      const one = TensorStore.fromFiles([await SafetensorsFile.open(blob, 'w.safetensors')]);
      await expect(one.readF32('w')).rejects.toThrow(/"w" in w\.safetensors holds \+Inf at element 1/);
    }
  });
});
