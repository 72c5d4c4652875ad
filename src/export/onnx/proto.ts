// The subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto, IR version 8) that a decoder graph needs, as a
// protobufjs reflection descriptor, and the encoders built from it. Field numbers are onnx.proto's own: a reader
// (onnxruntime, onnx.load) sees an ordinary ModelProto.
//
// Only small messages go through protobufjs (nodes, value infos, a tensor's name/dims/type). Weight bytes never do:
// ./stream.ts frames them by hand (tag + length + bytes) so that an 8B model's weights stream tensor by tensor.

import protobuf from 'protobufjs/light.js';

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataTypeId = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

const descriptor = {
  nested: {
    onnx: {
      nested: {
        StringStringEntryProto: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
              fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } },
            },
          },
        },
        TypeProto: {
          fields: { tensorType: { type: 'Tensor', id: 1 } },
          nested: { Tensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } } },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
            externalData: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            dataLocation: { type: 'int32', id: 14 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            type: { type: 'int32', id: 20 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            domain: { type: 'string', id: 7 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
          },
        },
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            producerName: { type: 'string', id: 2 },
            producerVersion: { type: 'string', id: 3 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(descriptor);
const message = (name: string) => root.lookupType(`onnx.${name}`);

export const ModelProto = message('ModelProto');
export const GraphProto = message('GraphProto');
export const NodeProto = message('NodeProto');
export const TensorProto = message('TensorProto');
export const ValueInfoProto = message('ValueInfoProto');

/** Field numbers the streaming writer frames by hand. */
export const MODEL_GRAPH_FIELD = 7;
export const GRAPH_INITIALIZER_FIELD = 5;
export const TENSOR_RAW_DATA_FIELD = 9;

export interface AttributeValue {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
  floats?: number[];
  t?: Record<string, unknown>;
}

export interface OnnxNode {
  opType: string;
  input: string[];
  output: string[];
  name: string;
  attribute: AttributeValue[];
  domain?: string;
}

export interface DimSpec {
  dimValue?: number;
  dimParam?: string;
}

export interface OnnxValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: DimSpec[] } } };
}

/** A value info: `dims` mixes fixed sizes and symbolic names ("batch_size"). */
export function valueInfo(name: string, elemType: DataTypeId, dims: Array<number | string>): OnnxValueInfo {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

/** Protobuf's base-128 varint of a non-negative integer below 2^53. */
export function varint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`varint: ${value} is not a non-negative safe integer`);
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** The key and length prefix of a length-delimited field (wire type 2) holding `length` bytes. */
export function fieldHeader(field: number, length: number): Uint8Array {
  const key = varint(field * 8 + 2);
  const len = varint(length);
  const out = new Uint8Array(key.length + len.length);
  out.set(key);
  out.set(len, key.length);
  return out;
}
