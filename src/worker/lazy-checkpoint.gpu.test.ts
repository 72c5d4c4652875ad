// The worker's lazy pruned checkpoint against the engine's in-memory one: after a short scoring run on a fixture,
// the view over the dense files (merged receivers kept, everything else read on demand) exports byte for byte what
// runPrune writes, its planned file sizes are what is written (one file or shards), every tensor reads the same
// values as the reopened export, and the recovered view reads what exportMergedCheckpoint writes.
import { describe, expect, it } from 'vitest';
import { preparePrune, runPrune, runScoring } from '../gradprune/pipeline';
import { makePlan } from '../gradprune/plan';
import { openCheckpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';
import { exportMergedCheckpoint } from '../export/merge-adapter';
import { MemorySink } from '../export/sink';
import { initLoraAdapters } from '../nn/lora';
import { testGpu } from '../testing/gpu';
import { fixtureDir } from '../testing/paths';
import { mergeReceivers, plannedFiles, prunedCheckpoint, recoveredCheckpoint, writeCheckpointTo } from './lazy-checkpoint';

const gpu = await testGpu();

const bytesOf = async (b: Blob) => new Uint8Array(await b.arrayBuffer());

describe('lazy pruned checkpoint', () => {
  // tiny-llama: F32, untied; tiny-qwen2: BF16, tied, q/k/v biases.
  for (const name of ['tiny-llama', 'tiny-qwen2']) {
    it(`${name}: exports what runPrune writes, reads what its export reads`, async () => {
      const dense = await openCheckpoint(await openFolder(fixtureDir(name)), name);
      const V = dense.config.vocabSize;
      const row = (s: number) => Int32Array.from({ length: 16 }, (_, t) => (s * 131 + t * 17 + 3) % V);
      const scoring = await runScoring(gpu, dense, { kind: 'batches', batch: (s) => ({ B: 1, T: 16, inputIds: row(s), lossMask: new Int32Array(16).fill(1), padTokenId: 0 }) }, { steps: 3, batchSize: 1, seqLen: 16, lr: 1e-3, weights: 'f32' });
      const options = { prune: 2, merge: 1, keepFraction: 0.2, protectLast: false };
      const createdAt = '2026-01-01T00:00:00.000Z';
      const scores = { layerScores: scoring.layerScores, layerScoresCode: scoring.layerScoresCode, moduleScores: scoring.moduleScores, settings: scoring.settings };
      const eager = await runPrune(gpu, dense, scores, scoring.igia, { ...options, createdAt });

      const prepared = preparePrune(gpu, dense, scores, scoring.igia, { ...options, createdAt });
      const { plan } = prepared;
      expect(plan).toEqual(makePlan(scoring.layerScores, dense.config, options));
      expect(plan).toEqual(eager.plan);
      const merge = await mergeReceivers(gpu, dense, plan, prepared.source);
      expect(merge.addedElements).toEqual(eager.merge.addedElements);
      expect([...merge.weights.keys()]).toEqual([...eager.merge.weights.keys()]);
      const run = prepared.runInfo(merge.addedElements);
      expect(run).toEqual(eager.run);
      const lazy = await prunedCheckpoint(dense, plan, merge.weights, `${name}-pruned`, run);
      expect(lazy.config.numLayers).toBe(plan.kept.length);

      // Byte for byte the folder runPrune makes, file for file, in the same order.
      const sink = new MemorySink();
      const written = await writeCheckpointTo(sink, lazy);
      expect([...sink.files.keys()]).toEqual([...eager.files.keys()]);
      for (const [file, blob] of eager.files) expect(await bytesOf(sink.files.get(file)!), file).toEqual(await bytesOf(blob));
      // The sizes the pruned event announces are the sizes written, before anything is read.
      expect(plannedFiles(lazy)).toEqual([...written].map(([n, bytes]) => ({ name: n, bytes })));
      // Sharded: the planned shards and index are what the writer makes.
      const small = new MemorySink();
      const shards = await writeCheckpointTo(small, lazy, lazy.files, 40_000);
      expect([...shards.keys()].filter((n) => n.startsWith('model-')).length).toBeGreaterThan(1);
      expect(plannedFiles(lazy, lazy.files, 40_000)).toEqual([...shards].map(([n, bytes]) => ({ name: n, bytes })));

      // Every tensor of the view reads what the reopened export reads (f32 and f16 paths, whole and by rows).
      const reopened = await openCheckpoint(eager.files, 'reopened');
      expect([...lazy.store.tensors.keys()]).toEqual([...reopened.store.tensors.keys()]);
      for (const t of lazy.store.tensors.keys()) {
        expect(await lazy.store.readF32(t), t).toEqual(await reopened.store.readF32(t));
        expect(await lazy.store.readF16Bits(t), t).toEqual(await reopened.store.readF16Bits(t));
      }
      const receiver = [...merge.weights.keys()][0].replace(/layers\.(\d+)\./, (_, l) => `layers.${plan.newIndex[Number(l)]}.`);
      expect(await lazy.store.readRows(receiver, 1, 3, 'f32')).toEqual(await reopened.store.readRows(receiver, 1, 3, 'f32'));
      expect(await lazy.store.readRows('model.embed_tokens.weight', 2, 5, 'f16')).toEqual(await reopened.store.readRows('model.embed_tokens.weight', 2, 5, 'f16'));

      // The recovered view: the adapter merged as each weight is read, as exportMergedCheckpoint writes it.
      const lora = { rank: 4, alpha: 8, modules: ['q_proj', 'down_proj'] as const };
      const adapters = initLoraAdapters(lazy.config, { ...lora, modules: [...lora.modules] }, 1).map((a) => ({ ...a, B: a.B.map((_, i) => ((i % 7) - 3) * 1e-2) }));
      const recovered = recoveredCheckpoint(lazy, { ...lora, modules: [...lora.modules] }, adapters, `${name}-recovered`);
      const mergedFiles = await openCheckpoint(await exportMergedCheckpoint(reopened, { lora: { ...lora, modules: [...lora.modules] }, adapters }), 'merged');
      for (const t of recovered.store.tensors.keys()) expect(await recovered.store.readF32(t), t).toEqual(await mergedFiles.store.readF32(t));
      const adapted = 'model.layers.1.self_attn.q_proj.weight';
      expect(await recovered.store.readF32(adapted)).not.toEqual(await lazy.store.readF32(adapted));
    });
  }
});
