// The subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto, IR version 8) that a decoder graph needs, as a
// reflection descriptor in protobufjs's JSON form, and a small encoder driven by it. Field numbers are onnx.proto's
// own: a reader (onnxruntime, onnx.load, protobufjs — the tests decode with it) sees an ordinary ModelProto.
//
// The encoder is ours because protobufjs builds its encoders with `new Function` (and probes `eval("require")`),
// which the studio's Content-Security-Policy forbids in the worker. It writes proto2's unpacked repeated scalars.
// Only small messages go through it (nodes, value infos, a tensor's name/dims/type). Weight bytes never do:
// ./stream.ts frames them by hand (tag + length + bytes) so that an 8B model's weights stream tensor by tensor.

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

type FieldSpec = { type: string; id: number; rule?: string };
type MessageSpec = { fields: Record<string, FieldSpec>; nested?: Record<string, MessageSpec> };

/** Every message by name ("TypeProto.Tensor" for nested ones), for the encoder. */
const messages = new Map<string, MessageSpec>();
(function collect(scope: Record<string, MessageSpec>, prefix: string) {
  for (const [name, spec] of Object.entries(scope)) {
    messages.set(prefix + name, spec);
    if (spec.nested) collect(spec.nested, `${prefix}${name}.`);
  }
})(descriptor.nested.onnx.nested as Record<string, MessageSpec>, '');

/** A field's type name resolved as protobuf does: nested in the message first, then at the package level. */
const resolve = (scope: string, type: string) => (messages.has(`${scope}.${type}`) ? `${scope}.${type}` : type);

function pushVarint(out: number[], value: number | bigint): void {
  let v = BigInt.asUintN(64, BigInt(value)); // negative int32/int64: ten bytes of two's complement, as protobuf does
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

const utf8 = new TextEncoder();

function pushLengthDelimited(out: number[], id: number, bytes: Uint8Array): void {
  pushVarint(out, id * 8 + 2);
  pushVarint(out, bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i++) out.push(bytes[i]);
}

function encodeValue(out: number[], scope: string, f: FieldSpec, value: unknown): void {
  switch (f.type) {
    case 'int32':
    case 'int64':
      pushVarint(out, f.id * 8);
      pushVarint(out, value as number);
      return;
    case 'float': {
      pushVarint(out, f.id * 8 + 5);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setFloat32(0, value as number, true);
      out.push(...b);
      return;
    }
    case 'string':
      return pushLengthDelimited(out, f.id, utf8.encode(value as string));
    case 'bytes':
      return pushLengthDelimited(out, f.id, value as Uint8Array);
    default:
      return pushLengthDelimited(out, f.id, encodeMessage(resolve(scope, f.type), value as Record<string, unknown>));
  }
}

/** A message's bytes: fields in declaration order, absent (undefined) fields left out. */
function encodeMessage(name: string, value: Record<string, unknown>): Uint8Array {
  const spec = messages.get(name);
  if (!spec) throw new Error(`onnx proto: no message ${name}`);
  const out: number[] = [];
  for (const [key, f] of Object.entries(spec.fields)) {
    const v = value[key];
    if (v === undefined || v === null) continue;
    if (f.rule === 'repeated') for (const item of v as unknown[]) encodeValue(out, name, f, item);
    else encodeValue(out, name, f, v);
  }
  for (const key of Object.keys(value)) if (!(key in spec.fields)) throw new Error(`onnx proto: ${name} has no field ${key}`);
  return Uint8Array.from(out);
}

export interface MessageEncoder {
  encode(value: Record<string, unknown>): Uint8Array;
}
const message = (name: string): MessageEncoder => ({ encode: (value) => encodeMessage(name, value) });

/** The descriptor in protobufjs's JSON form (tests decode our files with protobufjs from it). */
export const ONNX_PROTO_DESCRIPTOR = descriptor;

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
