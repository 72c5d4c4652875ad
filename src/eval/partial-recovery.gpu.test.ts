// Recovery by partial-layer fine-tuning on the GPU: lm_head + the last layer of the fixtures' pruned tiny-llama on a
// slice of FiQA-SA, the same split and settings as the LoRA recovery test. Its before / after losses are what the
// eval engine measures independently on the pruned checkpoint and on the exported one (tensors replaced, written
// and re-opened), and the run lowers the held-out loss. Bad --last-layers and cancellation.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExamples, readDataset } from '../data';
import type { TokenizedExample } from '../data/types';
import { GradPruneError } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { openModelFolder } from '../cli/load';
import { exportReplacedCheckpointTo } from '../export/merge-adapter';
import { MemorySink } from '../export/sink';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint';
import { openFile } from '../model/node-files';
import { relError } from '../nn/reference/compare';
import { DATASETS } from '../testing/paths';
import { prunedTinyLlamaFolder } from '../testing/recovery-fixtures';
import { measureModel } from './before-after';
import { runPartialRecovery } from './partial-recovery';
import { recoverySplit, type RecoveryProgress } from './recovery';

let gpu: Gpu;
let ckpt: Checkpoint;
let examples: TokenizedExample[];
let padTokenId: number;
beforeAll(async () => {
  gpu = await requestGpu();
  ckpt = await openModelFolder(await prunedTinyLlamaFolder());
  const file = path.join(DATASETS, 'fin-sentiment', 'fiqasa_valid.csv');
  const set = buildExamples(await readDataset(await openFile(file), 'fiqasa_valid.csv'), ckpt.tokenizer, { maxSeqLen: 32 });
  examples = set.examples.slice(0, 48);
  padTokenId = set.padTokenId;
});
afterAll(() => gpu?.device.destroy());

const SETTINGS = { steps: 10, batchSize: 4, seqLen: 32, lr: 1e-4, heldOut: 12, schedule: 'constant' as const, warmupSteps: 2, seed: 3, lastLayers: 1 };

describe('partial-layer recovery of the pruned tiny-llama (lm_head + last layer)', () => {
  it('lowers the held-out loss; before and after agree with the eval engine on the pruned and the exported checkpoint', async () => {
    expect(ckpt.config.numLayers).toBe(3);
    const reports: RecoveryProgress[] = [];
    const r = await runPartialRecovery(gpu, ckpt, { examples, padTokenId, tokenizer: ckpt.tokenizer }, SETTINGS, { progressIntervalMs: 0, onStep: (p) => reports.push(p) });
    expect(r.steps).toBe(10);
    expect(r.layers).toEqual([2]);
    expect(r.trainExamples).toBe(36);
    expect(r.lrs.slice(0, 3)).toEqual([0, 5e-5, 1e-4]);
    expect(reports.map((p) => p.step)).toEqual([...Array(10).keys()]);
    expect([...r.tensors.keys()]).toContain('lm_head.weight');
    expect(r.tensors.size).toBe(7 + 1);
    expect(r.untied).toBe(false);

    const { heldOut } = recoverySplit(examples, SETTINGS);
    const measure = async (model: Checkpoint) => (await measureModel(gpu, 'model', model, { batchSize: 4, seqLen: 32, heldOut, padTokenId, timeForward: false, weights: 'f32' })).heldOut!;
    const sink = new MemorySink();
    await exportReplacedCheckpointTo(sink, ckpt, { replaced: r.tensors });
    const exported = await openCheckpoint(sink.files, 'recovered');
    const before = await measure(ckpt);
    const after = await measure(exported);
    expect(relError(r.before!.loss, before.loss)).toBeLessThanOrEqual(1e-5);
    expect(relError(r.after!.loss, after.loss)).toBeLessThanOrEqual(1e-5); // the checkpoint is F32: stored exactly
    expect(after.loss).toBeLessThan(before.loss);
    expect(r.accuracyAfter?.items).toBe(12);
  });

  it('refuses --last-layers outside 1..layers before loading, and cancels with a GradPruneError', async () => {
    const bad = await runPartialRecovery(gpu, ckpt, { examples, padTokenId }, { ...SETTINGS, lastLayers: 4 }).catch((e) => e);
    expect(bad).toBeInstanceOf(GradPruneError);
    expect(bad.message).toMatch(/--last-layers must be an integer from 1 to the model's 3 layers \(got 4\)/);
    const controller = new AbortController();
    const err = await runPartialRecovery(gpu, ckpt, { examples, padTokenId }, { ...SETTINGS, heldOut: 0 }, {
      progressIntervalMs: 0,
      onStep: (p) => p.step === 1 && controller.abort(),
      signal: controller.signal,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(/Partial fine-tuning was cancelled after 2 steps/);
  });
});
