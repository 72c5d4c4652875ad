// Layer-score utilities that need no GPU: how stable a ranking is between steps.

/**
 * Kendall's τ-b between two score vectors (rankings by score; ties handled as τ-b does, as scipy's kendalltau).
 * 1 when the orders agree, −1 when reversed; NaN when either vector is constant.
 */
export function kendallTau(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`kendallTau: lengths ${a.length} and ${b.length} differ`);
  let concordant = 0;
  let discordant = 0;
  let tiesA = 0;
  let tiesB = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const da = Math.sign(a[i] - a[j]);
      const db = Math.sign(b[i] - b[j]);
      if (da === 0 && db === 0) continue;
      if (da === 0) tiesA++;
      else if (db === 0) tiesB++;
      else if (da === db) concordant++;
      else discordant++;
    }
  }
  return (concordant - discordant) / Math.sqrt((concordant + discordant + tiesA) * (concordant + discordant + tiesB));
}

/** Layer indices from most to least important (ties: lower layer first). */
export function rankLayers(scores: readonly number[]): number[] {
  return scores.map((_, i) => i).sort((x, y) => scores[y] - scores[x] || x - y);
}
