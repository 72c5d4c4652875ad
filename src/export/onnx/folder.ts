// A checkpoint as the folder transformers.js opens with AutoModelForCausalLM.from_pretrained(dir) and
// pipeline('text-generation', dir): onnx/model.onnx (fp32) and onnx/model_fp16.onnx (+ their external data above
// 2 GiB), config.json (the checkpoint's, plus "transformers.js_config" declaring the external data files),
// generation_config.json and the tokenizer files, copied as they are. Streamed into a CheckpointSink one weight at
// a time; pure TypeScript (the CLI's folder in Node, the studio's folder or zip in the browser).

import { GradPruneError } from '../../errors';
import { expectedTensors } from '../../model/checkpoint';
import type { ModelConfig } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import { configText } from '../config';
import { COPIED_FILE, type ExportSource } from '../checkpoint';
import { withSink, writeBlobFile, writeBytesFile, type CheckpointSink, type WrittenFiles } from '../sink';
import { WRITE_CHUNK_BYTES, type ExportStats } from '../weights';
import { buildDecoderGraph, ONNX_OPSET, type OnnxPrecision } from './decoder';
import { onnxFileSizes, streamOnnxFile } from './stream';

/** The model files transformers.js looks for, by dtype ("fp32" → onnx/model.onnx, "fp16" → onnx/model_fp16.onnx). */
export const ONNX_MODEL_FILES: Record<OnnxPrecision, string> = { fp32: 'onnx/model.onnx', fp16: 'onnx/model_fp16.onnx' };

export interface OnnxExportOptions {
  /** Which model files to write (default both). */
  precisions?: readonly OnnxPrecision[];
  /** Weights go to external data above this model size (default: protobuf's 2 GiB limit). Tests force a tiny one. */
  maxInlineBytes?: number;
  /** The largest external data file (a larger tensor gets a file of its own). */
  maxChunkBytes?: number;
  /** The largest piece of a weight read at once (default WRITE_CHUNK_BYTES). Tests force a tiny one. */
  pieceBytes?: number;
  stats?: ExportStats;
}

const F16_EXPONENT = 0x7c00;

/**
 * Refuse, before any work, a model the ONNX graph cannot express, naming config.json and the reason. The graph
 * applies one attention pattern to every layer, so per-layer sliding windows (Qwen's max_window_layers) are out.
 */
export function checkOnnxExportable(config: ModelConfig, configFile = 'config.json'): void {
  const types = config.raw.layer_types;
  if (Array.isArray(types) && new Set(types).size > 1) {
    throw new GradPruneError('input', `${configFile}: "layer_types" mixes ${[...new Set(types)].join(' and ')} layers; the ONNX export writes one attention pattern for every layer.`, {
      subject: configFile,
      hint: 'Export this model as Hugging Face safetensors or GGUF instead.',
    });
  }
}

/**
 * A weight's bytes as the graph stores it — f32, or f16 rounded once (refusing values f16 cannot hold) — in row
 * slices of at most `pieceBytes`: a 150k-vocabulary embedding (2.5 GB in fp32) is never one array.
 */
export async function* onnxWeightPieces(store: TensorStore, name: string, precision: OnnxPrecision, pieceBytes = WRITE_CHUNK_BYTES): AsyncGenerator<Uint8Array> {
  const { shape } = store.info(name);
  const element = precision === 'fp32' ? 4 : 2;
  const rows = shape.length === 2 ? shape[0] : 1;
  const rowElements = shape.length === 2 ? shape[1] : shape.reduce((a, b) => a * b, 1);
  const step = Math.max(1, Math.floor(pieceBytes / (rowElements * element)));
  for (let r0 = 0; r0 < rows; r0 += step) {
    const r1 = Math.min(rows, r0 + step);
    const values = shape.length === 2 ? await store.readRows(name, r0, r1, precision === 'fp32' ? 'f32' : 'f16') : precision === 'fp32' ? await store.readF32(name) : await store.readF16Bits(name);
    if (precision === 'fp16') refuseF16Overflow(name, values as Uint16Array, r0 * rowElements);
    yield new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }
}

function refuseF16Overflow(name: string, bits: Uint16Array, firstElement: number): void {
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & F16_EXPONENT) === F16_EXPONENT) {
      throw new GradPruneError('tensor', `Tensor "${name}" holds a value that float16 cannot represent (beyond ±65504, or not finite) at element ${firstElement + i}.`, {
        subject: name,
        hint: 'Use the fp32 ONNX model (onnx/model.onnx) for this checkpoint: export with --dtype fp32.',
      });
    }
  }
}

/** The bytes of one model file's weights (what the download weighs, before the few KB of graph). */
export function onnxWeightsBytes(config: ModelConfig, precision: OnnxPrecision): number {
  const element = precision === 'fp32' ? 4 : 2;
  return expectedTensors(config).reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1) * element, 0);
}

/** config.json for transformers.js: the checkpoint's, and the external data chunks of each model file that has some. */
export function onnxConfig(raw: Readonly<Record<string, unknown>>, externalChunks: ReadonlyMap<string, number>, precisions: readonly OnnxPrecision[] = ['fp32', 'fp16']): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  const previous = raw['transformers.js_config'];
  const rest: Record<string, unknown> = typeof previous === 'object' && previous !== null && !Array.isArray(previous) ? { ...previous } : {};
  delete rest.use_external_data_format; // the input's chunks describe its own files, not these
  delete rest.dtype;
  // Without an fp32 file, transformers.js's default (fp32 on cpu / webgpu) must be told to load model_fp16.onnx.
  if (!precisions.includes('fp32')) rest.dtype = 'fp16';
  const external = Object.fromEntries([...externalChunks].filter(([, n]) => n > 0));
  const config = Object.keys(external).length ? { ...rest, use_external_data_format: external } : rest;
  if (Object.keys(config).length) out['transformers.js_config'] = config;
  else delete out['transformers.js_config'];
  return out;
}

/** Everything the folder holds, laid out before any weight is read: the model files' graphs and sizes, config.json, the copied files. */
function planOnnxFolder(source: ExportSource, opts: OnnxExportOptions) {
  checkOnnxExportable(source.config);
  const precisions = opts.precisions ?? ['fp32', 'fp16'];
  const fileOpts = { opset: ONNX_OPSET, maxInlineBytes: opts.maxInlineBytes, maxChunkBytes: opts.maxChunkBytes, stats: opts.stats };
  const models = precisions.map((precision) => {
    const file = ONNX_MODEL_FILES[precision];
    const graph = buildDecoderGraph(source.config, precision, (name, p) => onnxWeightPieces(source.store, name, p, opts.pieceBytes));
    return { file, graph, sizes: onnxFileSizes(file, graph, fileOpts) };
  });
  const chunks = new Map(models.map((m) => [m.file.split('/').pop()!, m.sizes.externalChunks]));
  const config = new TextEncoder().encode(configText(onnxConfig(source.config.raw, chunks, precisions)));
  const copied = [...source.files].filter(([name]) => COPIED_FILE.test(name));
  const files: WrittenFiles = new Map([...models.flatMap((m) => [...m.sizes.files]), ['config.json', config.byteLength], ...copied.map(([name, blob]) => [name, blob.size] as const)]);
  return { models, fileOpts, config, copied, files };
}

/** The files the folder will hold, in writing order, with their exact sizes: what the download shows beforehand. */
export const onnxFolderFiles = (source: ExportSource, opts: OnnxExportOptions = {}): WrittenFiles => planOnnxFolder(source, opts).files;

/**
 * Write the transformers.js folder of `source` into `sink` and commit it (abort on failure): the model files
 * weight by weight, then config.json, then the copied tokenizer and generation files.
 */
export async function exportOnnxFolder(sink: CheckpointSink, source: ExportSource, opts: OnnxExportOptions = {}): Promise<WrittenFiles> {
  const plan = planOnnxFolder(source, opts);
  return withSink(sink, async () => {
    const written: WrittenFiles = new Map();
    for (const m of plan.models) {
      for (const [name, size] of (await streamOnnxFile(sink, m.file, m.graph, plan.fileOpts)).files) written.set(name, size);
    }
    written.set('config.json', await writeBytesFile(sink, 'config.json', plan.config));
    for (const [name, blob] of plan.copied) written.set(name, await writeBlobFile(sink, name, blob));
    return written;
  });
}
