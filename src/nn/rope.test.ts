import { describe, expect, it } from 'vitest';
import { ropeInvFreq, ropeTables } from './rope';

describe('RoPE tables', () => {
  it('default: inv_freq = theta^(-2i/d)', () => {
    const inv = ropeInvFreq({ type: 'default', theta: 10000 }, 16);
    expect(inv).toHaveLength(8);
    expect(inv[0]).toBe(1);
    expect(inv[1]).toBeCloseTo(10000 ** (-2 / 16), 7);
    expect(inv[7]).toBeCloseTo(10000 ** (-14 / 16), 9);
  });

  it('linear: inv_freq / factor', () => {
    const base = ropeInvFreq({ type: 'default', theta: 10000 }, 64);
    const lin = ropeInvFreq({ type: 'linear', theta: 10000, factor: 4 }, 64);
    lin.forEach((v, i) => expect(v).toBeCloseTo(base[i] / 4, 9));
  });

  it('llama3: long wavelengths divided by factor, short unchanged, the band between interpolated', () => {
    const rope = { type: 'llama3' as const, theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    const base = ropeInvFreq({ type: 'default', theta: 500000 }, 128);
    const inv = ropeInvFreq(rope, 128);
    let smooth = 0;
    base.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) expect(inv[i]).toBe(f);
      else if (wavelen > 8192) expect(inv[i]).toBeCloseTo(f / 8, 12);
      else {
        smooth++;
        expect(inv[i]).toBeGreaterThan(f / 8);
        expect(inv[i]).toBeLessThan(f);
      }
    });
    expect(smooth).toBeGreaterThan(0);
  });

  it('repeats each angle over both halves of the head', () => {
    const { cos, sin } = ropeTables({ type: 'default', theta: 10000 }, 8, 3);
    expect(cos.subarray(0, 8).every((v) => v === 1)).toBe(true);
    expect(sin.subarray(0, 8).every((v) => v === 0)).toBe(true);
    expect(cos[8 + 1]).toBe(cos[8 + 5]);
    expect(sin[16 + 2]).toBe(sin[16 + 6]);
    expect(sin[16 + 0]).toBeCloseTo(Math.sin(2), 6);
  });
});
