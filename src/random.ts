// One seeded generator for everything that must be reproducible from a seed: data splits and shuffles, LoRA init,
// sampling, test data. The same seed gives the same numbers in every JS engine.

/** mulberry32: a small 32-bit seeded generator; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
