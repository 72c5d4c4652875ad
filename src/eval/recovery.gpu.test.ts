// Recovery fine-tuning on the GPU: a short run lowers the held-out loss of the fixtures' pruned tiny-llama on a
// slice of a real dataset (FiQA-SA sentiment), and the run's before / after losses are what the eval engine measures
// independently on the pruned weights alone and with the trained adapter. Progress, early stop and cancellation.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExamples, readDataset } from '../data';
import type { TokenizedExample } from '../data/types';
import { GradPruneError } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { openModelFolder } from '../cli/load';
import type { Checkpoint } from '../model/checkpoint';
import { openFile } from '../model/node-files';
import { relError } from '../nn/reference/compare';
import { DATASETS } from '../testing/paths';
import { comparisonRows, measureModel } from './before-after';
import { recoverySplit, runRecovery, type RecoveryProgress } from './recovery';
import { prunedTinyLlamaFolder } from '../testing/recovery-fixtures';

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

const SETTINGS = { steps: 10, batchSize: 4, seqLen: 32, lr: 1e-3, heldOut: 12, schedule: 'constant' as const, warmupSteps: 2, seed: 3 };

describe('recovery fine-tuning of the pruned tiny-llama', () => {
  it('lowers the held-out loss; before and after agree with the eval engine on the weights with and without the adapter', async () => {
    expect(ckpt.config.numLayers).toBe(3);
    const reports: RecoveryProgress[] = [];
    const r = await runRecovery(gpu, ckpt, { examples, padTokenId, tokenizer: ckpt.tokenizer }, SETTINGS, { progressIntervalMs: 0, onStep: (p) => reports.push(p) });
    expect(r.steps).toBe(10);
    expect(r.trainExamples).toBe(36);
    expect(r.heldOutExamples).toBe(12);
    expect(r.losses).toHaveLength(10);
    expect(r.lrs.slice(0, 3)).toEqual([0, 5e-4, 1e-3]); // linear warmup over 2 steps, then constant
    expect(reports.map((p) => p.step)).toEqual([...Array(10).keys()]);
    expect(reports[9].losses).toEqual(r.losses);
    expect(r.adapters).toHaveLength(3 * 7);
    expect(r.adapters.some((a) => a.B.some((v) => v !== 0))).toBe(true);

    // Independently: the eval engine on the pruned weights alone, and with the trained adapter, on the same held-out rows.
    const { heldOut } = recoverySplit(examples, SETTINGS);
    expect(heldOut).toHaveLength(12);
    const measure = async (lora: { config: typeof r.lora; adapters: typeof r.adapters } | null) =>
      (await measureModel(gpu, 'model', ckpt, { batchSize: 4, seqLen: 32, heldOut, padTokenId, lora, timeForward: false, weights: r.settings.weights })).heldOut!;
    const before = await measure(null);
    const after = await measure({ config: r.lora, adapters: r.adapters });
    expect(relError(r.before!.loss, before.loss)).toBeLessThanOrEqual(1e-5);
    expect(relError(r.after!.loss, after.loss)).toBeLessThanOrEqual(1e-5);
    expect(after.tokens).toBe(before.tokens);
    expect(after.loss).toBeLessThan(before.loss);
    // The held-out questions were scored for accuracy before and after.
    expect(r.accuracyBefore?.items).toBe(12);
    expect(r.accuracyAfter?.items).toBe(12);

    const rows = comparisonRows([
      { label: 'pruned', config: ckpt.config, dtype: ckpt.dtype, heldOut: r.before, accuracy: r.accuracyBefore },
      { label: 'pruned + recovered', config: ckpt.config, dtype: ckpt.dtype, lora: { config: r.lora, adapters: r.adapters }, heldOut: r.after, accuracy: r.accuracyAfter },
    ]);
    expect(rows.map((x) => x.heldOutLoss)).toEqual([r.before!.loss, r.after!.loss]);
    // 21 adapters of rank 8: Σ 8·(in + out) over q, k, v, o, gate, up, down of a 64-wide layer (kv 32, mlp 176), × 3 layers.
    const perLayer = 8 * ((64 + 64) + (64 + 32) + (64 + 32) + (64 + 64) + (64 + 176) + (64 + 176) + (176 + 64));
    expect(rows[1].parameters - rows[0].parameters).toBe(3 * perLayer);
  });

  it('stops early when beforeStep says so, and still evaluates', async () => {
    const r = await runRecovery(gpu, ckpt, { examples, padTokenId }, { ...SETTINGS, steps: 5 }, { beforeStep: async (s) => s < 2 });
    expect(r.steps).toBe(2);
    expect(r.after).not.toBeNull();
    expect(r.accuracyAfter).toBeNull(); // no tokenizer given
  });

  it('cancels with a GradPruneError when the signal aborts', async () => {
    const controller = new AbortController();
    const err = await runRecovery(gpu, ckpt, { examples, padTokenId }, { ...SETTINGS, heldOut: 0 }, {
      progressIntervalMs: 0,
      onStep: (p) => p.step === 1 && controller.abort(),
      signal: controller.signal,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.code).toBe('cancelled');
    expect(err.message).toMatch(/cancelled after 2 steps/);
  });

  it('names an example longer than the sequence length', async () => {
    const err = await runRecovery(gpu, ckpt, { examples, padTokenId }, { ...SETTINGS, seqLen: 8 }).catch((e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(/The example from line \d+ has \d+ tokens, more than the sequence length 8/);
  });
});
