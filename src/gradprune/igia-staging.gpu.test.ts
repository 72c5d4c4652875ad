// IGIA keeps every step's gradient factors in host memory and only a small staging ring on the GPU: a run whose
// factors are many times the ring still rebuilds the exact F, and the host cap refuses runs that do not fit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { createTensor, readback, upload, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, normalizeConfig, type ModelConfig } from '../model/config';
import { seededRandom } from '../random';
import { relL2 } from '../nn/reference/compare';
import { IgiaScorer, igiaMemory, type IgiaModuleGrads } from './igia';
import { decodeIgiaState, encodeIgiaState, IgiaRebuilder, igiaStateFromScorer } from './igia-state';

// Ragged sizes: hidden 28, head_dim 14, kv 14, intermediate 41, rank 5.
const config: ModelConfig = normalizeConfig({
  model_type: 'llama',
  hidden_size: 28,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  intermediate_size: 41,
  vocab_size: 40,
});
const RANK = 5;
const STEPS = 6;
// Σ_modules (in + out) for this shape: q 28+28, k 28+14, v 28+14, o 28+28, gate/up 28+41, down 41+28.
const IN_PLUS_OUT = 56 + 42 + 42 + 56 + 69 + 69 + 69;

/** One (rank, in) and one (out, rank) gradient buffer per module of every layer. */
function gradBuffers(device: GPUDevice, c: ModelConfig, rank: number): { grads: IgiaModuleGrads[]; tensors: Tensor[] } {
  const tensors: Tensor[] = [];
  const grads: IgiaModuleGrads[] = [];
  for (let layer = 0; layer < c.numLayers; layer++) {
    for (const module of LINEAR_MODULES) {
      const [out, inp] = linearShape(c, module);
      const gA = createTensor(device, `test.${layer}.${module}.dA`, [rank, inp]);
      const gB = createTensor(device, `test.${layer}.${module}.dB`, [out, rank]);
      tensors.push(gA, gB);
      grads.push({ layer, module, gA: { buffer: gA }, gB: { buffer: gB } });
    }
  }
  return { grads, tensors };
}

describe('IGIA factors in host memory behind a GPU staging ring', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await requestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  it('a run with 6× more factors than its one staging slot keeps every value and rebuilds F exactly', async () => {
    const { device } = gpu;
    const { grads, tensors } = gradBuffers(device, config, RANK);
    const scorer = new IgiaScorer(device, config, grads, { rank: RANK, maxSteps: STEPS, stagingSlots: 1, maxStagingBytes: 0 });
    const stepBytes = 2 * RANK * IN_PLUS_OUT * 4; // layers 1 and 2
    const scoreBuffers = scorer.gpuBytes; // before the first step: no staging yet
    const rand = seededRandom(11);
    // values[slot][step] = [gA, gB] as uploaded.
    const values = grads.map(() => [] as [Float32Array, Float32Array][]);
    let stagingMax = 0;
    for (let s = 0; s < STEPS; s++) {
      grads.forEach((g, slot) => {
        const [out, inp] = linearShape(config, g.module);
        const gA = Float32Array.from({ length: RANK * inp }, () => (rand() - 0.5) * 0.1 * (s + 1));
        const gB = Float32Array.from({ length: out * RANK }, () => (rand() - 0.5) * 0.1);
        upload(device, tensors[2 * slot], gA);
        upload(device, tensors[2 * slot + 1], gB);
        values[slot].push([gA, gB]);
      });
      await scorer.ready(); // as the scoring pipeline does before each step
      const encoder = device.createCommandEncoder();
      scorer.record(encoder);
      device.queue.submit([encoder.finish()]);
      stagingMax = Math.max(stagingMax, scorer.gpuBytes);
    }
    await scorer.readScores();
    gpu.throwIfFailed();

    // Beyond its Gram and score buffers, the GPU held one step of factors at a time; the host holds all six.
    expect(stagingMax - scoreBuffers).toBe(stepBytes);
    expect(scorer.hostBytes).toBe(STEPS * stepBytes);

    for (const [slot, g] of grads.entries()) {
      if (g.layer === 0) continue;
      const [out, inp] = linearShape(config, g.module);
      // Host factors are the uploaded values, bit for bit, per step gA then gB.
      const stored = await scorer.readFactors(g.layer, g.module);
      const want = new Float32Array(STEPS * RANK * (inp + out));
      values[slot].forEach(([gA, gB], s) => {
        want.set(gA, s * RANK * (inp + out));
        want.set(gB, s * RANK * (inp + out) + gA.length);
      });
      expect(stored, `${g.layer} ${g.module}`).toEqual(want);
      // F = (1/t) Σ_s (gB_s·gA_s)² in float64 on the CPU.
      const fRef = new Float64Array(out * inp);
      for (const [gA, gB] of values[slot]) {
        for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) {
          let v = 0;
          for (let k = 0; k < RANK; k++) v += gB[o * RANK + k] * gA[k * inp + i];
          fRef[o * inp + i] += (v * v) / STEPS;
        }
      }
      const F = scorer.rebuildImportance(g.layer, g.module);
      expect(relL2(await readback(device, F), fRef), `F ${g.layer} ${g.module}`).toBeLessThan(1e-5);
      F.buffer.destroy();
    }

    // The saved state holds the same host values and rebuilds the same F.
    const state = await igiaStateFromScorer(scorer, config, RANK, 'test-fingerprint');
    const loaded = await decodeIgiaState(encodeIgiaState(state), 'scores.igia.safetensors', config, 'test-fingerprint');
    const rebuilder = new IgiaRebuilder(device, config, loaded);
    for (const m of LINEAR_MODULES) {
      const live = scorer.rebuildImportance(2, m);
      const fromFile = rebuilder.importance(2, m);
      expect(await readback(device, fromFile), `F 2 ${m}`).toEqual(await readback(device, live));
      live.buffer.destroy();
      fromFile.buffer.destroy();
    }
    expect(loaded.factors.get(linearWeightName(1, 'down_proj'))).toEqual(await scorer.readFactors(1, 'down_proj'));
    gpu.throwIfFailed();
    scorer.destroy();
    for (const t of tensors) t.buffer.destroy();
  });

  it('a full staging ring refuses the next step until its factors have reached the host', async () => {
    const { device } = gpu;
    const { grads, tensors } = gradBuffers(device, config, RANK);
    const scorer = new IgiaScorer(device, config, grads, { rank: RANK, maxSteps: 3, stagingSlots: 1, maxStagingBytes: 0 });
    const submitStep = () => {
      const encoder = device.createCommandEncoder();
      scorer.record(encoder);
      device.queue.submit([encoder.finish()]);
    };
    submitStep();
    let err: unknown;
    try {
      submitStep(); // step 0 is still on its way to the host
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).code).toBe('memory');
    expect((err as Error).message).toMatch(/staging slot \(1 of .*\) still waits .* step 2 have nowhere to go.*ready\(\)/);
    expect(() => scorer.rebuildImportance(1, 'q_proj')).toThrow(/still on the way to host memory/);
    await scorer.ready();
    submitStep();
    expect(scorer.stepsRecorded).toBe(2);
    expect((await scorer.readFactors(1, 'q_proj')).length).toBe(2 * RANK * (28 + 28));
    gpu.throwIfFailed();
    scorer.destroy();
    for (const t of tensors) t.buffer.destroy();
  });

  it('the host cap admits a Llama-3.2-1B-shaped 40-step run and refuses an 8B-shaped 64-step one, saying how many steps fit', () => {
    const tiny = createTensor(gpu.device, 'test.tiny', [4]);
    const shapeOf = (c: ModelConfig): IgiaModuleGrads[] =>
      Array.from({ length: c.numLayers }, (_, layer) => LINEAR_MODULES.map((module) => ({ layer, module, gA: { buffer: tiny }, gB: { buffer: tiny } }))).flat();
    const llama1B = normalizeConfig({ model_type: 'llama', hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 8192, vocab_size: 128256 });
    // Per layer and step, rank 8: 8·((2048+2048) + 2·(2048+512) + (2048+2048) + 3·(2048+8192)) floats; layers 1..15.
    const perStep1B = 15 * 8 * (4096 + 2 * 2560 + 4096 + 3 * 10240) * 4;
    expect(igiaMemory(llama1B, LINEAR_MODULES, 8, 40)).toEqual({ hostBytes: 40 * perStep1B, gpuBytes: 2 * perStep1B });
    const scorer = new IgiaScorer(gpu.device, llama1B, shapeOf(llama1B), { rank: 8, maxSteps: 40 }); // 806 MiB: over the old 512 MiB GPU cap
    expect(scorer.gpuBytes).toBeLessThan(2 ** 20); // nothing staged yet; the ring is allocated at the first step
    scorer.destroy();

    const llama8B = normalizeConfig({ model_type: 'llama', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 14336, vocab_size: 128256 });
    const perStep8B = 31 * 8 * (8192 + 2 * 5120 + 8192 + 3 * 18432) * 4;
    let err: unknown;
    try {
      new IgiaScorer(gpu.device, llama8B, shapeOf(llama8B), { rank: 8, maxSteps: 64 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).code).toBe('memory');
    expect((err as Error).message).toContain(`needs ${((64 * perStep8B) / 2 ** 20).toFixed(0)} MiB of host memory, over the 4096 MiB allowed`);
    expect((err as Error).message).toContain(`at most ${Math.floor(4 * 2 ** 30 / perStep8B)} steps`);
    new IgiaScorer(gpu.device, llama8B, shapeOf(llama8B), { rank: 8, maxSteps: 40 }).destroy();
    tiny.buffer.destroy();
  });
});
