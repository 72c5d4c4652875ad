// The WebGPU adapter and device: limits requested explicitly, shader-f16 when the adapter has it, and every
// failure (no WebGPU, no adapter, lost device, validation or out-of-memory errors) as a GradPruneError.

import { GradPruneError } from '../errors';

export interface AdapterSummary {
  /** "vendor architecture device / description", whatever the browser reveals. */
  name: string;
  isSoftware: boolean;
  shaderF16: boolean;
  timestampQuery: boolean;
  subgroups: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxStorageBuffersPerShaderStage: number;
}

export interface Gpu {
  device: GPUDevice;
  adapter: AdapterSummary;
  /** Resolves (never rejects) when the device is lost, with the reason as a GradPruneError. */
  lost: Promise<GradPruneError>;
  /** Throws the first uncaptured GPU error since the last call, if any. Call after awaiting GPU work. */
  throwIfFailed(): void;
}

const LIMITS_WE_USE = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxBindGroups',
] as const;

/** navigator.gpu in a browser or worker; Dawn in Node (see ./node.ts). */
async function gpuEntry(): Promise<GPU> {
  if (typeof navigator !== 'undefined' && navigator.gpu) return navigator.gpu;
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { nodeGPU } = await import('./node');
    return nodeGPU();
  }
  throw new GradPruneError('gpu', 'This browser has no WebGPU.', {
    hint: 'Use a recent Chrome or Edge (113+) on a machine with a GPU driver; on Linux start Chrome with --enable-unsafe-webgpu --enable-features=Vulkan.',
  });
}

export function describeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length);
  const name = parts.length ? [...new Set(parts)].join(' ') : 'unnamed WebGPU adapter';
  const l = adapter.limits;
  return {
    name,
    isSoftware: /swiftshader|llvmpipe|lavapipe|software|cpu/i.test(name) || (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true,
    shaderF16: adapter.features.has('shader-f16'),
    timestampQuery: adapter.features.has('timestamp-query'),
    subgroups: adapter.features.has('subgroups'),
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
  };
}

export interface GpuOptions {
  /** Use shader-f16 when the adapter has it (default true). */
  allowF16?: boolean;
  powerPreference?: GPUPowerPreference;
}

/** Devices not yet lost or destroyed: the work a process lets finish before it exits (see settleGpuWork). */
const liveDevices = new Set<GPUDevice>();

/**
 * Wait (at most `timeoutMs`) for every live device's submitted work to finish, then destroy it. A Node process
 * that exits with work in flight can crash in Dawn's teardown (SIGSEGV instead of the exit code of a Ctrl-C).
 */
export async function settleGpuWork(timeoutMs = 5000): Promise<void> {
  const idle = Promise.all([...liveDevices].map((d) => d.queue.onSubmittedWorkDone().then(() => d.destroy(), () => d.destroy())));
  await Promise.race([idle, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
}

export async function requestGpu(opts: GpuOptions = {}): Promise<Gpu> {
  const entry = await gpuEntry();
  const adapter = await entry.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new GradPruneError('gpu', 'WebGPU is available but no GPU adapter was found.', {
      hint: 'Update the GPU driver, or in Chrome enable chrome://flags/#enable-unsafe-webgpu; check chrome://gpu.',
    });
  }
  const summary = describeAdapter(adapter);
  // Ask for the adapter's real limits: the defaults (256 MiB buffers, 128 MiB bindings) are far below a real GPU's.
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS_WE_USE) requiredLimits[k] = adapter.limits[k];
  const requiredFeatures: GPUFeatureName[] = [];
  if (summary.shaderF16 && opts.allowF16 !== false) requiredFeatures.push('shader-f16');
  if (summary.timestampQuery) requiredFeatures.push('timestamp-query');

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'gradprune' });
  } catch (e) {
    throw new GradPruneError('gpu', `The GPU refused to create a device (${(e as Error).message}).`, {
      hint: 'Close other GPU-heavy tabs and reload.',
      cause: e,
    });
  }
  summary.shaderF16 = device.features.has('shader-f16');
  liveDevices.add(device);
  void device.lost.then(() => liveDevices.delete(device));

  let pending: GradPruneError | null = null;
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    if (pending) return;
    const oom = typeof GPUOutOfMemoryError !== 'undefined' && err instanceof GPUOutOfMemoryError;
    pending = oom
      ? new GradPruneError('memory', `The GPU ran out of memory (${err.message}).`, { hint: 'Use a shorter sequence, a smaller batch, or f16 weights.' })
      : new GradPruneError('gpu', `GPU error: ${err.message}`, { hint: 'This is likely a bug in GradPrune Studio; please report it with the model you used.' });
  });
  const lost = device.lost.then(
    (info) =>
      new GradPruneError('gpu', `The GPU device was lost${info.message ? ` (${info.message})` : ''}.`, {
        hint: 'The driver may have reset or the tab used too much GPU memory. Reload the model to continue.',
      }),
  );
  return {
    device,
    adapter: summary,
    lost,
    throwIfFailed() {
      if (pending) {
        const e = pending;
        pending = null;
        throw e;
      }
    },
  };
}
