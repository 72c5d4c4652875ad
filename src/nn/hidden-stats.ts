// Hidden-state statistics gathered from a job's own forward passes (Block Influence, angular distance): for chosen
// pairs (from, to) of residual-stream states h_from, h_to (h_0 = the embeddings, h_ℓ+1 = layer ℓ's output; the
// final norm is not applied to h_L), a per-token distance between the two (B, T, C) states at the positions the
// loss counts (those whose next token is a target), summed over the batches of the run and counted.
//   'cosine'  1 − cos(h_from, h_to)            (ShortGPT's Block Influence when to = from + 1)
//   'angular' arccos(cos(h_from, h_to)) / π     (Gromov et al.'s angular distance, per token, then averaged)

/** One pair of residual-stream states and the per-token distance gathered between them. */
export interface HiddenStatePair {
  /** Residual-stream indices: 0 = embeddings, ℓ + 1 = the output of layer ℓ; from < to ≤ numLayers. */
  from: number;
  to: number;
  measure: 'cosine' | 'angular';
}

/** What the collector gives back after a run. */
export interface HiddenStateStats {
  pairs: HiddenStatePair[];
  /** mean[i]: pairs[i]'s distance averaged over every counted token of every batch. */
  mean: number[];
  /** Tokens counted (positions whose next token is a target), over all batches. */
  tokens: number;
  /** Forward passes the statistics were gathered from. */
  passes: number;
  /** GPU bytes the collector allocated (per-pair sums and the per-token scratch). */
  gpuBytes: number;
  /** Seconds its kernels take per forward pass, measured once after the run (one standalone submit); times `passes` is its share of the run. */
  secondsPerPass: number;
}
