// Sizes a person types: `512MiB`, `14GiB`, `16GB`, `1.5 GiB` or a plain number of bytes (the CLI's
// `--max-gpu-memory` and the studio's GPU memory limit). Binary units are powers of 1024, decimal ones of 1000.

import { GradPruneError } from './errors';

const UNITS: Record<string, number> = {
  b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
};

/** Bytes of a size; a GradPruneError('input') naming `subject` for anything else. */
export function parseByteSize(text: string, subject = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? (m[2] === '' ? 1 : UNITS[m[2].toLowerCase()]) : undefined;
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new GradPruneError('input', `${subject} must be a size such as 512MiB, 14GiB or 16GB, or a number of bytes (got "${text}").`, { subject });
  }
  return bytes;
}
