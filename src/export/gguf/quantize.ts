// f32 values → the bytes of a ggml tensor type. Q8_0 as ggml's reference quantizer (quantize_row_q8_0_ref) defines
// it: per block of 32 consecutive elements of a row, d = max|x| / 127 stored as f16, then q = round(x / d) as int8
// (rounding half away from zero, as C's roundf); a block of zeros has d = 0 and q = 0.

import { numberToF16Bits } from '../../model/dtype';
import { Q8_0_BLOCK, Q8_0_BLOCK_BYTES, type GgmlTypeName } from './format';

export function encodeF32(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

export function encodeF16(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToF16Bits(values[i]);
  return new Uint8Array(out.buffer);
}

/** Q8_0 blocks of `values` (its length a multiple of 32; rows are whole blocks, so row boundaries need no care). */
export function encodeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 needs a multiple of ${Q8_0_BLOCK} elements (got ${values.length})`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x = values.subarray(b * Q8_0_BLOCK, (b + 1) * Q8_0_BLOCK);
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(x[i]));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const at = b * Q8_0_BLOCK_BYTES;
    view.setUint16(at, numberToF16Bits(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) view.setInt8(at + 2 + i, roundHalfAway(Math.fround(x[i] * id)));
  }
  return out;
}

const roundHalfAway = (v: number): number => Math.sign(v) * Math.round(Math.abs(v));

export function encodeAs(type: GgmlTypeName, values: Float32Array): Uint8Array {
  switch (type) {
    case 'F32': return encodeF32(values);
    case 'F16': return encodeF16(values);
    case 'Q8_0': return encodeQ8_0(values);
  }
}
