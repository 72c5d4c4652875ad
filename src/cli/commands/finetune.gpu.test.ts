// `gradprune finetune` end to end in child processes on the fixtures' pruned tiny-llama with a slice of ARC-Easy
// (JSONL): the merged checkpoint (re-opened, F32 kept, the loss of the exported weights as reported) and the PEFT
// adapter folder (re-read with the PEFT reader, the engine with it giving the reported held-out loss).
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestGpu, type Gpu } from '../../gpu/device';
import { buildExamples, readDataset } from '../../data';
import { measureModel } from '../../eval/before-after';
import { recoverySplit } from '../../eval/recovery';
import { datasetSlice, prunedTinyLlamaFolder } from '../../testing/recovery-fixtures';
import { readPeftAdapter } from '../../export/peft';
import { openCheckpoint } from '../../model/checkpoint';
import { openFile, openFolder } from '../../model/node-files';
import { relError } from '../../nn/reference/compare';
import { REPO_ROOT, fixtureDir } from '../../testing/paths';
import { openModelFolder } from '../load';

const run = promisify(execFile);

async function gradprune(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/gradprune.mjs', ...args], { cwd: REPO_ROOT, timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const LOSS_LINE = /^held-out loss (\d+\.\d{4}) → (\d+\.\d{4}) \(perplexity [\d.]+ → [\d.]+\) over (\d+) tokens of 8 examples$/m;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await requestGpu();
});
afterAll(() => gpu?.device.destroy());

/** The held-out loss of a model folder (optionally with a PEFT adapter) on the split the command used. */
async function heldOutLossOf(modelDir: string, dataFile: string, adapterDir: string | null): Promise<number> {
  const ckpt = await openModelFolder(modelDir);
  const set = buildExamples(await readDataset(await openFile(dataFile), path.basename(dataFile)), ckpt.tokenizer, { maxSeqLen: 32 });
  const { heldOut } = recoverySplit(set.examples, { heldOut: 8, seed: 0 });
  const peft = adapterDir ? await readPeftAdapter(await openFolder(adapterDir), ckpt.config) : null;
  const m = await measureModel(gpu, 'model', ckpt, {
    batchSize: 4, seqLen: 32, heldOut, padTokenId: set.padTokenId, timeForward: false, lora: peft && { config: peft.lora, adapters: peft.adapters }, weights: 'auto',
  });
  return m.heldOut!.loss;
}

describe('gradprune finetune (child processes)', () => {
  it('--merge-adapter writes a full checkpoint that re-opens in F32 and reproduces the reported loss; --measure --dense adds the dense row', async () => {
    const model = await prunedTinyLlamaFolder();
    const data = await datasetSlice('arc/arc_easy.jsonl', 24);
    const out = path.join(os.tmpdir(), `gradprune-ft-merged-${process.pid}`);
    const r = await gradprune('finetune', model, '--data', data, '--steps', '4', '--batch', '4', '--seq', '32', '--held-out', '8', '--lr', '1e-3',
      '--merge-adapter', '--dense', fixtureDir('tiny-llama'), '--measure', '--out', out);
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/step 4\/4/);
    const m = LOSS_LINE.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stdout).toMatch(/^dense\s+6\s/m);
    expect(r.stdout).toMatch(/^pruned\s+3\s/m);
    expect(r.stdout).toMatch(/^pruned \+ recovered\s+3\s/m);

    expect((await readdir(out)).sort()).toEqual(
      ['config.json', 'generation_config.json', 'gradprune_recovery.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'],
    );
    const merged = await openCheckpoint(await openFolder(out));
    expect(merged.dtype).toBe('F32');
    expect(merged.config.numLayers).toBe(3);
    const record = JSON.parse(await readFile(path.join(out, 'gradprune_recovery.json'), 'utf8'));
    expect(record).toMatchObject({ steps: 4, merged: true, settings: { rank: 8, alpha: 32, steps: 4, batchSize: 4, seqLen: 32 } });
    expect(record.losses).toHaveLength(4);
    // The printed losses are the pruned model's and the merged export's, measured here by the eval engine.
    const mergedLoss = await heldOutLossOf(out, data, null);
    expect(Number(m![1])).toBeCloseTo(await heldOutLossOf(model, data, null), 4);
    expect(Number(m![2])).toBeCloseTo(mergedLoss, 4);
    expect(relError(record.heldOutLossAfter, mergedLoss)).toBeLessThanOrEqual(1e-5);
  });

  it('without --merge-adapter writes a PEFT adapter folder; --epochs sets the steps', async () => {
    const model = await prunedTinyLlamaFolder();
    const data = await datasetSlice('arc/arc_easy.jsonl', 24);
    const out = path.join(os.tmpdir(), `gradprune-ft-peft-${process.pid}`);
    const r = await gradprune('finetune', model, '--data', data, '--epochs', '0.5', '--batch', '4', '--seq', '32', '--held-out', '8', '--lr', '1e-3',
      '--schedule', 'constant', '--rank', '4', '--alpha', '8', '--out', out);
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/step 2\/2/); // ceil(0.5 · 16 training examples / 4)
    const m = LOSS_LINE.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect((await readdir(out)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'gradprune_recovery.json']);
    const config = JSON.parse(await readFile(path.join(out, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, task_type: 'CAUSAL_LM', base_model_name_or_path: path.resolve(model) });
    const ckpt = await openModelFolder(model);
    const peft = await readPeftAdapter(await openFolder(out), ckpt.config);
    expect(peft.adapters).toHaveLength(3 * 7);
    expect(peft.adapters.some((a) => a.B.some((v) => v !== 0))).toBe(true);
    // The pruned model with the adapter gives the loss the command reported after training.
    const record = JSON.parse(await readFile(path.join(out, 'gradprune_recovery.json'), 'utf8'));
    expect(record).toMatchObject({ steps: 2, merged: false, settings: { epochs: 0.5, steps: 2 } });
    expect(relError(record.heldOutLossAfter, await heldOutLossOf(model, data, out))).toBeLessThanOrEqual(1e-5);
    expect(Number(m![2])).toBeCloseTo(record.heldOutLossAfter, 4);
  });
  it('--mode partial --last-layers 1 prints its memory estimate and writes a plain checkpoint whose loss is the one reported', async () => {
    const model = await prunedTinyLlamaFolder();
    const data = await datasetSlice('arc/arc_easy.jsonl', 24);
    const out = path.join(os.tmpdir(), `gradprune-ft-partial-${process.pid}`);
    const r = await gradprune('finetune', model, '--data', data, '--mode', 'partial', '--last-layers', '1', '--steps', '3', '--batch', '4', '--seq', '32',
      '--held-out', '8', '--lr', '1e-4', '--overwrite', '--out', out);
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/partial fine-tuning: lm_head \+ layers 2 of 0\.\.2/);
    // 78,848 trained parameters (last layer 46,080 + lm_head 32,768): grads 308 KiB, moments 616 KiB.
    expect(r.stderr).toMatch(/78848 trained parameters: grads 308 KiB \+ AdamW moments 616 KiB\)/);
    expect(r.stderr).toMatch(/step 3\/3/);
    const m = LOSS_LINE.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect((await readdir(out)).sort()).toEqual(
      ['config.json', 'generation_config.json', 'gradprune_recovery.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'],
    );
    const record = JSON.parse(await readFile(path.join(out, 'gradprune_recovery.json'), 'utf8'));
    expect(record).toMatchObject({ mode: 'partial', steps: 3, trainedLayers: [2], settings: { lastLayers: 1, steps: 3 } });
    const after = await heldOutLossOf(out, data, null);
    expect(relError(record.heldOutLossAfter, after)).toBeLessThanOrEqual(1e-5);
    expect(Number(m![1])).toBeCloseTo(await heldOutLossOf(model, data, null), 4);
    expect(Number(m![2])).toBeCloseTo(after, 4);
  });
});
