// The studio's method rankings through the worker host (Node, real Dawn device): the scored event carries every
// studio method's layer scores from the one scoring run, and a plan ranked by another method prunes that method's
// layers without merging — 'last' the layers just before the last, 'magnitude' the layers of lowest mean |W|, checked
// against a plain loop over tiny-llama's model.safetensors (F32; 6 layers, fixtures/README.md).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureDir } from '../testing/paths';
import { ARC_ROWS, folderEntries, hostWithDevices } from '../testing/worker-journey';

const { host, devices, result, errorOf } = hostWithDevices();
afterAll(() => {
  for (const d of devices) d.device.destroy();
});

/** Mean |W| over each layer's seven linear weights, straight from the safetensors bytes (header JSON, then F32 data). */
async function meanAbsPerLayer(file: string, layers: number): Promise<number[]> {
  const bytes = await readFile(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const modules = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
  return Array.from({ length: layers }, (_, l) => {
    let sum = 0;
    let count = 0;
    for (const m of modules) {
      const t = header[`model.layers.${l}.${m}.weight`];
      expect(t.dtype).toBe('F32');
      for (let o = 8 + headerLength + t.data_offsets[0]; o < 8 + headerLength + t.data_offsets[1]; o += 4) sum += Math.abs(bytes.readFloatLE(o));
      count += (t.data_offsets[1] - t.data_offsets[0]) / 4;
    }
    return sum / count;
  });
}

describe('worker host: every method ranking from one scoring run, and plans ranked by them', () => {
  it('scores once; the scored event carries igia, igia-code, bi, angular (N = 1, 2), magnitude and last', async () => {
    await host.handle({ type: 'loadModel', id: 1, name: 'tiny-llama', files: await folderEntries('tiny-llama') });
    await host.handle({ type: 'loadDataset', id: 2, file: new Blob([ARC_ROWS.join('\n') + '\n']), fileName: 'arc.jsonl', options: { maxSeqLen: 128, heldOut: 4, seed: 0 } });
    await host.handle({ type: 'score', id: 3, settings: { steps: 3, batchSize: 2, seqLen: 128 } });
    const scored = result('scored', 3);
    const rankings = scored.rankings ?? [];
    expect(rankings.map((r) => r.method)).toEqual(['igia', 'igia-code', 'bi', 'angular', 'magnitude', 'last']);
    const by = new Map(rankings.map((r) => [r.method, r]));
    // IGIA's rankings are the run's own scores.
    expect(by.get('igia')!.layerScores).toEqual(scored.scores.layerScores);
    expect(by.get('igia-code')!.layerScores).toEqual(scored.scores.layerScoresCode);
    // BI: one 1 − cos per layer, in [0, 2], gathered in the run's forward passes.
    const bi = by.get('bi')!.layerScores!;
    expect(bi).toHaveLength(6);
    for (const x of bi) expect(x >= 0 && x <= 2).toBe(true);
    // Angular: blocks of 1 .. ⌈6/4⌉ = 2 layers, each block within layers 1 .. 5.
    const angular = by.get('angular')!.byPrune!;
    expect(angular.map((b) => b.prune)).toEqual([1, 2]);
    for (const b of angular) {
      expect(b.block!.size).toBe(b.prune);
      expect(b.block!.start).toBeGreaterThanOrEqual(1);
      expect(b.block!.start + b.block!.size).toBeLessThanOrEqual(6);
    }
    expect(by.get('magnitude')!.layerScores).toHaveLength(6);
    expect(by.get('last')!.byPrune!.map((b) => b.prune)).toEqual([0, 1, 2, 3, 4]);
  });

  it("a plan ranked by 'last' drops the layers before the last, without merging", async () => {
    await host.handle({ type: 'applyPrune', id: 4, plan: { prune: 2, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'last' } });
    const pruned = result('pruned', 4);
    expect(pruned.plan.pruned).toEqual([3, 4]);
    expect(pruned.plan.merged).toEqual([]);
    expect(pruned.plan.kept).toEqual([0, 1, 2, 5]);
  });

  it("a plan ranked by 'magnitude' drops the layers of lowest mean |W| (layer 0 always kept)", async () => {
    const means = await meanAbsPerLayer(path.join(fixtureDir('tiny-llama'), 'model.safetensors'), 6);
    const lowest = [1, 2, 3, 4, 5].sort((a, b) => means[a] - means[b]).slice(0, 2).sort((a, b) => a - b);
    await host.handle({ type: 'applyPrune', id: 5, plan: { prune: 2, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'magnitude' } });
    const pruned = result('pruned', 5);
    expect(pruned.plan.pruned).toEqual(lowest);
    expect(pruned.plan.dropped).toEqual(lowest);
  });

  it("refuses a merge for another method's plan, and angular beyond the gathered blocks, saying what to do", async () => {
    await host.handle({ type: 'applyPrune', id: 6, plan: { prune: 2, merge: 1, keepFraction: 0.2, protectLast: false, rankedBy: 'bi' } });
    expect(errorOf(6)).toMatchObject({ error: { code: 'input', subject: 'merge' } });
    await host.handle({ type: 'applyPrune', id: 7, plan: { prune: 3, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'angular' } });
    expect(errorOf(7)).toMatchObject({ error: { code: 'input', subject: 'rankedBy' } });
    // Within the bound, angular's plan removes its chosen block.
    await host.handle({ type: 'applyPrune', id: 8, plan: { prune: 2, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'angular' } });
    const block = result('scored', 3).rankings!.find((r) => r.method === 'angular')!.byPrune![1].block!;
    expect(result('pruned', 8).plan.pruned).toEqual([block.start, block.start + 1]);
  });
});
