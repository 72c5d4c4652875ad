// The pruned model's weight files: `model.safetensors`, or HF-style shards `model-00001-of-0000N.safetensors`
// with `model.safetensors.index.json` ({ metadata: { total_size }, weight_map }) above a size limit.
// Streamed: each file's header is computed from names, dtypes and shapes, then each tensor's bytes are produced on
// demand and written to a CheckpointSink before the next is made, so JavaScript holds one tensor at a time.

import { GradPruneError } from '../errors';
import { dtypeBytes, fromFloat32, type WeightDType } from '../model/dtype';
import { numel, safetensorsHeader, type TensorStore } from '../model/safetensors';
import { MemorySink, withSink, writeBytesFile, type CheckpointSink, type WrittenFiles } from './sink';

export interface ExportTensor {
  name: string;
  dtype: WeightDType;
  shape: number[];
  /** The tensor's little-endian bytes in `dtype`. */
  bytes(): Promise<Uint8Array>;
}

/** Hugging Face's default `max_shard_size` for save_pretrained (5 GB). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export const tensorBytes = (t: Pick<ExportTensor, 'dtype' | 'shape'>): number => numel(t.shape) * dtypeBytes(t.dtype);

/** A stored tensor's bytes in `dtype`: its exact bytes when the dtype is the same, else rounded once from f32. */
export async function storedTensorBytes(store: TensorStore, name: string, dtype: WeightDType): Promise<Uint8Array> {
  return store.info(name).dtype === dtype ? store.readBytes(name) : fromFloat32(await store.readF32(name), dtype);
}

/** Greedy as transformers' split: a new shard when the next tensor would push the current one over the limit. */
export function planShards(tensors: ExportTensor[], maxShardBytes: number): ExportTensor[][] {
  if (!(maxShardBytes > 0)) throw new GradPruneError('input', `The shard size ${maxShardBytes} must be positive.`, { subject: 'maxShardBytes' });
  const shards: ExportTensor[][] = [];
  let current: ExportTensor[] = [];
  let size = 0;
  for (const t of tensors) {
    const b = tensorBytes(t);
    if (current.length && size + b > maxShardBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += b;
  }
  if (current.length) shards.push(current);
  return shards;
}

const shardName = (i: number, n: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;

/** A tensor's bytes go to the sink in pieces of at most this many bytes (views, no copies; Node's write takes < 2 GiB). */
export const WRITE_CHUNK_BYTES = 64 * 2 ** 20;

/** What a streamed export held: the largest tensor it had in hand at once, and the largest tensor of the model. */
export interface ExportStats {
  /** The most bytes the writer held at one time (a safetensors header, or one tensor's bytes). */
  peakHeldBytes: number;
  /** The largest tensor written, in bytes. */
  largestTensorBytes: number;
  /** Bytes written to the sink, all files. */
  bytesWritten: number;
}

export const emptyExportStats = (): ExportStats => ({ peakHeldBytes: 0, largestTensorBytes: 0, bytesWritten: 0 });

/** One safetensors file, streamed: the header, then each tensor's bytes as they are produced (one tensor at a time). */
async function streamFile(sink: CheckpointSink, name: string, tensors: ExportTensor[], stats: ExportStats): Promise<number> {
  const header = safetensorsHeader(tensors, { format: 'pt' });
  const size = header.byteLength + tensors.reduce((s, t) => s + tensorBytes(t), 0);
  const file = await sink.createFile(name, size);
  stats.peakHeldBytes = Math.max(stats.peakHeldBytes, header.byteLength);
  await file.write(header);
  stats.bytesWritten += header.byteLength;
  for (const t of tensors) {
    let data: Uint8Array | null = await t.bytes();
    const expected = tensorBytes(t);
    if (data.byteLength !== expected) {
      throw new GradPruneError('tensor', `Cannot export "${t.name}": ${data.byteLength} bytes for [${t.shape.join(', ')}] ${t.dtype}.`, { subject: t.name });
    }
    stats.peakHeldBytes = Math.max(stats.peakHeldBytes, data.byteLength);
    stats.largestTensorBytes = Math.max(stats.largestTensorBytes, expected);
    for (let off = 0; off < data.byteLength; off += WRITE_CHUNK_BYTES) {
      await file.write(data.subarray(off, Math.min(data.byteLength, off + WRITE_CHUNK_BYTES)));
    }
    stats.bytesWritten += data.byteLength;
    data = null; // this tensor's bytes can go before the next is produced
  }
  await file.close();
  return size;
}

function checkUnique(tensors: readonly ExportTensor[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new GradPruneError('tensor', `Tensor "${t.name}" would be written twice.`, { subject: t.name });
    seen.add(t.name);
  }
}

/**
 * The weight files of a checkpoint, streamed into `sink` tensor by tensor: `model.safetensors`, or the shards and
 * `model.safetensors.index.json` above `maxShardBytes`. Does not commit the sink (the caller writes the other files).
 */
export async function streamWeightFiles(
  sink: CheckpointSink,
  tensors: ExportTensor[],
  maxShardBytes = DEFAULT_MAX_SHARD_BYTES,
  stats: ExportStats = emptyExportStats(),
): Promise<WrittenFiles> {
  checkUnique(tensors);
  const shards = planShards(tensors, maxShardBytes);
  const written: WrittenFiles = new Map();
  if (shards.length <= 1) {
    written.set('model.safetensors', await streamFile(sink, 'model.safetensors', shards[0] ?? [], stats));
    return written;
  }
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, shard] of shards.entries()) {
    const name = shardName(i, shards.length);
    written.set(name, await streamFile(sink, name, shard, stats));
    for (const t of shard) {
      weightMap[t.name] = name;
      totalSize += tensorBytes(t);
    }
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  written.set('model.safetensors.index.json', await writeBytesFile(sink, 'model.safetensors.index.json', new TextEncoder().encode(JSON.stringify(index, null, 2) + '\n')));
  return written;
}

/** The weight files of a checkpoint in memory, keyed by file name (small models; the streamed writer's bytes). */
export async function writeWeightFiles(tensors: ExportTensor[], maxShardBytes = DEFAULT_MAX_SHARD_BYTES): Promise<Map<string, Blob>> {
  const sink = new MemorySink();
  await withSink(sink, () => streamWeightFiles(sink, tensors, maxShardBytes));
  return sink.files;
}
