// The journey's requests through the worker host in Node with a real Dawn device: dataset → score (with pause,
// resume and stop) → prune → evaluate → export → recover → export, on tiny-llama and ARC-Easy rows, one step per
// test on one shared host (each step starts where the previous one left the session). Expected facts come from
// ../shared/fixtures/README.md (6 layers, 7 modules) and the dataset file itself.
import { strFromU8, unzipSync } from 'fflate';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { onnxGreedy } from '../export/onnx/greedy';
import { configOf, referenceGreedy, tempDir } from '../testing/onnx';
import { afterAll, describe, expect, it } from 'vitest';
import type { EvaluatedEvent, ExportedEvent, RecoveredEvent } from './protocol';
import { openCheckpoint } from '../model/checkpoint';
import { SafetensorsFile, TensorStore } from '../model/safetensors';
import { ARC_ROWS, folderEntries, hostWithDevices } from '../testing/worker-journey';

// tiny-llama's shapes (fixtures/README.md): hidden 64, 4 query heads and 2 kv heads of 16, MLP 176, vocab 512, untied.
const LAYER_PARAMS = 64 * 64 + 2 * (64 * 32) + 64 * 64 + 3 * (64 * 176) + 2 * 64; // q, k + v, o, gate/up/down, 2 norms
const OTHER_PARAMS = 2 * 512 * 64 + 64; // embedding, lm_head, final norm
// A rank-8 LoRA on the seven modules of a layer: A (8, in) + B (out, 8) each.
const LAYER_LORA_PARAMS = 8 * ((64 + 64) * 2 + (64 + 32) * 2 + (64 + 176) * 2 + (176 + 64));
// SwiftShader has no shader-f16: the session's 'auto' precision stores every model's weights as f32.
const F32 = { storage: 'f32', reason: 'adapter has no shader-f16' };

const { host, events, devices, result, errorOf } = hostWithDevices();
afterAll(() => {
  for (const d of devices) d.device.destroy();
});
/** An exported folder's files written into a new temporary folder, for the Node readers. */
async function writeFolder(prefix: string, files: readonly { name: string; blob: Blob }[]): Promise<string> {
  const dir = await tempDir(prefix);
  for (const f of files) {
    await mkdir(path.dirname(path.join(dir, f.name)), { recursive: true });
    await writeFile(path.join(dir, f.name), new Uint8Array(await f.blob.arrayBuffer()));
  }
  return dir;
}
const until = async (done: () => boolean) => {
  while (!done()) await new Promise((r) => setTimeout(r, 20));
};

describe('worker host: the journey after the model', () => {
  let ev: EvaluatedEvent;
  let rec: RecoveredEvent;
  let peft: ExportedEvent;
  let merged: ExportedEvent;

  it('refuses a step before its input: no model, then no dataset', async () => {
    await host.handle({ type: 'score', id: 1, settings: {} });
    expect(errorOf(1)).toMatchObject({ error: { code: 'input', subject: 'model' } });
    await host.handle({ type: 'loadModel', id: 2, name: 'tiny-llama', files: await folderEntries('tiny-llama') });
    expect(result('modelLoaded', 2).config.numLayers).toBe(6);
    await host.handle({ type: 'score', id: 3, settings: {} });
    expect(errorOf(3)).toMatchObject({ error: { code: 'input', subject: 'dataset' } });
  });

  it('reads the dataset; a format the columns do not fit is an error naming the role, and the dataset stays', async () => {
    const file = new Blob([ARC_ROWS.join('\n') + '\n']);
    await host.handle({ type: 'loadDataset', id: 4, file, fileName: 'arc.jsonl', options: { maxSeqLen: 128, heldOut: 4, seed: 0 } });
    const ds = result('datasetLoaded', 4).dataset;
    expect(ds).toMatchObject({ format: 'multiple-choice', multipleChoiceSchema: 'mosaicml', totalRows: 20, examples: 20, train: 16, heldOut: 4, heldOutChoiceItems: 4 });
    // Row 1's answer (choices[gold]) is what the preview marks as trained on.
    const first = JSON.parse(ARC_ROWS[0]);
    const target = ds.preview.rows[0].tokens.filter((t) => t.target).map((t) => t.text).join('');
    expect(target).toContain(first.choices[first.gold]);
    expect(ds.preview.rows[0].tokens[0].target).toBe(false);

    await host.handle({ type: 'setFormat', id: 5, options: { format: 'text', maxSeqLen: 128, heldOut: 4, seed: 0 } });
    expect(errorOf(5)).toMatchObject({ error: { code: 'dataset' } });
    expect((errorOf(5) as { error: { message: string } }).error.message).toMatch(/"text"/);
  });

  it('scores with pause, resume and stop: a stopped run answers with the steps done', async () => {
    // Score 6 steps, stopped after the first progress report: the scores cover the steps done.
    const scoring = host.handle({ type: 'score', id: 6, settings: { steps: 6, batchSize: 2, seqLen: 128 } });
    await until(() => events.some((e) => e.type === 'scoreStep'));
    await host.handle({ type: 'pause', id: 7 });
    expect(result('scoreControl', 7).state).toBe('paused');
    await host.handle({ type: 'resume', id: 8 });
    expect(result('scoreControl', 8).state).toBe('running');
    await host.handle({ type: 'stop', id: 9 });
    expect(result('scoreControl', 9).state).toBe('stopping');
    await scoring;
    const scored = result('scored', 6);
    expect(scored.stopped).toBe(true);
    expect(scored.scores.steps).toBeLessThan(6);
    expect(scored.losses).toHaveLength(scored.scores.steps);
    expect(scored.scores.layerScores).toHaveLength(6);
    expect(scored.scores.moduleScores.map((r) => r.length)).toEqual([7, 7, 7, 7, 7, 7]);
    await host.handle({ type: 'stop', id: 10 });
    expect(result('scoreControl', 10).state).toBe('idle');
  });

  it('scores a full short run and prunes by its scores', async () => {
    // A full short run for the prune (B moves from step 1 on, so 3 steps give non-zero scores).
    await host.handle({ type: 'score', id: 11, settings: { steps: 3, batchSize: 2, seqLen: 128 } });
    const full = result('scored', 11);
    expect(full.stopped).toBe(false);
    expect(full.kendall.at(-1)).toBe(1);
    expect(full.scores.layerScores.some((s) => s > 0)).toBe(true);

    await host.handle({ type: 'applyPrune', id: 12, plan: { prune: 2, merge: 1, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' } });
    const pruned = result('pruned', 12);
    expect(pruned.plan.kept).toHaveLength(4);
    expect(pruned.plan.kept[0]).toBe(0);
    expect(pruned.plan.merged).toHaveLength(1);
    expect(pruned.files.map((f) => f.name)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'README.md', 'gradprune_recipe.json']));
  });

  it('checks dense vs pruned in the session precision (f32 here), with the table and generations', async () => {
    await host.handle({ type: 'evaluate', id: 13, options: { maxExamples: 2, generations: 1, maxNewTokens: 2 } });
    ev = result('evaluated', 13);
    for (const m of [ev.dense, ev.pruned]) {
      expect(m.rows).toBe(2);
      expect(m.perplexity).toBeCloseTo(Math.exp(m.loss), 6);
      expect(m.items).toBe(2);
      expect([0, 0.5, 1]).toContain(m.acc);
    }
    expect(ev.generations).toHaveLength(1);
    expect(ev.generations[0].prompt).toMatch(/^Question:/);
    expect(ev.precision).toEqual(F32);
    expect(ev.table.map((r) => r.storage)).toEqual(['f32', 'f32']);

    // The table: dense and pruned with their sizes from the fixture's shapes and a measured forward time.
    expect(ev.table.map((r) => [r.label, r.layers, r.parameters])).toEqual([
      ['dense', 6, 6 * LAYER_PARAMS + OTHER_PARAMS],
      ['pruned', 4, 4 * LAYER_PARAMS + OTHER_PARAMS],
    ]);
    expect(ev.table[1].weightBytes).toBe(4 * (4 * LAYER_PARAMS + OTHER_PARAMS)); // F32
    for (const r of ev.table) expect(r.msPerToken).toBeGreaterThan(0);
    expect(ev.table[1].heldOutLoss).toBe(ev.pruned.loss);
  });

  it("exports the pruned folder with the Check's numbers in the recipe and the model card", async () => {
    await host.handle({ type: 'exportZip', id: 14 });
    const ex = result('exported', 14);
    expect(ex.folderName).toBe('tiny-llama-gradprune-4L');
    const entries = unzipSync(new Uint8Array(await ex.zip.arrayBuffer()));
    expect(JSON.parse(strFromU8(entries['tiny-llama-gradprune-4L/config.json'])).num_hidden_layers).toBe(4);
    const recipe = JSON.parse(strFromU8(entries['tiny-llama-gradprune-4L/gradprune_recipe.json']));
    expect(recipe.evaluation.map((e: { metric: string }) => e.metric.split(' ')[0])).toEqual(['loss', 'perplexity', 'acc', 'acc_norm']);
    expect(recipe.evaluation[0]).toMatchObject({ before: ev.dense.loss, after: ev.pruned.loss });
    expect(recipe.plan.num_layers_after).toBe(4);
    const card = strFromU8(entries['tiny-llama-gradprune-4L/README.md']);
    expect(card).toContain('## Evaluation');
    expect(card).toContain(ev.pruned.loss.toFixed(4));
    const reopened = await openCheckpoint(new Map(ex.files.map((f) => [f.name, f.blob])), ex.folderName);
    expect(reopened.config.numLayers).toBe(4);
    expect(ex.adapter).toBeNull();
  });

  it('recovers: a run stopped after its first reported step still answers, with the steps done, measured', async () => {
    const stopping = host.handle({ type: 'recover', id: 21, settings: { by: 'steps', steps: 6, epochs: 1, rank: 4, alpha: 8, lr: 1e-3, batchSize: 2, seqLen: 128, schedule: 'constant' }, evaluation: { maxExamples: 2 } });
    await until(() => events.some((e) => e.type === 'recoverStep' && e.requestId === 21));
    await host.handle({ type: 'pause', id: 22 });
    expect(result('scoreControl', 22).state).toBe('paused');
    await host.handle({ type: 'stop', id: 23 });
    expect(result('scoreControl', 23).state).toBe('stopping');
    await stopping;
    const early = result('recovered', 21);
    expect(early.stopped).toBe(true);
    expect(early.steps).toBeLessThan(6);
    expect(early.losses).toHaveLength(early.steps);
    expect(early.table.map((r) => r.layers)).toEqual([6, 4, 4]);
    expect(early.adapterParameters).toBe((4 / 8) * 4 * LAYER_LORA_PARAMS); // rank 4: half of rank 8's
    // The Check above covered the same 2 rows: its numbers are reused, the forward passes timed again.
    expect(early.table[1].heldOutLoss).toBe(ev.pruned.loss);
    for (const r of early.table) expect(r.msPerToken).toBeGreaterThan(0);
    expect(early.precision).toEqual(F32);
  });

  it('recovers 3 steps: dense, pruned and recovered measured afresh, agreeing with a Check on the same rows', async () => {
    // Recovery: 3 steps of a fresh LoRA (step 0 is warmup at lr 0, then B moves), stopped or not by nobody.
    const settings = { by: 'steps' as const, steps: 3, epochs: 1, rank: 8, alpha: 32, lr: 1e-3, batchSize: 2, seqLen: 128, schedule: 'linear' as const };
    // All 4 held-out rows (the Check above used 2): the three models are measured afresh.
    await host.handle({ type: 'recover', id: 15, settings, evaluation: { maxExamples: 4 } });
    rec = result('recovered', 15);
    const steps = events.filter((e) => e.type === 'recoverStep' && e.requestId === 15);
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.at(-1)).toMatchObject({ step: 2, steps: 3 });
    expect(rec).toMatchObject({ steps: 3, stopped: false, trainExamples: 16, settings: { rank: 8, alpha: 32, lr: 1e-3, steps: 3 } });
    expect(rec.losses).toHaveLength(3);
    expect(rec.table.map((r) => [r.label, r.layers, r.parameters])).toEqual([
      ['dense', 6, 6 * LAYER_PARAMS + OTHER_PARAMS],
      ['pruned', 4, 4 * LAYER_PARAMS + OTHER_PARAMS],
      ['pruned + recovered', 4, 4 * LAYER_PARAMS + OTHER_PARAMS], // merged: no extra parameters
    ]);
    expect(rec.adapterParameters).toBe(4 * LAYER_LORA_PARAMS);
    expect(rec.precision).toEqual(F32);
    expect(rec.settings.weights).toBe('f32'); // the training run, as resolved
    expect(rec.table.map((r) => r.storage)).toEqual(['f32', 'f32', 'f32']);
    // Before = the pruned model; after = the merged model, changed by the training. A Check on the same 4 rows
    // (the same measurement) agrees with the table's dense and pruned numbers.
    expect(rec.before?.rows).toBe(4);
    expect(rec.after?.items).toBe(4);
    expect(rec.after?.loss).not.toBe(rec.before?.loss);
    for (const r of rec.table) expect(r.msPerToken).toBeGreaterThan(0);
    await host.handle({ type: 'evaluate', id: 20, options: { maxExamples: 4, generations: 0, maxNewTokens: 1 } });
    const ev4 = result('evaluated', 20);
    expect(rec.before?.loss).toBeCloseTo(ev4.pruned.loss, 5);
    expect(rec.table[0].heldOutLoss).toBeCloseTo(ev4.dense.loss, 5);
    expect(rec.table[0].acc).toBe(ev4.dense.acc);
  });

  it('exports with the adapter kept apart: the pruned weights plus a PEFT folder and the recovery record', async () => {
    await host.handle({ type: 'exportZip', id: 16, adapter: 'peft' });
    peft = result('exported', 16);
    expect(peft).toMatchObject({ folderName: 'tiny-llama-gradprune-4L-recovered-peft', adapter: 'peft' });
    const peftZip = unzipSync(new Uint8Array(await peft.zip.arrayBuffer()));
    const root = 'tiny-llama-gradprune-4L-recovered-peft/';
    // The download table's list for this choice is what the download holds, byte counts included.
    await host.handle({ type: 'exportFiles', id: 160, adapter: 'peft' });
    const listed = result('exportFiles', 160);
    expect(listed.folderName).toBe(peft.folderName);
    expect(listed.files).toEqual(peft.files.map((f) => ({ name: f.name, bytes: f.blob.size })));
    for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'model.safetensors', 'config.json', 'gradprune_recovery.json']) expect(peftZip[root + f], f).toBeDefined();
    const adapterConfig = JSON.parse(strFromU8(peftZip[root + 'adapter/adapter_config.json']));
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 32, base_model_name_or_path: 'tiny-llama-gradprune-4L' });
    expect(strFromU8(peftZip[root + 'README.md'])).toContain('## Recovery fine-tuning');
    expect(JSON.parse(strFromU8(peftZip[root + 'gradprune_recovery.json']))).toMatchObject({ steps: 3, merged: false, heldOutLossAfter: rec.after?.loss });
  });

  it('exports merged (the default): W + (alpha/r)·B·A, checked by hand on one weight against the PEFT adapter', async () => {
    await host.handle({ type: 'exportZip', id: 17 });
    merged = result('exported', 17);
    expect(merged).toMatchObject({ folderName: 'tiny-llama-gradprune-4L-recovered', adapter: 'merged' });
    const peftZip = unzipSync(new Uint8Array(await peft.zip.arrayBuffer()));
    const root = 'tiny-llama-gradprune-4L-recovered-peft/';
    const mergedZip = unzipSync(new Uint8Array(await merged.zip.arrayBuffer()));
    const mroot = 'tiny-llama-gradprune-4L-recovered/';
    expect(Object.keys(mergedZip).some((n) => n.includes('adapter_'))).toBe(false);
    expect(JSON.parse(strFromU8(mergedZip[mroot + 'config.json'])).num_hidden_layers).toBe(4);
    const read = async (bytes: Uint8Array, name: string) => {
      const store = TensorStore.fromFiles([await SafetensorsFile.open(new Blob([bytes as BlobPart]), 'x.safetensors')]);
      return { values: await store.readF32(name), shape: [...store.info(name).shape] };
    };
    const W = await read(peftZip[root + 'model.safetensors'], 'model.layers.1.mlp.up_proj.weight'); // (176, 64)
    const A = await read(peftZip[root + 'adapter/adapter_model.safetensors'], 'base_model.model.model.layers.1.mlp.up_proj.lora_A.weight'); // (8, 64)
    const B = await read(peftZip[root + 'adapter/adapter_model.safetensors'], 'base_model.model.model.layers.1.mlp.up_proj.lora_B.weight'); // (176, 8)
    const M = await read(mergedZip[mroot + 'model.safetensors'], 'model.layers.1.mlp.up_proj.weight');
    expect([W.shape, A.shape, B.shape, M.shape]).toEqual([[176, 64], [8, 64], [176, 8], [176, 64]]);
    let maxErr = 0;
    let maxDelta = 0;
    for (let o = 0; o < 176; o++) {
      for (let i = 0; i < 64; i++) {
        let delta = 0;
        for (let r = 0; r < 8; r++) delta += B.values[o * 8 + r] * A.values[r * 64 + i];
        maxDelta = Math.max(maxDelta, Math.abs(4 * delta));
        maxErr = Math.max(maxErr, Math.abs(M.values[o * 64 + i] - (W.values[o * 64 + i] + 4 * delta)));
      }
    }
    expect(maxDelta).toBeGreaterThan(0);
    expect(maxErr).toBeLessThan(1e-6);
    const back = await openCheckpoint(new Map(merged.files.map((f) => [f.name, f.blob])), merged.folderName);
    expect(back.config.numLayers).toBe(4);
  });

  it('exports the recovered model as the transformers.js ONNX folder: the listed files are what it holds, and onnxruntime continues a prompt as the CPU reference does on the merged checkpoint', async () => {
    await host.handle({ type: 'exportFiles', id: 170, format: 'onnx', adapter: 'peft' }); // ONNX has no separate adapter: merged
    const listed = result('exportFiles', 170);
    await host.handle({ type: 'exportZip', id: 171, format: 'onnx', adapter: 'peft' });
    const onnx = result('exported', 171);
    expect(onnx).toMatchObject({ folderName: 'tiny-llama-gradprune-4L-recovered-onnx', adapter: null });
    expect(listed.folderName).toBe(onnx.folderName);
    expect(listed.files).toEqual(onnx.files.map((f) => ({ name: f.name, bytes: f.blob.size })));
    expect(onnx.files.map((f) => f.name)).toEqual(expect.arrayContaining(['onnx/model.onnx', 'onnx/model_fp16.onnx', 'config.json', 'tokenizer.json']));
    const mergedDir = await writeFolder('merged', merged.files);
    const onnxDir = await writeFolder('onnx', onnx.files);
    const session = await ort.InferenceSession.create(path.join(onnxDir, 'onnx/model.onnx'));
    const prompt = [1, 57, 23, 99, 4];
    try {
      expect(await onnxGreedy(ort, session, await configOf(mergedDir), prompt, 8, [])).toEqual(await referenceGreedy(mergedDir, prompt, 8));
    } finally {
      await session.release();
    }
  });

  it('a new prune drops the recovery: the export is the plain pruned folder again', async () => {
    await host.handle({ type: 'applyPrune', id: 18, plan: { prune: 1, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' } });
    await host.handle({ type: 'exportZip', id: 19, adapter: 'peft' });
    expect(result('exported', 19)).toMatchObject({ folderName: 'tiny-llama-gradprune-5L', adapter: null });
  });
});
