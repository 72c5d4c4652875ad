// A short identity of a checkpoint, so that scores and IGIA state are never applied to another model: the
// config, every tensor's name, dtype and shape, and the final norm's bytes (small, and it differs between
// fine-tunes of one architecture). Reading the whole weights would cost as much as loading the model.

import { sha256Hex } from './recipe';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';

export async function modelFingerprint(model: { config: ModelConfig; store: TensorStore }): Promise<string> {
  const index = [...model.store.tensors.values()]
    .map((t) => `${t.name}:${t.dtype}:[${t.shape.join(',')}]`)
    .sort()
    .join('\n');
  const text = new TextEncoder().encode(`${JSON.stringify(model.config.raw)}\n${index}\n`);
  const norm = model.store.has('model.norm.weight') ? await model.store.readBytes('model.norm.weight') : new Uint8Array(0);
  const all = new Uint8Array(text.byteLength + norm.byteLength);
  all.set(text);
  all.set(norm, text.byteLength);
  return (await sha256Hex(all)).slice(0, 32);
}
