// The gpu-f16 tier: Dawn on Mesa 25 lavapipe (Debian bookworm-backports, unpacked into .cache/lavapipe by
// scripts/ensure-lavapipe.mjs, which `npm test` runs first), the software Vulkan driver that has shader-f16.
// Without it the f16 tests skip, saying why.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { requestGpu, type Gpu } from '../gpu/device';
import { REPO_ROOT } from './paths';

/** The lavapipe ICD manifest; GRADPRUNE_LAVAPIPE_ICD overrides it (e.g. to check that the tier skips cleanly). */
export const LAVAPIPE_ICD = process.env.GRADPRUNE_LAVAPIPE_ICD ?? path.join(REPO_ROOT, '.cache/lavapipe/lvp_icd.json');

/** The manifest's path as a person reads it: relative inside the checkout, absolute elsewhere. */
export const lavapipeIcdShown = (): string => {
  const rel = path.relative(REPO_ROOT, LAVAPIPE_ICD);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : LAVAPIPE_ICD;
};

/** Why the f16 tests will skip, when lavapipe is not there. */
export const lavapipeMissing = (): string | null =>
  existsSync(LAVAPIPE_ICD) ? null : `no lavapipe at ${lavapipeIcdShown()} (node scripts/ensure-lavapipe.mjs provides it; npm test runs it first)`;

/** Point Vulkan at lavapipe, before Dawn loads; false when it is not there (Vulkan then finds SwiftShader). */
export function useLavapipe(): boolean {
  if (!existsSync(LAVAPIPE_ICD)) return false;
  process.env.VK_ICD_FILENAMES = LAVAPIPE_ICD;
  delete process.env.VK_DRIVER_FILES; // newer Vulkan loaders prefer it over VK_ICD_FILENAMES
  return true;
}

/** A device with shader-f16 for the f16 tests, or why there is none (pass it to ctx.skip). */
export async function f16TestGpu(): Promise<{ gpu: Gpu; skip: string | null }> {
  const gpu = await requestGpu();
  if (gpu.adapter.shaderF16) return { gpu, skip: null };
  const why = lavapipeMissing() ?? `the lavapipe driver at ${lavapipeIcdShown()} gave an adapter without shader-f16`;
  return { gpu, skip: `adapter "${gpu.adapter.name}" has no shader-f16: ${why}` };
}
