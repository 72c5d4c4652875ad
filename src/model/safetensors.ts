// safetensors: read lazily over a Blob (browser File or Node's NodeFileBlob), validate everything, write.
// Offsets are Numbers (exact to 2^53: files far beyond 4 GiB); nothing here uses 32-bit integer arithmetic.
// Layout: u64 little-endian header length N, N bytes of JSON header, then the data; a tensor's
// `data_offsets` [begin, end) are relative to the start of the data.

import { GradPruneError } from '../errors';
import {
  dtypeBytes,
  firstNonFinite,
  isWeightDType,
  nonFiniteKind,
  toFloat16Bits,
  toFloat32,
  type SafetensorsDType,
  type WeightDType,
} from './dtype';
import { INDEX_FILE, readSafetensorsIndexFile } from './safetensors-index';
import { headerLength, numel, parseHeader, type TensorInfo } from './safetensors-header';

export { MAX_HEADER_BYTES, numel, type TensorInfo } from './safetensors-header';

export class SafetensorsFile {
  private constructor(
    readonly fileName: string,
    private readonly blob: Blob,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Parse and validate the header (safetensors-header.ts); reads only the header's bytes. */
  static async open(blob: Blob, fileName: string): Promise<SafetensorsFile> {
    const first8 = blob.size >= 8 ? new Uint8Array(await blob.slice(0, 8).arrayBuffer()) : new Uint8Array(8);
    const headerLen = headerLength(first8, blob.size, fileName);
    const { tensors, metadata } = parseHeader(new Uint8Array(await blob.slice(8, 8 + headerLen).arrayBuffer()), blob.size, fileName);
    return new SafetensorsFile(fileName, blob, tensors, Object.freeze(metadata));
  }

  /** The raw little-endian bytes of one tensor; only its own byte range is read. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return new Uint8Array(await this.blob.slice(t.begin, t.end).arrayBuffer());
  }

  /** Bytes [from, to) of one tensor's data (a slice of rows of a large matrix). */
  async readByteRange(name: string, from: number, to: number): Promise<Uint8Array> {
    const t = this.info(name);
    if (from < 0 || to > t.end - t.begin || from > to) throw new Error(`${this.fileName}: bytes [${from}, ${to}) are outside tensor "${name}"`);
    return new Uint8Array(await this.blob.slice(t.begin + from, t.begin + to).arrayBuffer());
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new GradPruneError('tensor', `${this.fileName}: no tensor named "${name}".`, { subject: name });
    return t;
  }
}

/**
 * All tensors of a checkpoint, whether one file or shards listed in `model.safetensors.index.json`.
 * Reads tensor by tensor; nothing holds a whole file in memory.
 */
export class TensorStore {
  /** Protected so that a view (a pruned model over its dense store, worker/lazy-checkpoint.ts) can override the reads. */
  protected constructor(private readonly files: SafetensorsFile[], readonly tensors: ReadonlyMap<string, TensorInfo>) {}

  static fromFiles(files: SafetensorsFile[]): TensorStore {
    const all = new Map<string, TensorInfo>();
    for (const f of files) {
      for (const [name, t] of f.tensors) {
        const prev = all.get(name);
        if (prev) {
          throw new GradPruneError('file', `Tensor "${name}" appears in both ${prev.file} and ${t.file}.`, {
            subject: name,
            hint: 'Remove the duplicate shard or re-export the checkpoint.',
          });
        }
        all.set(name, t);
      }
    }
    return new TensorStore(files, all);
  }

  /**
   * Open a checkpoint from its files by name: `model.safetensors`, or the index and every shard it names.
   * `files` maps a file name (no folder) to its contents.
   */
  static async open(files: ReadonlyMap<string, Blob>): Promise<TensorStore> {
    const indexBlob = files.get(INDEX_FILE);
    if (indexBlob) {
      const weightMap = await readSafetensorsIndexFile(indexBlob);
      const shardNames = [...new Set(weightMap.values())].sort();
      const missing = shardNames.filter((s) => !files.has(s));
      if (missing.length) {
        throw new GradPruneError('file', `The index names shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which ${missing.length > 1 ? 'were' : 'was'} not provided.`, {
          subject: missing[0],
          hint: 'Drop the whole model folder, with every shard listed in model.safetensors.index.json.',
        });
      }
      const shards = await Promise.all(shardNames.map((s) => SafetensorsFile.open(files.get(s)!, s)));
      const store = TensorStore.fromFiles(shards);
      for (const [name, shard] of weightMap) {
        const t = store.tensors.get(name);
        if (!t || t.file !== shard) {
          throw new GradPruneError('file', `The index places "${name}" in ${shard}, but ${t ? `it is in ${t.file}` : 'no shard holds it'}.`, {
            subject: name,
            hint: 'The index and shards do not belong together: re-export or re-download the checkpoint.',
          });
        }
      }
      return store;
    }
    const single = files.get('model.safetensors');
    if (single) return TensorStore.fromFiles([await SafetensorsFile.open(single, 'model.safetensors')]);
    const others = [...files.keys()].filter((n) => n.endsWith('.safetensors'));
    if (others.length === 1) return TensorStore.fromFiles([await SafetensorsFile.open(files.get(others[0])!, others[0])]);
    throw new GradPruneError('file', 'No weights found: expected model.safetensors or model.safetensors.index.json with its shards.', {
      subject: 'model.safetensors',
      hint: others.length ? `Found ${others.join(', ')} but no index that ties them together.` : 'Drop the whole model folder.',
    });
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new GradPruneError('tensor', `The checkpoint has no tensor "${name}".`, { subject: name });
    return t;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.files.find((f) => f.fileName === t.file)!.readBytes(name);
  }

  /** A weight tensor as f32 (exact for F16 / BF16 sources). */
  async readF32(name: string): Promise<Float32Array> {
    const t = this.info(name);
    const dtype = this.weightDType(t);
    return toFloat32(this.finite(t, await this.readBytes(name), dtype), dtype);
  }

  /** A weight tensor as f16 bits (rounded to nearest even from F32 / BF16 sources). */
  async readF16Bits(name: string): Promise<Uint16Array> {
    const t = this.info(name);
    const dtype = this.weightDType(t);
    return toFloat16Bits(this.finite(t, await this.readBytes(name), dtype), dtype);
  }

  /**
   * Rows [r0, r1) of a 2-D weight tensor as f32 or as f16 bits: a matrix larger than any one array (a 128k-vocabulary
   * embedding) is read and uploaded in row slices.
   */
  async readRows(name: string, r0: number, r1: number, as: 'f32' | 'f16'): Promise<Float32Array | Uint16Array> {
    const t = this.info(name);
    const dtype = this.weightDType(t);
    const rowBytes = (t.shape[1] ?? 1) * dtypeBytes(t.dtype);
    const bytes = await this.files.find((f) => f.fileName === t.file)!.readByteRange(name, r0 * rowBytes, r1 * rowBytes);
    this.finite(t, bytes, dtype, r0 * (t.shape[1] ?? 1));
    return as === 'f16' ? toFloat16Bits(bytes, dtype) : toFloat32(bytes, dtype);
  }

  /** An integer tensor (I32 / I64) as Int32Array; for the fixtures' token ids and masks. */
  async readI32(name: string): Promise<Int32Array> {
    const t = this.info(name);
    const bytes = (await this.readBytes(name)).slice();
    if (t.dtype === 'I32') return new Int32Array(bytes.buffer);
    if (t.dtype === 'I64') return Int32Array.from(new BigInt64Array(bytes.buffer), (v) => Number(v));
    throw new GradPruneError('tensor', `Tensor "${name}" is ${t.dtype}, expected an integer tensor (I32 or I64).`, { subject: name });
  }

  /**
   * Weights are checked for NaN / Inf as they are read for the GPU (every upload reads through here), so damaged
   * weights are named here rather than surfacing as a loss that "diverges at step 0".
   */
  private finite(t: TensorInfo, bytes: Uint8Array, dtype: WeightDType, firstElement = 0): Uint8Array {
    const at = firstNonFinite(bytes, dtype);
    if (at < 0) return bytes;
    const element = firstElement + at;
    const cols = t.shape.length === 2 ? t.shape[1] : 0;
    const where = cols ? `row ${Math.floor(element / cols)}, column ${element % cols}` : `element ${element}`;
    throw new GradPruneError('tensor', `Tensor "${t.name}" in ${t.file} holds ${nonFiniteKind(bytes, dtype, at)} at ${where} [shape ${t.shape.join(', ')}].`, {
      subject: t.name,
      hint: 'The weights are damaged, or were saved after a training run diverged: use a good copy of the checkpoint.',
    });
  }

  private weightDType(t: TensorInfo): WeightDType {
    if (!isWeightDType(t.dtype)) {
      throw new GradPruneError('tensor', `Tensor "${t.name}" in ${t.file} is ${t.dtype}; weights must be F32, F16 or BF16.`, {
        subject: t.name,
        hint: 'Quantized checkpoints are not supported: use the unquantized model.',
      });
    }
    return t.dtype;
  }
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Little-endian bytes, numel(shape) × dtypeBytes(dtype) long. */
  data: Uint8Array;
}

/**
 * Encode tensors as one safetensors file, returned as parts (header, then each tensor's bytes) so that a
 * large checkpoint is never copied into one buffer; `new Blob(parts)` or a stream writes it.
 */
/**
 * The safetensors header of a file holding `tensors` in order (u64 little-endian length, JSON, spaces to 8-byte
 * alignment, as the reference writer pads), computable before any tensor's bytes: a streamed writer sends it first.
 */
export function safetensorsHeader(tensors: readonly Pick<TensorToWrite, 'name' | 'dtype' | 'shape'>[], metadata: Record<string, string> = {}): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const size = numel(t.shape) * dtypeBytes(t.dtype);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  const jsonBytesLen = new TextEncoder().encode(json).byteLength;
  json += ' '.repeat((8 - ((8 + jsonBytesLen) % 8)) % 8);
  const jsonBytes = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8 + jsonBytes.byteLength);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(jsonBytes.byteLength), true);
  prefix.set(jsonBytes, 8);
  return prefix;
}

export function encodeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = {}): Uint8Array<ArrayBuffer>[] {
  for (const t of tensors) {
    const expected = numel(t.shape) * dtypeBytes(t.dtype);
    if (t.data.byteLength !== expected) {
      throw new GradPruneError('tensor', `Cannot write "${t.name}": ${t.data.byteLength} bytes for shape [${t.shape.join(', ')}] of ${t.dtype} (expected ${expected}).`, { subject: t.name });
    }
  }
  const prefix = safetensorsHeader(tensors, metadata);
  // Blob parts must be ArrayBuffer-backed: a SharedArrayBuffer view is copied, anything else is passed as is.
  return [prefix, ...tensors.map((t) => (t.data.buffer instanceof ArrayBuffer ? (t.data as Uint8Array<ArrayBuffer>) : t.data.slice()))];
}
