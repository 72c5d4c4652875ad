import { describe, expect, it } from 'vitest';
import { f16BitsToNumber, numberToBf16Bits, numberToF16Bits, toFloat16Bits } from './dtype';

describe('half and bfloat16 conversion', () => {
  it('decodes IEEE half bit patterns exactly', () => {
    expect(f16BitsToNumber(0x3c00)).toBe(1);
    expect(f16BitsToNumber(0xc000)).toBe(-2);
    expect(f16BitsToNumber(0x7bff)).toBe(65504);
    expect(f16BitsToNumber(0x0001)).toBe(2 ** -24);
    expect(f16BitsToNumber(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(f16BitsToNumber(0x7e00))).toBe(true);
  });
  it('rounds to nearest even when encoding', () => {
    expect(numberToF16Bits(1)).toBe(0x3c00);
    expect(numberToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(numberToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(numberToF16Bits(65520)).toBe(0x7c00); // overflow → inf
    expect(numberToF16Bits(2 ** -25)).toBe(0); // tie at the smallest subnormal → 0
    expect(numberToBf16Bits(1)).toBe(0x3f80);
    expect(numberToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(numberToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });
});

describe('toFloat16Bits', () => {
  it('rounds BF16 and F32 tensors to f16 element by element, across its conversion blocks', () => {
    const n = 70_000; // more than one 65536-element block
    const values = Array.from({ length: n }, (_, i) => Math.sin(i) * 2 ** ((i % 40) - 20));
    const bf16 = Uint16Array.from(values, numberToBf16Bits);
    const got = toFloat16Bits(new Uint8Array(bf16.buffer), 'BF16');
    expect(got).toHaveLength(n);
    for (const i of [0, 1, 65535, 65536, 65537, n - 1]) {
      const exact = new Float32Array(new Uint32Array([bf16[i] << 16]).buffer)[0]; // BF16 is the top half of an f32
      expect(got[i], `element ${i}`).toBe(numberToF16Bits(exact));
    }
    const f32 = Float32Array.from(values);
    const fromF32 = toFloat16Bits(new Uint8Array(f32.buffer), 'F32');
    for (const i of [3, 65536, n - 2]) expect(fromF32[i]).toBe(numberToF16Bits(f32[i]));
  });
});
