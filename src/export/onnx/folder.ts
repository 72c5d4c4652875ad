// A checkpoint as the folder transformers.js opens with AutoModelForCausalLM.from_pretrained(dir) and
// pipeline('text-generation', dir): onnx/model.onnx (fp32) and onnx/model_fp16.onnx (+ their external data above
// 2 GiB), config.json (the checkpoint's, plus "transformers.js_config" declaring the external data files),
// generation_config.json and the tokenizer files, copied as they are. Streamed into a CheckpointSink one weight at
// a time; pure TypeScript (the CLI's folder in Node, the studio's folder or zip in the browser).

import { GradPruneError } from '../../errors';
import { expectedTensors } from '../../model/checkpoint';
import type { ModelConfig } from '../../model/config';
import { fromFloat32 } from '../../model/dtype';
import type { TensorStore } from '../../model/safetensors';
import { configText } from '../config';
import { COPIED_FILE, type ExportSource } from '../checkpoint';
import { withSink, writeBlobFile, writeBytesFile, type CheckpointSink, type WrittenFiles } from '../sink';
import { storedTensorBytes, type ExportStats } from '../weights';
import { buildDecoderGraph, ONNX_OPSET, type OnnxPrecision } from './decoder';
import { streamOnnxFile } from './stream';

/** The model files transformers.js looks for, by dtype ("fp32" → onnx/model.onnx, "fp16" → onnx/model_fp16.onnx). */
export const ONNX_MODEL_FILES: Record<OnnxPrecision, string> = { fp32: 'onnx/model.onnx', fp16: 'onnx/model_fp16.onnx' };

export interface OnnxExportOptions {
  /** Which model files to write (default both). */
  precisions?: readonly OnnxPrecision[];
  /** Weights go to external data above this model size (default: protobuf's 2 GiB limit). Tests force a tiny one. */
  maxInlineBytes?: number;
  /** The largest external data file. */
  maxChunkBytes?: number;
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

/** A weight's bytes as the graph stores it: f32, or f16 rounded once (refusing values f16 cannot hold). */
export async function onnxWeightBytes(store: TensorStore, name: string, precision: OnnxPrecision): Promise<Uint8Array> {
  if (precision === 'fp32') return storedTensorBytes(store, name, 'F32');
  const bytes = store.info(name).dtype === 'F16' ? await store.readBytes(name) : fromFloat32(await store.readF32(name), 'F16');
  const bits = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & F16_EXPONENT) === F16_EXPONENT) {
      throw new GradPruneError('tensor', `Tensor "${name}" holds a value that float16 cannot represent (beyond ±65504, or not finite) at element ${i}.`, {
        subject: name,
        hint: 'Use the fp32 ONNX model (onnx/model.onnx) for this checkpoint: export with --dtype fp32.',
      });
    }
  }
  return bytes;
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

/**
 * Write the transformers.js folder of `source` into `sink` and commit it (abort on failure): the model files
 * weight by weight, then config.json, then the copied tokenizer and generation files.
 */
export async function exportOnnxFolder(sink: CheckpointSink, source: ExportSource, opts: OnnxExportOptions = {}): Promise<WrittenFiles> {
  checkOnnxExportable(source.config);
  const precisions = opts.precisions ?? ['fp32', 'fp16'];
  return withSink(sink, async () => {
    const written: WrittenFiles = new Map();
    const chunks = new Map<string, number>();
    for (const precision of precisions) {
      const file = ONNX_MODEL_FILES[precision];
      const graph = buildDecoderGraph(source.config, precision, (name, p) => onnxWeightBytes(source.store, name, p));
      const result = await streamOnnxFile(sink, file, graph, { opset: ONNX_OPSET, maxInlineBytes: opts.maxInlineBytes, maxChunkBytes: opts.maxChunkBytes, stats: opts.stats });
      for (const [name, size] of result.files) written.set(name, size);
      chunks.set(file.split('/').pop()!, result.externalChunks);
    }
    const config = new TextEncoder().encode(configText(onnxConfig(source.config.raw, chunks, precisions)));
    written.set('config.json', await writeBytesFile(sink, 'config.json', config));
    for (const [name, blob] of source.files) {
      if (COPIED_FILE.test(name)) written.set(name, await writeBlobFile(sink, name, blob));
    }
    return written;
  });
}
