// The streamed export: byte-identical to the in-memory writer it replaced, bounded memory on a large (sparse)
// checkpoint, a zip streamed chunk by chunk that re-reads to the same files, and the sinks' all-or-nothing rules.
import { createHash } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';
import { makePlan } from '../gradprune/plan';
import { expectedTensors, openCheckpoint } from '../model/checkpoint';
import { linearWeightName, normalizeConfig } from '../model/config';
import { openFile, openFolder } from '../model/node-files';
import { encodeSafetensors, TensorStore } from '../model/safetensors';
import { FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { exportCheckpoint, exportCheckpointTo, prunedExportTensors, type MergedWeights } from '../gradprune/pruned-folder';
import { DirectorySink, type DirectoryHandleLike, type FileHandleLike } from './fs-access';
import { FolderSink } from './node-sink';
import type { PruneRunInfo } from '../gradprune/recipe';
import { CountingSink, MemorySink, writeFolderTo, type CheckpointSink } from './sink';
import { emptyExportStats, planShards, storedTensorBytes, streamWeightFiles, tensorBytes, WRITE_CHUNK_BYTES, type ExportTensor } from './weights';
import { MemoryByteTarget, zipFilesTo, ZipStreamSink } from './zip';

const runFor = (layers: number): PruneRunInfo => ({ baseModel: 'm', settings: {}, scores: { layerScore: Array.from({ length: layers }, (_, l) => layers - l) }, addedElements: {} });
const bytesOf = async (b: Blob) => new Uint8Array(await b.arrayBuffer());
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const temps: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'gradprune-stream-'));
  temps.push(d);
  return d;
};
afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/** The in-memory writer as it was before streaming (encodeSafetensors per shard), for the byte-identity check. */
async function previousWriter(tensors: ExportTensor[], maxShardBytes: number): Promise<Map<string, Blob>> {
  const encode = async (ts: ExportTensor[]) => {
    const withData = [];
    for (const t of ts) withData.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await t.bytes() });
    return new Blob(encodeSafetensors(withData, { format: 'pt' }) as BlobPart[]);
  };
  const shards = planShards(tensors, maxShardBytes);
  const files = new Map<string, Blob>();
  if (shards.length <= 1) return files.set('model.safetensors', await encode(shards[0] ?? []));
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, shard] of shards.entries()) {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    files.set(name, await encode(shard));
    for (const t of shard) {
      weightMap[t.name] = name;
      totalSize += tensorBytes(t);
    }
  }
  files.set('model.safetensors.index.json', new Blob([JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n']));
  return files;
}

describe('streamWeightFiles', () => {
  for (const name of FIXTURE_MODELS) {
    for (const maxShardBytes of [5_000_000_000, 250_000]) {
      it(`writes ${name}'s pruned weights byte for byte as the previous in-memory writer (shards ≤ ${maxShardBytes} B)`, async () => {
        const ckpt = await openCheckpoint(await openFolder(fixtureDir(name)), name);
        const plan = makePlan(Array.from({ length: ckpt.config.numLayers }, (_, l) => ckpt.config.numLayers - l), ckpt.config, { prune: 1, merge: 0 });
        // One "merged" weight made on demand (a stand-in for the GPU merge), rounded to the export dtype once.
        const receiver = linearWeightName(plan.kept[0], 'up_proj');
        const mergedValues = (await ckpt.store.readF32(receiver)).map((v) => v * 1.5);
        const merged: MergedWeights = { keys: () => [receiver], has: (n) => n === receiver, get: async () => mergedValues };
        const tensors = prunedExportTensors(ckpt, plan, merged);
        const before = await previousWriter(tensors, maxShardBytes);
        const sink = new MemorySink();
        const stats = emptyExportStats();
        const written = await streamWeightFiles(sink, tensors, maxShardBytes, stats);
        expect([...sink.files.keys()]).toEqual([...before.keys()]);
        for (const [file, blob] of before) {
          const got = await bytesOf(sink.files.get(file)!);
          expect(sha(got), file).toBe(sha(await bytesOf(blob)));
          expect(written.get(file)).toBe(blob.size);
        }
        if (maxShardBytes < 1e6) expect(sink.files.has('model.safetensors.index.json')).toBe(before.size > 1);
        expect(stats.peakHeldBytes).toBe(stats.largestTensorBytes);
      });
    }
  }
});

/**
 * A Llama-shaped BF16 checkpoint of ~650 MB whose data is a hole (header written, then ftruncate): it takes no disk
 * and reads as zeros, so exporting it measures the writer, not the disk.
 */
async function sparseCheckpoint(dir: string) {
  const raw = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 1536,
    intermediate_size: 6144,
    num_hidden_layers: 6,
    num_attention_heads: 12,
    num_key_value_heads: 12,
    vocab_size: 32000,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  };
  const config = normalizeConfig(raw);
  const tensors = expectedTensors(config).map(({ name, shape }) => ({ name, dtype: 'BF16' as const, shape: [...shape], bytes: async () => new Uint8Array(0) }));
  const { safetensorsHeader } = await import('../model/safetensors');
  const header = safetensorsHeader(tensors, { format: 'pt' });
  const dataBytes = tensors.reduce((s, t) => s + tensorBytes(t), 0);
  const file = path.join(dir, 'model.safetensors');
  const fh = await open(file, 'w');
  await fh.write(header, 0, header.byteLength, 0);
  await fh.truncate(header.byteLength + dataBytes);
  await fh.close();
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(raw, null, 2));
  const store = await TensorStore.open(new Map([['model.safetensors', await openFile(file)]]));
  const files = new Map([['config.json', await openFile(path.join(dir, 'config.json'))]]);
  return { source: { config, store, dtype: 'BF16' as const, files }, dataBytes, largest: Math.max(...tensors.map(tensorBytes)) };
}

describe('a large checkpoint, tensor by tensor', () => {
  it('exports ~650 MB (pruned, one weight merged on demand) holding at most one tensor at a time', { timeout: 120_000 }, async () => {
    const dir = await tmp();
    const { source, dataBytes, largest } = await sparseCheckpoint(dir);
    const plan = makePlan([6, 5, 4, 3, 2, 1], source.config, { prune: 2, merge: 1 });
    const receiver = linearWeightName(plan.receiver[plan.merged[0]]!, 'down_proj');
    let mergedMade = 0;
    const merged: MergedWeights = {
      keys: () => [receiver],
      has: (n) => n === receiver,
      get: async (n) => {
        mergedMade++;
        return source.store.readF32(n);
      },
    };
    // The largest buffer in flight: the source reads (tracked as they are produced) and every chunk the sink sees.
    let reads = 0;
    const readBytes = source.store.readBytes.bind(source.store);
    let largestRead = 0;
    source.store.readBytes = async (n: string) => {
      reads++;
      const b = await readBytes(n);
      largestRead = Math.max(largestRead, b.byteLength);
      return b;
    };
    const headers = new Map<string, Uint8Array>();
    const sink = new CountingSink((file, chunk) => {
      if (!headers.has(file) && file.endsWith('.safetensors')) headers.set(file, chunk.slice());
    });
    const stats = emptyExportStats();
    const written = await exportCheckpointTo(sink, source, { plan, merged, run: runFor(6), maxShardBytes: 200_000_000, stats });

    expect(sink.committed).toBe(true);
    expect(mergedMade).toBe(1);
    const shards = [...written.keys()].filter((n) => n.endsWith('.safetensors'));
    expect(shards.length).toBeGreaterThan(1);
    expect(written.has('model.safetensors.index.json')).toBe(true);
    const keptBytes = dataBytes - 2 * (tensorBytes({ dtype: 'BF16', shape: [1536, 6144] }) * 3 + tensorBytes({ dtype: 'BF16', shape: [1536, 1536] }) * 4 + 2 * 1536 * 2);
    expect(stats.bytesWritten - [...headers.values()].reduce((s, h) => s + h.byteLength, 0)).toBeGreaterThanOrEqual(keptBytes - 1);
    expect(stats.largestTensorBytes).toBe(largest);
    // At most one tensor's bytes in the writer's hands at a time, reads of one tensor, sink writes in bounded chunks.
    expect(stats.peakHeldBytes).toBeLessThanOrEqual(largest);
    expect(largestRead).toBeLessThanOrEqual(largest);
    expect(sink.largestWrite).toBeLessThanOrEqual(WRITE_CHUNK_BYTES);
    expect(reads).toBe(plan.kept.length * 9 + 3); // each kept tensor read once (the merged receiver by the merge, as f32)
    // Every shard's header describes what was written after it.
    for (const [file, chunk] of headers) {
      const len = Number(new DataView(chunk.buffer, chunk.byteOffset).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(chunk.subarray(8, 8 + len)));
      const end = Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { data_offsets: number[] }).data_offsets[1]));
      expect(8 + len + end, file).toBe(sink.sizes.get(file));
    }
  });

  it('writes the same large export into a folder on disk that re-opens', { timeout: 120_000 }, async () => {
    const dir = await tmp();
    const { source } = await sparseCheckpoint(dir);
    const plan = makePlan([6, 5, 4, 3, 2, 1], source.config, { prune: 5, merge: 0 });
    const out = path.join(dir, 'pruned');
    await exportCheckpointTo(new FolderSink(out), source, { plan, merged: new Map(), run: runFor(6), maxShardBytes: 150_000_000 });
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'pruned']);
    const folder = await openFolder(out);
    expect(JSON.parse(await folder.get('config.json')!.text()).num_hidden_layers).toBe(1);
    const reopened = await TensorStore.open(folder);
    expect([...reopened.tensors.keys()]).toEqual(expectedTensors(normalizeConfig({ ...source.config.raw, num_hidden_layers: 1 })).map((t) => t.name));
    expect(Buffer.from(await reopened.readBytes('model.layers.0.mlp.up_proj.weight')).every((b) => b === 0)).toBe(true);
  });
});

describe('ZipStreamSink', () => {
  it('streams the pruned checkpoint into one zip that unzips to the same files', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')), 'tiny-qwen2');
    const plan = makePlan([5, 4, 3, 2, 1], ckpt.config, { prune: 2, merge: 0 });
    const files = await exportCheckpoint(ckpt, { plan, merged: new Map(), run: runFor(5), maxShardBytes: 400_000 });
    const target = new MemoryByteTarget();
    const writes: number[] = [];
    const counted = { write: async (b: Uint8Array<ArrayBuffer>) => void (writes.push(b.byteLength), await target.write(b)), close: () => target.close() };
    await exportCheckpointTo(new ZipStreamSink(counted, 'tiny-qwen2-pruned'), ckpt, { plan, merged: new Map(), run: runFor(5), maxShardBytes: 400_000 });
    expect(writes.length).toBeGreaterThan(files.size);
    const unzipped = unzipSync(await bytesOf(target.blob()));
    expect(Object.keys(unzipped).sort()).toEqual([...files.keys()].map((n) => `tiny-qwen2-pruned/${n}`).sort());
    for (const [name, blob] of files) expect(sha(unzipped[`tiny-qwen2-pruned/${name}`]), name).toBe(sha(await bytesOf(blob)));
  });

  it('refuses past the zip32 limit and aborts the target', async () => {
    const target = new MemoryByteTarget();
    const sink = new ZipStreamSink(target, '', 1000);
    const f = await sink.createFile('model.safetensors');
    await expect(f.write(new Uint8Array(2000))).rejects.toThrow(/cannot hold.*Save the checkpoint into a folder/s);
    await sink.abort();
    expect(target.aborted).toBe(true);
  });

  it('zipFilesTo keeps a folder in name order', async () => {
    const target = new MemoryByteTarget();
    await zipFilesTo(target, new Map([['b.txt', new Blob(['b'])], ['a/x.json', new Blob(['{}'])]]), 'f');
    expect(Object.keys(unzipSync(await bytesOf(target.blob())))).toEqual(['f/a/x.json', 'f/b.txt']);
  });
});

/** A failing export: the weights' second tensor throws midway. */
async function failingExport(sink: CheckpointSink) {
  const tensors: ExportTensor[] = [
    { name: 'a', dtype: 'F32', shape: [4], bytes: async () => new Uint8Array(16) },
    { name: 'b', dtype: 'F32', shape: [4], bytes: async () => Promise.reject(new Error('the GPU was lost')) },
  ];
  const { withSink } = await import('./sink');
  await withSink(sink, () => streamWeightFiles(sink, tensors));
}

describe('FolderSink', () => {
  it('renames the finished folder into place; a failed export leaves nothing under the final name', async () => {
    const dir = await tmp();
    const out = path.join(dir, 'out');
    await expect(failingExport(new FolderSink(out))).rejects.toThrow(/GPU was lost/);
    expect(await readdir(dir)).toEqual([]);
    await writeFolderTo(new FolderSink(out), new Map([['config.json', new Blob(['{}'])], ['adapter/adapter_config.json', new Blob(['{"r":8}'])]]));
    expect(await readdir(dir)).toEqual(['out']);
    expect(await readFile(path.join(out, 'adapter/adapter_config.json'), 'utf8')).toBe('{"r":8}');
  });
  // An existing folder, --overwrite and interrupted writes: ./node-output.test.ts.
});

/** An in-memory File System Access directory (the parts DirectorySink uses). */
function fakeDirectory(name: string): DirectoryHandleLike & { files: Map<string, Uint8Array>; dirs: Map<string, ReturnType<typeof fakeDirectory>> } {
  const files = new Map<string, Uint8Array>();
  const dirs = new Map<string, ReturnType<typeof fakeDirectory>>();
  const notFound = () => Object.assign(new Error('not found'), { name: 'NotFoundError' });
  const dir = {
    name,
    files,
    dirs,
    async getDirectoryHandle(n: string, o?: { create?: boolean }) {
      if (!dirs.has(n)) {
        if (!o?.create) throw notFound();
        dirs.set(n, fakeDirectory(n));
      }
      return dirs.get(n)!;
    },
    async getFileHandle(n: string, o?: { create?: boolean }): Promise<FileHandleLike> {
      if (!files.has(n)) {
        if (!o?.create) throw notFound();
        files.set(n, new Uint8Array(0));
      }
      return {
        name: n,
        async createWritable() {
          const parts: Uint8Array[] = []; // a swap file: the file changes only on close
          return {
            write: async (b: Uint8Array) => void parts.push(b.slice()),
            close: async () => void files.set(n, new Uint8Array(Buffer.concat(parts))),
            abort: async () => void (parts.length = 0),
          };
        },
      };
    },
    async removeEntry(n: string) {
      if (!files.delete(n) && !dirs.delete(n)) throw notFound();
    },
  };
  return dir;
}

describe('DirectorySink', () => {
  it('writes <picked>/<folder>/… and removes the folder it made when the export fails', async () => {
    const picked = fakeDirectory('Downloads');
    await expect(failingExport(new DirectorySink(picked, 'm-pruned'))).rejects.toThrow(/GPU was lost/);
    expect(picked.dirs.size).toBe(0);
    await writeFolderTo(new DirectorySink(picked, 'm-pruned'), new Map([['config.json', new Blob(['{}'])], ['adapter/a.json', new Blob(['x'])]]));
    const folder = picked.dirs.get('m-pruned')!;
    expect(new TextDecoder().decode(folder.files.get('config.json'))).toBe('{}');
    expect(new TextDecoder().decode(folder.dirs.get('adapter')!.files.get('a.json'))).toBe('x');
  });
});

it('storedTensorBytes keeps exact bytes in the same dtype', async () => {
  const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-mistral')), 'm');
  const name = 'model.norm.weight';
  expect(sha(await storedTensorBytes(ckpt.store, name, 'F16'))).toBe(sha(await ckpt.store.readBytes(name)));
});
