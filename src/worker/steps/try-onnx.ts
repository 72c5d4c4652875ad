// "Try it" for the ONNX export: the pruned model written as the transformers.js folder (fp32, in memory), its
// graph run here by onnxruntime-web (wasm, served from the app's own files), and its greedy continuation shown
// beside our engine's (the Check step's generate), so the person sees the exported file work before leaving.
// In-memory only, so only for models whose fp32 graph fits the in-memory zip limit.

import { GradPruneError } from '../../errors';
import { stopIdsOf } from '../../eval/generation';
import { exportOnnxFolder, ONNX_MODEL_FILES, onnxWeightsBytes } from '../../export/onnx/folder';
import { onnxGreedy } from '../../export/onnx/greedy';
import { IN_MEMORY_ZIP_MAX_BYTES } from '../../export/limits';
import { MemorySink } from '../../export/sink';
import { zipFolder } from '../../export/zip';
import { formatBytes } from '../../format';
import type { RequestOf, ResultBody } from '../protocol';
import type { StepContext } from '../session';
import { generate } from './check';

export async function tryOnnx(ctx: StepContext, req: RequestOf<'tryOnnx'>): Promise<ResultBody<'tryOnnx'>> {
  const { session } = ctx;
  const ckpt = session.needPruned().checkpoint;
  const bytes = onnxWeightsBytes(ckpt.config, 'fp32');
  if (bytes > IN_MEMORY_ZIP_MAX_BYTES) {
    throw new GradPruneError('input', `The pruned model's fp32 ONNX graph would take ${formatBytes(bytes)}, more than this tab builds in memory (${formatBytes(IN_MEMORY_ZIP_MAX_BYTES)}).`, {
      subject: 'onnx',
      hint: 'Export it with `gradprune export <pruned-dir> --format onnx` and run it with transformers.js in Node or the browser.',
    });
  }
  const folderName = `${ckpt.name}-onnx`;
  ctx.progress(`Writing ${folderName} (${formatBytes(bytes)})`);
  const sink = new MemorySink();
  await exportOnnxFolder(sink, ckpt, { precisions: ['fp32'] });
  const model = new Uint8Array(await sink.files.get(ONNX_MODEL_FILES.fp32)!.arrayBuffer());

  ctx.progress('Running it with onnxruntime-web');
  const ort = await import('onnxruntime-web/wasm');
  ort.env.wasm.numThreads = 1; // no cross-origin isolation, so no wasm threads
  const onnxSession = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const tokenizer = session.checkpoint.tokenizer;
  const promptIds = tokenizer.encode(req.prompt, { addSpecialTokens: true });
  const started = performance.now();
  let ids: number[];
  try {
    ids = await onnxGreedy(ort, onnxSession, ckpt.config, promptIds, req.maxNewTokens, stopIdsOf(tokenizer, session.checkpoint.config.eosTokenId));
  } finally {
    await onnxSession.release();
  }
  const onnxSeconds = (performance.now() - started) / 1000;
  const onnx = tokenizer.decode(ids, { skipSpecialTokens: true });

  const { prompt, maxNewTokens, type, ...settings } = req; // settings: the job's precision and memory limit
  const [row] = (await generate(ctx, { type: 'generate', prompts: [prompt], maxNewTokens, ...settings })).generations;
  ctx.progress(`Zipping ${folderName}`);
  const zip = await zipFolder(new Map([...sink.files].sort(([a], [b]) => a.localeCompare(b))), folderName);
  return { prompt: row.prompt, onnx, engine: row.pruned, same: onnx === row.pruned, onnxSeconds, modelBytes: model.byteLength, folderName, zip };
}
