// Step 6, GGUF: the pruned model (after a recovery run, the recovered one with its adapter merged: GGUF has no
// separate adapter) as one file for llama.cpp / Ollama / LM Studio, f16 or Q8_0. Its size is known before anything
// is written (ggufSizes: the header is built, no weight read); the file is streamed tensor by tensor into a file
// picked with showSaveFilePicker (written to the browser's swap file and put in place on close), or — small models —
// gathered into a Blob in memory.

import { GradPruneError } from '../../errors';
import { GGUF_DTYPES, ggufChunks, ggufFileBytes, planGguf, type GgufDType } from '../../export/gguf/gguf';
import type { RequestOf, ResultBody } from '../protocol';
import type { StepContext } from '../session';
import { deployedCheckpoint } from './export';

function ggufModel(ctx: StepContext) {
  const ckpt = deployedCheckpoint(ctx);
  return { ckpt, fileName: (dtype: GgufDType) => `${ckpt.name}-${dtype}.gguf` };
}

/** Each GGUF choice's file name and size; `refused` says why none is possible (an inexpressible tokenizer, …). */
export async function ggufSizes(ctx: StepContext, _req: RequestOf<'ggufSizes'>): Promise<ResultBody<'ggufSizes'>> {
  const { ckpt, fileName } = ggufModel(ctx);
  try {
    const options = [];
    for (const dtype of GGUF_DTYPES) options.push({ dtype, fileName: fileName(dtype), bytes: ggufFileBytes(await planGguf(ckpt, dtype)) });
    return { options, refused: null };
  } catch (e) {
    if (e instanceof GradPruneError) return { options: [], refused: e.message };
    throw e;
  }
}

export async function exportGguf(ctx: StepContext, { dtype, target = { kind: 'memory' } }: RequestOf<'exportGguf'>): Promise<ResultBody<'exportGguf'>> {
  const { ckpt, fileName } = ggufModel(ctx);
  const plan = await planGguf(ckpt, dtype);
  const name = fileName(dtype);
  const total = ggufFileBytes(plan);
  let done = 0;
  const progress = (bytes: number) => {
    done += bytes;
    ctx.progress(`Writing ${name}`, done / total);
  };
  if (target.kind === 'memory') {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    for await (const chunk of ggufChunks(plan)) {
      parts.push(chunk as Uint8Array<ArrayBuffer>);
      progress(chunk.byteLength);
    }
    return { fileName: name, dtype, blob: new Blob(parts) };
  }
  const writable = await target.handle.createWritable();
  try {
    for await (const chunk of ggufChunks(plan)) {
      await writable.write(chunk as Uint8Array<ArrayBuffer>);
      progress(chunk.byteLength);
    }
    await writable.close();
  } catch (e) {
    await writable.abort().catch(() => undefined);
    throw e;
  }
  return { fileName: name, dtype, blob: new Blob([]), savedTo: target.handle.name };
}
