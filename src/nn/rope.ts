// Rotary position embedding tables, shared by the CPU reference and the GPU engine.
// Computed in float32 steps, as transformers does, so both engines see the same cos/sin.

import type { RopeConfig } from '../model/config';

/** inv_freq[i] for i < headDim/2, after the configured scaling (default, linear, llama3). */
export function ropeInvFreq(rope: RopeConfig, headDim: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(Math.pow(rope.theta, Math.fround((2 * i) / headDim)));
  if (rope.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = inv[i] / rope.factor;
  } else if (rope.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldCtx } = rope;
    const lowFreqWavelen = oldCtx / lowFreqFactor;
    const highFreqWavelen = oldCtx / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const f = inv[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowFreqWavelen) inv[i] = f / factor;
      else if (wavelen >= highFreqWavelen) {
        const s = (oldCtx / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - s) * (f / factor) + s * f;
      }
    }
  }
  return inv;
}

/**
 * cos and sin tables for positions 0..maxPos-1: (maxPos, headDim), each angle repeated over both halves
 * (the rotate-half layout).
 */
export function ropeTables(rope: RopeConfig, headDim: number, maxPos: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(rope, headDim);
  const half = headDim / 2;
  const cos = new Float32Array(maxPos * headDim);
  const sin = new Float32Array(maxPos * headDim);
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + i + half] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + i + half] = s;
    }
  }
  return { cos, sin };
}
