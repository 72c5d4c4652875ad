// GradPruner's merge on the GPU: for each of the seven linear weights of a merged layer p into its receiver r,
// keep p's top `keepFraction` elements by importance F_p (k = floor(keepFraction · numel)), of those only the
// ones whose sign agrees with r's ORIGINAL weight, and add them: W_r ← W_r + Σ_p mask_p ⊙ W_p.
//
// Per (receiver, module): mergeHistogram/mergeSelectDigit ×4 find the k-th largest F_p exactly (radix select
// on the f32 bits, no readback, no sort), then mergeApply adds and counts. Only the merged receiver weights
// come back to the host; everything else of the pruned model is the original tensors (see ./prune.ts).

import applyCode from '../../shaders/merge_apply.wgsl?raw';
import histogramCode from '../../shaders/merge_histogram.wgsl?raw';
import selectCode from '../../shaders/merge_select.wgsl?raw';
import { GradPruneError } from '../errors';
import { ceilDiv, Kernel, type KernelCall } from '../gpu/kernel';
import { createTensor, readback, readbackBytes, tensorFrom, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { mergesByReceiver, type PrunePlan } from './plan';

export interface MergeSource {
  /** A linear weight of the ORIGINAL model, as f32. */
  readWeight(name: string): Promise<Float32Array>;
  /**
   * F of a merged layer's module, (out, in): a GPU tensor (e.g. IgiaScorer.rebuildImportance, destroyed after
   * use) or host values (uploaded).
   */
  importance(layer: number, module: LinearModule): Promise<Tensor | Float32Array>;
}

export interface MergeResult {
  /** The receivers' merged weights, keyed by the ORIGINAL weight name. */
  weights: Map<string, Float32Array>;
  /** Elements each merge added, keyed "p->r.module" as in gradprune.json's plans. */
  addedElements: Record<string, number>;
  /** The importance threshold (the k-th largest F_p) of each merge, same keys. */
  thresholds: Record<string, number>;
}

const SHIFTS = [24, 16, 8, 0];
const u32 = (x: number) => ({ u32: x });
const MAX_WORKGROUPS = 1024;

class MergeKernels {
  readonly histogram: Kernel;
  readonly select: Kernel;
  readonly apply: Kernel;
  constructor(device: GPUDevice) {
    this.histogram = new Kernel(device, { label: 'mergeHistogram', code: histogramCode, entryPoint: 'mergeHistogram', bindings: ['write', 'read', 'read', 'uniform'] });
    this.select = new Kernel(device, { label: 'mergeSelectDigit', code: selectCode, entryPoint: 'mergeSelectDigit', bindings: ['write', 'write', 'uniform'] });
    this.apply = new Kernel(device, { label: 'mergeApply', code: applyCode, entryPoint: 'mergeApply', bindings: ['write', 'write', 'read', 'read', 'read', 'read', 'uniform'] });
  }
}

export const mergeKey = (p: number, r: number, m: LinearModule) => `${p}->${r}.${m}`;

export async function mergeLayers(device: GPUDevice, plan: PrunePlan, config: ModelConfig, source: MergeSource): Promise<MergeResult> {
  const kernels = new MergeKernels(device);
  const weights = new Map<string, Float32Array>();
  const addedElements: Record<string, number> = {};
  const thresholds: Record<string, number> = {};
  const merges = [...mergesByReceiver(plan)];
  const slots = merges.flatMap(([r, donors]) => LINEAR_MODULES.flatMap((m) => donors.map((p) => ({ p, r, m }))));
  const added = createTensor(device, 'merge.added', [Math.max(1, slots.length)], 'u32');
  const states = createTensor(device, 'merge.select', [Math.max(1, slots.length), 4], 'u32');

  for (const [r, donors] of merges) {
    for (const m of LINEAR_MODULES) {
      const [out, inp] = linearShape(config, m);
      const n = out * inp;
      const k = Math.floor(plan.keepFraction * n);
      const name = linearWeightName(r, m);
      const receiver = tensorFrom(device, `merge.receiver.${r}.${m}`, [out, inp], checked(await source.readWeight(name), n, name));
      const merged = createTensor(device, `merge.merged.${r}.${m}`, [out, inp]);
      const temps: Tensor[] = [receiver, merged];
      const calls: KernelCall[] = [];
      const encoder = device.createCommandEncoder({ label: `merge.${r}.${m}` });
      encoder.copyBufferToBuffer(receiver.buffer, 0, merged.buffer, 0, n * 4);
      for (const p of donors) {
        const slot = slots.findIndex((s) => s.p === p && s.r === r && s.m === m);
        const donorName = linearWeightName(p, m);
        const donor = tensorFrom(device, `merge.donor.${p}.${m}`, [out, inp], checked(await source.readWeight(donorName), n, donorName));
        const f = await source.importance(p, m);
        const importance = f instanceof Float32Array ? tensorFrom(device, `merge.F.${p}.${m}`, [out, inp], checked(f, n, `importance of ${donorName}`)) : f;
        if (importance.numel !== n) throw new GradPruneError('tensor', `The importance of ${donorName} has ${importance.numel} elements, expected ${n}.`, { subject: donorName });
        const histogram = createTensor(device, `merge.histogram.${p}.${m}`, [256], 'u32');
        temps.push(donor, importance, histogram);
        if (k === 0) continue; // nothing is kept of a tensor smaller than 1/keepFraction elements
        const state = createTensor(device, `merge.state.${p}->${r}.${m}`, [4], 'u32'); // (prefix, remaining, threshold, pad)
        temps.push(state);
        device.queue.writeBuffer(state.buffer, 0, new Uint32Array([0, k, 0, 0]));
        const wg = Math.min(MAX_WORKGROUPS, ceilDiv(n, 256));
        const pass = encoder.beginComputePass({ label: `merge.${p}->${r}.${m}` });
        for (const shift of SHIFTS) {
          const h = kernels.histogram.call(`mergeHistogram.${p}.${m}.${shift}`, [histogram, state, importance], [wg], [u32(n), u32(shift)]);
          const s = kernels.select.call(`mergeSelectDigit.${p}.${m}.${shift}`, [state, histogram], [1], [u32(shift)]);
          h.encode(pass);
          s.encode(pass);
          calls.push(h, s);
        }
        const a = kernels.apply.call(`mergeApply.${p}->${r}.${m}`, [merged, added, receiver, donor, importance, state], [wg], [u32(n), u32(slot)]);
        a.encode(pass);
        calls.push(a);
        pass.end();
        encoder.copyBufferToBuffer(state.buffer, 0, states.buffer, slot * 16, 16);
      }
      device.queue.submit([encoder.finish()]);
      weights.set(name, await readback(device, merged));
      for (const c of calls) c.destroy();
      for (const t of temps) t.buffer.destroy();
    }
  }
  const counts = new Uint32Array(await readbackBytes(device, added));
  const stateWords = new Uint32Array(await readbackBytes(device, states));
  const bits = new Float32Array(stateWords.buffer);
  slots.forEach(({ p, r, m }, slot) => {
    addedElements[mergeKey(p, r, m)] = counts[slot];
    thresholds[mergeKey(p, r, m)] = bits[slot * 4 + 2];
  });
  added.buffer.destroy();
  states.buffer.destroy();
  return { weights, addedElements, thresholds };
}

function checked(values: Float32Array, n: number, name: string): Float32Array {
  if (values.length !== n) throw new GradPruneError('tensor', `${name} has ${values.length} elements, expected ${n}.`, { subject: name });
  return values;
}
