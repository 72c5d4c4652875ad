// Element types of checkpoint tensors and the conversions the engine needs (bf16/f16/f32 → f32 or f16 bits).

/** Every dtype the safetensors format defines, so an unsupported one can be named rather than "unknown". */
export const SAFETENSORS_DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;

export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BYTES;
/** The floating dtypes model weights may be stored in. */
export type WeightDType = 'F32' | 'F16' | 'BF16';

export const isSafetensorsDType = (d: string): d is SafetensorsDType => Object.hasOwn(SAFETENSORS_DTYPE_BYTES, d);
export const isWeightDType = (d: string): d is WeightDType => d === 'F32' || d === 'F16' || d === 'BF16';
export const dtypeBytes = (d: SafetensorsDType): number => SAFETENSORS_DTYPE_BYTES[d];

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half (as its 16 bits) → number, exactly. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** number → IEEE half bits, round to nearest even (as PyTorch's `.half()`). */
export function numberToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const f = u32Scratch[0];
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  let mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

/** number → bfloat16 bits, round to nearest even (as PyTorch's `.bfloat16()`). */
export function numberToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const f = u32Scratch[0];
  if ((f & 0x7f800000) === 0x7f800000 && f & 0x7fffff) return ((f >>> 16) | 0x40) & 0xffff;
  const rounded = f + 0x7fff + ((f >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** Raw little-endian bytes of a weight tensor → f32 (exact for F16 and BF16). */
export function toFloat32(bytes: Uint8Array, dtype: WeightDType): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4).slice();
    case 'BF16': {
      const src = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
      const out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'F16': {
      const src = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = f16BitsToNumber(src[i]);
      return out;
    }
  }
}

/** f32 values → the little-endian bytes of `dtype` (round to nearest even for F16/BF16). */
export function fromFloat32(values: Float32Array, dtype: WeightDType): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case 'F16': {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = numberToF16Bits(values[i]);
      return new Uint8Array(out.buffer);
    }
    case 'BF16': {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = numberToBf16Bits(values[i]);
      return new Uint8Array(out.buffer);
    }
  }
}

/** Raw bytes of a weight tensor → f16 bits (for the f16 storage path). */
export function toFloat16Bits(bytes: Uint8Array, dtype: WeightDType): Uint16Array {
  if (dtype === 'F16') {
    const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
    return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2).slice();
  }
  // In blocks: a whole f32 copy of a large tensor would take twice the f16 result's memory again.
  const size = dtypeBytes(dtype);
  const n = bytes.byteLength / size;
  const out = new Uint16Array(n);
  const BLOCK = 1 << 16;
  for (let i = 0; i < n; i += BLOCK) {
    const f = toFloat32(bytes.subarray(i * size, Math.min(n, i + BLOCK) * size), dtype);
    for (let k = 0; k < f.length; k++) out[i + k] = numberToF16Bits(f[k]);
  }
  return out;
}

/**
 * Index of the first NaN or ±Inf element in a weight tensor's raw little-endian bytes, or -1: an all-ones exponent
 * in the raw bits (one integer test per element, no conversion), so a read can refuse damaged weights by name.
 */
export function firstNonFinite(bytes: Uint8Array, dtype: WeightDType): number {
  if (dtype === 'F32') {
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    const bits = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 2);
    for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7f800000) === 0x7f800000) return i;
    return -1;
  }
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 1);
  const exponent = dtype === 'F16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < bits.length; i++) if ((bits[i] & exponent) === exponent) return i;
  return -1;
}

/** The value at a non-finite element, for messages: "NaN", "+Inf" or "-Inf". */
export function nonFiniteKind(bytes: Uint8Array, dtype: WeightDType, index: number): string {
  const size = dtypeBytes(dtype);
  const view = new DataView(bytes.buffer, bytes.byteOffset + index * size, size);
  const x = dtype === 'F32' ? view.getFloat32(0, true) : dtype === 'F16' ? f16BitsToNumber(view.getUint16(0, true)) : toFloat32(bytes.subarray(index * 2, index * 2 + 2).slice(), 'BF16')[0];
  return Number.isNaN(x) ? 'NaN' : x > 0 ? '+Inf' : '-Inf';
}
