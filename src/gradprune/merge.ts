// GradPruner's merge on the GPU: for each of the seven linear weights of a merged layer p into its receiver r,
// keep p's top `keepFraction` elements by importance F_p (k = floor(keepFraction · numel)), of those only the
// ones whose sign agrees with r's ORIGINAL weight, and add them: W_r ← W_r + Σ_p mask_p ⊙ W_p.
//
// Per (receiver, module): mergeHistogram/mergeSelectDigit ×4 find the k-th largest F_p exactly (radix select
// on the f32 bits, no readback, no sort), then mergeApply adds and counts. Only the merged receiver weights
// come back to the host; everything else of the pruned model is the original tensors (see ./prune.ts). LayerMerger
// merges one receiver weight at a time on demand, so an export merges each weight as its writer reaches it.

import applyCode from '../../shaders/merge_apply.wgsl?raw';
import histogramCode from '../../shaders/merge_histogram.wgsl?raw';
import selectCode from '../../shaders/merge_select.wgsl?raw';
import { GradPruneError } from '../errors';
import { ceilDiv, type Kernel, type KernelCall } from '../gpu/kernel';
import { createTensor, readback, readbackU32, tensorFrom, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { kernelLib, u32 } from '../nn/kernels/lib';
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
const MAX_WORKGROUPS = 1024;

/** The merge's kernels, from the device's kernel library (built once per device). */
function mergeKernels(device: GPUDevice): { histogram: Kernel; select: Kernel; apply: Kernel } {
  const lib = kernelLib(device);
  return {
    histogram: lib.kernel({ label: 'mergeHistogram', code: histogramCode, entryPoint: 'mergeHistogram', bindings: ['write', 'read', 'read', 'uniform'], common: false }),
    select: lib.kernel({ label: 'mergeSelectDigit', code: selectCode, entryPoint: 'mergeSelectDigit', bindings: ['write', 'write', 'uniform'], common: false }),
    apply: lib.kernel({ label: 'mergeApply', code: applyCode, entryPoint: 'mergeApply', bindings: ['write', 'write', 'read', 'read', 'read', 'read', 'uniform'], common: false }),
  };
}

export const mergeKey = (p: number, r: number, m: LinearModule) => `${p}->${r}.${m}`;

/**
 * The merge one receiver weight at a time, in any order: `weight(name)` merges the donors into that receiver weight
 * on the GPU and reads back only it (f32), so an export can merge each weight as its writer reaches it and hold one
 * at a time. `finish()` reads the elements added and the thresholds once every weight has been merged.
 */
export class LayerMerger {
  /** The receivers' merged linear weight names (ORIGINAL names), in plan order. */
  readonly names: string[];
  private readonly kernels: ReturnType<typeof mergeKernels>;
  private readonly slots: { p: number; r: number; m: LinearModule }[];
  private readonly byName = new Map<string, { r: number; m: LinearModule; donors: number[] }>();
  private readonly done = new Set<string>();
  private readonly added: Tensor;
  private readonly states: Tensor;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly device: GPUDevice,
    private readonly plan: PrunePlan,
    private readonly config: ModelConfig,
    private readonly source: MergeSource,
  ) {
    this.kernels = mergeKernels(device);
    const merges = [...mergesByReceiver(plan)];
    this.slots = merges.flatMap(([r, donors]) => LINEAR_MODULES.flatMap((m) => donors.map((p) => ({ p, r, m }))));
    for (const [r, donors] of merges) for (const m of LINEAR_MODULES) this.byName.set(linearWeightName(r, m), { r, m, donors });
    this.names = [...this.byName.keys()];
    this.added = createTensor(device, 'merge.added', [Math.max(1, this.slots.length)], 'u32');
    this.states = createTensor(device, 'merge.select', [Math.max(1, this.slots.length), 4], 'u32');
  }

  keys(): Iterable<string> {
    return this.names;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The merged receiver weight `name` (ORIGINAL name), f32; each weight once. Calls run one after another. */
  get(name: string): Promise<Float32Array> {
    const next = this.queue.then(() => this.mergeOne(name));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async mergeOne(name: string): Promise<Float32Array> {
    const job = this.byName.get(name);
    if (!job) throw new GradPruneError('tensor', `${name} is not a weight this plan merges into.`, { subject: name });
    if (this.done.has(name)) throw new GradPruneError('tensor', `${name} was merged already (the merge adds its counts once).`, { subject: name });
    this.done.add(name);
    const { device, kernels, plan, config, source, slots } = this;
    const { r, m, donors } = job;
    const [out, inp] = linearShape(config, m);
    const n = out * inp;
    const k = Math.floor(plan.keepFraction * n);
    const receiver = tensorFrom(device, `merge.receiver.${r}.${m}`, [out, inp], checked(await source.readWeight(name), n, name));
    const merged = createTensor(device, `merge.merged.${r}.${m}`, [out, inp]);
    const temps: Tensor[] = [receiver, merged];
    const calls: KernelCall[] = [];
    try {
      const encoder = device.createCommandEncoder({ label: `merge.${r}.${m}` });
      encoder.copyBufferToBuffer(receiver.buffer, 0, merged.buffer, 0, n * 4);
      for (const p of donors) {
        const slot = slots.findIndex((s) => s.p === p && s.r === r && s.m === m);
        const donorName = linearWeightName(p, m);
        const donor = tensorFrom(device, `merge.donor.${p}.${m}`, [out, inp], checked(await source.readWeight(donorName), n, donorName));
        temps.push(donor);
        const f = await source.importance(p, m);
        const importance = f instanceof Float32Array ? tensorFrom(device, `merge.F.${p}.${m}`, [out, inp], checked(f, n, `importance of ${donorName}`)) : f;
        temps.push(importance);
        if (importance.numel !== n) throw new GradPruneError('tensor', `The importance of ${donorName} has ${importance.numel} elements, expected ${n}.`, { subject: donorName });
        const histogram = createTensor(device, `merge.histogram.${p}.${m}`, [256], 'u32');
        temps.push(histogram);
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
        const a = kernels.apply.call(`mergeApply.${p}->${r}.${m}`, [merged, this.added, receiver, donor, importance, state], [wg], [u32(n), u32(slot)]);
        a.encode(pass);
        calls.push(a);
        pass.end();
        encoder.copyBufferToBuffer(state.buffer, 0, this.states.buffer, slot * 16, 16);
      }
      device.queue.submit([encoder.finish()]);
      return await readback(device, merged);
    } finally {
      for (const c of calls) c.destroy();
      for (const t of temps) t.buffer.destroy();
    }
  }

  /** The elements each merge added and its importance threshold; every weight must have been merged. */
  async finish(): Promise<Pick<MergeResult, 'addedElements' | 'thresholds'>> {
    await this.queue;
    const missing = this.names.find((n) => !this.done.has(n));
    if (missing) throw new GradPruneError('tensor', `The merge into ${missing} was never made.`, { subject: missing });
    const addedElements: Record<string, number> = {};
    const thresholds: Record<string, number> = {};
    const counts = await readbackU32(this.device, this.added);
    const stateWords = await readbackU32(this.device, this.states);
    const bits = new Float32Array(stateWords.buffer);
    this.slots.forEach(({ p, r, m }, slot) => {
      addedElements[mergeKey(p, r, m)] = counts[slot];
      thresholds[mergeKey(p, r, m)] = bits[slot * 4 + 2];
    });
    return { addedElements, thresholds };
  }

  destroy(): void {
    this.added.buffer.destroy();
    this.states.buffer.destroy();
  }
}

/** Every receiver weight merged and read back at once (small models, tests); an export can use LayerMerger instead. */
export async function mergeLayers(device: GPUDevice, plan: PrunePlan, config: ModelConfig, source: MergeSource): Promise<MergeResult> {
  const merger = new LayerMerger(device, plan, config, source);
  try {
    const weights = new Map<string, Float32Array>();
    for (const name of merger.names) weights.set(name, await merger.get(name));
    return { weights, ...(await merger.finish()) };
  } finally {
    merger.destroy();
  }
}

function checked(values: Float32Array, n: number, name: string): Float32Array {
  if (values.length !== n) throw new GradPruneError('tensor', `${name} has ${values.length} elements, expected ${n}.`, { subject: name });
  return values;
}
