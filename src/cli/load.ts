// What several commands need first: a model folder opened as a Checkpoint, and the WebGPU adapter when there is one.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GradPruneError } from '../errors';
import { requestGpu, type AdapterSummary } from '../gpu/device';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';

/** A Hugging Face model folder on disk, opened and validated; the folder's name names the model. */
/** The demo model and dataset the studio embeds (public/demo in this package). */
export const EMBEDDED_DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../public/demo');

export async function openModelFolder(dir: string): Promise<Checkpoint> {
  return openCheckpoint(await openFolder(dir), path.basename(path.resolve(dir)));
}

/**
 * The adapter's summary, or why there is none. The device is released straight away: callers that only
 * describe the adapter must not keep a GPU device (or Dawn's instance) busy.
 */
export async function probeAdapter(): Promise<{ adapter: AdapterSummary | null; reason: string | null }> {
  try {
    const gpu = await requestGpu();
    gpu.device.destroy();
    return { adapter: gpu.adapter, reason: null };
  } catch (e) {
    return { adapter: null, reason: e instanceof GradPruneError ? e.message : `WebGPU could not start (${(e as Error).message}).` };
  }
}
