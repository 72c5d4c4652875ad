// One ONNX model file (a GraphBuilder) streamed into a CheckpointSink, weight by weight.
//
// The ModelProto is framed by hand at the two levels that hold weights (ModelProto.graph, GraphProto.initializer,
// and a TensorProto's raw_data): every length is known from the builder before any weight is read, so the file is
// written front to back with one weight's bytes in hand at a time. The small parts (nodes, inputs, outputs,
// constants, each tensor's name/dims/type) are encoded by ./proto.ts.
//
// Protobuf messages cannot exceed 2 GiB, so above `maxInlineBytes` the weights go to external data files beside the
// model, as onnx.save_model(..., save_as_external_data=True) writes them and transformers.js loads them:
// `<file>_data`, `<file>_data_1`, … (each at most `maxChunkBytes`; a tensor is never split), each tensor at a
// 4096-byte aligned offset, and the initializer says where (data_location EXTERNAL; location, offset, length).

import { GradPruneError } from '../../errors';
import type { CheckpointSink, WrittenFiles } from '../sink';
import { WRITE_CHUNK_BYTES, type ExportStats } from '../weights';
import type { GraphBuilder, StreamedInitializer } from './graph';
import { fieldHeader, GRAPH_INITIALIZER_FIELD, GraphProto, MODEL_GRAPH_FIELD, ModelProto, TENSOR_RAW_DATA_FIELD, TensorProto, type MessageEncoder } from './proto';

/** Protobuf's hard limit for one message (the whole .onnx file when weights are inline). */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;
/** One external data file holds at most this much (browsers cap a single ArrayBuffer near 2 GiB). */
export const DEFAULT_EXTERNAL_CHUNK_BYTES = 2 ** 31 - 1;
const EXTERNAL_ALIGN = 4096;
const IR_VERSION = 8;
export const PRODUCER_NAME = 'gradprune';

export interface OnnxFileOptions {
  /** Weights go to external data files when the inline model would be larger than this (default: protobuf's 2 GiB). */
  maxInlineBytes?: number;
  /** The largest external data file (default just under 2 GiB). */
  maxChunkBytes?: number;
  stats?: ExportStats;
  opset: number;
}

/** What was written for one model file: the files (in order) and how many external data chunks it has (0: inline). */
export interface OnnxFileResult {
  files: WrittenFiles;
  externalChunks: number;
}

const encode = (type: MessageEncoder, value: Record<string, unknown>): Uint8Array => type.encode(value);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Where each weight goes when written as external data: its chunk, its offset in that chunk. */
function planExternal(weights: readonly StreamedInitializer[], maxChunkBytes: number): Array<{ chunk: number; offset: number }> {
  const placed: Array<{ chunk: number; offset: number }> = [];
  let chunk = 0;
  let size = 0;
  for (const w of weights) {
    let offset = Math.ceil(size / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
    if (size > 0 && offset + w.byteLength > maxChunkBytes) {
      chunk++;
      offset = 0;
    }
    placed.push({ chunk, offset });
    size = offset + w.byteLength;
  }
  return placed;
}

export const externalChunkName = (fileName: string, chunk: number): string => `${fileName}_data${chunk === 0 ? '' : `_${chunk}`}`;

/** Write one weight piece by piece (each at most WRITE_CHUNK_BYTES), refusing pieces that do not add up to its size. */
async function writeWeight(file: { write(b: Uint8Array): Promise<void> }, w: StreamedInitializer, stats: ExportStats | undefined): Promise<void> {
  let written = 0;
  for await (const piece of w.pieces()) {
    if (written + piece.byteLength > w.byteLength) break;
    note(stats, piece.byteLength);
    for (let off = 0; off < piece.byteLength; off += WRITE_CHUNK_BYTES) await file.write(piece.subarray(off, Math.min(piece.byteLength, off + WRITE_CHUNK_BYTES)));
    written += piece.byteLength;
  }
  if (written !== w.byteLength) {
    throw new GradPruneError('tensor', `Cannot export "${w.name}": its data does not fill [${w.dims.join(', ')}] (${w.byteLength} bytes).`, { subject: w.name });
  }
  if (stats) stats.largestTensorBytes = Math.max(stats.largestTensorBytes, w.byteLength);
}

/**
 * Where everything of one model file goes, from the builder alone (no weight read): inline (one file) when it fits
 * `maxInlineBytes`, else the graph plus external data chunks. Its sizes are what the download shows beforehand.
 */
type OnnxFileLayout =
  | { kind: 'inline'; head: Uint8Array; weightPrefixes: Uint8Array[]; total: number }
  | { kind: 'external'; placement: Array<{ chunk: number; offset: number }>; chunkNames: string[]; chunkBytes: number[]; model: Uint8Array };

function layoutOnnxFile(fileName: string, graph: GraphBuilder, opts: OnnxFileOptions): OnnxFileLayout {
  const small = encode(GraphProto, {
    node: graph.nodes,
    name: graph.name,
    initializer: graph.constants.map((c) => ({ name: c.name, dataType: c.dataType, dims: c.dims, rawData: c.rawData })),
    input: graph.inputs,
    output: graph.outputs,
  });
  const header = encode(ModelProto, { irVersion: IR_VERSION, producerName: PRODUCER_NAME, producerVersion: '1', opsetImport: [{ domain: '', version: opts.opset }] });
  const meta = (w: StreamedInitializer, external?: Record<string, unknown>) => encode(TensorProto, { name: w.name, dataType: w.dataType, dims: w.dims, ...external });
  const weightPrefixes = graph.weights.map((w) => {
    const tensorHead = concat([meta(w), fieldHeader(TENSOR_RAW_DATA_FIELD, w.byteLength)]);
    return concat([fieldHeader(GRAPH_INITIALIZER_FIELD, tensorHead.byteLength + w.byteLength), tensorHead]);
  });
  const inlineGraphBytes = small.byteLength + graph.weights.reduce((s, w, i) => s + weightPrefixes[i].byteLength + w.byteLength, 0);
  const head = concat([header, fieldHeader(MODEL_GRAPH_FIELD, inlineGraphBytes), small]);
  const total = head.byteLength - small.byteLength + inlineGraphBytes;
  if (total <= (opts.maxInlineBytes ?? PROTOBUF_LIMIT_BYTES)) return { kind: 'inline', head, weightPrefixes, total };

  const baseName = fileName.split('/').pop()!;
  const placement = planExternal(graph.weights, opts.maxChunkBytes ?? DEFAULT_EXTERNAL_CHUNK_BYTES);
  const chunks = placement.length ? placement[placement.length - 1].chunk + 1 : 0;
  const chunkNames = Array.from({ length: chunks }, (_, c) => fileName.replace(/[^/]+$/, externalChunkName(baseName, c)));
  const chunkBytes = new Array<number>(chunks).fill(0);
  graph.weights.forEach((w, i) => (chunkBytes[placement[i].chunk] = placement[i].offset + w.byteLength));
  const externalParts = graph.weights.map((w, i) => {
    const tensor = meta(w, {
      dataLocation: 1,
      externalData: [
        { key: 'location', value: externalChunkName(baseName, placement[i].chunk) },
        { key: 'offset', value: String(placement[i].offset) },
        { key: 'length', value: String(w.byteLength) },
      ],
    });
    return concat([fieldHeader(GRAPH_INITIALIZER_FIELD, tensor.byteLength), tensor]);
  });
  const graphBytes = concat([small, ...externalParts]);
  const model = concat([header, fieldHeader(MODEL_GRAPH_FIELD, graphBytes.byteLength), graphBytes]);
  if (model.byteLength > PROTOBUF_LIMIT_BYTES) throw new Error(`${fileName}: the graph without its weights is ${model.byteLength} bytes, over protobuf's limit`);
  return { kind: 'external', placement, chunkNames, chunkBytes, model };
}

/** The files one model file makes (in writing order) and their sizes, before anything is read or written. */
export const onnxFileSizes = (fileName: string, graph: GraphBuilder, opts: OnnxFileOptions): OnnxFileResult => sizesOf(fileName, layoutOnnxFile(fileName, graph, opts));

function sizesOf(fileName: string, layout: OnnxFileLayout): OnnxFileResult {
  if (layout.kind === 'inline') return { files: new Map([[fileName, layout.total]]), externalChunks: 0 };
  const files: WrittenFiles = new Map(layout.chunkNames.map((name, c) => [name, layout.chunkBytes[c]]));
  files.set(fileName, layout.model.byteLength);
  return { files, externalChunks: layout.chunkNames.length };
}

/**
 * Write the model `fileName` (a path in the sink, e.g. "onnx/model.onnx") and its external data, if any. A tensor
 * larger than a chunk gets a chunk of its own (a tensor is never split across files); every tensor is streamed in
 * pieces, so none needs to fit one array.
 */
export async function streamOnnxFile(sink: CheckpointSink, fileName: string, graph: GraphBuilder, opts: OnnxFileOptions): Promise<OnnxFileResult> {
  const layout = layoutOnnxFile(fileName, graph, opts);
  const sizes = sizesOf(fileName, layout);
  if (layout.kind === 'inline') {
    const file = await sink.createFile(fileName, layout.total);
    await file.write(layout.head);
    for (const [i, w] of graph.weights.entries()) {
      await file.write(layout.weightPrefixes[i]);
      await writeWeight(file, w, opts.stats);
    }
    await file.close();
    return sizes;
  }
  for (const [c, name] of layout.chunkNames.entries()) {
    const file = await sink.createFile(name);
    let at = 0;
    for (const [i, w] of graph.weights.entries()) {
      if (layout.placement[i].chunk !== c) continue;
      if (layout.placement[i].offset > at) await file.write(new Uint8Array(layout.placement[i].offset - at));
      await writeWeight(file, w, opts.stats);
      at = layout.placement[i].offset + w.byteLength;
    }
    await file.close();
  }
  const file = await sink.createFile(fileName, layout.model.byteLength);
  await file.write(layout.model);
  await file.close();
  return sizes;
}

function note(stats: ExportStats | undefined, bytes: number): void {
  if (!stats) return;
  stats.peakHeldBytes = Math.max(stats.peakHeldBytes, bytes);
  stats.bytesWritten += bytes;
}
