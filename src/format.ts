// Numbers for people (1.24 M, 3.5 MiB) and their exact forms, in one style for the studio, the CLI and the engine's messages.

const trim = (s: string) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);

/** Three significant digits, trailing zeros dropped: 3.50 → "3.5", 124.0 → "124". */
function sig3(x: number): string {
  if (x >= 100) return String(Math.round(x));
  return trim(x.toPrecision(3));
}

const COUNT_UNITS = [
  { value: 1e12, unit: 'T' },
  { value: 1e9, unit: 'B' },
  { value: 1e6, unit: 'M' },
  { value: 1e3, unit: 'k' },
];

/** A count such as a parameter number: 1 240 000 → "1.24 M"; below a thousand, the number itself. */
export function formatCount(n: number): string {
  const abs = Math.abs(n);
  for (const { value, unit } of COUNT_UNITS) {
    // 0.9995: what rounds up to the next unit reads as it ("1 M", not "1000 k").
    if (abs >= value * 0.9995) return `${n < 0 ? '-' : ''}${sig3(abs / value)} ${unit}`;
  }
  return String(n);
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** A size in binary units: 3 670 016 → "3.5 MiB"; 1023 → "1023 B". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let i = 0;
  while (i < BYTE_UNITS.length - 1 && Math.abs(value) >= 1024 * 0.9995) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${sig3(value)} ${BYTE_UNITS[i]}`;
}

/** The exact integer with thousands separators: 1240000 → "1,240,000". */
export const formatExact = (n: number): string => n.toLocaleString('en-US');

/** A time per token: "1.24 ms" at a millisecond and above, else microseconds ("35.2 µs"). */
export function formatMsPerToken(ms: number): string {
  return ms >= 0.9995 ? `${sig3(ms)} ms` : `${sig3(ms * 1000)} µs`;
}

/** A rate such as tokens per second, three significant digits: 1234.5 → "1235", 12.34 → "12.3", 0.4213 → "0.421" (a slow run never reads 0). */
export function formatRate(x: number): string {
  if (!Number.isFinite(x)) return '–';
  return x === 0 ? '0' : `${x < 0 ? '-' : ''}${sig3(Math.abs(x))}`;
}
