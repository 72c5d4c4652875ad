// Build once, encode many. A Kernel owns one labelled compute pipeline and its explicit bind-group layout;
// a KernelCall is one use of it with its buffers and uniform values fixed (built when a model is set up),
// so the step loop only writes uniforms and records dispatches. A view (tensor.ts) is bound as its byte range.

import { bindingBytes, type Tensor } from './tensor';

/** How a kernel binds each buffer, in binding order: inputs are bound read-only. */
export type BindingKind = 'read' | 'write' | 'uniform';

/**
 * The kind of each binding number, 0 up: null where this entry point binds nothing (a module whose entry points
 * share one set of declarations, e.g. attention.wgsl, leaves out the ones an entry point does not use).
 */
export type BindingLayout = readonly (BindingKind | null)[];

export interface KernelSpec {
  label: string;
  /** Full WGSL source (a kernel file, with common.wgsl prepended where it uses the helpers). */
  code: string;
  entryPoint: string;
  bindings: BindingLayout;
  /** Pipeline-overridable constants (`override` declarations), e.g. workgroup sizes. */
  constants?: Record<string, number>;
}

export type Workgroups = [number, number?, number?];

export class Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;

  constructor(
    readonly device: GPUDevice,
    readonly spec: KernelSpec,
  ) {
    const entryTypes: Record<BindingKind, GPUBufferBindingType> = { read: 'read-only-storage', write: 'storage', uniform: 'uniform' };
    this.layout = device.createBindGroupLayout({
      label: spec.label,
      entries: spec.bindings.flatMap((kind, binding) => (kind ? [{ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: entryTypes[kind] } }] : [])),
    });
    const module = device.createShaderModule({ label: spec.label, code: spec.code });
    this.pipeline = device.createComputePipeline({
      label: spec.label,
      layout: device.createPipelineLayout({ label: spec.label, bindGroupLayouts: [this.layout] }),
      compute: { module, entryPoint: spec.entryPoint, constants: spec.constants },
    });
  }

  /**
   * Fix the buffers of one use, in binding order (the uniform binding aside). `uniforms` (u32 / i32 / f32 words,
   * 16-byte padded) get their own buffer, bound at the kernel's 'uniform' binding.
   */
  call(label: string, buffers: (Tensor | GPUBuffer)[], workgroups: Workgroups, uniforms?: Uniforms): KernelCall {
    return new KernelCall(this, label, buffers, workgroups, uniforms);
  }
}

/** A uniform block as a list of typed words, written in declaration order (all 4-byte scalars). */
export type UniformValue = { u32: number } | { i32: number } | { f32: number };
export type Uniforms = UniformValue[];

export class KernelCall {
  readonly bindGroup: GPUBindGroup;
  readonly uniformBuffer?: GPUBuffer;
  private readonly uniformData?: ArrayBuffer;

  constructor(
    readonly kernel: Kernel,
    readonly label: string,
    buffers: (Tensor | GPUBuffer)[],
    public workgroups: Workgroups,
    uniforms?: Uniforms,
  ) {
    const { device, spec } = kernel;
    const storage = spec.bindings.flatMap((kind, binding) => (kind && kind !== 'uniform' ? [binding] : []));
    const uniformBinding = spec.bindings.indexOf('uniform');
    if (buffers.length !== storage.length || (uniformBinding >= 0) !== (uniforms !== undefined)) {
      throw new Error(`${label}: kernel ${spec.label} takes ${storage.length} buffers${uniformBinding >= 0 ? ' and uniforms' : ''}, got ${buffers.length}${uniforms ? ' and uniforms' : ''}`);
    }
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({ binding: storage[i], resource: 'buffer' in b ? tensorBinding(device, label, b) : { buffer: b } }));
    if (uniforms) {
      this.uniformData = new ArrayBuffer(Math.max(16, Math.ceil((uniforms.length * 4) / 16) * 16));
      this.uniformBuffer = device.createBuffer({
        label: `${label}.uniforms`,
        size: this.uniformData.byteLength,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      this.setUniforms(uniforms);
      entries.push({ binding: uniformBinding, resource: { buffer: this.uniformBuffer } });
    }
    this.bindGroup = device.createBindGroup({ label, layout: kernel.layout, entries });
  }

  /** Rewrite the uniform block (queued: it takes effect for the next submit). */
  setUniforms(uniforms: Uniforms): void {
    if (!this.uniformBuffer || !this.uniformData) throw new Error(`${this.label}: this call has no uniforms`);
    const view = new DataView(this.uniformData);
    uniforms.forEach((u, i) => {
      if ('u32' in u) view.setUint32(i * 4, u.u32, true);
      else if ('i32' in u) view.setInt32(i * 4, u.i32, true);
      else view.setFloat32(i * 4, u.f32, true);
    });
    this.kernel.device.queue.writeBuffer(this.uniformBuffer, 0, this.uniformData);
  }

  encode(pass: GPUComputePassEncoder): void {
    pass.setPipeline(this.kernel.pipeline);
    pass.setBindGroup(0, this.bindGroup);
    const [x, y = 1, z = 1] = this.workgroups;
    pass.dispatchWorkgroups(x, y, z);
  }

  destroy(): void {
    this.uniformBuffer?.destroy();
  }
}

/** A tensor's binding: the whole buffer, or for a view its byte range (offset, size rounded up to 4). */
function tensorBinding(device: GPUDevice, label: string, t: Tensor): GPUBufferBinding {
  if (!t.viewOf && t.offset === 0) return { buffer: t.buffer };
  const align = device.limits.minStorageBufferOffsetAlignment;
  if (t.offset % align !== 0) throw new Error(`${label}: view ${t.label} starts at byte ${t.offset}, not a multiple of this device's minStorageBufferOffsetAlignment ${align}`);
  return { buffer: t.buffer, offset: t.offset, size: bindingBytes(t) };
}

/** Encode a list of calls into one compute pass of a fresh encoder, and submit. */
export function run(device: GPUDevice, calls: KernelCall[], label = 'run'): void {
  const encoder = device.createCommandEncoder({ label });
  const pass = encoder.beginComputePass({ label });
  for (const c of calls) c.encode(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
}

export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
