// LLM-Pruner's saliences of the frozen linear weights a job accumulated gradients for (./weight-grads.ts), reduced on
// the GPU (shaders/taylor.wgsl) to sums along each module's rows and columns: what the Taylor importances read
// (layer level: Σ of the rows' first-order sums; group level: a head's or channel's rows / columns). Only the sums
// come back to the host: (out + in) × 3 floats per module.

import { createTensor, readback } from '../gpu/tensor';
import type { LinearModule } from '../model/config';
import { SALIENCES, taylorColumnSums, taylorRowSums, type Salience } from './kernels';
import { GpuModel } from './model';

/** LLM-Pruner's saliences of one module summed along its rows (one per output feature) and columns (per input). */
export interface ModuleSaliences {
  layer: number;
  module: LinearModule;
  rows: Record<Salience, Float32Array>; // each (out)
  columns: Record<Salience, Float32Array>; // each (in)
}

/**
 * The saliences of every module a job accumulated gradients for, after `batches` backward passes: the mean gradient
 * G = first / batches and the Fisher diagonal second / batches (per-batch gradients squared), reduced on the GPU
 * (shaders/taylor.wgsl) into per-row and per-column sums; only those come back to the host.
 */
export async function readSaliences(model: GpuModel, batches: number): Promise<ModuleSaliences[]> {
  if (!(Number.isInteger(batches) && batches > 0)) throw new Error(`readSaliences: ${batches} batches; run at least one backward pass first`);
  const { device } = model.gpu;
  const k = model.kernels;
  const out: ModuleSaliences[] = [];
  for (const g of model.frozenGrads.values()) {
    await model.weights.ensureLayer(g.layer); // streamed: W is in the layer's slot only once queued
    const weight = model.weights.layer(g.layer).linear[g.module].W;
    const [OC, IC] = weight.shape;
    const rows = createTensor(device, `${weight.label}.salience_rows`, [3, OC]); // (3, OC)
    const columns = createTensor(device, `${weight.label}.salience_columns`, [3, IC]); // (3, IC)
    const args = { weight, first: g.first, second: g.second, firstScale: 1 / batches, secondScale: 1 / batches };
    const calls = [...taylorRowSums(k, rows, args), ...taylorColumnSums(k, columns, args)];
    const encoder = device.createCommandEncoder({ label: 'taylor saliences' });
    const pass = encoder.beginComputePass({ label: 'taylor saliences' });
    GpuModel.encode(pass, calls);
    pass.end();
    device.queue.submit([encoder.finish()]);
    const [r, c] = [await readback(device, rows), await readback(device, columns)];
    const split = (a: Float32Array, n: number) => Object.fromEntries(SALIENCES.map((s, i) => [s, a.slice(i * n, (i + 1) * n)])) as Record<Salience, Float32Array>;
    out.push({ layer: g.layer, module: g.module, rows: split(r, OC), columns: split(c, IC) });
    for (const call of calls) call.destroy();
    rows.buffer.destroy();
    columns.buffer.destroy();
  }
  model.gpu.throwIfFailed();
  return out;
}
