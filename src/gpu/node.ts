// WebGPU in Node through Dawn (the `webgpu` npm package). Browser code never imports this file.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Point Vulkan at SwiftShader (installed with Debian's chromium) unless the person chose a driver already. */
export function configureNodeVulkan(): void {
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  // Dawn's Vulkan loader probes display sockets and complains on stderr without a runtime dir (headless machines, CI).
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = path.join(tmpdir(), `gradprune-xdg-${process.getuid?.() ?? 'user'}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
}

// Dawn's instance must outlive every adapter and device made from it: keep it module-level
// (an inline `create([]).requestAdapter()` lets it be collected and crashes the process).
let nodeGpu: GPU | undefined;

/** The `navigator.gpu` equivalent in Node. */
export async function nodeGPU(): Promise<GPU> {
  if (!nodeGpu) {
    configureNodeVulkan();
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    nodeGpu = create([]) as unknown as GPU;
  }
  return nodeGpu;
}
