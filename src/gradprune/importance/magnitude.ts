// Magnitude, a data-free baseline: per layer, the mean |W| over its seven linear weights (Σ|W| / Σ numel; biases
// and norms left out), read from the checkpoint one tensor at a time (host memory: the largest tensor, as f32).

import { LINEAR_MODULES, linearShape, linearWeightName } from '../../model/config';
import type { ImportanceMethod } from './method';

export const magnitude: ImportanceMethod = {
  id: 'magnitude',
  title: 'Magnitude (mean |W|)',
  reference: 'data-free baseline: Σ|W| per layer, normalised by size',
  source: 'weights',
  async compute(ctx) {
    const { config, store } = ctx.model;
    const start = performance.now();
    const layerScores: number[] = [];
    let largest = 0;
    for (let l = 0; l < config.numLayers; l++) {
      let sum = 0;
      let count = 0;
      for (const m of LINEAR_MODULES) {
        const w = await store.readF32(linearWeightName(l, m));
        let s = 0;
        for (let i = 0; i < w.length; i++) s += Math.abs(w[i]);
        sum += s;
        count += w.length;
        largest = Math.max(largest, w.byteLength);
        ctx.signal?.throwIfAborted();
      }
      layerScores.push(sum / count);
    }
    const weights = LINEAR_MODULES.reduce((s, m) => s + linearShape(config, m)[0] * linearShape(config, m)[1], 0) * config.numLayers;
    return {
      method: 'magnitude',
      layerScores,
      cost: { seconds: (performance.now() - start) / 1000, gpuBytes: 0, hostBytes: largest, note: `${weights} weights read tensor by tensor from the checkpoint` },
    };
  },
};
