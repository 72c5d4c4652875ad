// The kernel library of one device (kernelLib): every kernel's pipeline built once, on first use, and cached by
// variant — the engine's kernels (./*.ts), generation's decode attention and gradprune's IGIA and merge kernels
// alike — plus the shape checks every kernel entry point makes before it builds a KernelCall.
// Kernel functions take the library first, then outputs, gradients (prefixed d) and inputs, and return the
// KernelCalls of one use in dispatch order: built once at setup, so a step only writes uniforms and dispatches.

import common from '../../../shaders/common.wgsl?raw';
import weightsF16 from '../../../shaders/weights_f16.wgsl?raw';
import weightsF32 from '../../../shaders/weights_f32.wgsl?raw';
import type { Gpu } from '../../gpu/device';
import { Kernel, type BindingLayout, type KernelCall, type Uniforms, type Workgroups } from '../../gpu/kernel';
import { createTensor, type GpuDType, type Tensor } from '../../gpu/tensor';

export interface KernelSource {
  label: string;
  /** The kernel file's text (`?raw`). */
  code: string;
  entryPoint: string;
  bindings: BindingLayout;
  constants?: Record<string, number>;
  /**
   * A WGSL file (`?raw`) of declarations shared by several kernel files, prepended after common.wgsl
   * (shaders/attention_common.wgsl: the attention kernels' bindings and index helpers).
   */
  prelude?: string;
  /**
   * The element type W of the weight the kernel reads: prepends shaders/weights_f32.wgsl or weights_f16.wgsl
   * (`alias W = …`; the f16 one starts with `enable f16;`). Kernels that read no weight leave it out.
   */
  weights?: 'f32' | 'f16';
  /**
   * Prepend shaders/common.wgsl (default true; f16 kernels must start with `enable f16;` and set false).
   * Kernels built on common get WG = the library's reduction workgroup size unless constants set it.
   */
  common?: boolean;
}

/** Fields of a KernelSource that an elementwise kernel's call site gives (WG and the grid come from the tuning). */
export type ElementwiseSource = Omit<KernelSource, 'constants' | 'common'>;

/**
 * Workgroup shapes per adapter kind. Software adapters (SwiftShader, lavapipe) run a workgroup as 4- or 8-wide
 * SIMD groups interleaved as fibers on one CPU core: every barrier switches between all of them, so there the
 * reductions use one SIMD group (measured ~8× faster than 32 on SwiftShader) and attention an invocation per
 * row (~12× faster than the chunked kernel). GPUs get large workgroups for occupancy and bandwidth.
 */
export interface Tuning {
  /** matmul: WG × WG invocations, a (4·WG)² tile of the output. */
  matmulWorkgroup: number;
  /** Kernels with workgroup reductions (RMSNorm, cross-entropy, norms). A power of two, at least 2. */
  reductionWorkgroup: number;
  /** Kernels with one invocation per element and no barriers. */
  elementwiseWorkgroup: number;
  /** attention.wgsl (a workgroup per row, keys in chunks) or attention_rowwise.wgsl (an invocation per row). */
  attention: 'chunked' | 'rowwise';
}

export const GPU_TUNING: Tuning = { matmulWorkgroup: 16, reductionWorkgroup: 256, elementwiseWorkgroup: 256, attention: 'chunked' };
export const SOFTWARE_TUNING: Tuning = { matmulWorkgroup: 8, reductionWorkgroup: 8, elementwiseWorkgroup: 64, attention: 'rowwise' };

export class KernelLib {
  private readonly kernels = new Map<string, Kernel>();
  /** Bound where a kernel takes an optional buffer that this call does not have (e.g. no bias). */
  readonly unused: Tensor;
  /** Whether f16 weight kernels may be used (the device was created with 'shader-f16'). */
  readonly shaderF16: boolean;

  /** Use kernelLib(gpu): one library per device and tuning, shared by every job on the device. */
  constructor(
    readonly device: GPUDevice,
    readonly tuning: Tuning = GPU_TUNING,
  ) {
    this.shaderF16 = device.features.has('shader-f16');
    this.unused = createTensor(device, 'unused', [4]);
  }

  /** The workgroup size (WG of common.wgsl) of kernels that do not set their own. */
  get wg(): number {
    return this.tuning.reductionWorkgroup;
  }

  /** The kernel (its labelled pipeline) of this source and constants, built on first use. */
  kernel(src: KernelSource): Kernel {
    const constants = src.common === false ? src.constants : { WG: this.wg, ...src.constants };
    const key = `${src.label}:${src.entryPoint}:${JSON.stringify(constants ?? {})}`;
    const prelude = src.weights === 'f16' ? `${weightsF16}\n` : src.weights === 'f32' ? `${weightsF32}\n` : '';
    const code = `${prelude}${src.common === false ? '' : `${common}\n`}${src.prelude ? `${src.prelude}\n` : ''}${src.code}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = new Kernel(this.device, { label: src.label, code, entryPoint: src.entryPoint, bindings: src.bindings, constants });
      this.kernels.set(key, k);
    } else if (k.spec.code !== code) {
      throw new Error(`kernel ${key}: two different sources share this label`);
    }
    return k;
  }

  call(src: KernelSource, label: string, buffers: Tensor[], workgroups: Workgroups, uniforms?: Uniforms): KernelCall {
    return this.kernel(src).call(label, buffers, workgroups, uniforms);
  }

  /** A kernel with one invocation per element (index from flat_invocation) over n elements. */
  elementwise(src: ElementwiseSource, label: string, buffers: Tensor[], n: number, uniforms: Uniforms): KernelCall {
    const wg = this.tuning.elementwiseWorkgroup;
    return this.call({ ...src, constants: { WG: wg } }, label, buffers, grid1D(n, wg), uniforms);
  }
}

const libraries = new WeakMap<GPUDevice, Map<string, KernelLib>>();

/**
 * The kernel library of a device, one per device and tuning (built on first use, kept while the device lives).
 * With a Gpu, workgroup shapes follow the adapter (software or not); with a bare device, or given, the tuning's.
 */
export function kernelLib(gpuOrDevice: Gpu | GPUDevice, tuning?: Tuning): KernelLib {
  const gpu = 'device' in gpuOrDevice ? gpuOrDevice : null;
  const device = gpu ? gpu.device : (gpuOrDevice as GPUDevice);
  const chosen = tuning ?? (gpu?.adapter.isSoftware ? SOFTWARE_TUNING : GPU_TUNING);
  let byTuning = libraries.get(device);
  if (!byTuning) libraries.set(device, (byTuning = new Map()));
  const key = JSON.stringify(chosen);
  let lib = byTuning.get(key);
  if (!lib) byTuning.set(key, (lib = new KernelLib(device, chosen)));
  return lib;
}

/** A wrong shape passed to a kernel is a bug in the engine, not the person's input: plain Error, precise message. */
export function expectNumel(t: Tensor, numel: number, what: string): void {
  if (t.numel !== numel) throw new Error(`${what}: tensor ${t.label} [${t.shape.join(', ')}] has ${t.numel} elements, expected ${numel}`);
}

export function expectDType(t: Tensor, dtypes: readonly GpuDType[], what: string): void {
  if (!dtypes.includes(t.dtype)) throw new Error(`${what}: tensor ${t.label} is ${t.dtype}, expected ${dtypes.join(' or ')}`);
}

/** How many rows of `cols` values a tensor holds; throws when it does not hold a whole number of them. */
export function rowsOf(t: Tensor, cols: number, what: string): number {
  const rows = t.numel / cols;
  if (!Number.isInteger(rows)) throw new Error(`${what}: tensor ${t.label} [${t.shape.join(', ')}] is not a whole number of rows of ${cols}`);
  return rows;
}

const MAX_PER_DIM = 65535;

/** Workgroups covering `count` items, `perGroup` per workgroup, folded into 2-D when x would exceed the limit. */
export function grid1D(count: number, perGroup = 1): Workgroups {
  const groups = Math.max(1, Math.ceil(count / perGroup));
  if (groups <= MAX_PER_DIM) return [groups, 1];
  const x = MAX_PER_DIM;
  return [x, Math.ceil(groups / x)];
}

export const u32 = (v: number) => ({ u32: v });
export const f32 = (v: number) => ({ f32: v });
