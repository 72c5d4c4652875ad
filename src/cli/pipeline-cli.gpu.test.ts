// The CLI end to end in child processes:
// - tiny-qwen2 (BF16, tied embeddings, q/k/v biases): score a small ARC-Easy JSONL, prune with a merge, re-open the
//   exported folder, and check its logits (engine forward of the export) against the engine's forward of the same
//   pruned model built in memory from the scores and IGIA state;
// - `gradprune demo` with small settings;
// - tiny-llama: `score --lora-init` on the fixture's own batches (pretokenized JSONL, file order) reproduces the
//   Hugging Face + PEFT reference scores.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { batchOfRows } from '../data/batch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestGpu, type Gpu } from '../gpu/device';
import { runPrune } from '../gradprune/pipeline';
import { prunedTensorNames } from '../gradprune/prune';
import { openCheckpoint } from '../model/checkpoint';
import { normalizeConfig } from '../model/config';
import { fromFloat32, toFloat32 } from '../model/dtype';
import { openFolder } from '../model/node-files';
import { encodeSafetensors, TensorStore } from '../model/safetensors';
import { estimateMemory } from '../nn/memory';
import { GpuModel } from '../nn/model';
import { maxScaledAbsError, ranking, relError } from '../nn/reference/compare';
import { openReference } from '../nn/reference/fixture';
import { DEFAULT_LORA, loadLoraAdapters } from '../nn/lora';
import { writePeftAdapter } from '../export/peft';
import { DATASETS, REPO_ROOT, fixtureDir } from '../testing/paths';
import { loadScores } from './commands/prune';

const run = promisify(execFile);

async function gradprune(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/gradprune.mjs', ...args], { cwd: REPO_ROOT, timeout: 540_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('gradprune score → prune on tiny-qwen2 (child processes)', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await requestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  it('writes scores, a re-openable pruned checkpoint, and logits equal to the in-memory pruned model', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-e2e-'));
    const lines = (await readFile(path.join(DATASETS, 'arc/arc_easy.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, 12);
    const dataFile = path.join(tmp, 'arc12.jsonl');
    await writeFile(dataFile, lines.join('\n') + '\n');
    const model = fixtureDir('tiny-qwen2');
    const scoresPath = path.join(tmp, 'run', 'scores.json');

    const score = await gradprune('score', model, '--data', dataFile, '--steps', '3', '--batch', '2', '--seq', '32', '--lr', '1e-3', '--seed', '7', '--out', scoresPath);
    expect(score.stderr).not.toMatch(/gradprune:/);
    expect(score.code).toBe(0);
    expect(score.stderr).toMatch(/data {2}arc12\.jsonl: 12 examples \(multiple-choice/);
    // The default precision, 'auto', resolved against the adapter, shown and recorded.
    const storage = gpu.adapter.shaderF16 ? 'f16' : 'f32';
    expect(score.stderr).toMatch(gpu.adapter.shaderF16 ? /^weights: f16 \(adapter has shader-f16\)$/m : /^weights: f32 \(adapter has no shader-f16\)$/m);
    expect(score.stderr).toMatch(/step 3\/3/);
    expect(score.stdout).toMatch(/layer\s+paper score\s+code score\s+rank/);
    expect(await readdir(path.dirname(scoresPath))).toEqual(['scores.igia.safetensors', 'scores.json']);
    const doc = JSON.parse(await readFile(scoresPath, 'utf8'));
    expect(doc.layerScores).toHaveLength(5);
    expect(doc.layerScoresCode).toHaveLength(5);
    expect(doc.moduleScores).toHaveLength(5);
    for (const row of doc.moduleScores) expect(row).toHaveLength(7);
    expect(doc.losses).toHaveLength(3);
    for (const l of doc.losses) expect(l).toBeGreaterThan(0);
    // Step 0 trains with B = 0 (PEFT init), so IGIA gathers from steps 1 and 2: every pruning candidate has a positive score.
    for (const s of doc.layerScores.slice(1)) expect(s).toBeGreaterThan(0);
    expect(doc.settings).toMatchObject({ steps: 3, batchSize: 2, seqLen: 32, lr: 1e-3, seed: 7, rank: 8, alpha: 32, warmupSteps: 1, schedule: 'constant', maxGradNorm: 1 });
    expect(doc.data).toMatchObject({ fileName: 'arc12.jsonl', rows: 12 });
    expect(doc.settings.weights).toBe(storage);

    const outDir = path.join(tmp, 'pruned');
    const prune = await gradprune('prune', model, '--scores', scoresPath, '--layers', '2', '--merge', '1', '--out', outDir);
    expect(prune.stderr).not.toMatch(/gradprune:/);
    expect(prune.code).toBe(0);
    expect(prune.stdout).toMatch(/layers 5 → 3; parameters/);
    expect(prune.stdout.match(/merged into \d/g)).toHaveLength(1);
    expect(prune.stdout.match(/dropped/g)).toHaveLength(1);

    const exported = await openCheckpoint(await openFolder(outDir), 'pruned');
    expect(exported.config.numLayers).toBe(3);
    expect(exported.dtype).toBe('BF16');
    expect(exported.config.tiedEmbeddings).toBe(true);
    expect(exported.store.has('lm_head.weight')).toBe(false);

    // The same pruned model built in memory: original tensors renumbered, the receivers' merged weights rounded
    // once to BF16 (the dtype the checkpoint stores), config with 3 layers.
    const original = await openCheckpoint(await openFolder(model), 'tiny-qwen2');
    const { scores, igia } = await loadScores(original, scoresPath);
    const inMemory = await runPrune(gpu, original, scores, igia, { prune: 2, merge: 1 });
    const tensors = [];
    for (const { name, from } of prunedTensorNames(inMemory.plan, original.store.tensors.keys())) {
      const merged = inMemory.merge.weights.get(from);
      const values = merged ? toFloat32(fromFloat32(merged, 'BF16'), 'BF16') : await original.store.readF32(from);
      tensors.push({ name, dtype: 'F32' as const, shape: [...original.store.info(from).shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) });
    }
    const store = await TensorStore.open(new Map([['model.safetensors', new Blob(encodeSafetensors(tensors) as BlobPart[])]]));
    const raw = original.config.raw as Record<string, unknown>;
    const config = normalizeConfig({ ...raw, num_hidden_layers: 3, layer_types: (raw.layer_types as string[] | undefined)?.slice(0, 3) });

    const ids = [1, 45, 300, 7, 12, 99, 250, 3, 17, 401, 88, 5, 64, 2, 190, 33];
    const batch = batchOfRows([ids], [ids.map(() => 1)]);
    const forward = async (c: typeof config, s: TensorStore) => {
      const m = await GpuModel.load(gpu, c, s, { batchSize: 1, seqLen: ids.length, lora: null });
      try {
        await m.run(batch);
        return await m.readLogits();
      } finally {
        m.destroy();
      }
    };
    const fromExport = await forward(exported.config, exported.store);
    const fromMemory = await forward(config, store);
    expect(maxScaledAbsError(fromExport, fromMemory)).toBeLessThanOrEqual(1e-5);
    // And pruning changed the model: the unpruned model's logits differ.
    const unpruned = await forward(original.config, original.store);
    expect(maxScaledAbsError(unpruned, fromMemory)).toBeGreaterThan(1e-3);
    gpu.throwIfFailed();
  });

  it('gradprune demo runs the whole pipeline on the embedded demo model (small settings)', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'gradprune-demo-'));
    const demo = await gradprune('demo', '--steps', '3', '--batch', '2', '--seq', '32', '--layers', '2', '--out', out);
    expect(demo.stderr).not.toMatch(/gradprune:/);
    expect(demo.code).toBe(0);
    expect(demo.stderr).toMatch(/^demo: 3 scoring steps of 2 × 32 tokens/);
    expect(demo.stderr).toMatch(/data {2}arc_easy_300\.jsonl: 300 examples \(multiple-choice/);
    expect(demo.stdout).toMatch(/layers 8 → 6; parameters/);
    expect((await readdir(out)).sort()).toEqual(['pruned', 'scores.igia.safetensors', 'scores.json']);
    const pruned = await openCheckpoint(await openFolder(path.join(out, 'pruned')), 'demo-pruned');
    expect(pruned.config.numLayers).toBe(6);
    const recipe = JSON.parse(await readFile(path.join(out, 'pruned', 'gradprune_recipe.json'), 'utf8'));
    expect(recipe.plan.num_layers_after).toBe(6);
    expect(recipe.settings).toMatchObject({ steps: 3, batchSize: 2, seqLen: 32 });
  });

  it.each([
    ['with the weights resident', false],
    ['with --max-gpu-memory below the resident need: the layers stream, and scores.json says so', true],
  ])('gradprune score --lora-init --no-shuffle on the fixture\'s own batches reproduces reference/gradprune.safetensors (tiny-llama), %s', async (_, streamed) => {
    const model = fixtureDir('tiny-llama');
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'gradprune-fixture-'));
    const ref = await openReference(model, 'gradprune.safetensors');
    const ids = await ref.readI32('input_ids');
    const mask = await ref.readI32('loss_mask');
    const [S, B, T] = ref.info('input_ids').shape;
    // Steps × batch rows in file order: with --no-shuffle, step s reads rows s·B … s·B + B − 1.
    const rows = Array.from({ length: S * B }, (_, r) => JSON.stringify({ input_ids: [...ids.subarray(r * T, (r + 1) * T)], loss_mask: [...mask.subarray(r * T, (r + 1) * T)] }));
    await writeFile(path.join(tmp, 'batches.jsonl'), rows.join('\n') + '\n');
    const config = normalizeConfig(JSON.parse(await readFile(path.join(model, 'config.json'), 'utf8')));
    const init = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n), 'init.');
    const adapterDir = path.join(tmp, 'init-adapter');
    await mkdir(adapterDir);
    for (const [name, blob] of writePeftAdapter({ baseModel: 'tiny-llama', lora: DEFAULT_LORA, adapters: init, model: config })) {
      await writeFile(path.join(adapterDir, name), new Uint8Array(await blob.arrayBuffer()));
    }
    const scoresPath = path.join(tmp, 'scores.json');
    // A budget between what the job needs with its weights streamed and with them resident (the adapter's precision).
    const plan = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, weights: gpu.adapter.shaderF16 ? ('f16' as const) : ('f32' as const), checkpointing: false, training: true };
    const budget = Math.floor((estimateMemory(config, { ...plan, residency: 'streamed' }).total + estimateMemory(config, plan).total) / 2);
    const r = await gradprune('score', model, '--data', path.join(tmp, 'batches.jsonl'), '--lora-init', adapterDir, '--no-shuffle',
      '--steps', String(S), '--batch', String(B), '--seq', String(T), '--lr', '1e-3', '--warmup-steps', '2', '--weight-decay', '0.1', '--clip', '1', '--out', scoresPath,
      ...(streamed ? ['--max-gpu-memory', String(budget)] : []));
    expect(r.stderr).not.toMatch(/gradprune:/);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(streamed ? /weights streamed layer by layer: .* of host memory, .* uploaded per step/ : /weights resident/);
    expect(r.stderr).toMatch(/data {2}batches\.jsonl: 48 examples \(pretokenized/);
    const doc = JSON.parse(await readFile(scoresPath, 'utf8'));
    expect(doc.settings.gpu.weights).toBe(streamed ? 'streamed' : 'resident');
    expect(doc.settings.gpu.peakBytes).toBeGreaterThan(0);
    if (streamed) {
      expect(doc.settings.gpu.limitBytes).toBe(budget);
      expect(doc.settings.gpu.peakBytes).toBeLessThanOrEqual(budget);
    }
    const loss = await ref.readF32('loss');
    const layerScore = await ref.readF32('layer_score');
    const layerScoreCode = await ref.readF32('layer_score_code');
    const moduleScore = await ref.readF32('module_score');
    (doc.losses as number[]).forEach((v, s) => expect(relError(v, loss[s]), `loss[${s}]`).toBeLessThanOrEqual(1e-4));
    (doc.layerScores as number[]).forEach((v, l) => expect(relError(v, layerScore[l]), `layer_score[${l}]`).toBeLessThanOrEqual(1e-3));
    (doc.layerScoresCode as number[]).forEach((v, l) => expect(relError(v, layerScoreCode[l]), `layer_score_code[${l}]`).toBeLessThanOrEqual(1e-3));
    (doc.moduleScores as number[][]).flat().forEach((v, i) => expect(relError(v, moduleScore[i]), `module_score[${i}]`).toBeLessThanOrEqual(1e-3));
    expect(ranking(doc.layerScores)).toEqual(ranking(layerScore));
  });
});
