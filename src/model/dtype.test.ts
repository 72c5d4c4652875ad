import { describe, expect, it } from 'vitest';
import { f16BitsToNumber, numberToBf16Bits, numberToF16Bits } from './dtype';

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
