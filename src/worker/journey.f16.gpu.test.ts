// One house for the precision (gpu-f16 tier: Dawn on lavapipe, which has shader-f16; skipped with the reason
// without it): with the session's default 'auto', the worker's Check and Recover run every model — dense, pruned,
// pruned + recovered, evaluation, generation and training — with f16 weight storage, as scoring does, and say so;
// an explicit f32 choice is honoured too.
import { afterAll, describe, expect, it } from 'vitest';
import { countingHost, RECOVER_SETTINGS, scoredAndPruned } from '../testing/worker-journey';

const h = countingHost();
afterAll(() => {
  h.restore();
  for (const d of h.devices) d.device.destroy();
});

describe("worker journey with precision 'auto' on an adapter with shader-f16", () => {
  it('scores, checks and recovers with f16 weights, and reports it', async (ctx) => {
    await h.host.start();
    const adapter = h.events.find((e) => e.type === 'adapter');
    if (adapter?.type !== 'adapter' || !adapter.adapter?.shaderF16) return ctx.skip(`adapter "${adapter?.type === 'adapter' ? adapter.adapter?.name : '?'}" has no shader-f16 (lavapipe missing?)`);

    const { scored } = await scoredAndPruned(h);
    expect(scored.settings.weights).toBe('f16');
    expect(h.uploads).toEqual([{ layers: 6, storage: 'f16', residency: 'resident' }]); // the scoring run's, kept for the Check
    const afterPrune = h.uploads.length;

    const ev = await h.request('evaluated', { type: 'evaluate', options: { maxExamples: 2, generations: 1, maxNewTokens: 2 } });
    expect(ev.precision).toEqual({ storage: 'f16', reason: 'adapter has shader-f16' });
    expect(ev.table.map((r) => r.storage)).toEqual(['f16', 'f16']);
    expect(Number.isFinite(ev.dense.loss) && Number.isFinite(ev.pruned.loss)).toBe(true);

    const rec = await h.request('recovered', { type: 'recover', settings: RECOVER_SETTINGS, evaluation: { maxExamples: 2 } });
    expect(rec.precision).toEqual({ storage: 'f16', reason: 'adapter has shader-f16' });
    expect(rec.settings.weights).toBe('f16'); // the training run, as resolved
    expect(rec.table.map((r) => r.storage)).toEqual(['f16', 'f16', 'f16']);
    // Every upload since the prune is f16, and each checkpoint once: pruned, recovered (dense is the scoring run's).
    expect(h.uploads.slice(afterPrune)).toEqual([
      { layers: 4, storage: 'f16', residency: 'resident' },
      { layers: 4, storage: 'f16', residency: 'resident' },
    ]);
    // The Check's dense and pruned numbers are reused by Recover on the same rows (one precision for both).
    expect(rec.table[1].heldOutLoss).toBe(ev.pruned.loss);

    // A session that chose f32: the Check uploads f32 copies and says so.
    const f32 = await h.request('evaluated', { type: 'evaluate', options: { maxExamples: 2, generations: 0, maxNewTokens: 1, weights: 'f32' } });
    expect(f32.precision.storage).toBe('f32');
    expect(f32.table.map((r) => r.storage)).toEqual(['f32', 'f32']);
    expect(f32.pruned.loss).toBeCloseTo(ev.pruned.loss, 2);
  });
});
