// safetensors: read lazily over a Blob (browser File or Node's NodeFileBlob), validate everything, write.
// Offsets are Numbers (exact to 2^53: files far beyond 4 GiB); nothing here uses 32-bit integer arithmetic.
// Layout: u64 little-endian header length N, N bytes of JSON header, then the data; a tensor's
// `data_offsets` [begin, end) are relative to the start of the data.

import { GradPruneError } from '../errors';
import {
  dtypeBytes,
  isSafetensorsDType,
  isWeightDType,
  toFloat16Bits,
  toFloat32,
  type SafetensorsDType,
  type WeightDType,
} from './dtype';

/** The largest header the format allows (the reference implementation refuses larger ones). */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
  /** The file the tensor lives in (a shard's name for sharded checkpoints). */
  file: string;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export class SafetensorsFile {
  private constructor(
    readonly fileName: string,
    private readonly blob: Blob,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Parse and validate the header; reads only the header's bytes. */
  static async open(blob: Blob, fileName: string): Promise<SafetensorsFile> {
    const fail = (what: string, hint = 'The file is damaged or not a safetensors file: export it again.') =>
      new GradPruneError('file', `${fileName}: ${what}.`, { subject: fileName, hint });
    if (blob.size < 8) throw fail(blob.size === 0 ? 'the file is empty' : `the file is only ${blob.size} bytes (truncated)`);
    const lenBytes = new DataView(await blob.slice(0, 8).arrayBuffer());
    const headerLen = Number(lenBytes.getBigUint64(0, true));
    if (headerLen > blob.size - 8) {
      throw fail(`the header length (${headerLen} bytes) is larger than the file (${blob.size} bytes); it is truncated or not safetensors`);
    }
    if (headerLen > MAX_HEADER_BYTES) throw fail(`the header is ${headerLen} bytes, more than the format's limit of 100 MB`);
    if (headerLen < 2) throw fail('the header is empty');
    const headerText = new TextDecoder().decode(await blob.slice(8, 8 + headerLen).arrayBuffer());
    let header: unknown;
    try {
      header = JSON.parse(headerText);
    } catch (e) {
      throw fail(`the header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('the header is not a JSON object');

    const dataStart = 8 + headerLen;
    const dataLen = blob.size - dataStart;
    const tensors = new Map<string, TensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw fail('`__metadata__` is not an object');
        metadata = Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, String(v)]));
        continue;
      }
      const t = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof t !== 'object' || t === null) throw fail(`tensor "${name}" has no description`);
      if (typeof t.dtype !== 'string') throw fail(`tensor "${name}" has no dtype`);
      if (!isSafetensorsDType(t.dtype)) {
        throw fail(`tensor "${name}" has an unknown dtype "${t.dtype}"`, 'Known dtypes: F32, F16, BF16 (and the integer types).');
      }
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        throw fail(`tensor "${name}" has an invalid shape ${JSON.stringify(t.shape)}`);
      }
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
        throw fail(`tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
      }
      const [b, e] = off as [number, number];
      if (e > dataLen) {
        throw fail(
          `tensor "${name}" ends at byte ${dataStart + e}, past the end of the file (${blob.size} bytes); the file is truncated`,
          'The download or copy stopped early: download (or export) the file again.',
        );
      }
      const shape = t.shape as number[];
      const expected = numel(shape) * dtypeBytes(t.dtype);
      if (e - b !== expected) {
        throw fail(`tensor "${name}" has ${e - b} bytes but its shape [${shape.join(', ')}] of ${t.dtype} needs ${expected}`);
      }
      tensors.set(name, { name, dtype: t.dtype, shape, begin: dataStart + b, end: dataStart + e, file: fileName });
    }
    const byStart = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
    for (let i = 1; i < byStart.length; i++) {
      if (byStart[i].begin < byStart[i - 1].end) {
        throw fail(`tensors "${byStart[i - 1].name}" and "${byStart[i].name}" overlap in the file`);
      }
    }
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
    const indexBlob = files.get('model.safetensors.index.json');
    if (indexBlob) {
      let index: { weight_map?: Record<string, string> };
      try {
        index = JSON.parse(await indexBlob.text());
      } catch (e) {
        throw new GradPruneError('file', `model.safetensors.index.json is not valid JSON (${(e as Error).message}).`, {
          subject: 'model.safetensors.index.json',
        });
      }
      if (!index.weight_map || typeof index.weight_map !== 'object' || Array.isArray(index.weight_map)) {
        throw new GradPruneError('file', 'model.safetensors.index.json has no "weight_map".', { subject: 'model.safetensors.index.json' });
      }
      const badEntry = Object.entries(index.weight_map).find(([, shard]) => typeof shard !== 'string' || !shard.endsWith('.safetensors'));
      if (badEntry) {
        throw new GradPruneError('file', `model.safetensors.index.json maps "${badEntry[0]}" to ${JSON.stringify(badEntry[1])}, not a .safetensors file name.`, {
          subject: badEntry[0],
        });
      }
      const shardNames = [...new Set(Object.values(index.weight_map))].sort();
      const missing = shardNames.filter((s) => !files.has(s));
      if (missing.length) {
        throw new GradPruneError('file', `The index names shard${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, which ${missing.length > 1 ? 'were' : 'was'} not provided.`, {
          subject: missing[0],
          hint: 'Drop the whole model folder, with every shard listed in model.safetensors.index.json.',
        });
      }
      const shards = await Promise.all(shardNames.map((s) => SafetensorsFile.open(files.get(s)!, s)));
      const store = TensorStore.fromFiles(shards);
      for (const [name, shard] of Object.entries(index.weight_map)) {
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
    return toFloat32(await this.readBytes(name), this.weightDType(t));
  }

  /** A weight tensor as f16 bits (rounded to nearest even from F32 / BF16 sources). */
  async readF16Bits(name: string): Promise<Uint16Array> {
    const t = this.info(name);
    return toFloat16Bits(await this.readBytes(name), this.weightDType(t));
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
