// Node only (the CLI): a checkpoint written as a transformers.js folder, streamed into `<target>.tmp-…` beside the
// target and renamed into place when complete (an existing folder replaced only with overwrite; ../node-sink.ts).

import { formatBytes } from '../../format';
import type { ExportSource } from '../checkpoint';
import { FolderSink } from '../node-sink';
import type { OnnxPrecision } from './decoder';
import { checkOnnxExportable, exportOnnxFolder, ONNX_MODEL_FILES, onnxWeightsBytes } from './folder';

/** --dtype for ONNX: which model files the folder holds (the first is the default). */
export const ONNX_DTYPES = ['fp32+fp16', 'fp32', 'fp16'] as const;

export interface OnnxFolderJob {
  ckpt: ExportSource;
  /** The checked, resolved output folder. */
  target: string;
  /** --out as typed, for messages. */
  given: string;
  dtype: string;
  overwrite: boolean;
  io: { err(text: string): void };
}

export const onnxPrecisions = (dtype: string): OnnxPrecision[] => {
  if (!(ONNX_DTYPES as readonly string[]).includes(dtype)) throw new Error(`ONNX dtype ${dtype} is not one of ${ONNX_DTYPES.join(', ')}`);
  return dtype.split('+') as OnnxPrecision[];
};

export async function writeOnnxFolder(job: OnnxFolderJob): Promise<void> {
  const precisions = onnxPrecisions(job.dtype);
  checkOnnxExportable(job.ckpt.config);
  const sizes = precisions.map((p) => `${ONNX_MODEL_FILES[p]} ${formatBytes(onnxWeightsBytes(job.ckpt.config, p))}`);
  job.io.err(`onnx  ${job.ckpt.config.architecture}, ${job.ckpt.config.numLayers} layers, opset 17: ${sizes.join(', ')}`);
  const sink = new FolderSink(job.target, { overwrite: job.overwrite, given: job.given, option: '--out' });
  const written = await exportOnnxFolder(sink, job.ckpt, { precisions });
  for (const note of sink.notes) job.io.err(note);
  job.io.err(`wrote ${written.size} files to ${job.given}: ${[...written.keys()].join(', ')}`);
}
