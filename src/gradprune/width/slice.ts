// Rows and columns of a stored tensor kept, on its bytes: a width-pruned weight is the original's exact values
// (no rounding through f32), whatever the stored dtype. Kept lines are copied as contiguous runs.

/** Ascending indices → [start, end) runs of consecutive ones. */
export function runsOf(indices: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const i of indices) {
    const last = runs[runs.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  }
  return runs;
}

/**
 * The kept rows (null: all) and columns (null: all) of a row-major [rows, cols] tensor of `elementBytes`-byte
 * elements; a 1-D tensor (a bias) is [rows, 1].
 */
export function sliceLines(bytes: Uint8Array, shape: readonly number[], elementBytes: number, rows: readonly number[] | null, cols: readonly number[] | null): Uint8Array {
  const R = shape[0];
  const Cn = shape.length > 1 ? shape[1] : 1;
  const rowBytes = Cn * elementBytes;
  const keptRows = rows ?? Array.from({ length: R }, (_, i) => i);
  const colRuns = cols ? runsOf(cols) : [[0, Cn] as [number, number]];
  const newCols = cols ? cols.length : Cn;
  const out = new Uint8Array(keptRows.length * newCols * elementBytes);
  let at = 0;
  for (const r of keptRows) {
    const row = r * rowBytes;
    for (const [a, b] of colRuns) {
      out.set(bytes.subarray(row + a * elementBytes, row + b * elementBytes), at);
      at += (b - a) * elementBytes;
    }
  }
  return out;
}
