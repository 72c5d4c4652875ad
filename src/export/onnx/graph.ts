// A small builder for an ONNX graph: nodes named in order, constants held in memory (shapes, scalars, RoPE
// frequencies), and weights that are only described (name, type, dims, a bytes() producer) so the writer can
// stream them. One builder per exported file (fp32 / fp16); ./decoder.ts fills it.

import { AttributeType, DataType, valueInfo, type AttributeValue, type DataTypeId, type OnnxNode, type OnnxValueInfo } from './proto';

/** A graph initializer whose bytes are produced, in pieces, when the writer reaches it (one weight at a time). */
export interface StreamedInitializer {
  name: string;
  dataType: DataTypeId;
  dims: number[];
  byteLength: number;
  pieces(): AsyncIterable<Uint8Array>;
}

/** An attribute value as written in a node() call: a number is INT unless it is not an integer (then FLOAT). */
export type Attr = number | number[] | { float: number } | { floats: number[] } | { tensor: Record<string, unknown> };

export const ELEMENT_BYTES: Record<DataTypeId, number> = {
  [DataType.FLOAT]: 4,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
};

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

function attribute(name: string, value: Attr): AttributeValue {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  return { name, type: AttributeType.TENSOR, t: value.tensor };
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly inputs: OnnxValueInfo[] = [];
  readonly outputs: OnnxValueInfo[] = [];
  /** Small tensors encoded whole (raw_data inline). */
  readonly constants: Array<{ name: string; dataType: DataTypeId; dims: number[]; rawData: Uint8Array }> = [];
  readonly weights: StreamedInitializer[] = [];
  private counter = 0;
  private readonly constantNames = new Map<string, string>();

  constructor(readonly name: string) {}

  input(name: string, elemType: DataTypeId, dims: Array<number | string>): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declare `value` (a node's output) as the graph output `name` (through an Identity when the names differ). */
  output(value: string, name: string, elemType: DataTypeId, dims: Array<number | string>): void {
    if (value !== name) this.node('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A node; returns its (first) output's name. `out` names the output, else one is made from the op type. */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const id = this.counter++;
    const output = out ?? `/${opType}_${id}`;
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: `/${opType}_node_${id}`,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** An int64 constant (deduplicated by value): shapes, axes, indices. */
  int64(values: readonly number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const known = this.constantNames.get(key);
    if (known) return known;
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    return this.remember(key, { dataType: DataType.INT64, dims, rawData: raw });
  }

  /** A float32 constant (scalars: dims []). */
  float32(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const f = Float32Array.from(values as ArrayLike<number>);
    const key = `f32:${dims.join('x')}:${Array.from(f).join(',')}`;
    const known = this.constantNames.get(key);
    if (known) return known;
    return this.remember(key, { dataType: DataType.FLOAT, dims, rawData: new Uint8Array(f.buffer) });
  }

  private remember(key: string, c: { dataType: DataTypeId; dims: number[]; rawData: Uint8Array }): string {
    if (numel(c.dims) * ELEMENT_BYTES[c.dataType] !== c.rawData.byteLength) throw new Error(`constant ${key}: bytes do not match dims`);
    const name = `/const_${this.constants.length}`;
    this.constants.push({ name, ...c });
    this.constantNames.set(key, name);
    return name;
  }

  /** A weight initializer, written by streaming `pieces()` (together dims × element size bytes). */
  weight(name: string, dataType: DataTypeId, dims: number[], pieces: () => AsyncIterable<Uint8Array>): string {
    this.weights.push({ name, dataType, dims, byteLength: numel(dims) * ELEMENT_BYTES[dataType], pieces });
    return name;
  }
}
