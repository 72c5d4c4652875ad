import { describe, expect, it } from 'vitest';
import { parseByteSize } from './byte-size';

describe('parseByteSize', () => {
  it('reads binary and decimal units and plain bytes', () => {
    expect(parseByteSize('512MiB')).toBe(512 * 1024 * 1024);
    expect(parseByteSize('14GiB')).toBe(14 * 1024 ** 3);
    expect(parseByteSize('16GB')).toBe(16_000_000_000);
    expect(parseByteSize('1.5 gib')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('123456')).toBe(123456);
  });

  it('refuses what is not a size, naming the setting', () => {
    for (const bad of ['', '0', '-1GiB', '12 parsecs', 'GiB', '1e9']) {
      expect(() => parseByteSize(bad, '--max-gpu-memory'), bad).toThrow(/--max-gpu-memory must be a size such as 512MiB/);
    }
  });
});
