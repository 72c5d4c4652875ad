// One WebGPU device per gpu-tier test file: `const gpu = await testGpu();` at the top of the file
// (creating devices is slow on SwiftShader). The device is destroyed once the file's tests are done.
import { afterAll } from 'vitest';
import { requestGpu, type Gpu } from '../gpu/device';

export async function testGpu(): Promise<Gpu> {
  const gpu = await requestGpu();
  afterAll(() => gpu.device.destroy());
  return gpu;
}
