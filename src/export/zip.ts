// The exported folder as one .zip for the browser's download: weights stored (they do not compress), text
// files deflated, streamed through fflate tensor-file by slice so no second copy of a large file is built.

import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';

const SLICE_BYTES = 16 * 2 ** 20;

/** Zip `files` under `folder/` (or at the top level when folder is empty). */
export async function zipFolder(files: ReadonlyMap<string, Blob>, folder = ''): Promise<Blob> {
  const parts: Uint8Array[] = [];
  let failure: Error | null = null;
  const zip = new Zip((err, chunk) => {
    if (err) failure = err;
    else parts.push(chunk);
  });
  const prefix = folder ? `${folder.replace(/\/+$/, '')}/` : '';
  for (const [name, blob] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    const entry = /\.(safetensors|bin|onnx|data)$/.test(name) ? new ZipPassThrough(prefix + name) : new ZipDeflate(prefix + name, { level: 6 });
    zip.add(entry);
    if (blob.size === 0) entry.push(new Uint8Array(0), true);
    for (let start = 0; start < blob.size; start += SLICE_BYTES) {
      const end = Math.min(blob.size, start + SLICE_BYTES);
      entry.push(new Uint8Array(await blob.slice(start, end).arrayBuffer()), end === blob.size);
    }
    if (failure) throw failure;
  }
  zip.end();
  if (failure) throw failure;
  return new Blob(parts as BlobPart[], { type: 'application/zip' });
}
