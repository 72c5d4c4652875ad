import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatExact, formatMsPerToken } from './format';

describe('formatCount', () => {
  it('keeps small numbers whole', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(512)).toBe('512');
    expect(formatCount(999)).toBe('999');
  });
  it('uses k / M / B with three significant digits', () => {
    expect(formatCount(1240)).toBe('1.24 k');
    expect(formatCount(1_240_000)).toBe('1.24 M');
    expect(formatCount(3_540_000)).toBe('3.54 M');
    expect(formatCount(8_030_261_248)).toBe('8.03 B');
    expect(formatCount(124_500)).toBe('125 k');
    expect(formatCount(2_000_000)).toBe('2 M');
  });
  it('rounds across a unit boundary to the larger unit', () => {
    expect(formatCount(999_999)).toBe('1 M');
    expect(formatCount(999_400)).toBe('999 k');
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(3.5 * 2 ** 20)).toBe('3.5 MiB');
    expect(formatBytes(7_092_288)).toBe('6.76 MiB');
    expect(formatBytes(2 ** 30)).toBe('1 GiB');
    expect(formatBytes(16 * 2 ** 40)).toBe('16 TiB');
  });
});

describe('formatExact', () => {
  it('groups thousands', () => {
    expect(formatExact(1_240_000)).toBe('1,240,000');
    expect(formatExact(96)).toBe('96');
  });
});

describe('formatMsPerToken', () => {
  it('shows milliseconds from 1 ms up, microseconds below', () => {
    expect(formatMsPerToken(12.345)).toBe('12.3 ms');
    expect(formatMsPerToken(1)).toBe('1 ms');
    expect(formatMsPerToken(0.0352)).toBe('35.2 µs');
    expect(formatMsPerToken(0.5)).toBe('500 µs');
  });
});
