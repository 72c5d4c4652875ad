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

async function checkedBytes(w: StreamedInitializer): Promise<Uint8Array> {
  const data = await w.bytes();
  if (data.byteLength !== w.byteLength) {
    throw new GradPruneError('tensor', `Cannot export "${w.name}": ${data.byteLength} bytes for [${w.dims.join(', ')}].`, { subject: w.name });
  }
  return data;
}

async function writeInPieces(file: { write(b: Uint8Array): Promise<void> }, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength; off += WRITE_CHUNK_BYTES) await file.write(data.subarray(off, Math.min(data.byteLength, off + WRITE_CHUNK_BYTES)));
}

/** Write the model `fileName` (a path in the sink, e.g. "onnx/model.onnx") and its external data, if any. */
export async function streamOnnxFile(sink: CheckpointSink, fileName: string, graph: GraphBuilder, opts: OnnxFileOptions): Promise<OnnxFileResult> {
  const stats = opts.stats;
  const small = encode(GraphProto, {
    node: graph.nodes,
    name: graph.name,
    initializer: graph.constants.map((c) => ({ name: c.name, dataType: c.dataType, dims: c.dims, rawData: c.rawData })),
    input: graph.inputs,
    output: graph.outputs,
  });
  const header = encode(ModelProto, { irVersion: IR_VERSION, producerName: PRODUCER_NAME, producerVersion: '1', opsetImport: [{ domain: '', version: opts.opset }] });
  const meta = (w: StreamedInitializer, external?: Record<string, unknown>) => encode(TensorProto, { name: w.name, dataType: w.dataType, dims: w.dims, ...external });
  const inlineParts = graph.weights.map((w) => {
    const tensorHead = concat([meta(w), fieldHeader(TENSOR_RAW_DATA_FIELD, w.byteLength)]);
    return { prefix: concat([fieldHeader(GRAPH_INITIALIZER_FIELD, tensorHead.byteLength + w.byteLength), tensorHead]), dataBytes: w.byteLength };
  });
  const inlineGraphBytes = small.byteLength + inlineParts.reduce((s, p) => s + p.prefix.byteLength + p.dataBytes, 0);
  const inlineTotal = header.byteLength + fieldHeader(MODEL_GRAPH_FIELD, inlineGraphBytes).byteLength + inlineGraphBytes;
  const files: WrittenFiles = new Map();

  if (inlineTotal <= (opts.maxInlineBytes ?? PROTOBUF_LIMIT_BYTES)) {
    const file = await sink.createFile(fileName, inlineTotal);
    await file.write(concat([header, fieldHeader(MODEL_GRAPH_FIELD, inlineGraphBytes), small]));
    for (const [i, w] of graph.weights.entries()) {
      await file.write(inlineParts[i].prefix);
      const data = await checkedBytes(w);
      note(stats, data.byteLength);
      await writeInPieces(file, data);
    }
    await file.close();
    files.set(fileName, inlineTotal);
    return { files, externalChunks: 0 };
  }

  const baseName = fileName.split('/').pop()!;
  const placement = planExternal(graph.weights, opts.maxChunkBytes ?? DEFAULT_EXTERNAL_CHUNK_BYTES);
  const chunks = placement.length ? placement[placement.length - 1].chunk + 1 : 0;
  for (let c = 0; c < chunks; c++) {
    const name = fileName.replace(/[^/]+$/, externalChunkName(baseName, c));
    const file = await sink.createFile(name);
    let at = 0;
    for (const [i, w] of graph.weights.entries()) {
      if (placement[i].chunk !== c) continue;
      if (placement[i].offset > at) await file.write(new Uint8Array(placement[i].offset - at));
      const data = await checkedBytes(w);
      note(stats, data.byteLength);
      await writeInPieces(file, data);
      at = placement[i].offset + data.byteLength;
    }
    await file.close();
    files.set(name, at);
  }
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
  const file = await sink.createFile(fileName, model.byteLength);
  await file.write(model);
  await file.close();
  files.set(fileName, model.byteLength);
  return { files, externalChunks: chunks };
}

function note(stats: ExportStats | undefined, bytes: number): void {
  if (!stats) return;
  stats.peakHeldBytes = Math.max(stats.peakHeldBytes, bytes);
  stats.largestTensorBytes = Math.max(stats.largestTensorBytes, bytes);
  stats.bytesWritten += bytes;
}
