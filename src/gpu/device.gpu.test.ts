// The GPU runtime on Dawn: a device with the adapter's real limits, a kernel round trip through Kernel /
// KernelCall / tensors, and GPU validation errors surfacing as GradPruneErrors.

import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { testGpu } from '../testing/gpu';
import { Kernel, run } from './kernel';
import { createTensor, readback, readbackBytes, tensorFrom } from './tensor';

const gpu = await testGpu();

const SCALE_WGSL = `
struct Params { n: u32, s: f32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64) fn scale(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.n) { out[g.x] = inp[g.x] * p.s; }
}`;

describe('device', () => {
  it('is created with the adapter limits, not the WebGPU defaults', async () => {
    expect(gpu.adapter.name.length).toBeGreaterThan(0);
    const adapter = (await (await import('./node')).nodeGPU()).requestAdapter();
    const limits = (await adapter)!.limits;
    expect(gpu.device.limits.maxStorageBufferBindingSize).toBe(limits.maxStorageBufferBindingSize);
    expect(gpu.device.limits.maxBufferSize).toBe(limits.maxBufferSize);
    expect(gpu.device.limits.maxComputeWorkgroupStorageSize).toBe(limits.maxComputeWorkgroupStorageSize);
    expect(gpu.adapter.maxStorageBufferBindingSize).toBe(limits.maxStorageBufferBindingSize);
    expect(gpu.adapter.shaderF16).toBe(gpu.device.features.has('shader-f16'));
  });

  it('runs a kernel: upload, dispatch with uniforms, rewrite uniforms, read back', async () => {
    const kernel = new Kernel(gpu.device, { label: 'scale', code: SCALE_WGSL, entryPoint: 'scale', bindings: ['write', 'read', 'uniform'] });
    const n = 100;
    const inp = tensorFrom(gpu.device, 'inp', [n], Float32Array.from({ length: n }, (_, i) => i - 50));
    const out = createTensor(gpu.device, 'out', [n]);
    const call = kernel.call('scale', [out, inp], [Math.ceil(n / 64)], [{ u32: n }, { f32: 1.5 }]);
    run(gpu.device, [call]);
    expect(Array.from(await readback(gpu.device, out))).toEqual(Array.from({ length: n }, (_, i) => (i - 50) * 1.5));
    call.setUniforms([{ u32: n }, { f32: -2 }]);
    run(gpu.device, [call]);
    expect((await readback(gpu.device, out))[99]).toBe(-98);
    gpu.throwIfFailed();
  });

  it('reads back f16 and odd-length tensors at their own size', async () => {
    const t = tensorFrom(gpu.device, 'half', [3], Uint16Array.from([0x3c00, 0xc000, 0x3800]), 'f16');
    expect(Array.from(new Uint16Array(await readbackBytes(gpu.device, t)))).toEqual([0x3c00, 0xc000, 0x3800]);
  });

  it('turns a GPU validation error into a GradPruneError on throwIfFailed', async () => {
    const kernel = new Kernel(gpu.device, { label: 'scale', code: SCALE_WGSL, entryPoint: 'scale', bindings: ['write', 'read', 'uniform'] });
    const t = createTensor(gpu.device, 't', [8]);
    // The same buffer bound writable and read-only in one dispatch is a validation error (writable aliasing).
    run(gpu.device, [kernel.call('aliased', [t, t], [1], [{ u32: 8 }, { f32: 1 }])]);
    await gpu.device.queue.onSubmittedWorkDone();
    let caught: unknown;
    try {
      gpu.throwIfFailed();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(GradPruneError);
    expect((caught as GradPruneError).code).toBe('gpu');
    expect((caught as GradPruneError).message).toMatch(/GPU error/);
    expect(() => gpu.throwIfFailed()).not.toThrow(); // reported once
  });

  it('refuses a tensor over the binding limit with a memory error naming it', () => {
    const tooBig = Math.floor(gpu.device.limits.maxStorageBufferBindingSize / 4) + 1;
    expect(() => createTensor(gpu.device, 'model.embed_tokens.weight', [tooBig])).toThrowError(GradPruneError);
    expect(() => createTensor(gpu.device, 'model.embed_tokens.weight', [tooBig])).toThrow(/model\.embed_tokens\.weight/);
  });
});
