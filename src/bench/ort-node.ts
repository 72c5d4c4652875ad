// onnxruntime-web's webgpu EP in Node, on the Dawn device the engine uses. Three things it needs here:
//   - V8's baseline wasm compiler only (--liftoff-only): optimising ORT's 27 MB wasm otherwise costs ~30 s of CPU;
//   - a navigator.gpu (Node has none; ORT checks for it before taking the device it is given);
//   - Dawn refuses writeBuffer data backed by a SharedArrayBuffer, which ORT's threaded wasm memory is: copy it.
import { setFlagsFromString } from 'node:v8';
import { nodeGPU } from '../gpu/node';
import type { OrtLoader } from './ort';

let patched = false;

function copySharedWrites(): void {
  if (patched) return;
  patched = true;
  const proto = (globalThis as unknown as { GPUQueue: { prototype: GPUQueue } }).GPUQueue.prototype;
  const writeBuffer = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource, dataOffset?: number, size?: number) {
    // A typed array's slice() copies into a fresh (unshared) buffer of the same element type.
    const shared = ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer;
    const copy = shared ? (data as unknown as { slice(): BufferSource }).slice() : data;
    return writeBuffer.call(this, buffer, offset, copy, dataOffset, size);
  } as GPUQueue['writeBuffer'];
}

export const loadOrtInNode: OrtLoader = async () => {
  setFlagsFromString('--liftoff-only');
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  g.navigator!.gpu ??= await nodeGPU();
  copySharedWrites();
  const ort = await import('onnxruntime-web/webgpu');
  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  return ort;
};
