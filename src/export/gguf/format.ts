// The GGUF container (version 3), as ggml's gguf.cpp reads it, all little-endian:
//
//   "GGUF" u32 version=3 u64 n_tensors u64 n_kv
//   n_kv × (string key, u32 value type, value)              string = u64 byte length + UTF-8 bytes (no NUL)
//   n_tensors × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
//   padding to ALIGNMENT, then the tensor data; each tensor starts at data start + offset, offsets ALIGNMENT-aligned
//
// ne[] is ggml's order: ne[0] is the innermost (contiguous) dimension, so a PyTorch [out, in] weight is [in, out].
// Only the header is built here (in memory: names, numbers, the vocabulary); tensor bytes stream after it.

/** Default alignment of ggml (general.alignment absent). */
export const GGUF_ALIGNMENT = 32;
const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;

/** gguf_type: the type tag of a metadata value. */
export const enum ValueType {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
}

/** ggml_type of the tensors this writer produces. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

/** Bytes of one row of `n` elements of `type` (Q8_0: blocks of 32 as an f16 scale + 32 int8). */
export function rowBytes(type: GgmlTypeName, n: number): number {
  switch (type) {
    case 'F32': return 4 * n;
    case 'F16': return 2 * n;
    case 'Q8_0':
      if (n % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 row of ${n} elements is not a whole number of blocks`);
      return (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

export type MetadataValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'u64'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: ArrayLike<number> }
  | { type: 'i32[]'; value: ArrayLike<number> };

export type Metadata = Map<string, MetadataValue>;

export interface TensorInfo {
  name: string;
  /** ggml order: ne[0] innermost. */
  ne: number[];
  type: GgmlTypeName;
}

export const tensorDataBytes = (t: TensorInfo): number => rowBytes(t.type, t.ne[0]) * t.ne.slice(1).reduce((a, b) => a * b, 1);

export const alignUp = (n: number, to = GGUF_ALIGNMENT): number => Math.ceil(n / to) * to;

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private readonly encoder = new TextEncoder();

  private reserve(n: number): void {
    if (this.length + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }
  string(s: string): void {
    const bytes = this.encoder.encode(s);
    this.u64(bytes.byteLength);
    this.reserve(bytes.byteLength);
    this.buf.set(bytes, this.length);
    this.length += bytes.byteLength;
  }
  zeros(n: number): void {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeValue(w: ByteWriter, v: MetadataValue): void {
  switch (v.type) {
    case 'u32': return void (w.u32(ValueType.U32), w.u32(v.value));
    case 'i32': return void (w.u32(ValueType.I32), w.i32(v.value));
    case 'u64': return void (w.u32(ValueType.U64), w.u64(v.value));
    case 'f32': return void (w.u32(ValueType.F32), w.f32(v.value));
    case 'bool': return void (w.u32(ValueType.BOOL), w.u8(v.value ? 1 : 0));
    case 'string': return void (w.u32(ValueType.STRING), w.string(v.value));
    case 'string[]':
      w.u32(ValueType.ARRAY), w.u32(ValueType.STRING), w.u64(v.value.length);
      for (const s of v.value) w.string(s);
      return;
    case 'f32[]':
      w.u32(ValueType.ARRAY), w.u32(ValueType.F32), w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.f32(v.value[i]);
      return;
    case 'i32[]':
      w.u32(ValueType.ARRAY), w.u32(ValueType.I32), w.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) w.i32(v.value[i]);
      return;
  }
}

export interface GgufLayout {
  /** Header, metadata, tensor infos and the padding up to the data: the file's first bytes. */
  header: Uint8Array;
  /** Each tensor's offset from the start of the data section. */
  offsets: number[];
  /** The whole file's size in bytes (the last tensor padded too). */
  fileBytes: number;
}

/** The header of a GGUF file holding `tensors` (in this order) and `metadata`. */
export function ggufHeader(metadata: Metadata, tensors: readonly TensorInfo[]): GgufLayout {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, value);
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(GgmlType[t.type]);
    w.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + tensorDataBytes(t));
  }
  w.zeros(alignUp(w.length) - w.length);
  const header = w.bytes();
  // Every tensor, the last included, is padded to the alignment (as gguf.cpp sizes the data section).
  return { header, offsets, fileBytes: header.byteLength + offset };
}
