// Weights uploaded once per device and shared by every job (the worker's cache), counted at ModelWeights.load:
// scoring, a Check and a Recover on tiny-llama upload each distinct checkpoint once (dense, pruned, pruned +
// recovered) — before the cache scoring uploaded once, the Check 4 times (evaluation and generation of each model) and Recover 4 more (its
// training, then dense, pruned and recovered measured). A GPU memory limit below the resident need streams the
// layers; a new prune drops the stale uploads, a new model all of them.
import { afterAll, describe, expect, it } from 'vitest';
import { countingHost, RECOVER_SETTINGS, scoredAndPruned } from '../testing/worker-journey';

// tiny-llama (fixtures/README.md): 6 layers of 46 208 parameters, embedding + lm_head + final norm 65 600, F32.
const LAYER_PARAMS = 64 * 64 + 2 * (64 * 32) + 64 * 64 + 3 * (64 * 176) + 2 * 64;
const OTHER_PARAMS = 2 * 512 * 64 + 64;

const h = countingHost();
afterAll(() => {
  h.restore();
  for (const d of h.devices) d.device.destroy();
});

describe('worker weights cache', () => {
  it('uploads each checkpoint once across Check, generation and Recover; streams under a small limit; drops stale uploads', async () => {
    await scoredAndPruned(h);
    expect(h.uploads.map((u) => u.layers)).toEqual([6]); // the scoring run's upload, kept; the prune merges without uploading a model
    expect(h.host.weights.list().map((w) => w.name)).toEqual(['tiny-llama']);
    const afterPrune = h.uploads.length;

    // Check: dense (on the scoring run's upload) and pruned, each evaluated (batch 4) and generated with (batch 1).
    const ev = await h.request('evaluated', { type: 'evaluate', options: { maxExamples: 2, generations: 1, maxNewTokens: 2 } });
    expect(h.uploads.slice(afterPrune).map((u) => u.layers)).toEqual([4]);
    expect(ev.generations).toHaveLength(1);
    expect(ev.table.map((r) => [r.storage, r.residency])).toEqual([['f32', 'resident'], ['f32', 'resident']]);
    const checkBytes = 4 * (6 * LAYER_PARAMS + OTHER_PARAMS) + 4 * (4 * LAYER_PARAMS + OTHER_PARAMS);
    expect(h.host.weights.bytes).toBe(checkBytes);

    // A generation and a Recover: the pruned model trains on the Check's upload; dense and pruned are measured on
    // theirs; only the recovered model (a new checkpoint) is uploaded.
    await h.request('generated', { type: 'generate', prompts: ['Question: why?'], maxNewTokens: 2 });
    const rec = await h.request('recovered', { type: 'recover', settings: RECOVER_SETTINGS, evaluation: { maxExamples: 2 } });
    expect(rec.steps).toBe(2);
    expect(h.uploads.map((u) => u.layers)).toEqual([6, 4, 4]); // = the distinct checkpoints, scoring included
    expect(h.host.weights.uploads).toBe(3);
    expect(rec.precision.storage).toBe('f32');
    // Another Check reuses both uploads.
    await h.request('evaluated', { type: 'evaluate', options: { maxExamples: 4, generations: 0, maxNewTokens: 1 } });
    expect(h.uploads.length - afterPrune).toBe(2);

    // A new prune (the same plan again) makes the pruned and recovered uploads stale: only the dense one stays.
    await h.request('pruned', { type: 'applyPrune', plan: { prune: 2, merge: 1, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' } });
    expect(h.host.weights.list().map((w) => w.name)).toEqual(['tiny-llama']);

    // A limit (5.5 MB) below the resident need of the dense Check job (weights 1.37 MB and one layer's activations,
    // 4.3 MB: forward-only jobs share one set) but above its streamed need (4.97 MB: embedding, lm_head and two layer
    // slots): the cached uploads are evicted and the dense layers stream. The pruned job fits resident (5.2 MB) once
    // the streamed dense upload is evicted in turn (least recently used first). The numbers are the resident run's.
    const limit = 5_500_000;
    const streamed = await h.request('evaluated', { type: 'evaluate', options: { maxExamples: 4, generations: 0, maxNewTokens: 1, maxGpuMemory: limit } });
    expect(streamed.table.map((r) => r.residency)).toEqual(['streamed', 'resident']);
    expect(h.uploads.slice(-2)).toEqual([{ layers: 6, storage: 'f32', residency: 'streamed' }, { layers: 4, storage: 'f32', residency: 'resident' }]);
    expect(h.host.weights.list().map((w) => [w.name, w.residency])).toEqual([['tiny-llama-gradprune-4L', 'resident']]);
    expect(h.host.weights.bytes).toBeLessThanOrEqual(limit);
    const resident = h.events.filter((e) => e.type === 'evaluated').at(-2)!;
    if (resident.type !== 'evaluated') throw new Error('unreachable');
    expect(streamed.dense.loss).toBeCloseTo(resident.dense.loss, 5);
    expect(streamed.pruned.loss).toBeCloseTo(resident.pruned.loss, 5);

    // A new model clears everything.
    await h.request('modelUnloaded', { type: 'unloadModel' });
    expect(h.host.weights.list()).toEqual([]);
  });
});
