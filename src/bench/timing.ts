// Timing a list of KernelCalls on the GPU: GPU timestamps around one compute pass when the device has
// 'timestamp-query', otherwise wall-clock time from submit to onSubmittedWorkDone (which includes submit latency:
// the reps are encoded into one pass to spread it).

import type { KernelCall } from '../gpu/kernel';
import { createReadbackBuffer, MAP_READ } from '../gpu/tensor';

export type TimingMethod = 'timestamp-query' | 'wall-clock';

export interface Timing {
  /** Seconds per rep. */
  seconds: number;
  method: TimingMethod;
}

export interface Timer {
  /** Seconds per rep of `calls`, from `reps` repetitions encoded into one pass (after one warm-up pass). */
  time(calls: KernelCall[], reps: number): Promise<Timing>;
}

const QUERY_RESOLVE = 0x0200;
const COPY_SRC = 0x0004;

function encodePass(device: GPUDevice, calls: KernelCall[], reps: number, timestampWrites?: GPUComputePassTimestampWrites): GPUCommandEncoder {
  const encoder = device.createCommandEncoder({ label: 'bench' });
  const pass = encoder.beginComputePass({ label: 'bench', timestampWrites });
  for (let r = 0; r < reps; r++) for (const c of calls) c.encode(pass);
  pass.end();
  return encoder;
}

async function wallClock(device: GPUDevice, calls: KernelCall[], reps: number): Promise<Timing> {
  device.queue.submit([encodePass(device, calls, 1).finish()]);
  await device.queue.onSubmittedWorkDone();
  const encoder = encodePass(device, calls, reps);
  const t0 = performance.now();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return { seconds: (performance.now() - t0) / 1000 / reps, method: 'wall-clock' };
}

export function createTimer(device: GPUDevice): Timer {
  if (!device.features.has('timestamp-query')) return { time: (calls, reps) => wallClock(device, calls, reps) };
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 });
  const resolve = device.createBuffer({ label: 'bench.timestamps', size: 16, usage: QUERY_RESOLVE | COPY_SRC });
  return {
    async time(calls, reps) {
      device.queue.submit([encodePass(device, calls, 1).finish()]);
      const encoder = encodePass(device, calls, reps, { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 });
      const read = createReadbackBuffer(device, 'bench.timestamps.read', 16);
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, read, 0, 16);
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      await read.mapAsync(MAP_READ);
      const wall = (performance.now() - t0) / 1000 / reps;
      const [begin, end] = new BigUint64Array(read.getMappedRange());
      read.unmap();
      read.destroy();
      const gpu = Number(end - begin) / 1e9 / reps;
      // Some drivers (software ones) report zeros or nonsense: fall back to the wall clock for that measurement.
      return gpu > 0 && gpu <= wall * 1.5 ? { seconds: gpu, method: 'timestamp-query' } : { seconds: wall, method: 'wall-clock' };
    },
  };
}

/**
 * Seconds per rep of GPU work that records its own passes and copies into an encoder (e.g. IgiaScorer.record):
 * GPU timestamps from an empty pass before the reps to an empty pass after them when the device has
 * 'timestamp-query', otherwise the wall clock from submit to onSubmittedWorkDone.
 */
export async function timeEncoded(device: GPUDevice, encode: (encoder: GPUCommandEncoder) => void, reps: number): Promise<Timing> {
  const timestamps = device.features.has('timestamp-query');
  const querySet = timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const encoder = device.createCommandEncoder({ label: 'bench.encoded' });
  if (querySet) encoder.beginComputePass({ label: 'bench.begin', timestampWrites: { querySet, beginningOfPassWriteIndex: 0 } }).end();
  for (let r = 0; r < reps; r++) encode(encoder);
  let read: GPUBuffer | null = null;
  let resolve: GPUBuffer | null = null;
  if (querySet) {
    encoder.beginComputePass({ label: 'bench.end', timestampWrites: { querySet, endOfPassWriteIndex: 1 } }).end();
    resolve = device.createBuffer({ label: 'bench.timestamps', size: 16, usage: QUERY_RESOLVE | COPY_SRC });
    read = createReadbackBuffer(device, 'bench.timestamps.read', 16);
    encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, read, 0, 16);
  }
  const t0 = performance.now();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  const wall = (performance.now() - t0) / 1000 / reps;
  if (!read) return { seconds: wall, method: 'wall-clock' };
  await read.mapAsync(MAP_READ);
  const [begin, end] = new BigUint64Array(read.getMappedRange());
  read.unmap();
  for (const b of [read, resolve!]) b.destroy();
  querySet!.destroy();
  const gpu = Number(end - begin) / 1e9 / reps;
  return gpu > 0 && gpu <= wall * 1.5 ? { seconds: gpu, method: 'timestamp-query' } : { seconds: wall, method: 'wall-clock' };
}
