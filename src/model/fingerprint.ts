// A short identity of a checkpoint, so that scores and IGIA state are never applied to another model: the
// config, every tensor's name, dtype and shape, and the final norm's bytes (small, and it differs between
// fine-tunes of one architecture). Reading the whole weights would cost as much as loading the model.

import type { ModelConfig } from './config';
import type { TensorStore } from './safetensors';

/** The SHA-256 of bytes, a Blob or a string (UTF-8), as lower-case hex. */
export async function sha256Hex(data: Blob | Uint8Array | string): Promise<string> {
  const bytes =
    typeof data === 'string' ? new TextEncoder().encode(data) : data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

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
