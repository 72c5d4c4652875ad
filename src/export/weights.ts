// The pruned model's weight files: `model.safetensors`, or HF-style shards `model-00001-of-0000N.safetensors`
// with `model.safetensors.index.json` ({ metadata: { total_size }, weight_map }) above a size limit.
// Each tensor's bytes are produced on demand, so only the finished files (Blobs) accumulate.

import { GradPruneError } from '../errors';
import { dtypeBytes, fromFloat32, type WeightDType } from '../model/dtype';
import { encodeSafetensors, numel, type TensorStore } from '../model/safetensors';

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

async function encodeFile(tensors: ExportTensor[]): Promise<Blob> {
  const withData = [];
  for (const t of tensors) {
    const data = await t.bytes();
    if (data.byteLength !== tensorBytes(t)) {
      throw new GradPruneError('tensor', `Cannot export "${t.name}": ${data.byteLength} bytes for [${t.shape.join(', ')}] ${t.dtype}.`, { subject: t.name });
    }
    withData.push({ name: t.name, dtype: t.dtype, shape: t.shape, data });
  }
  return new Blob(encodeSafetensors(withData, { format: 'pt' }) as BlobPart[]);
}

/** The weight files of a checkpoint, keyed by file name. */
export async function writeWeightFiles(tensors: ExportTensor[], maxShardBytes = DEFAULT_MAX_SHARD_BYTES): Promise<Map<string, Blob>> {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new GradPruneError('tensor', `Tensor "${t.name}" would be written twice.`, { subject: t.name });
    seen.add(t.name);
  }
  const shards = planShards(tensors, maxShardBytes);
  const files = new Map<string, Blob>();
  if (shards.length <= 1) {
    files.set('model.safetensors', await encodeFile(shards[0] ?? []));
    return files;
  }
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, shard] of shards.entries()) {
    const name = shardName(i, shards.length);
    files.set(name, await encodeFile(shard));
    for (const t of shard) {
      weightMap[t.name] = name;
      totalSize += tensorBytes(t);
    }
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  files.set('model.safetensors.index.json', new Blob([JSON.stringify(index, null, 2) + '\n']));
  return files;
}
