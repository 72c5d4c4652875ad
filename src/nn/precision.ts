// The precision the engine stores model weights in, chosen by the person ('auto', 'f32' or 'f16') and resolved
// against the adapter: 'auto' is f16 on a device with shader-f16 (half the memory and bandwidth; the kernels
// still accumulate in f32), else f32. An explicit 'f16' on a device without shader-f16 is refused, not downgraded.
// Pure (no GPU calls): the studio's page, the worker, the CLI and the engine all resolve with the same rules.

import { GradPruneError } from '../errors';
import type { AdapterSummary } from '../gpu/device';

/** How weight matrices are stored on the GPU. */
export type WeightStorage = 'f32' | 'f16';
/** What a person chooses; 'auto' becomes a WeightStorage once the adapter is known. */
export type WeightPrecision = 'auto' | WeightStorage;

export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = ['auto', 'f32', 'f16'];

/** What resolution needs of the adapter. */
export type PrecisionAdapter = Pick<AdapterSummary, 'name' | 'shaderF16'>;

export interface ResolvedPrecision {
  storage: WeightStorage;
  /** Why, in a few words: "adapter has shader-f16", "adapter has no shader-f16", "chosen; adapter has shader-f16". */
  reason: string;
}

export function checkWeightPrecision(choice: unknown): asserts choice is WeightPrecision {
  if (!WEIGHT_PRECISIONS.includes(choice as WeightPrecision)) {
    throw new GradPruneError('input', `The weight precision must be one of ${WEIGHT_PRECISIONS.join(', ')} (got ${JSON.stringify(choice)}).`, {
      subject: 'precision',
      hint: "Use 'auto' to store weights in f16 where the GPU supports it.",
    });
  }
}

/** The storage a choice means on this adapter; an explicit 'f16' without shader-f16 is a GradPruneError('gpu'). */
export function resolveWeightStorage(choice: WeightPrecision, adapter: PrecisionAdapter): ResolvedPrecision {
  checkWeightPrecision(choice);
  if (choice === 'auto') {
    return adapter.shaderF16 ? { storage: 'f16', reason: 'adapter has shader-f16' } : { storage: 'f32', reason: 'adapter has no shader-f16' };
  }
  if (choice === 'f16' && !adapter.shaderF16) {
    throw new GradPruneError('gpu', `f16 weights need the shader-f16 feature, which this GPU adapter (${adapter.name}) does not offer.`, {
      subject: 'precision',
      hint: "Choose precision 'auto' or 'f32' (on the command line: --precision auto): the weights are then kept in f32, which takes twice the memory.",
    });
  }
  return { storage: choice, reason: `chosen; adapter has ${adapter.shaderF16 ? '' : 'no '}shader-f16` };
}

/**
 * The storage to plan memory for before a device is at hand (the studio's estimate): 'auto' follows the adapter
 * when one is known and assumes f32 (the larger) otherwise; an explicit choice is taken as it is.
 */
export function plannedWeightStorage(choice: WeightPrecision, adapter: PrecisionAdapter | null): WeightStorage {
  if (choice !== 'auto') return choice;
  return adapter?.shaderF16 ? 'f16' : 'f32';
}

/** "weights: f16 (adapter has shader-f16)": the line the CLI prints and the studio shows. */
export const precisionLine = (r: ResolvedPrecision): string => `weights: ${r.storage} (${r.reason})`;
