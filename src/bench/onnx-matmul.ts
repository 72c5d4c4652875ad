// A one-node ONNX model, Y = X · Wt, hand-encoded as protobuf (no model file, no ONNX tooling): the same
// multiplication as linearForward's out = inp·Wᵀ with the weight W (out, in) stored as the initializer Wt (in, out),
// which is how PyTorch exports nn.Linear. Field numbers are onnx.proto3's (ModelProto, GraphProto, NodeProto,
// TensorProto, ValueInfoProto, TypeProto.Tensor, TensorShapeProto).

const ONNX_FLOAT = 1;
const IR_VERSION = 8;
const OPSET = 13;

/** Protobuf varint (values here stay below 2^53). */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

type Bytes = Uint8Array | number[];

const concat = (parts: Bytes[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Wire type 0 (varint) field. */
const intField = (field: number, value: number): number[] => [...varint(field << 3), ...varint(value)];
/** Wire type 2 (length-delimited) field: a string, bytes or an embedded message. */
const bytesField = (field: number, value: Bytes | string): Uint8Array => {
  const data = typeof value === 'string' ? new TextEncoder().encode(value) : value;
  return concat([varint((field << 3) | 2), varint(data.length), data]);
};

function tensorValueInfo(name: string, dims: readonly number[]): Uint8Array {
  const shape = concat(dims.map((d) => bytesField(1, intField(1, d)))); // TensorShapeProto.dim { dim_value }
  const tensorType = concat([intField(1, ONNX_FLOAT), bytesField(2, shape)]); // elem_type, shape
  return concat([bytesField(1, name), bytesField(2, bytesField(1, tensorType))]); // name, type { tensor_type }
}

/**
 * The model bytes for Y (N, out) = X (N, in) · Wt (in, out). `W` is the linear weight (out, in), row-major; it is
 * transposed into the initializer.
 */
export function matmulModel(N: number, inFeatures: number, outFeatures: number, W: Float32Array): Uint8Array {
  if (W.length !== inFeatures * outFeatures) throw new Error(`matmulModel: W has ${W.length} values, expected ${outFeatures}×${inFeatures}`);
  const Wt = new Float32Array(inFeatures * outFeatures); // (in, out)
  for (let o = 0; o < outFeatures; o++) for (let i = 0; i < inFeatures; i++) Wt[i * outFeatures + o] = W[o * inFeatures + i];
  const initializer = concat([
    intField(1, inFeatures),
    intField(1, outFeatures),
    intField(2, ONNX_FLOAT),
    bytesField(8, 'Wt'),
    bytesField(9, new Uint8Array(Wt.buffer, Wt.byteOffset, Wt.byteLength)),
  ]);
  const node = concat([bytesField(1, 'X'), bytesField(1, 'Wt'), bytesField(2, 'Y'), bytesField(3, 'matmul'), bytesField(4, 'MatMul')]);
  const graph = concat([
    bytesField(1, node),
    bytesField(2, 'linear'),
    bytesField(5, initializer),
    bytesField(11, tensorValueInfo('X', [N, inFeatures])),
    bytesField(12, tensorValueInfo('Y', [N, outFeatures])),
  ]);
  const opset = concat([bytesField(1, ''), intField(2, OPSET)]);
  return concat([intField(1, IR_VERSION), bytesField(2, 'gradprune-bench'), bytesField(7, graph), bytesField(8, opset)]);
}
