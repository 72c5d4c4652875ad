// LoRA adapters: which modules carry them, their names (PEFT's, so fixtures and exported adapters line up),
// and PEFT-style initialisation. Host-side data only; the GPU engine uploads these values.
//   y = x·Wᵀ (+ b) + (alpha / r) · (x·Aᵀ)·Bᵀ      A: (r, in), B: (out, r)

import { GradPruneError } from '../errors';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { seededRandom } from '../random';

export interface LoraConfig {
  rank: number;
  alpha: number;
  /** Modules that get an adapter, in every layer (default: all seven). */
  modules: readonly LinearModule[];
}

export const DEFAULT_LORA: LoraConfig = Object.freeze({ rank: 8, alpha: 32, modules: LINEAR_MODULES });

export const loraScale = (c: LoraConfig): number => c.alpha / c.rank;

/** One adapter's host values. */
export interface LoraAdapter {
  layer: number;
  module: LinearModule;
  /** PEFT's module name without suffix, e.g. `model.layers.3.self_attn.q_proj`. */
  name: string;
  inFeatures: number;
  outFeatures: number;
  A: Float32Array; // (r, in)
  B: Float32Array; // (out, r)
}

/** `model.layers.L.self_attn.q_proj`: append `.lora_A.weight` / `.lora_B.weight` for the tensors. */
export const adapterName = (layer: number, m: LinearModule): string => linearWeightName(layer, m).replace(/\.weight$/, '');

export function validateLoraConfig(c: LoraConfig): void {
  if (!Number.isInteger(c.rank) || c.rank <= 0) {
    throw new GradPruneError('input', `LoRA rank must be a positive integer (got ${c.rank}).`, { subject: 'rank', hint: 'Typical ranks are 4 to 64.' });
  }
  if (!Number.isFinite(c.alpha) || c.alpha <= 0) {
    throw new GradPruneError('input', `LoRA alpha must be a positive number (got ${c.alpha}).`, { subject: 'alpha', hint: 'A common choice is alpha = 2·rank or 4·rank.' });
  }
  if (c.modules.length === 0) {
    throw new GradPruneError('input', 'LoRA needs at least one target module.', { subject: 'modules', hint: `Choose from ${LINEAR_MODULES.join(', ')}.` });
  }
  for (const m of c.modules) {
    if (!(LINEAR_MODULES as readonly string[]).includes(m)) {
      throw new GradPruneError('input', `Unknown LoRA target module "${m}".`, { subject: 'modules', hint: `Choose from ${LINEAR_MODULES.join(', ')}.` });
    }
  }
}

/** Adapters in layer-major, module order (q, k, v, o, gate, up, down), skipping modules not targeted. */
function layout(model: ModelConfig, lora: LoraConfig): Array<{ layer: number; module: LinearModule; out: number; inp: number }> {
  validateLoraConfig(lora);
  const out: Array<{ layer: number; module: LinearModule; out: number; inp: number }> = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const module of LINEAR_MODULES) {
      if (!lora.modules.includes(module)) continue;
      const [o, i] = linearShape(model, module);
      out.push({ layer, module, out: o, inp: i });
    }
  }
  return out;
}

/** PEFT's default init: A ~ U(±1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), B = 0. */
export function initLoraAdapters(model: ModelConfig, lora: LoraConfig, seed = 0): LoraAdapter[] {
  const rand = seededRandom(seed);
  return layout(model, lora).map(({ layer, module, out, inp }) => {
    const bound = 1 / Math.sqrt(inp);
    const A = new Float32Array(lora.rank * inp);
    for (let i = 0; i < A.length; i++) A[i] = (2 * rand() - 1) * bound;
    return { layer, module, name: adapterName(layer, module), inFeatures: inp, outFeatures: out, A, B: new Float32Array(out * lora.rank) };
  });
}

/**
 * Adapters with given values, e.g. from a fixture or a PEFT adapter file. `get(tensorName)` returns the f32 values of
 * `<prefix><name>.lora_A.weight` / `.lora_B.weight`; shapes are checked.
 */
export async function loadLoraAdapters(
  model: ModelConfig,
  lora: LoraConfig,
  get: (tensorName: string) => Promise<Float32Array>,
  prefix = '',
): Promise<LoraAdapter[]> {
  const adapters: LoraAdapter[] = [];
  for (const { layer, module, out, inp } of layout(model, lora)) {
    const name = adapterName(layer, module);
    const A = await get(`${prefix}${name}.lora_A.weight`);
    const B = await get(`${prefix}${name}.lora_B.weight`);
    const check = (t: Float32Array, which: string, n: number, shape: string) => {
      if (t.length !== n) {
        throw new GradPruneError('tensor', `LoRA tensor ${prefix}${name}.${which}.weight has ${t.length} values; rank ${lora.rank} needs ${shape}.`, {
          subject: `${prefix}${name}.${which}.weight`,
          hint: 'Check that the adapter was trained with the same rank and on this model.',
        });
      }
    };
    check(A, 'lora_A', lora.rank * inp, `[${lora.rank}, ${inp}]`);
    check(B, 'lora_B', out * lora.rank, `[${out}, ${lora.rank}]`);
    adapters.push({ layer, module, name, inFeatures: inp, outFeatures: out, A, B });
  }
  return adapters;
}
